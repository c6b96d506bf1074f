"""The registry of layer kinds — the one place that lists what cnnspec can build.

Each :class:`LayerKind` declares its parameters (which produce its piece of the JSON Schema),
its static shape rule, its parameter and MAC counts, and the keyword arguments of its Keras
class. The Keras builder and the Python emitter both read ``keras_class`` and ``keras_args``,
so the two back ends cannot disagree. Adding a layer kind is adding one entry in a family
module (``conv``, ``pooling``, ``core``, ``merge``, ``norm``, ``augment``).

What the rest of the package needs to know about a kind's behaviour is a declared *trait* on
its entry (``passes_activation``, ``value_range``, ``kernel_layout``, ``preprocessing``,
``augmentation``, ``geometric``, ``training_noise``, ``batch_statistics``, ``adapt_param``,
``keras_always_pass``, ``applies_activation``), never a test of its name outside this package;
the traits are checked against Keras over the whole registry (``tests/test_registry.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cnnspec.layers.params import Param

Shape = tuple[int, ...]
Params = Mapping[str, Any]


class ShapeError(Exception):
    """A static shape problem; ``param`` names the parameter to point at, when there is one.

    ``render``, when given, writes the message again with a label per input (``message`` is
    its text with each input labelled by position, ``input 2``): the resolver knows which
    layer each input comes from, a shape rule only its shapes."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        hint: str | None = None,
        render: Callable[[Sequence[str]], str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.hint = hint
        self.render = render

    def labelled(self, labels: Sequence[str]) -> str:
        """The message naming the inputs by ``labels`` (one per input, in order)."""
        return self.render(labels) if self.render is not None else self.message


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
#: The shapes of a layer's variables, in the order Keras creates and saves them (see
#: :attr:`LayerKind.weight_rule`).
WeightRule = Callable[[Params, list[Shape], Shape], tuple[Shape, ...]]
ArgsRule = Callable[[Params], dict[str, Any]]


def no_weights(params: Params, inputs: list[Shape], output: Shape) -> Counts:
    return Counts()


def same_shape(params: Params, inputs: list[Shape]) -> Shape:
    return inputs[0]


#: What a layer does to the range of its input values (see :attr:`LayerKind.value_range`).
ValueRange = Literal["keeps", "affine", "unknown"]

#: How Keras stores a convolution kernel, one letter per axis (see :attr:`LayerKind.kernel_layout`):
#: ``h``/``w`` the window's height/width, ``i`` input channels, ``o`` output channels (filters),
#: ``m`` the depth multiplier (output channels per input channel).
KernelLayout = Literal["hwio", "hwoi", "hwim", "wio"]

#: How a merge combines its inputs (see :attr:`LayerKind.combines`): ``elementwise`` position by
#: position, ``axis`` by joining them along an axis.
Combines = Literal["elementwise", "axis"]


@dataclass(frozen=True)
class LayerKind:
    """Everything cnnspec knows about one kind of layer.

    The fields after ``ranks`` are *traits*: facts about the layer's behaviour that code outside
    :mod:`cnnspec.layers` reads instead of testing the kind's name. Each kind declares the ones
    that apply; the defaults are the cautious answers (no pass-through, range unknown, no kernel).
    """

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
    max_inputs: int | None = None
    """The most inputs a ``many`` kind takes (``None``: any number from two): ``subtract``'s
    first minus second has no reading for three."""
    ranks: tuple[int, ...] | None = None
    """The input ranks (without the batch axis) the kind takes, for a Keras layer that needs
    certain ones (an image, 3, for 2-D convolutions, pooling, resizing, augmentation); ``None``:
    any rank, as Keras' Dense (the last axis) and its normalisations (axes counted from either
    end) take. Checked against Keras at rank 5 over the registry (tests/test_any_rank.py)."""

    passes_activation: bool = False
    """The output is the input's values, unchanged and in the same order, in training and at
    inference (the noise of a training-only regularizer aside: dropout's zeroing, Gaussian noise
    or dropout, alpha dropout, each the identity at inference): an activation applied before the
    layer is still the model's output activation. Read by the output-activation trace that
    decides ``from_logits``."""

    value_range: ValueRange = "unknown"
    """What the layer does to the range of its input values, followed by the augmentation
    ``value_range`` lint and by ``data.rescale: auto``: ``keeps`` — every output value lies
    within the input's range (geometric augmentation, clipping value augmentation, pooling,
    cropping, bilinear resizing); ``affine`` — output = input × ``scale`` + ``offset``, both
    parameters of the kind (the model scales its own pixels); ``unknown`` — anything else."""

    kernel_layout: KernelLayout | None = None
    """How Keras stores the convolution kernel filter plots draw (``depthwise_kernel`` when the
    layer has one, else ``kernel``), one letter per axis as in :data:`KernelLayout`; ``None``
    for kinds without a convolution kernel."""

    preprocessing: bool = False
    """A weightless image preprocessing layer (Keras' ``keras.layers.preprocessing`` family):
    the only kinds the spec's ``augmentation`` section accepts."""

    augmentation: bool = False
    """A random augmentation layer: random in training, the input unchanged at inference.
    Always also ``preprocessing``. (Keras 3's RandomCrop, too, returns the uncropped input at
    inference, although its static output shape is the crop's.)"""

    training_noise: bool = False
    """A training-only regularizer: random in training (dropout's zeroing, Gaussian noise or
    dropout, alpha dropout), the input unchanged at inference. With the ``augmentation``
    kinds, the layers a call with ``training=False`` keeps from acting (read by the importer,
    which notes them in a nested model called so)."""

    batch_statistics: bool = False
    """A normalization by the batch's own statistics in training and by moving averages of them
    at inference, and always when frozen (Keras' batch normalization): a nested model called
    with ``training=False`` uses the averages while it trains too (read by the importer)."""

    geometric: bool = False
    """An augmentation that moves pixels (flip, rotation, zoom, translation, crop): applied to a
    segmentation mask exactly as to its image, with nearest-neighbour sampling for the mask.
    Augmentations without it change pixel values only (brightness, contrast) and leave masks
    alone. Checked against Keras' own mask handling over the registry."""

    per_position: bool = False
    """A layer that mixes the last axis only, at each position of the others (a dense layer): on
    a feature map it acts per pixel, so a classifier that ends in one over a map is missing its
    flatten or global pooling (the hint of :mod:`cnnspec.analysis.tasks`)."""

    spatial: bool = False
    """A layer that moves or mixes spatial positions (a convolution, pooling, upsampling or
    resizing): a per-position layer before one on the path to an output has its map turned
    back into a per-pixel or pooled result, so it is no classifier's missing flatten (read by
    :mod:`cnnspec.analysis.tasks`)."""

    xla: bool = True
    """Whether Keras compiles the layer with XLA (its ``supports_jit``). A model holding one
    that cannot runs entirely without XLA: Keras turns ``jit_compile=True`` off with a bare
    warning, so ``runtime.jit_compile: true`` is refused and ``auto`` picks false untimed.
    Checked against Keras' layers over the registry (tests/test_registry.py)."""

    adapt_param: str | None = None
    """A boolean parameter that, when true, makes training (and the generated train.py) call the
    Keras layer's ``adapt()`` on the training images, as they reach the layer, before fit: the
    statistics it computes are weights of the model."""

    keras_always_pass: tuple[str, ...] = ()
    """Keras keywords that generated code always passes, even at the registry's default: Keras
    has no default for them or a different one."""

    applies_activation: Callable[[Params, list[Shape]], str | None] | None = None
    """For a layer that *is* an activation function (no ``activation`` parameter of its own): the
    activation name (one of :data:`~cnnspec.layers.params.ACTIVATIONS`) its output is, given its
    parameters and input shapes, as a loss reads it — ``softmax`` for the softmax layer over the
    last axis (over another axis its output is no distribution over the classes: ``None``).
    ``None`` for every other kind. Read through :meth:`output_activation`; checked against Keras
    in tests/test_extra_kinds.py."""

    combines: Combines | None = None
    """A merge of any number of inputs that play the same role, the merges the ``residual`` and
    ``parallel`` combinators accept as their ``merge:`` word (schema, resolver, completion and
    import all read it, through :func:`combinator_merges`). ``elementwise``: inputs of one
    shape, combined position by position, in an order that does not change the result (add,
    multiply, average, max, min) — a residual's ``auto`` shortcut is projected to the body's
    shape for them, and the importer may read ``f(x) + x`` as ``x + f(x)``. ``axis``: inputs
    joined along an axis, matching on the others (concat) — an ``auto`` shortcut stays the
    identity, and the order of the inputs is kept. ``None`` for every other kind, a merge
    whose inputs play different roles included (``subtract``: first minus second)."""

    export_gap: Callable[[dict[str, Any], str], str | None] | None = None
    """What an export format lacks to run the layer as Keras does, given the Keras layer's
    config and the format (``onnx``, ``tflite``): a phrase such as ``ONNX's Resize has no area
    interpolation``, or ``None`` when the format runs it. Read by the exporter to name the
    layer when a conversion fails or its answers differ from Keras'."""

    cpu_gap: Callable[[Params], tuple[str, str] | None] | None = None
    """What TensorFlow's CPU kernels lack to run the layer with these parameters, and how to
    write it so that they can: ``(phrase, hint)``, or ``None`` when a CPU runs it. Such a model
    builds, and fails in its first batch on a machine without a GPU: ``validate`` warns of it
    (the spec may be meant for a GPU) and ``train`` refuses it there before the data is loaded
    (:func:`cnnspec.training.runtime.refuse_cpu_gaps`)."""

    one_of: tuple[str, ...] = ()
    """Optional parameters of which a working layer sets at least one to a value (not null):
    without any the layer changes nothing (random_color_jitter's factors). The kind's shape
    rule refuses such a layer; the reference's example (and any generated item) sets the first."""

    weight_rule: WeightRule | None = None
    """The shapes of the variables Keras keeps for the layer (the ``vars`` of its group in a
    ``.weights.h5`` file: ``0``, ``1`` …), in Keras' order (trainable ones first, each list in
    the order the layer's ``build`` creates them), given the full parameters, the input shapes
    and the output shape (without the batch axis). Their sizes add up to :meth:`counts`'
    parameters. ``None``: the kind has no weights (a random layer's seed is not among them:
    Keras does not save it). Read by ``import --weights`` to check a weights file against the
    model before it is written beside the spec."""

    counters: tuple[int, ...] = ()
    """The positions, among :attr:`weight_rule`'s variables, of those Keras keeps as int64
    counters, not float32 weights (normalization's ``count``, which ``adapt`` sets): read by
    ``import --weights``, which checks each variable's dtype against what the layer keeps."""

    param_index: dict[str, Param] = field(init=False, repr=False, compare=False)
    #: The names of the parameters without a default (computed once: the resolver asks per layer).
    required_names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    default_values: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})
        object.__setattr__(self, "required_names", tuple(p.name for p in self.params if p.required))
        object.__setattr__(self, "default_values", {p.name: p.default for p in self.params if not p.required})

    def defaults(self) -> dict[str, Any]:
        """The optional parameters' defaults (a new dict each call)."""
        return dict(self.default_values)

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

    def weight_shapes(self, params: Params, inputs: list[Shape], output: Shape) -> tuple[Shape, ...]:
        """The shapes of the layer's variables as Keras saves them (:attr:`weight_rule`)."""
        return () if self.weight_rule is None else self.weight_rule(params, inputs, output)

    def cpu_refusal(self, params: Params) -> tuple[str, str] | None:
        """:attr:`cpu_gap` of ``params``: ``(phrase, hint)`` where TensorFlow's CPU kernels
        cannot run the layer so, else ``None``."""
        return self.cpu_gap(params) if self.cpu_gap is not None else None

    def output_activation(self, params: Params, inputs: list[Shape]) -> str | None:
        """The activation the layer's output ends with: its ``activation`` parameter (a linear
        one is none), else what :attr:`applies_activation` says; ``None`` when there is none.
        ``params``: the full parameters (defaults included); ``inputs``: the input shapes
        without the batch axis."""
        act = params.get("activation")
        if isinstance(act, str) and act not in ("linear", "identity"):
            return act
        if self.applies_activation is None:
            return None
        return self.applies_activation(params, inputs)


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
    from cnnspec.layers import (  # noqa: F401
        augment,
        augment_color,
        augment_pixel,
        augment_policy,
        conv,
        core,
        merge,
        norm,
        pooling,
    )


_load_families()


def get_kind(name: str) -> LayerKind | None:
    return REGISTRY.get(name)


def kind_of_keras_class(class_name: str) -> LayerKind | None:
    """The kind whose layers are Keras ``class_name`` objects (for models read back from disk)."""
    return next((k for k in REGISTRY.values() if k.keras_class == class_name), None)


def all_kinds() -> list[LayerKind]:
    return list(REGISTRY.values())


def combinator_merges() -> tuple[str, ...]:
    """The ``merge:`` words of the ``residual`` and ``parallel`` combinators: the kinds with a
    :attr:`LayerKind.combines` trait, in registry order (the order the schema, the resolver's
    message and completion list them in)."""
    return tuple(kind.name for kind in REGISTRY.values() if kind.combines is not None)
