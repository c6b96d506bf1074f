"""The pictures of ``cnnspec visualize`` (and of the HTML report), one function per view.

Each view returns PNG bytes or writes its files; choosing file names and printing is the
command's job. Views that need test images read the run's test split (seeded, as training
split it) and scale it the way the training pipeline did.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError, did_you_mean, printable
from cnnspec.reporting.calibration import Calibration, decided
from cnnspec.reporting.figures import feature_maps_png, filters_png, samples_png
from cnnspec.reporting.held_out import load_test_data
from cnnspec.reporting.model_graph import OutputKind, conv_layers, find_layer, input_shape, layer_kind
from cnnspec.reporting.pixel_ranges import file_rescale
from cnnspec.reporting.predictions import TestData, predict, probabilities
from cnnspec.reporting.run import Run, names_or_indices, read_json, training_process
from cnnspec.reporting.stand_in import described_outputs
from cnnspec.training.plots import cut_label


def history_columns(run: Run) -> dict[str, list[float]]:
    """``history.json`` as numeric columns (non-finite values were stored as strings)."""
    history = run.history()
    where = run.run_dir or run.model_path.parent
    if history is not None and not history:  # the file is there, but holds no column at all
        raise UsageError(
            f"expected per-epoch values in {where}/history.json; it holds no epochs",
            "a run stopped before its first epoch ended has none; train it again",
        )
    if not history:
        raise UsageError(
            f"expected a training history (history.json) in {where}; there is none",
            "history comes from a run folder written by `cnnspec train`",
        )
    columns: dict[str, list[float]] = {}
    for key, values in history.items():
        if isinstance(values, list):
            try:
                columns[key] = [float(v) for v in values]
            except (TypeError, ValueError):
                continue
    if not columns.get("loss"):
        raise UsageError(f"expected per-epoch losses in {run.run_dir}/history.json; found none")
    return columns


def write_history(run: Run, target: Path) -> Path:
    from cnnspec.training.plots import plot_history

    return plot_history(history_columns(run), target, f"{run.name}: learning curves")


def confusion_source(run: Run) -> tuple[list[list[int]], list[str], str]:
    """The latest confusion matrix of a run: evaluation.json (from `evaluate`), else metrics.json;
    of several outputs, the first output's that has one (a classifier's or a segmentation's).
    In a run folder, an evaluation.json of another data source (``data.of_run`` false: ``evaluate
    --data``, which now writes it apart, in evaluations/) is not the run's and is passed over; a
    model outside a run folder has no other (``--data`` is its only data). Nor is one of another
    model or run that was written into the folder (:func:`_of_run_folder`, :func:`of_model`):
    ``evaluate RUN_A -o RUN_B`` made ``visualize RUN_B confusion`` draw RUN_A's matrix."""
    for name, what in (("evaluation.json", "evaluation"), ("metrics.json", "training's test set")):
        if name == "metrics.json" and run.run_dir is None:
            continue
        if name == "metrics.json":  # (one `runs` calls damaged is refused, as report refuses it)
            from cnnspec.reporting.runs import refuse_damaged_metrics

            refuse_damaged_metrics(run.run_dir)
        doc = read_json(run.out_dir / name)
        data = (doc or {}).get("data")
        of_other = isinstance(data, dict) and data.get("of_run") is False
        if name == "evaluation.json" and of_other and run.run_dir is not None:
            continue
        if name == "evaluation.json" and run.run_dir is not None and not _of_run_folder(doc, run):
            continue  # another run's or model's evaluation, written into this folder
        if name == "evaluation.json" and run.run_dir is None and not of_model(doc, run):
            continue  # another model file's evaluation in the same folder (evaluate writes it there)
        views = (doc or {}).get("tta")
        if isinstance(views, list) and views:  # an evaluation of averaged mirror images says so
            what = f"{what} with --tta {','.join(printable(str(v)) for v in views)}"
        members = (doc or {}).get("ensemble")
        if isinstance(members, list) and members:  # and so does one of several models' mean
            what = f"{what} of an ensemble of {len(members) + 1} models"
        parts: list[tuple[str, Any]] = [("", doc or {})]
        outputs = (doc or {}).get("outputs")
        if isinstance(outputs, dict):
            parts += [(f", output {printable(str(key))}", part) for key, part in outputs.items()]
        for output, part in parts:
            if (
                isinstance(part, dict)
                and isinstance(part.get("confusion_matrix"), list)
                and part.get("class_names")
            ):
                return part["confusion_matrix"], [str(n) for n in part["class_names"]], what + output
    raise _no_confusion(run)


