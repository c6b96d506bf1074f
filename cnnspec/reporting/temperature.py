"""Temperature scaling: a classifier's probabilities made as sure as they are right.

A network trained with crossentropy is often surer than it is right (or, briefly trained, less
sure): its calibration (:mod:`cnnspec.reporting.calibration`) shows the gap. Temperature scaling
(Guo et al. 2017) closes most of it with one number ``T > 0`` fitted on held-out images: the
class probabilities ``p`` become ``softmax(log p / T)``. For a model that answers in logits
``z`` that is ``softmax(z / T)``, since ``log softmax(z)`` differs from ``z`` by one constant per
image. ``T > 1`` softens the probabilities (an overconfident model), ``T < 1`` sharpens them.
The top class never changes, so the accuracy and the confusion matrix stay as they are; the
loss, the calibration, the Brier score and every confidence shown change. Under ``--tta`` and
``--ensemble`` each view's (each member's) probabilities are scaled before their mean, as an
export with ``--tta`` answers (its temperature folded into the weights: a graph of standard
layers, which has no logarithm to take of a mean); the mean's top class may change with it.

``cnnspec calibrate RUN`` fits ``T`` on the run's **validation** split (the images the training
held out and never fitted weights to; the test split stays the judge of the result), or with
``--data`` on a calibration set of the user's own (:func:`fitted_on` says which). The fit
minimises the mean negative log-likelihood of the true classes, a convex function of ``1/T``:
golden-section search over ``log T`` in [:data:`LOW`, :data:`HIGH`] finds its minimum. It keeps
the result in the run folder as ``temperature.json`` (:class:`Fitted`, ``format`` 1):

- ``temperature``; ``split`` ("validation"), ``images``;
- ``nll_before``/``nll_after`` and ``ece_before``/``ece_after`` on that split;
- ``model_sha256``: the model file it was fitted for. A model file changed since (trained
  again into the folder) no longer matches, and its temperature is not applied.

``cnnspec evaluate``, ``predict`` and ``visualize`` apply the run's temperature under
``--temperature auto`` (their default; :func:`chosen`) and say so in a note; ``--temperature
none`` (or ``1``) shows the model's own probabilities, another number tries that one (one
option, :func:`parse_option`, for every command that takes it). ``report`` shows the run as it
stands: its temperature.json applied, as auto does (the page's figures are the run's own
files', which evaluate wrote with its temperature).
``cnnspec export`` folds the temperature into the weights of the layer that makes the scores
(:mod:`cnnspec.export.folding`), so the exported file answers scaled; evaluate and predict apply
to an export only the rest of the temperature they are asked for
(:meth:`~cnnspec.export.runtimes.ExportRecord.remaining`).
A model of one classification, multi-label or segmentation output is scaled (:func:`scales`);
a multi-label output gets one temperature for all its labels, each label's log-odds divided by
it (``sigmoid(z / T)``), fitted on every label of every validation image as a two-class
decision of its own (:func:`~cnnspec.reporting.calibration.label_rows`); a segmentation one for
all its pixels, each pixel's classes scaled as a classifier's (:func:`tempered_maps`), fitted
on the validation images' pixels (:func:`~cnnspec.reporting.calibration.pixel_rows`: a seeded
sample of at most 250,000). Regression and several outputs take none. TensorFlow-free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError
from cnnspec.reporting.model_graph import OutputKind
from cnnspec.reporting.run import Run, damaged, read_json

#: The file ``cnnspec calibrate`` writes into the run folder.
FILE = "temperature.json"
FORMAT = 1
#: The temperatures the fit searches between: beyond them a model's probabilities are all but
#: uniform (``T`` = 20) or all but one-hot (``T`` = 0.05), and the fit says so.
LOW, HIGH = 0.05, 20.0
#: The temperatures applied at all (``--temperature``, a temperature.json): far beyond the fit's
#: bounds, and within what float32 arithmetic survives (1e-40 overflowed an export's folded
#: kernel, 1e-320 every log-probability: NaN answers, blamed on the model).
USABLE = (1e-3, 1e3)
#: What the hint of a damaged temperature.json says: `cnnspec calibrate` wrote it, so it, not
#: training, writes it again; without it (or unread, --temperature none) the model's own
#: probabilities are used. (report takes no --temperature: deleting is its way.)
DAMAGED_HINT = (
    "the file was changed after `cnnspec calibrate` wrote it, or is not cnnspec's: run `cnnspec "
    "calibrate RUN` again (it replaces the file), or delete it to use the model's own "
    "probabilities (evaluate, predict, visualize and export: --temperature none leaves it unread)"
)
#: The smallest probability whose logarithm is taken: a class a float32 softmax rounded to 0
#: stays the least likely, and finite.
_TINY = 1e-300


def tempered(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Class probabilities (n, classes) scaled by ``temperature``: ``softmax(log p / T)`` per
    row. A row that is not all numbers stays so (the calibration leaves it out)."""
    probs = np.asarray(probabilities, dtype="float64")
    if temperature == 1.0 or probs.size == 0:
        return probs
    from cnnspec.reporting.predictions import probabilities

    logits = np.log(np.clip(probs, _TINY, 1.0)) / temperature
    logits = np.where(np.isnan(probs), np.nan, logits)  # (clip turns NaN into a bound)
    return probabilities(logits, OutputKind(from_logits=True))


