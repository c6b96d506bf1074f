"""`cnnspec import`: four defects an audit found, each a wrong model or an internal error.

1. A registered custom initializer, regularizer, constraint or dtype policy that shares a Keras
   class name was read as Keras' own (a different model): refused as a custom class.
2. Call keyword arguments such as ``Dropout(0.5)(x, training=True)`` were dropped: refused,
   while what Keras records for an ordinary call (``mask: null``, a layer's own ``training``
   default) still imports.
3. A number of thousands of digits in config.json was an internal error: a located JSON error.
4. Combinators nested hundreds deep hit the recursion limit: written flat with ids instead.

TensorFlow-free: every configuration is JSON written here.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cnnspec.analysis.passes import compile_text
from cnnspec.errors import SpecError
from cnnspec.importer import import_source
from cnnspec.importer.source import Source
from cnnspec.importer.structure import MAX_COMBINATOR_DEPTH
from cnnspec.layers import reverse
from cnnspec.layers.reverse import NotExpressible
from tests.test_import import TINY_JSON, run_cli
from tests.test_import_hostile import _layer, _tensor, _write, dense, functional, refused


def _keras_file(tmp_path: Path, config: dict[str, Any] | str, name: str = "model.keras") -> Path:
    """A .keras zip holding ``config`` (an object, or the JSON text itself) and metadata.json."""
    path = tmp_path / name
    text = config if isinstance(config, str) else json.dumps(config)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", text)
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    return path


def _image_model(*layers: dict[str, Any]) -> dict[str, Any]:
    """A Functional configuration with an 8×8×3 image input, then ``layers``."""
    config = functional(*layers)
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 8, 8, 3]
    return config


def _called(layer: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """``layer`` with its one call's saved keyword arguments set to ``kwargs``."""
    layer["inbound_nodes"][0]["kwargs"] = kwargs
    return layer


# -- 1. nested objects: Keras' own only -----------------------------------------------------------
def _object(module: str | None, class_name: str, config: dict[str, Any], registered: str | None) -> dict:
    """A nested object as Keras 3 saves it (``serialize_keras_object``)."""
    return {"module": module, "class_name": class_name, "config": config, "registered_name": registered}


#: A custom object that shares a Keras class name, as Keras saves a registered class (its own
#: module, ``registered_name: "package>Name"``), and variants of it.
CUSTOM = {
    "regularizer-registered": ("kernel_regularizer", _object("mypkg", "L2", {"l2": 0.01}, "my>L2")),
    "regularizer-os-module": ("kernel_regularizer", _object("os", "L2", {"l2": 0.01}, "evil>L2")),
    "regularizer-no-module": ("kernel_regularizer", _object(None, "L2", {"l2": 0.01}, "my>L2")),
    # Keras looks the registered name up first: a Keras module does not make it Keras' own
    "regularizer-keras-module-registered": (
        "kernel_regularizer",
        _object("keras.regularizers", "L2", {"l2": 0.01}, "my>L2"),
    ),
    "regularizer-unsaved-module": ("kernel_regularizer", {"class_name": "L2", "config": {"l2": 0.01}}),
    "bias-regularizer": ("bias_regularizer", _object("mypkg", "L1", {"l1": 0.01}, "my>L1")),
    "initializer-registered": (
        "kernel_initializer",
        _object("mypkg", "GlorotUniform", {"seed": None}, "my>GlorotUniform"),
    ),
    "initializer-os-module": ("kernel_initializer", _object("os", "GlorotUniform", {"seed": None}, None)),
    # a regularizer's module in an initializer's place is not Keras' initializer either
    "initializer-wrong-keras-module": (
        "kernel_initializer",
        _object("keras.regularizers", "GlorotUniform", {"seed": None}, None),
    ),
    "bias-initializer": ("bias_initializer", _object("mypkg", "Zeros", {}, "my>Zeros")),
    "constraint": ("kernel_constraint", _object("mypkg", "NonNeg", {}, "my>NonNeg")),
    "dtype-policy": ("dtype", _object("mypkg", "DTypePolicy", {"name": "float32"}, "my>DTypePolicy")),
}