def runs_evaluation(run: Run) -> dict[str, Any] | None:
    """The run's (or model file's) own evaluation.json, as :func:`confusion_source` takes it:
    of its test split and of it (``None``: none, or one of other data or another model)."""
    doc = read_json(run.out_dir / "evaluation.json")
    if not isinstance(doc, dict):
        return None
    data = doc.get("data")
    if run.run_dir is not None:
        if isinstance(data, dict) and data.get("of_run") is False:
            return None
        return doc if _of_run_folder(doc, run) else None
    return doc if of_model(doc, run) else None


def single_model_notes(run: Run, what: str) -> list[str]:
    """The note that a picture drawn from the model alone (``what``: "the reliability diagram")
    is not what the run's evaluation.json holds: an ``evaluate --ensemble`` or ``--tta`` one,
    whose figures (ECE …) differ; ``visualize confusion`` draws evaluation.json's own."""
    doc = runs_evaluation(run)
    if doc is None:
        return []
    members, views = doc.get("ensemble"), doc.get("tta")
    kinds = []
    if isinstance(members, list) and members:
        kinds.append(f"an ensemble of {len(members) + 1} models")
    if isinstance(views, list) and views:
        kinds.append(f"--tta {','.join(printable(str(v)) for v in views)}")
    if not kinds:
        return []
    return [
        f"{what} is of the model alone on its test split, while {run.out_dir / 'evaluation.json'} holds "
        f"the evaluation of {' with '.join(kinds)} (evaluate's figures differ); `cnnspec visualize "
        f"{run.out_dir} confusion` draws that evaluation's matrix"
    ]


def of_model(doc: Any, run: Run) -> bool:
    """Whether the evaluation ``doc``, read beside a model file outside a run folder, is of that
    model file: its ``model`` (the path as given to that ``evaluate``, from wherever it ran)
    names a file of the same name. It was found in the model's own folder, where no two files
    share a name."""
    model = doc.get("model") if isinstance(doc, dict) else None
    return isinstance(model, str) and Path(model).name == run.model_path.name


def _of_run_folder(doc: Any, run: Run) -> bool:
    """Whether the evaluation ``doc``, read in ``run``'s folder, is of that run: of its model
    file (:func:`of_model`), of a model in a run folder (its ``run_dir`` is set: a model outside
    any was evaluated into this folder with ``-o``), of the run's spec (its ``name``), and not
    of another run folder. The model's SHA-256, when recorded, decides (the run's own
    model.keras, whatever the folder is called now); else ``run_dir``: an absolute one that
    leads here or nowhere (moved), a relative one (as given to that ``evaluate``, from a folder
    not recorded) that leads here or whose last part is this folder's name, or ``.``."""
    if doc is None:
        return True  # no file: nothing to pass over (the caller finds no matrix in it)
    if not of_model(doc, run):
        return False
    recorded = doc.get("run_dir") if isinstance(doc, dict) else None
    if not isinstance(recorded, str) or not recorded:
        return False
    if isinstance(doc.get("name"), str) and doc["name"] != run.name:
        return False  # a run of another spec
    assert run.run_dir is not None  # (called for a run folder only)
    digest = doc.get("model_sha256")
    if isinstance(digest, str) and run.model_path.is_file():
        from cnnspec.fileio import sha256_file

        with contextlib.suppress(OSError):  # (unreadable: the paths below decide)
            return sha256_file(run.model_path) == digest  # the model itself: moved, renamed or not
    try:
        here, there = run.run_dir.resolve(), Path(recorded).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL: it cannot name another run
        return True
    if Path(recorded).is_absolute():
        return there == here or not (there / "lock.json").is_file()  # here, or nowhere: moved
    # Relative (an evaluation.json from before the hash): as given to that evaluate, from a
    # folder not recorded, so from here it leads anywhere (`evaluate .` inside A, read from B,
    # led to B). Its last part says the folder: this one's name (its own or its link's), or `.`.
    last = Path(recorded).name
    return there == here or last in ("", ".", "..") or last in (here.name, run.run_dir.name)


