"""Each output's loss of a model with several outputs (cnnspec/training/output_losses.py): Keras 3
logs the plain mean of its batch means; train, evaluate and the generated script report the
mean over the images (weighted by batch size), as one pass over the split gives it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnspec.training.output_losses import weighted_loss

SPEC = """\
cnnspec: 1
name: t2
input: {shape: [8, 8, 1]}
model:
  - rescaling: {scale: 0.00392156862745098}
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
    id: stem
  - global_avg_pool2d:
    id: g
  - dense: 1
    id: zeta
  - dense: 1
    inputs: g
    id: alpha
  - dense: {units: 3, activation: softmax}
    inputs: g
    id: cls
outputs: [zeta, cls, alpha]
data: {source: {npz: d.npz}, validation_split: 0.25}
training:
  epochs: 2
  batch_size: 8
  seed: 3
  outputs:
    alpha: {task: regression, loss: mae, metrics: [mae]}
    cls: {loss_weight: 0.3, metrics: [accuracy]}
    zeta: {task: regression, loss: mse, loss_weight: 0.01, metrics: [mae, rmse]}
"""


def running_means(batch_means: list[float]) -> list[float]:
    """What Keras' per-output tracker reports after each batch: the mean of the batch means so far."""
    return [float(np.mean(batch_means[: k + 1])) for k in range(len(batch_means))]


@pytest.mark.parametrize(("rows", "batch"), [(12, 8), (30, 8), (16, 8), (5, 8), (1001, 32)])
def test_the_loss_is_the_mean_over_the_images(rows: int, batch: int):
    rng = np.random.default_rng(rows)
    losses = rng.random(rows) * 10  # each image's loss
    means = [float(losses[i : i + batch].mean()) for i in range(0, rows, batch)]
    assert weighted_loss(running_means(means), rows, batch) == pytest.approx(float(losses.mean()), rel=1e-9)


def test_batches_that_cannot_be_the_splits_leave_the_figure_to_keras():
    assert weighted_loss([], 12, 8) is None
    assert weighted_loss([1.0, 2.0], 30, 8) is None  # 30 images are 4 batches of 8, not 2
    assert weighted_loss([1.0, 2.0, 2.0], 12, 8) is None


def test_the_script_weighs_as_cnnspec_does(tmp_path: Path):
    from tests.test_listing_edges import script_functions

    (tmp_path / "spec.yaml").write_text(SPEC, encoding="utf-8")
    theirs = script_functions(tmp_path / "spec.yaml")["weighted_loss"]
    for running, rows in (([0.5], 3), ([0.25, 0.75], 12), ([1.0, 3.0, 2.0, 4.0], 30), ([1.0, 2.0], 30)):
        assert theirs(running, rows, 8) == weighted_loss(running, rows, 8)


def write_data(folder: Path) -> None:
    """40 training images (30 train, 10 validation: 4 and 2 batches of 8, the last short) and
    12 test images (a batch of 8 and one of 4)."""
    rng = np.random.RandomState(0)

    def split(k: int) -> tuple[np.ndarray, ...]:
        x = rng.randint(0, 256, (k, 8, 8, 1)).astype("uint8")
        return (
            x,
            100 + rng.rand(k, 1).astype("float32"),
            rng.rand(k, 1).astype("float32"),
            rng.randint(0, 3, k),
        )

    (xt, zt, at, ct), (xs, zs, as_, cs) = split(40), split(12)
    np.savez(
        folder / "d.npz",
        x_train=xt, y_train_zeta=zt, y_train_alpha=at, y_train_cls=ct,
        x_test=xs, y_test_zeta=zs, y_test_alpha=as_, y_test_cls=cs,
    )  # fmt: skip


def assert_weighted(metrics: dict, history: dict[str, list[float]]) -> None:
    """alpha's loss is its MAE, zeta's (unweighted by loss_weight) its RMSE squared: Keras'
    metrics are weighted by batch size, as the losses now are."""
    assert metrics["test_alpha_loss"] == pytest.approx(metrics["test_alpha_mae"], abs=1e-6)
    assert metrics["test_zeta_loss"] == pytest.approx(metrics["test_zeta_rmse"] ** 2, rel=1e-5)
    for prefix in ("", "val_"):
        assert history[f"{prefix}alpha_loss"] == pytest.approx(history[f"{prefix}alpha_mae"], abs=1e-6)
        squares = [rmse**2 for rmse in history[f"{prefix}zeta_rmse"]]
        assert history[f"{prefix}zeta_loss"] == pytest.approx(squares, rel=1e-5)


def _columns(result) -> dict[str, list[float]]:
    return {key: [row[key] for row in result.history] for key in result.history[0]}


@pytest.mark.slow
def test_train_and_evaluate_report_each_outputs_loss_over_the_images(tmp_path: Path):
    from tests.test_script_parity_audit import train_text

    write_data(tmp_path)
    ours = train_text(tmp_path, SPEC)
    assert_weighted(ours.metrics, _columns(ours))
    # cnnspec evaluate weighs them too
    from tests.test_report_support import invoke

    done = invoke("evaluate", tmp_path / "cnnspec", "-o", tmp_path / "e")
    assert done.exit_code == 0, done.output
    figures = json.loads((tmp_path / "e" / "evaluation.json").read_text("utf-8"))["metrics"]
    assert figures["alpha_loss"] == pytest.approx(figures["alpha_mae"], abs=1e-6)
    assert figures["alpha_loss"] == pytest.approx(ours.metrics["test_alpha_loss"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.full
def test_the_script_reports_each_outputs_loss_over_the_images_as_train_does(tmp_path: Path):
    from tests.test_script_parity_audit import run_both

    write_data(tmp_path)
    theirs, _, ours = run_both(tmp_path, SPEC)
    assert_weighted(ours.metrics, _columns(ours))
    assert_weighted(theirs, theirs["history"])
    for key in ("test_alpha_loss", "test_zeta_loss", "test_cls_loss"):
        assert theirs[key] == pytest.approx(ours.metrics[key], rel=1e-5), key
