"""The registry of layer kinds — the one place that lists what cnnspec can build.

Each :class:`LayerKind` declares its parameters (which produce its piece of the JSON Schema),
its static shape rule, its parameter and MAC counts, and the keyword arguments of its Keras
class. The Keras builder and the Python emitter both read ``keras_class`` and ``keras_args``,
so the two back ends cannot disagree. Adding a layer kind is adding one entry in a family
module (``conv``, ``pooling``, ``core``, ``merge``, ``norm``, ``augment``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cnnspec.layers.params import Param

Shape = tuple[int, ...]
Params = Mapping[str, Any]


class ShapeError(Exception):
    """A static shape problem; ``param`` names the parameter to point at, when there is one."""

    def __init__(self, message: str, param: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Counts:
    """Weights and work of one layer: trainable and non-trainable parameters, and MACs."""

    trainable: int = 0
    non_trainable: int = 0
    macs: int = 0

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.trainable + other.trainable,
            self.non_trainable + other.non_trainable,
            self.macs + other.macs,
        )


@dataclass(frozen=True, slots=True)
class KerasCall:
    """A Keras object passed as an argument (e.g. ``keras.regularizers.L1L2(l1=…, l2=…)``).

    ``factory`` is a key of the back ends' explicit factory tables, never user text.
    """

    factory: str
    kwargs: tuple[tuple[str, Any], ...] = ()


ShapeRule = Callable[[Params, list[Shape]], Shape]
CountRule = Callable[[Params, list[Shape], Shape], Counts]
ArgsRule = Callable[[Params], dict[str, Any]]


def no_weights(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    return Counts()


def same_shape(params: Params, inputs: list[Shape]) -> Shape:
    return inputs[0]


@dataclass(frozen=True)
class LayerKind:
    """Everything cnnspec knows about one kind of layer."""

    name: str
    family: str
    keras_class: str
    doc: str
    params: tuple[Param, ...] = ()
    shape_rule: ShapeRule = same_shape
    count_rule: CountRule = no_weights
    args_rule: ArgsRule | None = None
    main: str | None = None
    arity: Literal["one", "many"] = "one"
    ranks: tuple[int, ...] | None = None
    augmentation: bool = False
    param_index: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params if not p.required}

    def keras_args(self, params: Params) -> dict[str, Any]:
        """Keyword arguments of the Keras constructor (without ``name``), canonical values."""
        if self.args_rule is not None:
            return self.args_rule(params)
        return {
            p.keras_name: p.normalize(params[p.name])
            for p in self.params
            if p.keras_name is not None and p.name in params
        }

    def output_shape(self, params: Params, inputs: list[Shape]) -> Shape:
        if self.ranks is not None:
            for shape in inputs:
                if len(shape) not in self.ranks:
                    expected = " or ".join(f"{r}-D" for r in self.ranks)
                    raise ShapeError(
                        f"expected a {expected} input (without the batch axis); received shape {list(shape)}",
                        hint=_rank_hint(self.name, len(shape)),
                    )
        return self.shape_rule(params, inputs)

    def counts(self, params: Params, inputs: list[Shape], output: Shape) -> Counts:
        return self.count_rule(params, inputs, output)


def _rank_hint(kind: str, rank: int) -> str | None:
    if rank == 1:
        return f"`{kind}` needs a spatial tensor; it cannot follow `flatten` or `dense` on images"
    return None


REGISTRY: dict[str, LayerKind] = {}


def register(*kinds: LayerKind) -> None:
    for kind in kinds:
        if kind.name in REGISTRY:
            raise ValueError(f"layer kind {kind.name!r} registered twice")
        REGISTRY[kind.name] = kind


def _load_families() -> None:
    # Importing a family module registers its kinds; the order fixes the schema's order.
    from cnnspec.layers import augment, conv, core, merge, norm, pooling  # noqa: F401


_load_families()


def get_kind(name: str) -> LayerKind | None:
    return REGISTRY.get(name)


def all_kinds() -> list[LayerKind]:
    return list(REGISTRY.values())
