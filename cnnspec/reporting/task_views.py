"""``cnnspec visualize samples`` for models that are not a single classifier.

Segmentation: rows of (image, true mask, predicted mask) for the first segmentation output.
Multi-label, regression (and the classification outputs of a multi-output model): the images
with true and predicted labels or values, red where the prediction is off. ``--mistakes`` shows
the worst test images instead of random ones: the lowest pixel accuracy, the most wrong labels,
the largest absolute error, by the output the picture draws (the segmentation output; the first
output where several are captioned, named in the title).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnspec.analysis.tasks import OutputTask
from cnnspec.errors import printable
from cnnspec.reporting.figures import NO_PREDICTION_TITLE, fit_caption, longest_fitting, text_width
from cnnspec.training.plots import cut_label, distinct_label
from cnnspec.training.task_metrics import predicted_labels, predicted_mask
from cnnspec.training.task_plots import CAPTION_FONT, CAPTION_TILE_INCHES


def _error_per_image(out: OutputTask, y: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """How wrong each image's prediction is (higher is worse), for ``--mistakes``."""
    n = len(raw)
    if out.task == "segmentation":
        return np.mean(predicted_mask(raw, out).reshape(n, -1) != np.asarray(y).reshape(n, -1), axis=1)
    if out.task == "multilabel":
        return np.sum(predicted_labels(raw, out.decision_threshold) != np.asarray(y), axis=1).astype(
            "float64"
        )
    if out.task == "regression":
        return np.mean(np.abs(raw.reshape(n, -1) - np.asarray(y, dtype="float64").reshape(n, -1)), axis=1)
    from cnnspec.training.metrics import predicted_classes

    guess = predicted_classes(raw, binary=out.binary, from_logits=out.loss.from_logits)
    return (guess != np.asarray(y).reshape(-1)).astype("float64")


def _caption(out: OutputTask, y: Any, raw: np.ndarray, names: list[str], lead: str = "") -> tuple[str, bool]:
    """One output's true vs predicted text for one image (each line after ``lead``, such as a
    multi-output model's output name, fitted to the tile: :func:`_fitted`), and whether it is
    wrong. Outputs that are not numbers (a diverged model) are no prediction, and wrong."""
    finite = bool(np.isfinite(np.asarray(raw, dtype="float64")).all())
    undecided = fit_caption(f"{lead}pred {NO_PREDICTION_TITLE}", CAPTION_WIDTH, CAPTION_FONT)
    if out.task == "multilabel":
        labels = names if len(names) >= out.units else [str(i) for i in range(out.units)]
        guess = predicted_labels(raw[None], out.decision_threshold)[0]
        true = list(np.flatnonzero(np.asarray(y) > 0.5))
        said = list(np.flatnonzero(guess))
        true_line = _fitted(f"{lead}true ", labels, true)
        if not finite:
            return f"{true_line}\n{undecided}", True
        return f"{true_line}\n{_fitted(f'{lead}pred ', labels, said)}", set(true) != set(said)
    if out.task == "regression":
        t, p = np.asarray(y, dtype="float64").reshape(-1), np.asarray(raw, dtype="float64").reshape(-1)
        scale = max(float(np.abs(t).max(initial=0.0)), 1e-9)
        values = [f"{v:.3g}" for v in (*t, *p)]
        # (values are not names: two alike are no collision to number)
        true_line = _fitted(f"{lead}true ", values, list(range(len(t))), distinct=False)
        pred_line = _fitted(f"{lead}pred ", values, list(range(len(t), len(values))), distinct=False)
        return f"{true_line}\n{pred_line}", not finite or bool(np.max(np.abs(p - t)) > 0.1 * scale)
    from cnnspec.training.metrics import predicted_classes

    guess = int(predicted_classes(raw[None], binary=out.binary, from_logits=out.loss.from_logits)[0])
    labels = names if len(names) >= out.classes else [str(i) for i in range(out.classes)]
    true_line = _fitted(f"{lead}true ", labels, [int(y)])
    if guess < 0:  # NO_PREDICTION: not the last class's name (labels[-1])
        return f"{true_line}\n{undecided}", True
    return f"{true_line}\n{_fitted(f'{lead}pred ', labels, [guess])}", guess != int(y)


#: How wide a caption's line may be drawn: a captioned tile, less a little space between tiles.
CAPTION_WIDTH = 72 * CAPTION_TILE_INCHES * 0.94  # points


