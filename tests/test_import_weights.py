"""`cnnspec import --weights` of a weights file that does not fit its configuration, and of a
configuration whose input size was edited by hand.

Before, a ``model.weights.h5`` missing a layer's group, holding another number of variables or
a variable of another shape was copied beside the spec (exit 0), and ``build`` then loaded the
rest and left those layers as initialized (exit 0 too), where Keras' own ``load_model`` refuses
the file. Now each layer's variables are checked against the shapes its kind says Keras keeps
(:attr:`~cnnspec.layers.registry.LayerKind.weight_rule`) and such a file is refused, nothing
written. The fast tests edit the fixture's weights with h5py (no TensorFlow); the slow one saves
real models with every kind of weighted layer, Keras' random and dropout layers and normalization
in its three forms, which must still import with their weights and build loading every tensor.

The dtypes too: a variable that is not float32 was copied whatever it held, and Keras' load_model
(and build) converted it without a word (integers, booleans, complex numbers, float64 past
float32's range to inf). Now what Keras would change or cannot read is refused naming layer,
variable and both dtypes; float16 and float64 (with a note where it rounds) are taken, and
Keras' bfloat16 is written as float32. keras:NAME's weights, saved by Keras here, were never
checked at all: they pass the same check now (a stand-in model saves the fixture's weights).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.test_import import TINY_KERAS, run_cli

HINT = (
    "hint: config.json and the weights are of different models: save the model again with "
    "model.save('model.keras')"
)
TAIL = "(Keras' load_model refuses the file; build would leave such layers as initialized)"


def _edited(tmp_path: Path, edit: Callable[[Any], None], source: Path = TINY_KERAS) -> Path:
    """``source`` with its model.weights.h5 changed by ``edit`` (an open h5py file)."""
    import h5py

    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    weights = tmp_path / "edited.h5"
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "r+") as handle:
        edit(handle)
    members["model.weights.h5"] = weights.read_bytes()
    weights.unlink()
    edited = tmp_path / "edited.keras"
    with zipfile.ZipFile(edited, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return edited


def _refused(source: Path) -> str:
    """``import --weights`` of ``source``: exit 1, nothing written, no internal error."""
    out = source.parent / "model.yaml"
    result = run_cli("import", str(source), "-o", str(out), "--weights")
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in source.parent.iterdir()) == [source.name]
    return result.output


def _replace(handle: Any, variable: str, shape: tuple[int, ...]) -> None:
    import numpy as np

    group, key = variable.rsplit("/", 1)
    del handle[group][key]
    handle[group].create_dataset(key, data=np.zeros(shape, "float32"))


def test_a_variable_of_another_shape_is_refused_with_both_shapes(tmp_path):
    source = _edited(tmp_path, lambda h: _replace(h, "layers/conv2d_1/vars/0", (3, 3, 8, 4)))
    assert _refused(source) == (
        f"error: {source}: model.weights.h5 does not fit the model of config.json: layer "
        "'stage2_block1_1_conv' (Conv2D) at layers/conv2d_1: expected variable 0 of shape [3, 3, 8, 8]; "
        f"received [3, 3, 8, 4] {TAIL} {HINT}"
    )


def test_a_layer_missing_from_the_weights_is_refused_with_what_it_takes(tmp_path):
    def drop(handle: Any) -> None:
        del handle["layers/conv2d_1"]

    assert _refused(_edited(tmp_path, drop)) == (
        f"error: {tmp_path / 'edited.keras'}: model.weights.h5 does not fit the model of config.json: "
        "layer 'stage2_block1_1_conv' (Conv2D) at layers/conv2d_1: expected 2 variables: 0 [3, 3, 8, 8], "
        f"1 [8]; received none {TAIL} {HINT}"
    )


def test_an_extra_or_a_missing_variable_is_refused_with_the_variables_on_both_sides(tmp_path):
    import numpy as np

    def extra(handle: Any) -> None:
        handle["layers/conv2d_1/vars"].create_dataset("2", data=np.zeros(8, "float32"))

    output = _refused(_edited(tmp_path, extra))
    assert (
        "layer 'stage2_block1_1_conv' (Conv2D) at layers/conv2d_1: expected 2 variables: 0 [3, 3, 8, 8], "
        "1 [8]; received 3 variables: 0 [3, 3, 8, 8], 1 [8], 2 [8] (Keras'"
    ) in output

    def moving_variance_dropped(handle: Any) -> None:  # batch norm keeps 4: gamma, beta, mean, variance
        del handle["layers/batch_normalization/vars/3"]

    (tmp_path / "edited.keras").unlink()
    output = _refused(_edited(tmp_path, moving_variance_dropped))
    assert (
        "layer 'stem_bn' (BatchNormalization) at layers/batch_normalization: expected 4 variables: "
        "0 [8], 1 [8], 2 [8], 3 [8]; received 3 variables: 0 [8], 1 [8], 2 [8] (Keras'"
    ) in output


def test_several_layers_that_do_not_fit_are_named_three_then_counted(tmp_path):
    def drop_convolutions(handle: Any) -> None:
        for key in ("conv2d", "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4"):
            del handle[f"layers/{key}"]

    assert _refused(_edited(tmp_path, drop_convolutions)) == (
        f"error: {tmp_path / 'edited.keras'}: model.weights.h5 does not fit the model of config.json: "
        "layer 'stem_conv' (Conv2D) at layers/conv2d: expected 1 variable: 0 [3, 3, 3, 8]; received none; "
        "layer 'stage2_block1_1_conv' (Conv2D) at layers/conv2d_1: expected 2 variables: 0 [3, 3, 8, 8], "
        "1 [8]; received none; layer 'stage2_block1_2_conv' (Conv2D) at layers/conv2d_2: expected 2 "
        f"variables: 0 [3, 3, 8, 8], 1 [8]; received none; and 2 more {TAIL} {HINT}"
    )


def test_a_layer_of_a_nested_model_is_checked_where_keras_keeps_it(tmp_path):
    """The body of tiny_nested.keras (a frozen model inside the model) is written in line: its
    layers' weights are under the nested model's group, and named by their path in it."""
    nested = TINY_KERAS.parent / "tiny_nested.keras"
    variable = "layers/functional/layers/conv2d_2/vars/0"
    source = _edited(tmp_path, lambda h: _replace(h, variable, (1, 1, 8, 12)), nested)
    assert _refused(source) == (
        f"error: {source}: model.weights.h5 does not fit the model of config.json: layer 'base/top_conv' "
        "(Conv2D) at layers/functional/layers/conv2d_2: expected variable 0 of shape [1, 1, 8, 16]; "
        f"received [1, 1, 8, 12] {TAIL} {HINT}"
    )


def test_the_fixture_s_own_weights_still_import(tmp_path):
    """The check passes a file as Keras saved it (its 89 tensors: convolutions, batch norms,
    dense), through an edit that changes nothing the model reads (a weightless layer's group)."""

    def drop_weightless(handle: Any) -> None:
        del handle["layers/activation"]  # (Keras loads nothing into a layer without variables)

    source = _edited(tmp_path, drop_weightless)
    result = run_cli("import", str(source), "-o", str(tmp_path / "model.yaml"), "--weights")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model.weights.h5").is_file()


# -- an input size edited by hand ----------------------------------------------------------------
def _tiny_json(tmp_path: Path, edit: Callable[[dict], None]) -> Path:
    with zipfile.ZipFile(TINY_KERAS) as archive:
        config = json.loads(archive.read("config.json"))
    edit(config)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _input_resized(config: dict) -> None:
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 32, 32, 3]


