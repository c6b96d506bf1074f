"""The Keras back end: IR → ``keras.Model`` (functional API). Imports TensorFlow lazily.

Layer classes and keyword arguments come from the registry (``keras_class``/``keras_args``);
no name typed by a user ever reaches ``getattr``. Layer names are the IR's names, so the
generated code and saved models line up with ``cnnspec inspect``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cnnspec.ir import ModelIR, Node
from cnnspec.layers.registry import REGISTRY, KerasCall

if TYPE_CHECKING:
    import keras


def _keras() -> Any:
    from cnnspec.backends.keras_import import import_keras

    return import_keras()


def _factories(keras: Any) -> dict[str, Any]:
    # The only Keras objects a spec can create besides layers: a closed table.
    return {
        "L1L2": keras.regularizers.L1L2,
        "VarianceScaling": keras.initializers.VarianceScaling,
        "Constant": keras.initializers.Constant,
    }


def _materialize(value: Any, factories: dict[str, Any]) -> Any:
    if isinstance(value, KerasCall):
        return factories[value.factory](**dict(value.kwargs))
    return value


def make_layer(node: Node, *, float32: bool = False) -> keras.layers.Layer:
    """The Keras layer of one IR node, named as in the IR (``float32``: compute in float32
    whatever the global dtype policy)."""
    keras = _keras()
    kind = REGISTRY[node.kind]
    factories = _factories(keras)
    layer_class = getattr(keras.layers, kind.keras_class)
    kwargs = {k: _materialize(v, factories) for k, v in kind.keras_args(node.params).items()}
    if float32:
        kwargs["dtype"] = "float32"
    layer = layer_class(name=node.name, **kwargs)
    # `trainable: false` (a frozen BatchNormalization runs in inference mode), set on the layer
    # made, as the generated code sets it: not every constructor takes it (SpatialDropout2D)
    if not node.trainable:
        layer.trainable = False
    return layer


def build_model(ir: ModelIR) -> keras.Model:
    """Build the functional Keras model of a resolved spec.

    Under a mixed dtype policy (``runtime.mixed_precision``) the output layers compute in
    float32, so the final softmax (and the loss) stay numerically stable.
    """
    keras = _keras()
    inputs = keras.Input(shape=ir.input_shape, name=ir.input_name)
    tensors: dict[str, Any] = {ir.input_name: inputs}
    mixed = keras.config.dtype_policy().name.startswith("mixed_")
    outputs_float32 = set(ir.outputs) if mixed else set()
    for node in ir.nodes:
        layer = make_layer(node, float32=node.name in outputs_float32)
        args = [tensors[name] for name in node.inputs]
        many = REGISTRY[node.kind].arity == "many"
        tensors[node.name] = layer(args if many else args[0])
    outputs = [tensors[name] for name in ir.outputs]
    return keras.Model(inputs, outputs[0] if len(outputs) == 1 else outputs, name=ir.name)


def set_frozen(model: keras.Model, frozen: Iterable[str]) -> None:
    """Freeze exactly the named layers of ``model`` and unfreeze the others (a phase's state;
    the model must be compiled again for it to take effect in training)."""
    names = set(frozen)
    for layer in model.layers:
        if layer.weights:
            layer.trainable = layer.name not in names


def build_augmentation(ir: ModelIR) -> keras.Sequential | None:
    """The ``augmentation`` section as a Sequential model, or ``None`` when there is none."""
    if not ir.augmentation:
        return None
    keras = _keras()
    layers = [make_layer(node) for node in ir.augmentation]
    return keras.Sequential(layers, name=f"{ir.name}_augmentation")


def adapted_layers(ir: ModelIR) -> list[str]:
    """The names of the layers that adapt to the training data before fit (a kind's
    ``adapt_param`` set true, e.g. ``normalization: {adapt: true}``), in model order."""
    names = []
    for node in ir.nodes:
        flag = REGISTRY[node.kind].adapt_param
        if flag is not None and node.params.get(flag):
            names.append(node.name)
    return names


def adapt_layers(model: keras.Model, names: list[str], dataset: Any) -> None:
    """Call Keras' ``adapt()`` of each named layer on the training images as they reach that
    layer: ``dataset`` yields batches of ``(images, labels)`` as the model receives them
    (scaled, unshuffled, not augmented); the layers before it run in inference mode. The
    statistics land in the layer's weights, so they are saved, restored and exported with the
    model. (The generated train.py does the same in its ``adapt_layers``.)"""
    if not names:
        return
    keras = _keras()
    for name in names:
        layer = model.get_layer(name)
        if layer.input is model.inputs[0]:
            batches = (images for images, _ in dataset)
        else:
            upstream = keras.Model(model.inputs[0], layer.input)
            batches = (upstream(images, training=False) for images, _ in dataset)
        adapt_in_float32(layer, batches)


def adapt_in_float32(layer: Any, batches: Any) -> None:
    """``layer.adapt(batches)`` with its statistics computed in float32 whatever the dtype policy.
    Keras adapts in the layer's compute dtype: under ``runtime.mixed_precision`` it added bfloat16
    (float16) batches to float32 sums and failed (InvalidArgumentError), and half-precision sums
    would lose digits. A float32 twin of the layer (its config, another dtype) adapts instead; its
    weights become the layer's (float32 variables under a mixed policy too), the same statistics as
    without mixed precision, and ``finalize_state`` casts them to the compute dtype as Keras' adapt
    does. (The generated train.py's ``adapt_layers`` does the same.)"""
    twin = layer.from_config({**layer.get_config(), "dtype": "float32"})  # (a classmethod: a new layer)
    twin.adapt(batches)
    layer.set_weights(twin.get_weights())
    layer.finalize_state()