def tempered_outputs(outputs: Any, kind: OutputKind, temperature: float) -> Any:
    """Raw outputs of a classifier of ``kind`` whose probabilities are ``outputs``' tempered:
    what the reports and the loss read as the model's answer (:func:`tempered`)."""
    if temperature == 1.0:
        return outputs
    from cnnspec.reporting.predictions import probabilities
    from cnnspec.reporting.tta import as_outputs

    return as_outputs(tempered(probabilities(outputs, kind), temperature), kind)


def tempered_labels(outputs: Any, from_logits: bool, temperature: float) -> np.ndarray:
    """A multi-label output's raw values scaled by ``temperature``, each label on its own:
    log-odds divided by it (``sigmoid(z / T)``), as raw values of the same kind (logits stay
    logits, probabilities probabilities). NaN stays NaN."""
    raw = np.asarray(outputs, dtype="float64")
    if temperature == 1.0:
        return raw
    if from_logits:
        return raw / temperature
    from cnnspec.reporting.predictions import label_probabilities

    p = np.clip(raw, 1e-12, 1 - 1e-12)
    scaled = label_probabilities(np.log(p / (1 - p)) / temperature, from_logits=True)
    return np.where(np.isnan(raw), np.nan, scaled)


def tempered_maps(outputs: Any, from_logits: bool, temperature: float) -> np.ndarray:
    """A segmentation's raw maps (n, height, width, classes) scaled by ``temperature``, each
    pixel's classes on their own (``softmax(log p / T)``), as raw values of the same kind
    (logits: log-probabilities, which a softmax reads as the scaled probabilities); a 1-channel
    sigmoid map's pixels as a multi-label output's labels (:func:`tempered_labels`)."""
    raw = np.asarray(outputs, dtype="float64")
    if temperature == 1.0 or raw.shape[-1] == 1:
        return tempered_labels(raw, from_logits, temperature)
    rows = raw.reshape(-1, raw.shape[-1])
    return np.asarray(tempered_outputs(rows, OutputKind(from_logits=from_logits), temperature)).reshape(
        raw.shape
    )


def scaled_answer(outputs: Any, tasks: Sequence[Any] | None, kind: OutputKind, temperature: float) -> Any:
    """A model's raw answer scaled by ``temperature``: a classifier's (``tasks`` ``None``, read
    by ``kind``), a single multi-label output's or a single segmentation output's (``tasks``:
    its one task; :func:`refuse_tasks` lets no other through)."""
    if temperature == 1.0:
        return outputs
    if tasks is None:
        return tempered_outputs(outputs, kind, temperature)
    (task,) = tasks
    if task.task == "classification":
        return tempered_outputs(
            outputs, OutputKind(binary=task.binary, from_logits=task.loss.from_logits), temperature
        )
    if task.task == "segmentation":
        return tempered_maps(outputs, task.loss.from_logits, temperature)
    return tempered_labels(outputs, task.loss.from_logits, temperature)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The mean of ``-log p`` of each image's true class (probabilities clipped to 1e-12)."""
    probs = np.asarray(probabilities, dtype="float64")
    truth = np.asarray(labels).reshape(-1).astype("int64")
    picked = probs[np.arange(len(probs)), truth]
    # (+ 0.0: every image right at p = 1 is -0.0, which calibrate printed as "→ -0.0000")
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean()) + 0.0