def test_an_input_size_edited_by_hand_is_the_file_contradicting_itself_not_an_import_fault(tmp_path):
    """Before: "layer 'stem_conv' reads shapes [(16, 16, 3)] in the source, [(32, 32, 3)] in the
    spec" with "please report this model", as if cnnspec had got the model wrong."""
    source = _tiny_json(tmp_path, _input_resized)
    result = run_cli("import", str(source), "-o", str(tmp_path / "model.yaml"))
    assert result.exit_code == 1
    assert result.output == (
        f"error: {source}: $.config.layers[1].build_config: the source contradicts itself: its input "
        "'input_layer' takes [32, 32, 3] ($.config.layers[0].config.batch_shape), but layer 'stem_conv' "
        "was saved reading [16, 16, 3] from it (its build_config) hint: an input size edited by hand: "
        "set batch_shape back, or remove the build_config of the layers (Keras saves both right when "
        "the model is built at the new size and saved again)"
    )
    assert not (tmp_path / "model.yaml").exists()


def test_the_hint_s_way_out_works_the_input_resized_without_saved_shapes_imports(tmp_path):
    def resized_without_build_configs(config: dict) -> None:
        _input_resized(config)
        for layer in config["config"]["layers"]:
            layer.pop("build_config", None)

    source = _tiny_json(tmp_path, resized_without_build_configs)
    result = run_cli("import", str(source), "-o", str(tmp_path / "model.yaml"))
    assert result.exit_code == 0, result.output
    assert "input: {shape: [32, 32, 3]}" in (tmp_path / "model.yaml").read_text()


