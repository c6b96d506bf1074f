"""``cnnspec lr-find SPEC``: a learning-rate range test (Smith, "Cyclical Learning Rates for
Training Neural Networks", 2017; fastai's ``lr_find``).

The spec's model trains for a few hundred batches with the rate growing exponentially from
``low`` to ``high``, one step at a time, on the spec's own training data, augmentation,
optimizer and frozen layers (the first phase's, in a phased spec). The loss of every batch is
kept; the sweep stops early once the smoothed loss is four times its lowest (the rate is past
any use). The suggestion is the rate where the smoothed loss falls fastest, before its lowest
point (none when the loss falls by less than a tenth); the rate a tenth of the one at the
lowest loss is reported beside it (fastai's other rule). Nothing of the run is kept: it
trains in a folder of its own, removed afterwards.

Two smoothings of the batch losses are kept. The running average (an exponential moving
average, as fastai's) is what the sweep can know as it goes, so it decides when to stop. It
trails the losses, though: on a synthetic curve whose fall is steepest at 1e-2.5 (100 noisy
batches from 1e-7 to 10), its steepest fall lay at 1e-1.9, about 4× too high, and on the
sweeps of specs/digits_cnn, unet_shapes and shapes_multilabel 3.1 to 5.3× above the centred
curve's. So once the sweep is over, the suggestion is read from a
centred smoothing (:func:`centred`: the same weights on both sides of a batch, so nothing
lags) of the losses up to the running average's lowest point, where the curve has not yet
risen (past it, the diverging losses would spill back over the fall).

The sweep is an ordinary ``cnnspec train`` of the spec with the overrides of
:func:`sweep_overrides` (one epoch of ``steps`` batches, an ``exponential_decay`` whose
``decay_rate`` is above 1, no callbacks), so every setting of the spec applies as it would.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.analysis.compiled import CompiledSpec
from cnnspec.errors import UsageError, WriteError

#: Smoothing of the batch losses (an exponential moving average, bias-corrected, as fastai's).
BETA = 0.98
#: The sweep stops once the smoothed loss exceeds this many times its lowest.
DIVERGED = 4.0
#: A suggestion needs the smoothed loss to fall by at least this share of its value.
FALL = 0.1


@dataclass
class Sweep:
    """The rates tried, one per batch, the losses of those batches, and what they suggest."""

    rates: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)  # the running average (stops the sweep)
    centred: list[float] = field(default_factory=list)  # :func:`centred`, up to the lowest point
    steps: int = 0  # the batches the sweep was to train
    steepest: float | None = None  # the rate where the smoothed loss falls fastest
    lowest: float | None = None  # the rate at the lowest smoothed loss
    stopped: str = ""  # why it ended before `steps` ("" when it did not)

    @property
    def suggested(self) -> float | None:
        return self.steepest

    def summary(self) -> list[str]:
        """The result as lines of text."""
        lines = []
        if self.steepest is not None:
            lines.append(f"suggested learning rate: {self.steepest:.3g} (where the loss falls fastest)")
        else:
            lines.append(
                "no suggestion: the loss hardly fell (are the layers that train frozen? is the "
                "spec's weights source missing? try more --steps or a wider --min/--max)"
            )
        if self.lowest is not None:
            lines.append(f"lowest loss at {self.lowest:.3g}; a tenth of it: {self.lowest / 10:.3g}")
        ended = self.stopped or f"all {self.steps} batches trained"
        if len(self.losses) < 50:  # (the smoothed curve lags a few batches: coarse with few)
            ended += "; with under 50 batches the suggestion is coarse (--steps 100 or more)"
        lines.append(f"{len(self.losses)} batches, rates {_span(self.rates)}; {ended}")
        return lines

    def describe(self) -> dict[str, Any]:
        return {
            "suggested": self.steepest,
            "lowest_loss_rate": self.lowest,
            "tenth_of_lowest_loss_rate": self.lowest / 10 if self.lowest else None,
            "steps": self.steps,
            "batches": len(self.losses),
            "stopped": self.stopped or None,
            "rates": self.rates,
            "losses": [v if math.isfinite(v) else None for v in self.losses],
            "smoothed": [v if math.isfinite(v) else None for v in self.smoothed],
            "centred": self.centred,
        }


def beta_for(steps: int) -> float:
    """The smoothing of a sweep of ``steps`` batches: :data:`BETA`, less for short sweeps (an
    average over about a third of them at most)."""
    return min(BETA, 1 - 3 / max(steps, 4))


class Smoother:
    """The bias-corrected exponential moving average of losses given one at a time."""

    def __init__(self, beta: float = BETA) -> None:
        self.beta = beta
        self.average = 0.0
        self.steps = 0

    def add(self, loss: float) -> float:
        """The smoothed value once ``loss`` is in."""
        self.steps += 1
        self.average = self.beta * self.average + (1 - self.beta) * loss
        return self.average / (1 - self.beta**self.steps)


def smooth(losses: list[float], beta: float = BETA) -> list[float]:
    """The bias-corrected exponential moving average of ``losses``."""
    smoother = Smoother(beta)
    return [smoother.add(loss) for loss in losses]


def centred(losses: list[float], beta: float) -> list[float]:
    """``losses`` smoothed without lag: each the mean of all of them weighted ``beta`` to the
    power of their distance from it, on both sides (the weights renormalised at the ends).

    Worked out as a forward and a backward running sum, so a sweep of 100,000 batches costs as
    little as one of 100; the losses must be finite."""
    values = np.asarray(losses, dtype="float64")
    count = len(values)

    def both_ways(series: np.ndarray) -> np.ndarray:
        forward, backward = np.empty(count), np.empty(count)
        total = 0.0
        for i in range(count):
            total = beta * total + series[i]
            forward[i] = total
        total = 0.0
        for i in reversed(range(count)):
            total = beta * total + series[i]
            backward[i] = total
        return forward + backward - series  # (each batch's own loss counted once)

    return (both_ways(values) / both_ways(np.ones(count))).tolist()


def settle(sweep: Sweep) -> None:
    """Set ``sweep``'s centred curve and its suggestion: :func:`centred` of its losses up to the
    running average's lowest point, and :func:`suggest` on it."""
    finite = [v for v in sweep.smoothed if math.isfinite(v)]
    if not finite:
        sweep.centred, sweep.steepest, sweep.lowest = [], None, None
        return
    # (the running average turns non-finite at the first non-finite loss: all before it are finite)
    end = sweep.smoothed.index(min(finite)) + 1
    # (weights that fall twice as fast as the running average's: as many batches in all, half on
    # each side; with the running average's own the centred curve flattened the fall it measures)
    # (none below 0: a sweep of 5 batches would weigh its neighbours negatively, sharpening it)
    sweep.centred = centred(sweep.losses[:end], max(0.0, 1 - 2 * (1 - beta_for(sweep.steps))))
    sweep.steepest, sweep.lowest = suggest(sweep.rates[:end], sweep.centred)