def fit(probabilities: np.ndarray, labels: np.ndarray, *, steps: int = 50) -> float:
    """The temperature in [:data:`LOW`, :data:`HIGH`] that minimises the negative
    log-likelihood of ``labels`` under the tempered ``probabilities`` (rows that are not all
    numbers left out). Golden-section search over ``log T``: the likelihood is convex in
    ``1/T``, so it has one minimum there, which ``steps`` narrowings (each keeps 0.618 of the
    interval) find to ~2e-10 of ``log T``."""
    probs = np.asarray(probabilities, dtype="float64")
    labels = np.asarray(labels).reshape(-1)
    known = np.isfinite(probs).all(axis=1)
    probs, labels = probs[known], labels[known]
    if not len(probs):
        raise UsageError("expected images whose outputs are numbers to fit a temperature; none are")

    def cost(log_t: float) -> float:
        return negative_log_likelihood(tempered(probs, math.exp(log_t)), labels)

    ratio = (math.sqrt(5) - 1) / 2
    low, high = math.log(LOW), math.log(HIGH)
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    cost_a, cost_b = cost(a), cost(b)
    for _ in range(steps):
        if cost_a <= cost_b:
            high, b, cost_b = b, a, cost_a
            a = high - ratio * (high - low)
            cost_a = cost(a)
        else:
            low, a, cost_a = a, b, cost_b
            b = low + ratio * (high - low)
            cost_b = cost(b)
    return math.exp((low + high) / 2)


@dataclass(frozen=True)
class Fitted:
    """A temperature fitted by ``cnnspec calibrate`` (``temperature.json``)."""

    temperature: float
    split: str
    images: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    model_sha256: str

    def describe(self) -> dict[str, Any]:
        """The document of ``temperature.json``."""
        return {
            "format": FORMAT,
            "temperature": round(self.temperature, 6),
            "split": self.split,
            "images": self.images,
            "nll_before": round(self.nll_before, 6),
            "nll_after": round(self.nll_after, 6),
            "ece_before": round(self.ece_before, 6),
            "ece_after": round(self.ece_after, 6),
            "model_sha256": self.model_sha256,
        }

    @property
    def at_bound(self) -> bool:
        """Whether the fit stopped at an end of the range searched (the model's probabilities
        are all but constant, or all but certain, however they are scaled)."""
        return not LOW * 1.001 < self.temperature < HIGH / 1.001


def fitted(
    probabilities: np.ndarray,
    labels: np.ndarray,
    model_sha256: str,
    split: str = "validation",
    per_image: int = 1,
    images: int | None = None,
) -> Fitted:
    """The temperature of ``probabilities`` for ``labels`` with the figures before and after
    (``per_image``: rows per image, a multi-label output's labels:
    :func:`~cnnspec.reporting.calibration.label_rows`; ``images``: the images the rows are of,
    where they are not a whole number of rows each, a segmentation's sampled pixels)."""
    from cnnspec.reporting.calibration import of_probabilities

    temperature = fit(probabilities, labels)
    known = np.isfinite(np.asarray(probabilities, dtype="float64")).all(axis=1)
    after = tempered(probabilities, temperature)
    return Fitted(
        temperature=temperature,
        split=split,
        images=images if images is not None else int(known.sum()) // per_image,
        nll_before=negative_log_likelihood(np.asarray(probabilities)[known], np.asarray(labels)[known]),
        nll_after=negative_log_likelihood(after[known], np.asarray(labels)[known]),
        ece_before=of_probabilities(probabilities, labels).ece,
        ece_after=of_probabilities(after, labels).ece,
        model_sha256=model_sha256,
    )


def fitted_on(found: Fitted) -> str:
    """What a temperature was fitted on, as a note says it: ``144 validation images``, or
    ``40 images of --data cal.npz`` (``cnnspec calibrate --data``)."""
    plural = "" if found.images == 1 else "s"
    if found.split == "validation":
        return f"{found.images:,} validation image{plural}"
    return f"{found.images:,} image{plural} of {found.split}"


def read(path: Path) -> Fitted | None:
    """The ``temperature.json`` at ``path`` (``None``: there is none); one that is not as
    :meth:`Fitted.describe` writes it is a :func:`~cnnspec.reporting.run.damaged` error."""
    document = read_json(path, DAMAGED_HINT)  # (calibrate wrote it: no training mends it)
    if document is None:
        return None
    problems = []
    value = document.get("temperature")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not USABLE[0] <= value <= USABLE[1]:
        problems.append(
            f"temperature: expected a number from {USABLE[0]:g} to {USABLE[1]:g}; received {value!r}"
        )
    for key in ("nll_before", "nll_after", "ece_before", "ece_after"):
        figure = document.get(key)
        if not isinstance(figure, (int, float)) or isinstance(figure, bool):
            problems.append(f"{key}: expected a number; received {figure!r}")
    images = document.get("images")
    if not isinstance(images, int) or isinstance(images, bool) or images < 0:
        problems.append(f"images: expected a count; received {images!r}")
    for key in ("split", "model_sha256"):
        if not isinstance(document.get(key), str):
            problems.append(f"{key}: expected a string; received {document.get(key)!r}")
    if problems:
        raise damaged(path, problems, DAMAGED_HINT)
    return Fitted(
        temperature=float(value),  # type: ignore[arg-type]
        split=document["split"],
        images=images,  # type: ignore[arg-type]
        nll_before=float(document["nll_before"]),
        nll_after=float(document["nll_after"]),
        ece_before=float(document["ece_before"]),
        ece_after=float(document["ece_after"]),
        model_sha256=document["model_sha256"],
    )