@pytest.mark.parametrize(("key", "value"), CUSTOM.values(), ids=CUSTOM.keys())
def test_a_custom_nested_object_is_refused_as_a_custom_class(tmp_path, key, value):
    source = _keras_file(
        tmp_path, functional(_layer("Dense", "d", [[_tensor("in")]], units=4, **{key: value}))
    )
    output = refused(source)
    assert f"{source}: $.config.layers[1]: layer 'd' (Dense) cannot be imported: `{key}`" in output
    assert "a custom class" in output


def test_a_custom_batch_normalization_initializer_is_refused():
    """BatchNormalization's initializers are no spec parameter: compared with the standard ones
    (reverse._NEUTRAL), where a custom Ones read as Keras' ones."""
    gamma = _object("mypkg", "Ones", {}, "my>Ones")
    config = functional(_layer("BatchNormalization", "bn", [[_tensor("in")]], gamma_initializer=gamma))
    refusal = r"'bn' \(BatchNormalization\) cannot be imported: `gamma_initializer`"
    with pytest.raises(SpecError, match=refusal):
        import_source(Source("m", config))


def test_two_custom_objects_in_one_layer_refuse_it_once(tmp_path):
    layer = _layer(
        "Dense",
        "d",
        [[_tensor("in")]],
        units=4,
        kernel_initializer=_object("mypkg", "GlorotUniform", {"seed": None}, "my>GlorotUniform"),
        kernel_regularizer=_object("mypkg", "L2", {"l2": 0.01}, "my>L2"),
    )
    output = refused(_write(tmp_path, functional(layer)))
    assert output.count("layer 'd' (Dense) cannot be imported") == 1


def test_keras_own_nested_objects_still_import():
    layer = _layer(
        "Dense",
        "d",
        [[_tensor("in")]],
        units=4,
        kernel_initializer=_object("keras.initializers", "HeNormal", {"seed": None}, None),
        bias_initializer=_object("keras.initializers", "Zeros", {}, None),
        kernel_regularizer=_object("keras.regularizers", "L2", {"l2": 0.01}, None),
        bias_constraint=None,
        dtype=_object("keras", "DTypePolicy", {"name": "float32"}, None),
    )
    text = import_source(Source("m", functional(layer))).text
    assert "- dense: {units: 4, kernel_initializer: he_normal, kernel_regularizer: {l2: 0.01}}" in text


def test_the_golden_fixture_nested_objects_are_keras_own():
    """Every nested object of a real saved model passes (none of them is refused)."""
    assert import_source(str(TINY_JSON)).lines > 0


def test_each_reader_of_a_nested_object_refuses_a_custom_class_on_its_own():
    """Not only the walk in from_keras: each function that reads a nested object by its class
    name checks its module and registered name too."""
    from cnnspec.layers.registry import KerasCall

    custom_l2 = _object("mypkg", "L2", {"l2": 0.01}, "my>L2")
    custom_glorot = _object("mypkg", "GlorotUniform", {"seed": None}, "my>GlorotUniform")
    own_glorot = _object("keras.initializers", "GlorotUniform", {"seed": None}, None)
    with pytest.raises(NotExpressible, match="custom class"):
        reverse._decode_regularizer(custom_l2)
    with pytest.raises(NotExpressible, match="custom class"):
        reverse._decode_initializer(custom_glorot)
    assert reverse._same_initializer("glorot_uniform", own_glorot)
    assert not reverse._same_initializer("glorot_uniform", custom_glorot)
    ours = KerasCall("L1L2", (("l1", 0.0), ("l2", 0.01)))
    assert reverse._encoded_equal(ours, _object("keras.regularizers", "L2", {"l2": 0.01}, None))
    assert not reverse._encoded_equal(ours, custom_l2)
    assert reverse.dtype_policy(_object("keras", "DTypePolicy", {"name": "float32"}, None)) == "float32"
    assert reverse.dtype_policy(_object("mypkg", "DTypePolicy", {"name": "float32"}, "my>P")) is None


# -- 2. call keyword arguments --------------------------------------------------------------------
FIXED = {
    "mc-dropout": (_layer("Dropout", "do", [[_tensor("in")]], rate=0.5), "training", True),
    "pinned-batch-norm": (_layer("BatchNormalization", "do", [[_tensor("in")]]), "training", False),
    "dense-training": (_layer("Dense", "do", [[_tensor("in")]], units=4), "training", True),
    "a-constant-mask": (_layer("Dense", "do", [[_tensor("in")]], units=4), "mask", [1, 2]),
    "any-other-keyword": (_layer("Dense", "do", [[_tensor("in")]], units=4), "scale", 2.0),
}