def _layer_edited(config: dict, name: str) -> dict:
    return next(entry for entry in config["config"]["layers"] if entry["name"] == name)


CONTRADICTS_HINT = (
    "hint: a configuration edited by hand: set the values of 'stem_conv' (or of the layers before it) "
    "back, or remove the build_config of the layers that read it (Keras saves both right when the "
    "model is built and saved again); a file as Keras saved it: please report this model"
)


@pytest.mark.parametrize("suffix", [".json", ".keras"])
def test_a_layer_size_edited_by_hand_is_the_file_contradicting_itself_not_an_import_fault(tmp_path, suffix):
    """The stem convolution's filters 8 → 5, the batch norm after it saved reading 8 channels.
    Before: "the imported spec has 56 layers; the source has 54" (the residual after the stem
    had its two sides made different, and got a projection) or, without the residual, "layer …
    reads shapes … in the source, … in the spec", each with "please report this model", as if
    cnnspec had got the model wrong; with --weights too."""

    def filters_edited(config: dict) -> None:
        _layer_edited(config, "stem_conv")["config"]["filters"] = 5

    source = _tiny_json(tmp_path, filters_edited)
    if suffix == ".keras":  # (the source's weights kept: the configuration is refused first)
        with zipfile.ZipFile(TINY_KERAS) as archive:
            weights = archive.read("model.weights.h5")
        keras_file = tmp_path / "edited.keras"
        with zipfile.ZipFile(keras_file, "w") as archive:
            archive.writestr("config.json", source.read_text(encoding="utf-8"))
            archive.writestr("model.weights.h5", weights)
        source = keras_file
    weights = ["--weights"] if suffix == ".keras" else []
    result = run_cli("import", str(source), "-o", str(tmp_path / "model.yaml"), *weights)
    assert result.exit_code == 1
    assert result.output == (
        f"error: {source}: $.config.layers[2].build_config: the source contradicts itself: layer "
        "'stem_bn' was saved reading [16, 16, 8] from 'stem_conv' (its build_config), but 'stem_conv' "
        f"(Conv2D) gives [16, 16, 5] as configured {CONTRADICTS_HINT}"
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("model.")]


def test_a_saved_shape_edited_past_the_input_is_the_file_contradicting_itself_too(tmp_path):
    """The batch norm's build_config edited instead: the same contradiction, said the same way
    (before: "please report this model" alone; the hint keeps it for a file Keras saved so)."""

    def later_shape_edited(config: dict) -> None:
        _layer_edited(config, "stem_bn")["build_config"]["input_shape"] = [None, 8, 8, 8]

    source = _tiny_json(tmp_path, later_shape_edited)
    result = run_cli("import", str(source), "-o", str(tmp_path / "model.yaml"))
    assert result.exit_code == 1
    assert result.output == (
        f"error: {source}: $.config.layers[2].build_config: the source contradicts itself: layer "
        "'stem_bn' was saved reading [8, 8, 8] from 'stem_conv' (its build_config), but 'stem_conv' "
        f"(Conv2D) gives [16, 16, 8] as configured {CONTRADICTS_HINT}"
    )


