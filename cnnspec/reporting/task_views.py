"""``cnnspec visualize samples`` for models that are not a single classifier.

Segmentation: rows of (image, true mask, predicted mask) for the first segmentation output.
Multi-label, regression (and the classification outputs of a multi-output model): the images
with true and predicted labels or values, red where the prediction is off. ``--mistakes`` shows
the worst test images instead of random ones: the lowest pixel accuracy, the most wrong labels,
the largest absolute error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnspec.analysis.tasks import OutputTask
from cnnspec.training.task_metrics import predicted_labels, predicted_mask


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


def _caption(out: OutputTask, y: Any, raw: np.ndarray, names: list[str]) -> tuple[str, bool]:
    """One output's true vs predicted text for one image, and whether it is wrong."""
    if out.task == "multilabel":
        labels = names if len(names) >= out.units else [str(i) for i in range(out.units)]
        guess = predicted_labels(raw[None], out.decision_threshold)[0]
        true = [labels[i] for i in np.flatnonzero(np.asarray(y) > 0.5)]
        said = [labels[i] for i in np.flatnonzero(guess)]
        return f"true {', '.join(true) or '-'}\npred {', '.join(said) or '-'}", set(true) != set(said)
    if out.task == "regression":
        t, p = np.asarray(y, dtype="float64").reshape(-1), np.asarray(raw, dtype="float64").reshape(-1)
        scale = max(float(np.abs(t).max(initial=0.0)), 1e-9)
        text = f"true {', '.join(f'{v:.3g}' for v in t)}\npred {', '.join(f'{v:.3g}' for v in p)}"
        return text, bool(np.max(np.abs(p - t)) > 0.1 * scale)
    from cnnspec.training.metrics import predicted_classes

    guess = int(predicted_classes(raw[None], binary=out.binary, from_logits=out.loss.from_logits)[0])
    labels = names if len(names) >= out.classes else [str(i) for i in range(out.classes)]
    return f"true {labels[int(y)]}\npred {labels[guess]}", guess != int(y)


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
    if mistakes:  # the worst images need every prediction
        raw = outputs_by_name(config.tasks, model.predict(batch, batch_size=64, verbose=0))
        truths = targets_by_name(config, test.y)
        first = config.tasks[0]
        order = np.argsort(-_error_per_image(first, truths[first.name], raw[first.name]), kind="stable")
        indices = np.sort(order[:count])
    else:
        indices = np.sort(np.random.default_rng(seed).permutation(n)[:count])
    raw = outputs_by_name(config.tasks, model.predict(batch[indices], batch_size=64, verbose=0))
    truths = {k: v[indices] for k, v in targets_by_name(config, test.y).items()}
    which = "worst test images" if mistakes else "test images"
    segmenting = [out for out in config.tasks if out.task == "segmentation"]
    if segmenting:
        out = segmenting[0]
        title = f"{probe.run.name}: {which}, true vs predicted mask" + (
            f" ({out.name})" if len(config.tasks) > 1 else ""
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
            text, off = _caption(out, truths[out.name][row], raw[out.name][row], names)
            lines.append(f"{out.name}: {text}" if len(config.tasks) > 1 else text)
            bad = bad or off
        captions.append("\n".join(lines))
        wrong.append(bad)
    title = f"{probe.run.name}: {which}, true vs predicted"
    return captioned_png([test.x[i] for i in indices], captions, wrong, title)