@pytest.mark.parametrize(("layer", "key", "value"), FIXED.values(), ids=FIXED.keys())
def test_a_call_with_a_fixed_keyword_argument_is_refused_naming_it(tmp_path, layer, key, value):
    source = _write(tmp_path, functional(_called(layer, **{key: value})))
    output = refused(source)
    where = f"{source}: $.config.layers[1].inbound_nodes[0].kwargs.{key}"
    assert f"{where}: layer 'do' ({layer['class_name']}) cannot be imported" in output
    assert f"fixed argument {key}={json.dumps(value)}" in output
    assert "a spec calls each layer with its inputs only" in output


def test_keyword_arguments_that_are_not_an_object_are_refused(tmp_path):
    layer = dense("d")
    layer["inbound_nodes"][0]["kwargs"] = ["training", True]
    output = refused(_write(tmp_path, functional(layer)))
    assert (
        "$.config.layers[1].inbound_nodes[0].kwargs: layer 'd' (Dense): expected its call's keyword" in output
    )


def test_what_keras_records_for_an_ordinary_call_still_imports():
    """Keras 3 saves ``mask: null`` for a layer whose call takes a mask, and the default of a
    layer's ``training`` argument: False for dropout, True for augmentation (keras.applications'
    EfficientNets and every model `cnnspec build` saves have Dropout's ``training: false``)."""
    config = _image_model(
        _called(_layer("RandomFlip", "flip", [[_tensor("in")]], mode="horizontal"), training=True),
        _called(_layer("Conv2D", "conv", [[_tensor("flip")]], filters=4, kernel_size=[3, 3]), mask=None),
        _called(_layer("BatchNormalization", "bn", [[_tensor("conv")]]), mask=None),
        _called(_layer("SpatialDropout2D", "sd", [[_tensor("bn")]], rate=0.1), training=False),
        _called(_layer("GlobalAveragePooling2D", "gap", [[_tensor("sd")]])),
        _called(_layer("Dropout", "do", [[_tensor("gap")]], rate=0.5), training=False),
        _called(_layer("Dense", "out", [[_tensor("do")]], units=2), training=None),
    )
    text = import_source(Source("m", config)).text
    for item in ("random_flip", "conv2d", "batch_norm", "spatial_dropout2d", "dropout: 0.5", "dense: 2"):
        assert item in text


def test_a_class_no_kind_builds_is_named_as_that_not_by_its_keyword_arguments(tmp_path):
    # (GaussianNoise was this class until a kind built it: tests/test_noise_kinds.py)
    layer = _called(_layer("Masking", "mask", [[_tensor("in")]], mask_value=0.0), training=True)
    output = refused(_write(tmp_path, functional(layer)))
    assert "no layer kind builds Keras Masking" in output
    assert "fixed argument" not in output


# -- 3. numbers too large to read -----------------------------------------------------------------
def _big_units_config() -> str:
    """A one-Dense model whose ``units`` is a 5000-digit integer (more than Python converts)."""
    return json.dumps(functional(dense("d"))).replace('"units": 4', '"units": ' + "9" * 5000)


@pytest.mark.parametrize("container", ["json", "keras"])
def test_a_number_of_thousands_of_digits_is_a_json_error_naming_the_file(tmp_path, container):
    if container == "json":
        source = tmp_path / "model.json"
        source.write_text(_big_units_config())
        where = str(source)
    else:
        source = _keras_file(tmp_path, _big_units_config())
        where = f"config.json in {source}"
    output = refused(source)
    assert f"error: {where} is not valid JSON: it holds a number too large to read" in output


def test_a_large_integer_where_keras_keeps_a_float_is_refused_not_an_internal_error(tmp_path):
    """4000 digits parse, but no float holds them: the layer is refused as unreadable."""
    regularizer = _object("keras.regularizers", "L2", {"l2": 0}, None)
    config = functional(_layer("Dense", "d", [[_tensor("in")]], units=4, kernel_regularizer=regularizer))
    text = json.dumps(config).replace('"l2": 0', '"l2": ' + "9" * 4000)
    source = tmp_path / "model.json"
    source.write_text(text)
    output = refused(source)
    assert "layer 'd' (Dense) cannot be imported: unreadable configuration (OverflowError" in output