# -- real models saved by Keras (TensorFlow) ------------------------------------------------------
@pytest.mark.slow
def test_models_saved_by_keras_import_with_their_weights_and_build_loading_every_tensor(tmp_path):
    """Every weighted kind (grouped, biasless and transposed convolutions, batch norms frozen
    and not, without center or scale), normalization adapted, given and over no axis, dropout
    and random layers (whose seeds Keras does not save), in a nested augmentation model and a
    nested body: Keras' own files pass the check, and build loads all their tensors."""
    import keras
    import numpy as np

    layers = keras.layers
    augment = keras.Sequential([layers.RandomFlip(), layers.RandomRotation(0.1)], name="augment")
    body_in = keras.Input((8, 8, 4))
    y = layers.Conv2D(6, 3, padding="same", groups=2, use_bias=False)(body_in)
    y = layers.BatchNormalization(center=False)(y)
    frozen = layers.BatchNormalization(scale=False)
    frozen.trainable = False
    y = layers.ReLU()(frozen(y))
    body = keras.Model(body_in, layers.Add()([y, layers.Conv2D(6, 1)(body_in)]), name="body")
    inputs = keras.Input((8, 8, 4))
    x = layers.Normalization(mean=0.5, variance=2.0)(inputs)
    x = layers.Normalization()(x)
    x = body(augment(x))
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)
    x = layers.SeparableConv2D(5, 3, padding="same")(x)
    x = layers.Conv2DTranspose(3, 3, strides=2)(x)
    x = layers.PReLU(shared_axes=[1, 2])(x)
    x = layers.LayerNormalization()(layers.GroupNormalization(groups=3)(x))
    x = layers.Normalization(axis=None)(layers.Dropout(0.2)(x))
    x = layers.Conv1D(4, 3)(layers.Reshape((17 * 17, 3))(x))
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x)))
    source = tmp_path / "source.keras"
    model.save(source)
    out = tmp_path / "model.yaml"
    result = run_cli("import", str(source), "-o", str(out), "--weights")
    assert result.exit_code == 0, result.output
    result = run_cli("build", str(out), "-o", str(tmp_path / "built.keras"))
    tensors = len(model.weights)
    assert result.exit_code == 0, result.output
    assert f"loaded {tensors} of {tensors} weight tensors" in result.output
    built = keras.saving.load_model(tmp_path / "built.keras", safe_mode=True)
    batch = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
    np.testing.assert_allclose(built.predict(batch, verbose=0), model.predict(batch, verbose=0), rtol=1e-5)


# -- dtypes: what Keras' load_model does with a variable that is not float32 ---------------------
DTYPE_HINT = (
    "hint: the layers of config.json keep float32 weights: save the model again with "
    "model.save('model.keras')"
)


def _retype(handle: Any, variable: str, values: Any, mark: str | None = None) -> None:
    """Replace ``variable`` with ``values`` (their dtype), marked like Keras' bfloat16 if asked."""
    group, key = variable.rsplit("/", 1)
    del handle[group][key]
    dataset = handle[group].create_dataset(key, data=values)
    if mark is not None:
        dataset.attrs["dtype"] = mark


def test_an_integer_kernel_in_a_float32_layer_is_refused_naming_layer_variable_and_both_dtypes(tmp_path):
    """Before: copied (exit 0); Keras' load_model and build turn the integers into float32
    weights without a word."""
    import numpy as np

    variable = "layers/conv2d_1/vars/0"
    source = _edited(tmp_path, lambda h: _retype(h, variable, np.ones((3, 3, 8, 8), "int32")))
    assert _refused(source) == (
        f"error: {source}: model.weights.h5 holds weights that the model's float32 layers cannot take "
        "as they are: layer 'stage2_block1_1_conv' (Conv2D) at layers/conv2d_1: expected variable 0 of "
        "dtype float32; received int32, which Keras' load_model converts to float values without a "
        f"word {DTYPE_HINT}"
    )


def test_each_dtype_keras_refuses_or_changes_is_said_so_three_then_counted(tmp_path):
    import numpy as np

    def retyped(handle: Any) -> None:
        _retype(handle, "layers/conv2d/vars/0", np.ones((3, 3, 3, 8), bool))
        _retype(handle, "layers/conv2d_1/vars/0", np.ones((3, 3, 8, 8), "complex64"))
        _retype(handle, "layers/conv2d_1/vars/1", np.full(8, 1e39))  # float64 past float32's range
        _retype(handle, "layers/conv2d_2/vars/1", np.full(8, b"w"))
        _retype(handle, "layers/conv2d_3/vars/1", np.zeros(8, "float32"), mark="bfloat16")

    assert _refused(_edited(tmp_path, retyped)) == (
        f"error: {tmp_path / 'edited.keras'}: model.weights.h5 holds weights that the model's float32 "
        "layers cannot take as they are: layer 'stem_conv' (Conv2D) at layers/conv2d: expected variable 0 "
        "of dtype float32; received bool, which Keras' load_model converts to float values without a word; "
        "layer 'stage2_block1_1_conv' (Conv2D) at layers/conv2d_1: expected variable 0 of dtype float32; "
        "received complex64, whose imaginary parts Keras' load_model drops without a word; layer "
        "'stage2_block1_1_conv' (Conv2D) at layers/conv2d_1: expected variable 1 of dtype float32; "
        "received float64 values beyond float32's range (up to 1e+39), which Keras' load_model turns "
        f"into inf; and 2 more {DTYPE_HINT}"
    )