def suggest(rates: list[float], smoothed: list[float]) -> tuple[float | None, float | None]:
    """(steepest, lowest): the rate where the smoothed loss falls fastest per decade of rate
    before its lowest point, and the rate at that lowest point. ``None`` for what the curve
    cannot tell (fewer than 3 finite points, or a loss that never falls)."""
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    if len(finite) < 3:
        return None, None
    values = np.array([smoothed[i] for i in finite])
    logs = np.log10(np.array([rates[i] for i in finite]))
    bottom = int(np.argmin(values))
    lowest = rates[finite[bottom]]
    if bottom < 2:
        return None, lowest
    slopes = np.gradient(values[: bottom + 1], logs[: bottom + 1])[:bottom]  # (before the lowest)
    skip = max(2, len(values) // 10)  # the first batches' losses are barely smoothed: not trusted
    if len(slopes) <= skip or values[bottom] > (1 - FALL) * values[skip]:
        return None, lowest  # (a loss that hardly falls: no rate stands out of the noise)
    steepest = skip + int(np.argmin(slopes[skip:]))
    return (rates[finite[steepest]] if slopes[steepest] < 0 else None), lowest


def sweep_overrides(compiled: CompiledSpec, low: float, high: float, steps: int) -> list[str]:
    """``--set`` overrides that make a ``cnnspec train`` of ``compiled`` the sweep: one epoch of
    ``steps`` batches whose rate grows from ``low`` by ``(high / low)^(1 / steps)`` a step, with
    no callbacks. A phased spec keeps its first phase (its frozen layers and optimizer)."""
    from cnnspec.analysis.settings import training_config

    schedule = {
        "exponential_decay": {
            "initial_learning_rate": low,
            "decay_steps": 1,
            "decay_rate": (high / low) ** (1 / max(steps - 1, 1)),
        }
    }
    training = compiled.training
    overrides = ["training.callbacks=[]", f"training.steps_per_epoch={steps}"]
    if training_config(compiled).distribute == "multi_worker":  # a sweep runs in this process alone
        # (the whole value: `distribute: multi_worker` is no mapping to set a strategy in, and
        # a startup_timeout beside the strategy default is refused)
        overrides.append("runtime.distribute=default")
    if training.get("phases"):  # (freezing carries over from phase to phase: the first's is whole)
        first = dict(training["phases"][0])
        first.update({"epochs": 1, "learning_rate": schedule})
        overrides.append(f"training.phases={json.dumps([first])}")
    else:
        optimizer = training_config(compiled).optimizer
        settings = {**optimizer.settings, "learning_rate": schedule}
        overrides += ["training.epochs=1", f"training.optimizer={json.dumps({optimizer.name: settings})}"]
    return overrides


def rate_override(compiled: CompiledSpec, rate: float) -> str | None:
    """The ``--set`` that trains ``compiled`` at ``rate`` with its optimizer's other settings
    kept; ``None`` for a phased spec (each phase has its own rate: the first one's is what the
    sweep measured)."""
    from cnnspec.analysis.settings import training_config

    if compiled.training.get("phases"):
        return None
    optimizer = training_config(compiled).optimizer
    settings = {**optimizer.settings, "learning_rate": float(f"{rate:.2g}")}
    return f"training.optimizer={json.dumps({optimizer.name: settings})}"


class SweepEnded(Exception):
    """Raised by the sweep's callback after its last batch, or once the loss diverged: what
    ``cnnspec train`` does after its epochs (validation, the test set's evaluation, the model
    file, the plots) would be work thrown away with the sweep's temporary run folder, which on a
    large data set costs more than the sweep itself."""


def batch_losses(steps: int) -> tuple[Any, Sweep]:
    """A Keras callback that records each batch's rate and loss into the returned
    :class:`Sweep`, and ends the training (:class:`SweepEnded`) after ``steps`` batches or once
    the smoothed loss diverges. Keras' logs hold the running mean of the epoch's batch losses;
    each batch's own is told from two of them."""
    from cnnspec.training.runtime import import_keras

    keras = import_keras()  # (TensorFlow's start-up chatter turned down)
    sweep = Sweep(steps=steps)
    smoother = Smoother(beta_for(steps))

    class Record(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.rate = float("nan")
            self.mean = 0.0
            self.best = math.inf  # the lowest smoothed loss so far

        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            mean = float(np.asarray((logs or {}).get("loss", float("nan"))))
            loss = (batch + 1) * mean - batch * self.mean
            self.mean = mean
            sweep.rates.append(self.rate)
            sweep.losses.append(loss)
            last = smoother.add(loss)  # (one step each batch: a sweep's work stays linear)
            sweep.smoothed.append(last)
            if math.isfinite(last):
                self.best = min(self.best, last)
            if not math.isfinite(last) or (batch > 4 and last > DIVERGED * self.best):
                sweep.stopped = f"the loss diverged at a rate of {self.rate:.3g} (batch {batch + 1})"
                raise SweepEnded
            if batch + 1 >= steps:
                raise SweepEnded

    return Record(), sweep


def find_rate(
    compiled: CompiledSpec, sweeping: CompiledSpec, steps: int, weights: str | None = None
) -> Sweep:
    """Train ``sweeping`` (``compiled`` with :func:`sweep_overrides`) in a throw-away folder,
    from the spec's weights sources (or ``weights``, as ``--weights``), and return its sweep
    with the suggestion."""
    from cnnspec.training.trainer import train

    try:  # (before TensorFlow is imported for nothing)
        folder = Path(tempfile.mkdtemp(prefix=f"cnnspec-lr-find-{compiled.name}-"))
    except OSError as exc:
        raise UsageError(
            f"cannot make the sweep's temporary folder in {tempfile.gettempdir()}: {exc.strerror or exc}",
            "point TMPDIR at a writable folder with room",
        ) from None
    try:
        callback, sweep = batch_losses(steps)
        train(sweeping, out=folder / "run", callbacks=[callback], weights=weights)
    except SweepEnded:
        pass
    except WriteError as fault:  # (train's hint would resume a run that is about to be removed)
        fault.hint = (
            f"the sweep trains in a temporary folder under {tempfile.gettempdir()}: free space "
            "there, or point TMPDIR at a disk with room, and run lr-find again"
        )
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    settle(sweep)
    return sweep


def sweep_png(sweep: Sweep, title: str) -> bytes:
    """The centred loss against the rate (log scale), up to the lowest point, the running
    average (which stopped the sweep) dotted, the raw batch losses faint behind them, and the
    suggested rate marked."""
    from matplotlib.figure import Figure

    from cnnspec.training.plots import literal, png_bytes

    figure = Figure(figsize=(8, 4.8), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    rates = np.array(sweep.rates)
    raw = np.array(sweep.losses, dtype="float64")
    smoothed = np.array(sweep.smoothed, dtype="float64")
    shown = np.array(sweep.centred, dtype="float64")
    axes.plot(rates, raw, color="#90caf9", linewidth=0.8, label="batch loss")
    axes.plot(rates[: len(shown)], shown, color="#1565c0", linewidth=2, label="smoothed (centred)")
    axes.plot(rates, smoothed, color="#1565c0", linewidth=1, linestyle=":", label="running average")
    finite = np.concatenate([shown, smoothed[len(shown) :]])
    finite = finite[np.isfinite(finite)]
    if finite.size:  # the diverged tail would squash the curve: up to a little above its start
        top = max(float(finite[: max(1, len(finite) // 10)].max()), float(finite.min())) * 1.5
        noisy = raw[np.isfinite(raw)]
        bottom = min(
            float(finite.min()), float(np.percentile(noisy, 5)) if noisy.size else float(finite.min())
        )
        axes.set_ylim(bottom - 0.05 * abs(top - bottom), top)
    if sweep.steepest is not None:
        axes.axvline(sweep.steepest, color="#c62828", linestyle="--", label=f"suggested {sweep.steepest:.2g}")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper left")
    axes.set_title(literal(title))
    figure.tight_layout()
    return png_bytes(figure)


def _span(rates: list[float]) -> str:
    return f"{rates[0]:.3g} → {rates[-1]:.3g}" if rates else "none"