# -- 4. combinators nested deeper than a spec nests -----------------------------------------------
def _nested(depth: int, merge: str = "Add") -> dict[str, Any]:
    """Forks ``depth`` deep, each joined by ``merge`` around the next: with Add, residuals one
    inside another; with Concatenate (and a side branch each), parallels."""
    layers = []
    previous, forks = "in", []
    for k in range(depth):
        layers.append(dense(f"d{k}", previous))
        if merge == "Concatenate":
            layers.append(dense(f"b{k}", f"d{k}"))
        forks.append(f"d{k}")
        previous = f"d{k}"
    layers.append(dense(f"d{depth}", previous))
    previous = f"d{depth}"
    for k in reversed(range(depth)):
        other = f"b{k}" if merge == "Concatenate" else forks[k]
        layers.append(_layer(merge, f"m{k}", [[[_tensor(other), _tensor(previous)]]]))
        previous = f"m{k}"
    return functional(*layers)


@pytest.mark.parametrize("merge", ["Add", "Concatenate"])
def test_forks_nested_as_deep_as_a_spec_nests_stay_combinators(merge):
    imported = import_source(Source("m", _nested(MAX_COMBINATOR_DEPTH, merge)))
    word = "residual" if merge == "Add" else "parallel"
    assert imported.text.count(f"- {word}:") == MAX_COMBINATOR_DEPTH
    assert "inputs:" not in imported.text


@pytest.mark.parametrize(
    ("merge", "depth"), [("Add", MAX_COMBINATOR_DEPTH + 1), ("Add", 400), ("Concatenate", 300)]
)
def test_forks_nested_deeper_are_written_flat_with_ids(tmp_path, merge, depth):
    source = _write(tmp_path, _nested(depth, merge))
    out = tmp_path / "out.yaml"
    result = run_cli("import", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "residual" not in text and "parallel" not in text
    # each merge reads two earlier outputs by id; with Concatenate each side branch one too
    assert text.count("inputs:") == depth * (2 if merge == "Concatenate" else 1)
    compiled = compile_text(text)
    assert sum(1 for n in compiled.ir.nodes if n.kind in ("add", "concat")) == depth


def test_items_that_still_nest_past_the_recursion_limit_are_a_located_error(monkeypatch):
    """The last line behind the depth cap: should the structurer nest combinators without one,
    the recursion that follows is a located error, not an internal one."""
    import sys

    from cnnspec.importer import structure

    monkeypatch.setattr(structure, "MAX_COMBINATOR_DEPTH", 10**6)
    # at Python's own recursion limit, as `cnnspec import` runs (it never imports Keras, which
    # raises the limit for deep models: a test before this one on the worker may have)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        with pytest.raises(
            SpecError, match=r"\$\.config\.layers: the model's layers nest too deeply"
        ) as caught:
            import_source(Source("deep.json", _nested(1500)))
    finally:
        sys.setrecursionlimit(limit)
    assert caught.value.diagnostics[0].hint == "the spec language nests items at most 100 levels deep"


@pytest.mark.parametrize(
    ("layer", "refusal"),
    [(5, "'se_relu' (Activation) cannot be imported"), (4, "'add' (Add) is called with a constant")],
)
def test_a_keyword_argument_inside_a_raw_op_hard_sigmoid_is_not_dropped_by_the_rewrite(
    tmp_path, layer, refusal
):
    """MobileNetV3's ``ReLU(6)(x + 3) * (1/6)`` becomes one activation layer: a fixed keyword
    argument on its ReLU is still refused (on the layer it became), and one on its operations
    leaves them raw operations, refused as such."""
    config = json.loads((TINY_JSON.parent / "tiny_ops.json").read_text(encoding="utf-8"))
    config["config"]["layers"][layer]["inbound_nodes"][0]["kwargs"] = {"scale": 2.0}
    output = refused(_write(tmp_path, config))
    assert f"layer {refusal}" in output


def test_a_model_name_longer_than_a_spec_takes_is_cut_to_its_start(tmp_path):
    """A spec's name is at most 100 characters (the files named after it must fit); a Keras
    model named longer imports as its first 100, and the spec validates."""
    config = functional(dense("d"))
    config["config"]["name"] = "net_" + "n" * 146
    imported = import_source(str(_write(tmp_path, config)))
    assert compile_text(imported.text).name == ("net_" + "n" * 146)[:100]