#: What ``visualize samples`` shows of each task other than classification.
SAMPLES_OF_TASK = {"multilabel": "labels", "regression": "values", "segmentation": "masks"}


def _no_confusion(run: Run) -> UsageError:
    """The error of a run without a confusion matrix: a classifier's needs `evaluate` (or a
    finished training); a model of other tasks has none to make, and is pointed at the views
    it has; an unfinished run is sent to finish first."""
    if run.run_dir is not None and not run.model_path.is_file() and run.metrics() is None:
        # (--resume is refused while a training holds the run: that one is waited for)
        finish = (
            f"finish it with `cnnspec train SPEC --resume {run.run_dir}`"
            if training_process(run.run_dir) is None
            else "wait for the training to end"
        )
        return UsageError(  # (evaluate would refuse it: there is no model to evaluate yet)
            f"expected a confusion matrix from training or `cnnspec evaluate`; {run.missing_model}, "
            "so it has none",
            f"{finish}; `cnnspec visualize {run.run_dir} history` draws its learning curves so far",
        )
    config = run.config
    if config is None or not config.task_path:
        return UsageError(
            "expected a confusion matrix from training or `cnnspec evaluate`; this target has none",
            "run `cnnspec evaluate TARGET` first (it also writes confusion_matrix.png)",
        )
    from cnnspec.training.task_results import picture_name

    tasks = config.tasks
    if len(tasks) == 1:
        described = f"a {tasks[0].task} model"
    else:
        described = "a model with the outputs " + described_outputs(tasks)
    shown = " and ".join(dict.fromkeys(SAMPLES_OF_TASK.get(out.task, "classes") for out in tasks))
    target = run.run_dir or run.model_path
    hint = f"`cnnspec visualize {target} samples` draws test images with true and predicted {shown}"
    pictures = [
        name for out in tasks if (name := picture_name(config, out)) and (run.out_dir / name).is_file()
    ]
    if pictures:
        hint += f"; {', '.join(pictures)} in {run.out_dir} (and report.html) show the test results"
    return UsageError(
        f"expected a classification or segmentation output for a confusion matrix; {run.name} is "
        f"{described}, which has none",
        hint,
    )


def write_confusion(run: Run, target: Path, normalize: bool = False) -> Path:
    """The confusion-matrix heatmap; ``normalize``: each true class's row as percentages."""
    from cnnspec.training.plots import plot_confusion_matrix

    matrix, names, what = confusion_source(run)
    data = np.asarray(matrix, dtype="float64")
    accuracy = float(np.trace(data) / data.sum()) if data.sum() else 0.0
    title = f"{run.name}: confusion matrix, {what} (accuracy {accuracy:.4f})"
    if normalize:
        totals = data.sum(axis=1, keepdims=True)
        data = np.round(100.0 * data / np.where(totals == 0, 1, totals))
        title = f"{run.name}: confusion matrix, % of each true class ({what})"
    return plot_confusion_matrix(data.astype("int64").tolist(), names, target, title)


