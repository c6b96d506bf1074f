"""Layer-wise learning rates (``learning_rate_scale``): the weights of some layers take their
steps at a factor of the optimizer's learning rate, as mmengine's ``lr_mult`` and fastai's
discriminative rates do, e.g. a pretrained body at a tenth of the new head's rate.

Keras' optimizers take one rate for every weight, but they hand it to ``update_step(gradient,
variable, learning_rate)`` weight by weight: the optimizer's own ``update_step`` is wrapped to
pass ``factor × learning_rate`` for the scaled weights, whatever the optimizer (Adam's moments,
SGD's momentum, Muon's two kinds of steps). Decoupled weight decay, which Keras applies as
``weight × weight_decay × learning_rate`` before the steps, is scaled with it (as PyTorch's
parameter groups scale it with their rate): the wrap of ``_apply_weight_decay`` runs Keras' own
decay once per factor, with ``weight_decay`` (and Muon's ``adam_weight_decay``) multiplied by the
factor for that call. Weights are known by the optimizer's ``_var_key``, which maps a Keras
variable and the per-device copies a distribution strategy updates to one key (keras.optimizers.
Muon picks its per-weight steps through the same hooks). Only the instance is wrapped: its class,
its saved configuration and its variables stay Keras' own, so model.keras loads in plain Keras.
The generated training script does the same in its ``scale_learning_rates`` (templates/
_training_code.j2); a test trains both and compares their histories.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: The optimizer attributes that hold a decoupled weight decay (Muon's second is for the
#: weights it steps with AdamW).
DECAY_ATTRIBUTES = ("weight_decay", "adam_weight_decay")


def scale_learning_rates(model: Any, factors: tuple[tuple[str, float], ...]) -> None:
    """Make ``model``'s compiled optimizer step the weights of each layer in ``factors``
    (``(layer name, factor)``, :attr:`cnnspec.analysis.settings_types.PhaseConfig.rate_scale`) at
    ``factor`` × its learning rate, weight decay included. Call it after each ``compile``."""
    if not factors:
        return
    optimizer = model.optimizer
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # mixed_float16's LossScaleOptimizer
    by_key = {
        optimizer._var_key(weight): factor
        for name, factor in factors
        for weight in model.get_layer(name).weights
    }
    update_step = optimizer.update_step
    apply_weight_decay = optimizer._apply_weight_decay

    def scaled_update_step(gradient: Any, variable: Any, learning_rate: Any) -> Any:
        factor = by_key.get(optimizer._var_key(variable))
        if factor is not None:
            learning_rate = learning_rate * factor
        return update_step(gradient, variable, learning_rate)

    def scaled_weight_decay(variables: list[Any]) -> None:
        groups: dict[float, list[Any]] = {}
        for variable in variables:
            groups.setdefault(by_key.get(optimizer._var_key(variable), 1.0), []).append(variable)
        for factor, group in groups.items():
            with _decay_scaled(optimizer, factor):
                apply_weight_decay(group)

    optimizer.update_step = scaled_update_step
    optimizer._apply_weight_decay = scaled_weight_decay


@contextmanager
def _decay_scaled(optimizer: Any, factor: float) -> Iterator[None]:
    """``optimizer``'s weight decay times ``factor`` while Keras applies it (read when the step
    is traced: the factor becomes part of the traced step)."""
    kept = {name: getattr(optimizer, name) for name in DECAY_ATTRIBUTES if hasattr(optimizer, name)}
    for name, value in kept.items():
        if value is not None and factor != 1.0:
            setattr(optimizer, name, value * factor)
    try:
        yield
    finally:
        for name, value in kept.items():
            setattr(optimizer, name, value)