def test_what_keras_cannot_read_and_build_cannot_read_is_named_by_check_dtypes(tmp_path):
    """The rest of the verdicts, on a file of one layer (the API, no import around it)."""
    import h5py
    import numpy as np

    from cnnspec.importer.dtypes import Placed, check_dtypes

    path = tmp_path / "x.weights.h5"
    with h5py.File(path, "w") as handle:
        variables = handle.create_group("layers/dense/vars")
        variables.create_dataset("0", data=np.full(2, b"w"))
        variables.create_dataset("1", data=np.zeros(2, "V2"))  # opaque without Keras' bfloat16 mark
        variables.create_dataset("2", data=np.zeros(2, "float32")).attrs["dtype"] = "bfloat16"
        variables.create_dataset("3", data=np.zeros(2, "uint8"))
        variables.create_dataset("4", data=np.zeros(2, "float16"))  # taken as it is: exact
    found = check_dtypes(path, [Placed("layer 'd' (Dense)", "layers/dense", ("0", "1", "2", "3", "4"))])
    start = "layer 'd' (Dense) at layers/dense: expected variable"
    assert found.refused == [
        f"{start} 0 of dtype float32; received |S1, which Keras' load_model cannot read as numbers",
        f"{start} 1 of dtype float32; received |V2, which Keras' load_model cannot read as numbers",
        f"{start} 2 of dtype float32; received float32 marked bfloat16, which Keras' load_model cannot read",
        f"{start} 3 of dtype float32; received uint8, which Keras' load_model converts to float values "
        "without a word",
    ]
    assert (found.rounded, found.widened) == ([], [])


def test_a_normalization_count_is_an_integer_counter_and_nothing_else(tmp_path):
    """A kind's counters (normalization's ``count``, kept as int64) take any integers, and
    refuse what is not one; its other variables are checked as float32 weights."""
    import h5py
    import numpy as np

    from cnnspec.importer.dtypes import Placed, check_dtypes
    from cnnspec.layers.registry import REGISTRY

    assert REGISTRY["normalization"].counters == (2,)
    layer = Placed("layer 'n' (Normalization)", "layers/normalization", ("0", "1", "2"), ("2",))
    found = []
    for index, count in enumerate((np.int64(3), np.int32(3), np.uint8(3), np.float32(3), np.bool_(True))):
        path = tmp_path / f"x{index}.weights.h5"
        with h5py.File(path, "w") as handle:
            variables = handle.create_group("layers/normalization/vars")
            variables.create_dataset("0", data=np.zeros(2, "float32"))
            variables.create_dataset("1", data=np.ones(2, "int64"))  # (a variance: float32 expected)
            variables.create_dataset("2", data=count)
        found.append(check_dtypes(path, [layer]).refused)
    start = "layer 'n' (Normalization) at layers/normalization: expected variable"
    variance = f"{start} 1 of dtype float32; received int64, which Keras' load_model converts to float values"
    assert [[line.split(" without")[0] for line in refused] for refused in found] == [
        [variance],
        [variance],
        [variance],
        [variance, f"{start} 2 of dtype int64 (the layer's count); received float32"],
        [variance, f"{start} 2 of dtype int64 (the layer's count); received bool"],
    ]


def _imported_with(tmp_path: Path, edit: Callable[[Any], None]) -> tuple[str, Any]:
    """``import --weights`` of the fixture edited by ``edit``: its report's notes, and the
    written weights file (open; the caller closes it)."""
    import h5py

    source = _edited(tmp_path, edit)
    result = run_cli("import", str(source), "-o", str(tmp_path / "model.yaml"), "--weights")
    assert result.exit_code == 0, result.output
    notes = result.output[result.output.find("note:") :] if "note:" in result.output else ""
    return notes, h5py.File(tmp_path / "model.weights.h5", "r")