@dataclass
class Probe:
    """A model, its run, and (lazily) the test data: shared by the views of one command."""

    run: Run
    model: Any
    data: str | None = None
    _test: TestData | None = None
    _all: tuple[np.ndarray, np.ndarray] | None = None
    #: notes of the views themselves (an empty class map)
    extra_notes: list[str] = field(default_factory=list)
    _temperature: float | None = None
    #: ``--temperature`` (:func:`~cnnspec.reporting.temperature.parse_option`): ``None`` is
    #: auto, the run's temperature.json (report.html's only way: it shows the run as it stands)
    wanted: float | None = None
    #: How a note of the temperature applied says to see the model's own probabilities: report
    #: takes no --temperature, and names the commands that do
    own: str = "cnnspec visualize (or evaluate) RUN --temperature none shows the model's own probabilities"
    #: The model's outputs for every test image, row for row (what ``train`` computed its test
    #: results from, given with the test data it has in memory): the predictions are read from
    #: them rather than predicted again, so the page's samples are those the metrics counted
    outputs: Any = None

    @property
    def test(self) -> TestData:
        if self._test is None:
            self._test = load_test_data(self.run, self.model, self.data)
            if len(self._test.x) == 0:
                raise UsageError("expected a test split with images; it is empty")
        return self._test

    @property
    def temperature(self) -> float:
        """What a classifier's (or a multi-label or segmentation output's) probabilities are
        scaled by: :attr:`wanted`, else the run's temperature.json (``cnnspec calibrate``) where
        it is of this model file, else 1; applying one adds a note
        (:func:`~cnnspec.reporting.temperature.chosen`). A temperature other than 1 asked of a
        model it does not scale (a regression, several outputs) is refused, as evaluate's is."""
        if self._temperature is None:
            from cnnspec.reporting.temperature import chosen, refuse_tasks, scales

            config = self.run.config
            tasks = tuple(config.tasks) if config is not None and config.task_path else None
            if self.wanted is not None:
                refuse_tasks(tasks, self.wanted)
            other = not scales(tasks)  # (auto: a temperature.json beside such a model is not read)
            self._temperature = (
                1.0 if other else chosen(self.run, self.wanted, self.extra_notes, own=self.own)
            )
        return self._temperature

    @property
    def temperature_said(self) -> str:
        """Which temperature the probabilities drawn are of, for a picture's title and the line
        printed with it (:func:`~cnnspec.reporting.temperature.described`)."""
        from cnnspec.reporting.temperature import described

        return described(self.temperature, self.wanted)

    def _scaled(self, probs: np.ndarray) -> np.ndarray:
        """A classifier's class probabilities scaled by :attr:`temperature`."""
        from cnnspec.reporting.temperature import tempered

        return tempered(probs, self.temperature)

    @property
    def notes(self) -> list[str]:
        """Notes about the test data (seed used, data changed since training), once loaded,
        and the views' own."""
        return (list(self._test.notes) if self._test is not None else []) + self.extra_notes

    def prepared(self, pixels: np.ndarray, rescale: float | None) -> np.ndarray:
        batch = np.asarray(pixels, dtype="float32")[None]
        return batch * np.float32(rescale) if rescale is not None else batch

    def activation_layers(self) -> list[str]:
        """Layers whose output can be shown: feature maps (h, w, c) or flat vectors."""
        names = []
        for layer in self.model.layers:
            shape = getattr(layer.output, "shape", None) if hasattr(layer, "output") else None
            if type(layer).__name__ != "InputLayer" and shape is not None and len(shape) in (2, 4):
                names.append(layer.name)
        return names

    def activations(self, layer_name: str, batch: np.ndarray) -> np.ndarray:
        from cnnspec.reporting.gradcam import call_output
        from cnnspec.training.runtime import import_keras

        keras = import_keras()
        sub = keras.Model(self.model.inputs[0], call_output(self.model.get_layer(layer_name)))
        return np.asarray(sub(batch, training=False))[0]

    def features(
        self,
        layer_name: str | None,
        *,
        sample: int = 0,
        max_maps: int = 16,
        image: Path | None = None,
    ) -> tuple[bytes, str]:
        """Feature maps of a layer for one test image (or ``image``); returns (png, layer)."""
        choices = self.activation_layers()
        if layer_name is None:
            convs = conv_layers(self.model)
            if not convs:
                raise UsageError("expected --layer NAME (the model has no convolution)", f"layers: {choices}")
            layer_name = convs[0].name
        find_layer(self.model, layer_name, choices, "layer with feature maps")
        pixels, rescale, caption = self.one_image(sample, image)
        maps = self.activations(layer_name, self.prepared(pixels, rescale))
        png = feature_maps_png(
            pixels, maps, layer_name, prefix=f"{self.run.name}: ", caption=caption, max_maps=max_maps
        )
        return png, layer_name

    def one_image(self, sample: int, image: Path | None) -> tuple[np.ndarray, float | None, str]:
        """The pixels of the file ``image`` (``--image``; of an .npy batch, its image ``sample``),
        else of test image ``sample``; the factor that scales them as the model takes them; and
        a caption that names the image (and a test image's true class)."""
        if image is not None:
            from cnnspec.reporting.images import read_inputs
            from cnnspec.reporting.task_predict import file_factor

            samples = read_inputs([image], input_shape(self.model))
            _check_image_sample(image, sample, len(samples))
            item, whole = samples[sample], np.stack([s.pixels for s in samples])
            # the depth of the whole file (a uint16 .npy: 1/65535), as predict decides it
            rescale = file_factor(
                image.name, item.integer, whole, lambda i, p: file_rescale(self.run, self.model, i, p)
            )
            return item.pixels, rescale, f"input: {item.label}"
        test = self.test
        if not 0 <= sample < len(test.x):
            raise UsageError(f"expected --sample between 0 and {len(test.x) - 1}; received {sample}")
        caption = f"test image #{sample}"
        if not test.config.task_path:  # a label set, values or a mask (per output) is no class
            # on a line of its own and shortened: a long class name pushed the caption off
            # the picture's left edge (the narrow input panel); feature_maps_png draws it
            # literally (a class name's dollars are no mathtext)
            caption += f"\n(class {cut_label(test.class_names[int(test.y[sample])], 16)})"
        return test.x[sample], test.settings.rescale, caption

    def class_map(
        self,
        layer_name: str | None,
        *,
        sample: int = 0,
        image: Path | None = None,
        target: str | None = None,
    ) -> tuple[bytes, str, str]:
        """Grad-CAM (:mod:`cnnspec.reporting.gradcam`) of a layer (default: the last whose maps
        are larger than a pixel) for a class (``target``: a name or an index; default: the
        predicted one) of one test image (or ``image``). Returns (png, layer, a line that says
        which class and how sure the model is); an empty map adds a note."""
        from cnnspec.reporting.figures import class_map_png
        from cnnspec.reporting.gradcam import class_map, spatial_layers

        labels = self._explained_task()  # None: a classifier; else its multi-label output
        if labels is not None and labels.task == "segmentation" and self.wanted is not None:
            # (refused as visualize refuses an option its view does not read: taken, it changed
            # nothing, since a temperature moves no pixel's likeliest class)
            raise UsageError(
                "expected --temperature with the gradcam view of a classifier or a multi-label model; "
                "a segmentation's class map shows the share of the pixels predicted as each class, "
                "which a temperature does not change",
                "leave --temperature out (the calibration view draws a segmentation's pixel "
                "probabilities at a temperature)",
            )
        choices = spatial_layers(self.model)
        if not choices:
            raise UsageError(
                f"expected a model with feature maps (height × width × channels) for a class map; "
                f"{self.run.model_path.name} has no layer with maps larger than one pixel"
            )
        layer_name = layer_name if layer_name is not None else choices[-1]
        find_layer(self.model, layer_name, choices, "layer with feature maps larger than one pixel")
        pixels, rescale, caption = self.one_image(sample, image)
        batch = self.prepared(pixels, rescale)
        # (a call, not Keras' predict: one image, and no predict function traced for it)
        answer = np.asarray(self.model(batch, training=False), dtype="float64")
        raw = answer.reshape(1, -1)
        shares = None  # a segmentation: each class's share of the predicted mask
        if labels is None:
            what, kind = "class", self.run.output_kind(self.model)
            probs = self._scaled(probabilities(raw, kind))[0]
            names = self.run.names_for(len(probs))
        elif labels.task == "segmentation":  # each pixel's classes (one sigmoid channel: two)
            what, kind = "class", OutputKind(binary=labels.units == 1, from_logits=labels.loss.from_logits)
            per_pixel = probabilities(answer.reshape(-1, labels.units), kind)
            shares = np.bincount(per_pixel.argmax(axis=1), minlength=per_pixel.shape[1]) / len(per_pixel)
            probs = per_pixel.mean(axis=0)
            names = names_or_indices(self.run.output_names(labels.name), len(probs))
        else:  # sigmoid units, one per label: each its own probability
            from cnnspec.reporting.predictions import label_probabilities
            from cnnspec.reporting.temperature import tempered_labels

            what, kind = "label", OutputKind(from_logits=labels.loss.from_logits)
            probs = tempered_labels(
                label_probabilities(raw[0], labels.loss.from_logits), False, self.temperature
            )
            names = names_or_indices(self.run.output_names(labels.name), len(probs))
        predicted = int(np.argmax(probs if shares is None else _foreground(shares)))
        left_out = _source_classes(self.run) if labels is None else None  # (data.classes: class targets)
        index = predicted if target is None else _class_index(target, names, left_out)
        found = class_map(self.model, layer_name, batch, index, kind)
        if found.peak == 0:
            self.extra_notes.append(
                f"nothing in {layer_name}'s maps raises the score of {what} {printable(names[index])}: "
                f"its class map is empty (an earlier layer, or another {what}, may show more)"
            )
        chance = f"p = {probs[index]:.1%}"
        if shares is not None:
            chance = f"{shares[index]:.1%} of the pixels"
            common = "the most common class" + (" after class 0" if shares[1:].sum() > 0 else "")
            said = common if index == predicted else f"{common}: {printable(names[predicted])}"
        elif labels is not None:
            side = "above" if probs[index] > labels.threshold else "below"
            said = f"{side} the threshold {labels.threshold:g}"
        else:
            said = "predicted" if index == predicted else f"predicted: {printable(names[predicted])}"
        size = f"{found.heat.shape[0]}×{found.heat.shape[1]}"
        png = class_map_png(
            pixels,
            found.heat,
            f"{self.run.name}: Grad-CAM of {what} {names[index]} ({found.score}'s gradient)",
            [
                caption.replace("\n", " "),
                f"{layer_name} ({size})",
                f"{names[index]}: {chance}" + ("" if shares is not None else f", {said}"),
            ],
        )
        line = f"{what} {printable(names[index])} ({chance}, {said}) on {layer_name}'s {size} maps"
        if shares is None:  # (a probability: of a temperature; a mask's shares are of none)
            line += f"; p at {self.temperature_said}"
        return png, layer_name, line

    def _explained_task(self) -> Any:
        """What a class map explains: ``None`` for a classifier (one output of classes), the
        output's task for a multi-label model (one output of labels); any other model is
        refused. From the spec's tasks, or for a model without one, what the task rules read
        from it."""
        from cnnspec.reporting.stand_in import model_tasks

        config = self.run.config
        if config is not None:
            tasks = tuple(config.tasks) if config.task_path else ()
        else:
            read = model_tasks(self.model, self.run.name, self.run.model_path)
            tasks = () if len(read) == 1 and read[0].task == "classification" else tuple(read)
        if not tasks or (len(tasks) == 1 and tasks[0].task in ("multilabel", "segmentation")):
            return tasks[0] if tasks else None
        described = described_outputs(tasks)
        raise UsageError(
            f"expected a classifier, a multi-label or a segmentation model (one output of classes, "
            f"labels or a class map) for a class map; {self.run.model_path.name}'s outputs: {described}",
            "`cnnspec visualize TARGET features` shows any model's feature maps",
        )

    def filters(self, layer_name: str | None, max_filters: int = 64) -> tuple[bytes, str]:
        """The kernels of a convolution (default: the first); returns (png, layer)."""
        convs = conv_layers(self.model)
        if not convs:
            raise UsageError(f"expected a model with a 2-D convolution; {self.run.model_path} has none")
        layer = convs[0] if layer_name is None else None
        if layer is None:
            layer = find_layer(self.model, str(layer_name), [c.name for c in convs], "convolution layer")
        kernel_var = getattr(layer, "depthwise_kernel", None)
        if kernel_var is None:
            kernel_var = layer.kernel
        kernel = np.asarray(kernel_var)
        kind = layer_kind(layer)
        assert kind is not None and kind.kernel_layout is not None  # conv_layers picks only these
        png = filters_png(
            kernel, kind.kernel_layout, layer.name, prefix=f"{self.run.name}: ", max_filters=max_filters
        )
        return png, layer.name

    def all_predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """(predicted classes, confidences) for the whole test split (computed once)."""
        if self._all is None:
            self._all = decided(self._all_probabilities())
        return self._all

    def _all_probabilities(self) -> np.ndarray:
        test = self.test
        kind = self.run.output_kind(self.model)
        if self.outputs is not None:
            raw = self.outputs[0] if isinstance(self.outputs, list) else self.outputs
            return self._scaled(probabilities(np.asarray(raw), kind))
        return self._scaled(predict(self.model, test.x, test.settings.rescale, kind))

    def calibration(self) -> tuple[bytes, str]:
        """The reliability diagram of a classifier (or of a multi-label output's labels) on the
        whole test split (:mod:`cnnspec.reporting.calibration`), and its one-line summary."""
        from cnnspec.reporting.calibration import of_probabilities
        from cnnspec.reporting.figures import reliability_png

        test = self.test
        tasks = test.config.tasks
        if test.config.task_path and (len(tasks) != 1 or tasks[0].task not in ("multilabel", "segmentation")):
            from cnnspec.reporting.run import MODEL_FILE

            # (the run folder where the model is its own: a checkpoint is evaluated by its file)
            run_dir = self.run.run_dir
            own = run_dir is not None and self.run.model_path == run_dir / MODEL_FILE
            raise UsageError(
                f"expected a classifier, a multi-label or a segmentation model (one output) for a "
                f"reliability diagram; this model's outputs are {described_outputs(tasks)}",
                f"`cnnspec evaluate {run_dir if own else self.run.model_path}` reports the test "
                "results of its task",
            )
        if test.config.task_path:
            from cnnspec.reporting.calibration import LABELS, PIXELS

            result = self.label_calibration(tasks[0])
            what = "pixels" if tasks[0].task == "segmentation" else "labels"
            title = f"{self.run.name}: reliability of the {what} on the test set ({len(test.x):,} images)"
            unit = "pixels" if what == "pixels" else "label decisions"
            line = result.line(PIXELS if what == "pixels" else LABELS)
            said = self.temperature_said  # (after label_calibration: its note comes first)
            return reliability_png(result, title, unit, scaled=said), f"{line}; {said}"
        probs = self._all_probabilities()
        self._all = decided(probs)
        result = of_probabilities(probs, test.y)
        if self.data is None:  # (the run's own test split: its evaluation.json may be another's)
            self.extra_notes.extend(single_model_notes(self.run, "the reliability diagram"))
        title = f"{self.run.name}: reliability on the test set ({len(test.y):,} images)"
        # the picture and its line say which probabilities they are of: a diagram of the
        # model's own and one of the calibrated ones look alike but for their numbers
        said = self.temperature_said
        return reliability_png(result, title, scaled=said), f"{result.line()}; {said}"

    def label_calibration(self, task: Any) -> Calibration:
        """The calibration of a multi-label output (``task``): each label of each test image
        a decision of its own (:func:`~cnnspec.reporting.calibration.of_labels`), of the
        probabilities scaled by :attr:`temperature`; of a segmentation output, each pixel
        (:func:`~cnnspec.reporting.calibration.of_pixels`)."""
        from cnnspec.reporting.calibration import of_labels, of_pixels
        from cnnspec.reporting.predictions import label_answers
        from cnnspec.reporting.temperature import tempered_labels

        if task.task == "segmentation":
            from cnnspec.reporting.predictions import map_answers
            from cnnspec.reporting.temperature import tempered_maps

            maps, masks = map_answers(self.model, self.test, task)
            return of_pixels(tempered_maps(maps, False, self.temperature), masks)
        probs, truth = label_answers(self.model, self.test, task)
        return of_labels(tempered_labels(probs, False, self.temperature), truth)

    def predictions(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(predicted classes, confidences) for test images at ``indices``."""
        if self._all is not None or self.outputs is not None:
            predicted, confidence = self.all_predictions()
            return predicted[indices], confidence[indices]
        test = self.test
        probs = predict(self.model, test.x[indices], test.settings.rescale, self.run.output_kind(self.model))
        return decided(self._scaled(probs))

    def pick(self, count: int, *, mistakes: bool = False, seed: int = 0) -> np.ndarray:
        """Indices of test images to show: a seeded random choice (only mistakes if asked)."""
        test = self.test
        candidates = np.arange(len(test.y))
        if mistakes:
            predicted, _ = self.all_predictions()
            candidates = candidates[predicted != test.y]
            if not len(candidates):
                raise UsageError("the model makes no mistakes on the test split; nothing to show")
        chosen = np.random.default_rng(seed).permutation(candidates)[:count]
        return np.sort(chosen)

    def samples(self, count: int = 16, *, mistakes: bool = False, seed: int = 0) -> bytes:
        if self.test.config.task_path:  # masks, labels or values rather than one class
            from cnnspec.reporting.task_views import task_samples

            return task_samples(self, count, mistakes=mistakes, seed=seed)
        indices = self.pick(count, mistakes=mistakes, seed=seed)
        predicted, confidence = self.predictions(indices)
        test = self.test
        names = _names(test.class_names, predicted, test.y[indices])
        kind = "misclassified test images" if mistakes else "test images"
        # (the confidences shown are of a temperature: the title says which)
        return samples_png(
            [test.x[i] for i in indices],
            test.y[indices],
            predicted,
            confidence,
            names,
            title=f"{self.run.name}: {kind}, predicted vs true class",
            scaled=self.temperature_said,
        )


def _foreground(shares: np.ndarray) -> np.ndarray:
    """A segmentation's class shares with class 0 (the background of most masks) left out,
    unless it is the only class predicted: the default class of its class map."""
    rest = shares.copy()
    if rest[1:].sum() > 0:
        rest[0] = -1.0
    return rest


def _class_index(target: str, names: list[str], source: tuple[list[str], Any] | None = None) -> int:
    """``--class``: a class name, else its index; anything else lists the names. ``source``: the
    data's classes and the run's ``data.classes`` where the spec tells them (:func:`_source_classes`):
    a class of the data the run left out is refused, not read as the index of a class it kept
    (``2`` of a digits run of ``data.classes: [9, 5, 7]`` is the digit 2, not '7'), by the rule
    ``training.class_weight``'s keys follow (:func:`cnnspec.analysis.classes.key_label`)."""
    from cnnspec.analysis.classes import LeftOutClass, key_label

    if target in names:
        return names.index(target)
    try:  # (stripped: ` 2` is the index 2, as before)
        found = key_label(target.strip(), names, *(source or (None, None)))
    except LeftOutClass as exc:
        raise UsageError(
            f"expected --class to be one of the model's classes; received {printable(target)!r}: the "
            f"data's class {printable(exc.name)!r} is not among the run's data.classes {exc.classes}",
            f"name one of the model's classes ({exc.kept})",
        ) from None
    if found is not None:
        return found
    listing = ", ".join(printable(n) for n in names[:40]) + (" …" if len(names) > 40 else "")
    raise UsageError(
        f"expected --class to be one of the model's classes or an index below {len(names)}; "
        f"received {printable(target)!r}. Classes: {listing}",
        # (a number out of range is no misspelt name: `-1` is one edit from `1`)
        None if target.strip().lstrip("+-").isdecimal() else did_you_mean(target, names),
    )


def _source_classes(run: Run) -> tuple[list[str], Any] | None:
    """The data's classes and ``data.classes`` of a run that selected some of a source whose
    classes the spec fixes (the built-in datasets, ``shapes``); ``None`` for the others (a
    folder's classes are known only by reading it, which ``--class`` does not do)."""
    from cnnspec.analysis.settings_data import fixed_class_names

    config = run.config
    if config is None or config.data.classes is None:
        return None
    names = fixed_class_names(config.data)
    return None if names is None else (names, config.data.classes)


def _names(names: list[str], *labels: np.ndarray) -> list[str]:
    top = max([len(names) - 1] + [int(np.max(lab)) for lab in labels if len(lab)])
    return names if top < len(names) else names + [str(i) for i in range(len(names), top + 1)]


def _check_image_sample(image: Path, sample: int, count: int) -> None:
    """Refuse a ``--sample`` that picks no image of the file ``image`` (``count`` images): of an
    .npy batch it picks one (``--image x.npy --sample 1``), in range; a file of one image has no
    other (the first of a batch was drawn whatever --sample said, one out of range too)."""
    if count == 1 and sample != 0:
        raise UsageError(
            f"--sample picks an image of an .npy batch given by --image; {image} holds one image "
            f"(received --sample {sample})",
            "leave out --sample, or leave out --image to draw test image --sample",
        )
    if not 0 <= sample < count:
        raise UsageError(
            f"expected --sample between 0 and {count - 1} (the images of {image}); received {sample}"
        )