def parse_option(text: str | None) -> float | None:
    """``--temperature`` of evaluate, predict, visualize and export: ``auto`` (``None``),
    ``none`` (1: the model's own probabilities, temperature.json left unread), or a positive
    number within :data:`USABLE`."""
    word = "auto" if text is None else text.strip().lower()
    if word == "auto":
        return None
    if word == "none":
        return 1.0
    try:
        value = float(text)  # type: ignore[arg-type]
    except ValueError:
        value = math.nan
    if not USABLE[0] <= value <= USABLE[1]:
        raise UsageError(
            f"expected --temperature to be auto, none or a number from {USABLE[0]:g} to "
            f"{USABLE[1]:g}; received {text!r}",
            "--temperature none (or 1) shows the model's own probabilities, auto the run's "
            "temperature.json (cnnspec calibrate)",
        )
    return value


def chosen(
    run: Run,
    wanted: float | None,
    notes: list[str],
    model_sha256: str | None = None,
    own: str = "--temperature 1 for the model's own probabilities",
) -> float:
    """The temperature to apply to ``run``'s classifier: ``wanted`` (``--temperature N``), or
    under ``auto`` (``None``) the run's ``temperature.json`` where it was fitted for the model
    file there (else 1). Applying one, or finding a stale one, adds a note to ``notes``.
    ``model_sha256``: the model file's, where the caller has it already; ``own``: how the note
    says to see the model's own probabilities (a command without ``--temperature`` names one
    that has it)."""
    if wanted is not None:
        # (said for every task it scales: "the class probabilities are softmax(log p / T)" was
        # a classifier's alone, printed for a multi-label output's sigmoids and a map's pixels too)
        note = f"--temperature {wanted:g}: each logit is divided by {wanted:g} before the softmax or sigmoid"
        # (once: an --ensemble asks for each model's, and every one's is this same note)
        if wanted != 1.0 and note not in notes:
            notes.append(note)
        return wanted
    if run.run_dir is None:
        return 1.0
    path = run.run_dir / FILE
    found = read(path)
    if found is None:
        return 1.0
    from cnnspec.fileio import sha256_file

    try:
        current = model_sha256 or sha256_file(run.model_path)
    except OSError:
        current = None
    if current != found.model_sha256:
        notes.append(
            f"{path} was fitted for another model file than {run.model_path.name} (trained again "
            f"since?): its temperature {found.temperature:.4g} is not applied; run `cnnspec "
            "calibrate` again"
        )
        return 1.0
    notes.append(
        f"temperature {found.temperature:.4g} applied ({path}: fitted by cnnspec calibrate on "
        f"{fitted_on(found)}); {own}"
    )
    return found.temperature


def described(temperature: float, wanted: float | None) -> str:
    """Which temperature a picture's probabilities are of, as its title and the line printed
    with it say: ``temperature 1.53 (the run's temperature.json)``, ``temperature 2
    (--temperature)``, or the model's own (``wanted``: ``--temperature``'s, ``None`` for auto)."""
    if temperature == 1.0:
        return "temperature 1 (the model's own probabilities)"
    source = "--temperature" if wanted is not None else "the run's temperature.json"
    return f"temperature {temperature:.4g} ({source})"


#: The tasks a temperature scales (a model of one such output).
SCALED_TASKS = ("classification", "multilabel", "segmentation")


def scales(tasks: Sequence[Any] | None) -> bool:
    """Whether a model of these outputs takes a temperature: a single classifier (``tasks``
    ``None``, or one classification output), a single multi-label or segmentation output."""
    return tasks is None or (len(tasks) == 1 and tasks[0].task in SCALED_TASKS)


def refuse_tasks(tasks: Sequence[Any] | None, temperature: float) -> None:
    """Refuse a temperature other than 1 for a model it does not scale (:func:`scales`;
    ``tasks``: its outputs' tasks, ``None`` for a single classifier)."""
    if temperature == 1.0 or scales(tasks):
        return
    from cnnspec.reporting.stand_in import described_outputs

    raise UsageError(
        "expected a classifier, a multi-label or a segmentation model (one output) for a "
        "temperature; this model's outputs are " + described_outputs(tasks or ()),
        "leave --temperature out (a temperature.json beside such a model is not cnnspec calibrate's)",
    )