def test_float64_weights_are_copied_with_a_note_that_they_load_rounded_and_float16_as_they_are(tmp_path):
    import numpy as np

    kernel = np.full((3, 3, 8, 8), 0.1)  # (0.1 is no float32: it loads rounded)

    def wider_and_narrower(handle: Any) -> None:
        _retype(handle, "layers/conv2d_1/vars/0", kernel)
        _retype(handle, "layers/conv2d_2/vars/0", np.full((3, 3, 8, 8), 0.5))  # float64, exact in float32
        _retype(handle, "layers/conv2d_3/vars/0", np.full((3, 3, 8, 8), 0.1, "float16"))

    notes, written = _imported_with(tmp_path, wider_and_narrower)
    with written:
        assert written["layers/conv2d_1/vars/0"].dtype == np.float64  # copied as it is
        np.testing.assert_array_equal(written["layers/conv2d_1/vars/0"], kernel)
    assert notes == (
        "note: model.weights.h5 holds float64 weights (layer 'stage2_block1_1_conv' (Conv2D)): copied "
        "as they are; Keras and build load them as float32, rounding each value to its precision"
    )


def test_keras_bfloat16_weights_are_written_as_the_same_float32_values(tmp_path):
    """Keras saves a bfloat16 variable as 2-byte opaque data marked ``dtype: bfloat16`` and
    loads it exactly into a float32 one; build reads no opaque data, so import widens it."""
    import numpy as np

    bias = np.array([1.0, -2.5, 0.15625, 3e38, 0.0, -0.0, 7.0, 1e-3], "float32")
    truncated = (bias.view(np.uint32) & 0xFFFF0000).view(np.float32)  # values a bfloat16 holds
    halves = (truncated.view(np.uint32) >> 16).astype(np.uint16).view("V2")

    notes, written = _imported_with(
        tmp_path, lambda h: _retype(h, "layers/conv2d_1/vars/1", halves, mark="bfloat16")
    )
    with written:
        widened = written["layers/conv2d_1/vars/1"]
        assert widened.dtype == np.float32 and "dtype" not in widened.attrs
        np.testing.assert_array_equal(widened, truncated)
        assert written["layers/conv2d_1/vars"].attrs["name"] == "stage2_block1_conv2d_1"  # relabelled
    assert notes == (
        "note: model.weights.h5 holds bfloat16 weights (layer 'stage2_block1_1_conv' (Conv2D)): written "
        "as float32, the same values (Keras loads them so; build reads no bfloat16)"
    )


# -- keras:NAME: the weights Keras saves here pass the same check ---------------------------------
class _Built:
    """A stand-in for the model keras:NAME builds (no TensorFlow): ``save_weights`` writes the
    fixture's weights, edited by ``edit``."""

    def __init__(self, tmp_path: Path, edit: Callable[[Any], None]) -> None:
        self.weights = _edited(tmp_path, edit)

    def save_weights(self, path: str) -> None:
        with zipfile.ZipFile(self.weights) as archive:
            Path(path).write_bytes(archive.read("model.weights.h5"))


def _keras_name(tmp_path: Path, monkeypatch: Any, edit: Callable[[Any], None]) -> Any:
    """``import keras:TinyNet --weights``, the model Keras built being the fixture's."""
    from cnnspec.importer import output
    from cnnspec.importer.source import Source

    with zipfile.ZipFile(TINY_KERAS) as archive:
        config = json.loads(archive.read("config.json"))
    read = Source("keras:TinyNet", config, keras_name="TinyNet", model=_Built(tmp_path, edit))
    monkeypatch.setattr(output, "read_source", lambda source, weights=False: read)
    out = tmp_path / "out"
    out.mkdir()
    return run_cli("import", "keras:TinyNet", "-o", str(out / "model.yaml"), "--weights"), out


def test_keras_name_weights_that_do_not_fit_the_spec_s_model_are_refused_as_import_s_fault(
    tmp_path, monkeypatch
):
    """Before: keras:NAME's weights were saved and relabelled with no check at all."""
    result, out = _keras_name(
        tmp_path, monkeypatch, lambda h: _replace(h, "layers/conv2d_1/vars/0", (3, 3, 8, 4))
    )
    assert result.exit_code == 1
    assert result.output == (
        "error: keras:TinyNet: the weights file Keras saved does not fit the model of its configuration: "
        "layer 'stage2_block1_1_conv' (Conv2D) at layers/conv2d_1: expected variable 0 of shape "
        f"[3, 3, 8, 8]; received [3, 3, 8, 4] {TAIL} hint: please report this model: import could not "
        "reproduce it"
    )
    assert list(out.iterdir()) == []


def test_keras_name_weights_that_fit_are_written(tmp_path, monkeypatch):
    result, out = _keras_name(tmp_path, monkeypatch, lambda h: None)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["model.weights.h5", "model.yaml"]