def _fitted(prefix: str, names: list[str], indices: list[int], *, distinct: bool = True) -> str:
    """``prefix`` and the names at ``indices`` (``-`` for none), joined with commas, as wide as
    a captioned tile allows: each name cut in the middle to the same length (with its index
    where two are cut alike, unless not ``distinct``), and a list too long even so cut in the
    middle as a whole (a multi-label caption ran over its neighbours' tiles and off the figure)."""
    width = CAPTION_WIDTH
    if not indices:
        return fit_caption(f"{prefix}-", width, CAPTION_FONT)
    longest = max(len(printable(str(names[i]))) for i in indices)

    def make(k: int) -> str:
        cut = (lambda i: distinct_label(names, i, k)) if distinct else (lambda i: cut_label(names[i], k))
        return prefix + ", ".join(cut(int(i)) for i in indices)

    text = longest_fitting(longest, make, width, CAPTION_FONT)
    return text if text_width(text, CAPTION_FONT) <= width else fit_caption(text, width, CAPTION_FONT)


def _scaled(probe: Any, tasks: list[OutputTask], raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each output's raw answer as evaluate reads it: a single multi-label or segmentation
    output's scaled by the probe's temperature (--temperature, or the run's temperature.json),
    whose decisions at a threshold other than 0.5 it can change; a temperature other than 1 asked
    of any other model is refused (:func:`~cnnspec.reporting.temperature.refuse_tasks`)."""
    from cnnspec.reporting.model_graph import OutputKind
    from cnnspec.reporting.temperature import refuse_tasks, scaled_answer

    temperature = probe.temperature
    refuse_tasks(tasks, temperature)  # (a model without a spec: its tasks are read only here)
    if temperature == 1.0:
        return raw
    (out,) = tasks
    return {out.name: scaled_answer(raw[out.name], tasks, OutputKind(), temperature)}


def task_samples(probe: Any, count: int, *, mistakes: bool, seed: int) -> bytes:
    """The samples picture of a task model's test split (see the module doc)."""
    from cnnspec.reporting.evaluation import listed_outputs
    from cnnspec.training.task_plots import captioned_png, masks_png
    from cnnspec.training.task_results import outputs_by_name, targets_by_name

    # a model of dict outputs answers by its keys, which need not be its outputs' names
    model = listed_outputs(probe.model)
    test = probe.test
    config = test.config
    n = len(test.x)
    scale = test.settings.rescale
    batch = np.asarray(test.x, dtype="float32") * (np.float32(scale) if scale is not None else 1)
    segmenting = [out for out in config.tasks if out.task == "segmentation"]
    # the output the picture shows ranks the worst images: a mask picture of the images chosen
    # by another output's error (a count's) showed masks that may be right; the captions of
    # several outputs are ranked by the first's, as the title says
    ranked = segmenting[0] if segmenting else config.tasks[0]
    if mistakes:  # the worst images need every prediction
        raw = _scaled(
            probe, config.tasks, outputs_by_name(config.tasks, model.predict(batch, batch_size=64, verbose=0))
        )
        truths = targets_by_name(config, test.y)
        order = np.argsort(-_error_per_image(ranked, truths[ranked.name], raw[ranked.name]), kind="stable")
        indices = np.sort(order[:count])
    else:
        indices = np.sort(np.random.default_rng(seed).permutation(n)[:count])
    raw = outputs_by_name(config.tasks, model.predict(batch[indices], batch_size=64, verbose=0))
    raw = _scaled(probe, config.tasks, raw)
    truths = {k: v[indices] for k, v in targets_by_name(config, test.y).items()}
    several = len(config.tasks) > 1
    which = "test images" if not mistakes else f"worst test images{f' by {ranked.name}' if several else ''}"
    if segmenting:
        out = segmenting[0]
        title = f"{probe.run.name}: {which}, true vs predicted mask" + (
            f" ({out.name})" if several and not mistakes else ""
        )
        return masks_png(
            test.x[indices],
            truths[out.name],
            predicted_mask(raw[out.name], out),
            out.classes,
            title,
            rows=count,
        )
    captions, wrong = [], []
    for row in range(len(indices)):
        lines, bad = [], False
        for out in config.tasks:
            names = test.output_names.get(out.name, [])
            lead = f"{out.name}: " if len(config.tasks) > 1 else ""
            text, off = _caption(out, truths[out.name][row], raw[out.name][row], names, lead)
            lines.append(text)
            bad = bad or off
        captions.append("\n".join(lines))
        wrong.append(bad)
    title = f"{probe.run.name}: {which}, true vs predicted"
    return captioned_png([test.x[i] for i in indices], captions, wrong, title)
