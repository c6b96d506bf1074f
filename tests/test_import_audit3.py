"""`cnnspec import`: what a second audit found the importer dropping silently or refusing wrongly.

1. The model input's dtype (``keras.Input(..., dtype="uint8")``) and a fixed batch size were
   dropped without a word: each is a note in the report now; a sparse or ragged input, never
   checked, is refused (located, with a hint).
2. A mixed-precision model imported as a float32 one: the spec gets ``runtime:
   {mixed_precision: true}`` and the report says which policy that gives where, and what of the
   source's policies it cannot reproduce.
3. A single named (dict) input or output was refused as a corrupt configuration: it imports as
   the listed one does (a note says the dict is not kept); several named ones are refused as
   several listed ones are.
4. Several refused layers were listed by name, not in layer order.
5. A truncated ``.keras`` file was "not a zip archive": it is "damaged or truncated".

The fast tests are TensorFlow-free (configurations written here as JSON, or zipped as .keras);
the slow ones save real Keras models and compare the spec's model with them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cnnspec.analysis.passes import compile_text
from cnnspec.errors import SpecError
from cnnspec.importer import import_source
from cnnspec.importer.source import Source
from tests.test_import import FIXTURES, TINY_JSON, TINY_KERAS, run_cli
from tests.test_import_audit2 import _image_model, _keras_file
from tests.test_import_hostile import _layer, _tensor, _write, dense, functional, refused, sequential

TINY_OPS = FIXTURES / "tiny_ops.json"


def _conv(name: str, reads: str, **config: Any) -> dict[str, Any]:
    return _layer("Conv2D", name, [[_tensor(reads)]], filters=2, kernel_size=[3, 3], **config)


def _image(**input_config: Any) -> dict[str, Any]:
    """An 8×8×3 image input, a convolution and a dense layer; ``input_config`` on the input."""
    config = _image_model(_conv("c", "in"), _layer("Flatten", "f", [[_tensor("c")]]), dense("d", "f"))
    config["config"]["layers"][0]["config"].update(input_config)
    return config


def _imported(tmp_path: Path, config: dict[str, Any], *extra: str) -> tuple[str, str]:
    """Import ``config`` (as a .keras file) with the CLI: its report and the spec written."""
    out = tmp_path / "out.yaml"
    result = run_cli("import", str(_keras_file(tmp_path, config)), "-o", str(out), *extra)
    assert result.exit_code == 0, result.output
    assert run_cli("validate", str(out)).exit_code == 0
    return result.output, out.read_text(encoding="utf-8")


# -- 1. the model input: dtype, batch size, sparse, ragged ------------------------------------------
@pytest.mark.parametrize(
    ("dtype", "effect"),
    [
        ("uint8", "does not round or clip its inputs first"),
        ("int32", "does not round or clip its inputs first"),
        ("bool", "does not round or clip its inputs first"),
        ("float16", "does not round its inputs to float16 first"),
        ("bfloat16", "does not round its inputs to bfloat16 first"),
        ("float64", "reads float64 inputs at float32 precision"),
        ("string", "does not convert its inputs to string first"),
    ],
)
def test_an_input_dtype_other_than_float32_is_a_note_in_the_report(tmp_path, dtype, effect):
    report, text = _imported(tmp_path, _image(dtype=dtype))
    assert (
        f"note: the input's dtype {dtype} is not kept: the spec's model takes float32 and {effect}" in report
    )
    assert "input: {shape: [8, 8, 3]}" in text
    # and in the spec, as comments above it (the report is gone once the terminal is)
    comments = " ".join(line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#"))
    assert (
        f"Note: the input's dtype {dtype} is not kept: the spec's model takes float32 and {effect}"
        in comments
    )


def test_an_input_dtype_saved_as_a_policy_object_is_read_as_its_name():
    policy = {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "uint8"},
        "registered_name": None,
    }
    imported = import_source(Source("m", _image(dtype=policy)))
    assert imported.notes == [
        "the input's dtype uint8 is not kept: the spec's model takes float32 and does not round or clip "
        "its inputs first"
    ]


@pytest.mark.parametrize("model", ["functional", "sequential", "sequential without an InputLayer"])
def test_a_fixed_batch_size_is_a_note_in_the_report(tmp_path, model):
    if model == "functional":
        config = _image(batch_shape=[4, 8, 8, 3])
    elif model == "sequential":
        config = sequential(_layer("InputLayer", "in", batch_shape=[4, 8]), _layer("Dense", "d", units=4))
    else:
        config = sequential(_layer("Dense", "d", units=4))
        config["config"]["build_input_shape"] = [4, 8]  # (Keras 3: a Sequential built on a batch)
    report, text = _imported(tmp_path, config)
    assert (
        "note: the input's batch size 4 is not kept: the spec's model takes batches of any size "
        "(the source's only batches of 4)"
    ) in report
    assert "input: {shape: [" in text


@pytest.mark.parametrize("source", [TINY_JSON, TINY_KERAS], ids=["json", "keras"])
def test_a_float32_input_of_any_batch_size_has_no_note(tmp_path, source):
    """(The fixtures' input is saved with dtype float32, sparse and ragged false.)"""
    assert import_source(str(source)).notes == []
    result = run_cli("import", str(source), "-o", str(tmp_path / "out.yaml"))
    assert result.exit_code == 0 and "note:" not in result.output


@pytest.mark.parametrize("key", ["sparse", "ragged"])
@pytest.mark.parametrize("model", ["functional", "sequential"])
def test_a_sparse_or_ragged_input_is_refused_located_with_a_hint(tmp_path, key, model):
    if model == "functional":
        config = _image(**{key: True})
    else:
        config = sequential(_layer("InputLayer", "in", batch_shape=[None, 8], **{key: True}), dense("d"))
    output = refused(_keras_file(tmp_path, config))
    assert f"$.config.layers[0].config.{key}: the model input takes a {key} tensor ({key}: true)" in output
    assert "a spec's model takes a dense tensor" in output
    assert "hint: rebuild the model with keras.Input(shape)" in output


@pytest.mark.parametrize(
    ("edit", "where", "said"),
    [
        ({"dtype": 5}, "config.dtype", "expected the input's dtype as a name such as float32; received 5"),
        ({"batch_shape": [0, 8, 8, 3]}, "config.batch_shape[0]", "expected the batch size null or a whole"),
        ({"batch_shape": ["x", 8, 8, 3]}, "config.batch_shape[0]", 'received "x"'),
        ({"sparse": "yes"}, "config.sparse", 'sparse: "yes"'),
        # an image size of 0 or below is no size, not an unknown one ("expected a fully known
        # input shape; received [0, 8, 3]" said before)
        (
            {"batch_shape": [None, 0, 8, 3]},
            "config.batch_shape[1]",
            "expected each input size to be a whole number ≥ 1; received 0 in [0, 8, 3], an invalid size",
        ),
        ({"batch_shape": [None, 8, -2, 3]}, "config.batch_shape[2]", "received -2 in [8, -2, 3]"),
    ],
    ids=["dtype", "zero-batch", "text-batch", "sparse-text", "zero-size", "negative-size"],
)
def test_an_unreadable_input_setting_is_a_located_error(tmp_path, edit, where, said):
    output = refused(_write(tmp_path, _image(**edit)))
    assert f"$.config.layers[0].{where}: " in output and said in output


def test_an_input_of_unknown_size_is_still_said_to_need_a_fully_known_shape(tmp_path):
    output = refused(_write(tmp_path, _image(batch_shape=[None, None, 8, 3])))
    assert "$.config.layers[0].config.batch_shape: expected a fully known input shape; received " in output
    assert "[None, 8, 3]" in output


@pytest.mark.parametrize("suffix", [".json", ".keras"])
def test_a_config_that_starts_with_a_byte_order_mark_is_read(tmp_path, suffix):
    """An editor's UTF-8 byte order mark (Windows) before the JSON: "not valid JSON" before."""
    text = "\ufeff" + TINY_JSON.read_text(encoding="utf-8")
    if suffix == ".keras":
        source = _keras_file(tmp_path, text)
    else:
        source = tmp_path / "bom.json"
        source.write_text(text, encoding="utf-8")
    out = tmp_path / "out.yaml"
    result = run_cli("import", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "input: {shape: [16, 16, 3]}" in out.read_text(encoding="utf-8")


# -- 2. mixed precision ---------------------------------------------------------------------------
def _policy(name: str) -> dict[str, Any]:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


def _mixed(conv: str, flatten: str | None, output: str) -> dict[str, Any]:
    """``_image``'s model with each layer's saved policy (None: no dtype saved)."""
    config = _image()
    for index, policy in ((1, conv), (2, flatten), (3, output)):
        config["config"]["layers"][index]["config"]["dtype"] = None if policy is None else _policy(policy)
    return config


def test_a_mixed_precision_model_gets_the_runtime_setting_and_a_note(tmp_path):
    """Keras' advice: mixed layers and a float32 output layer, as runtime.mixed_precision builds."""
    report, text = _imported(tmp_path, _mixed("mixed_float16", "mixed_float16", "float32"))
    assert text.rstrip().endswith("runtime: {mixed_precision: true}")
    compiled = compile_text(text, "m.yaml")
    assert compiled.doc.data["runtime"] == {"mixed_precision": True}
    assert (
        "note: the source computes in mixed_float16, its output layer in float32: the spec gets "
        "runtime: {mixed_precision: true} (cnnspec train: mixed_float16 on a GPU, mixed_bfloat16 on a "
        "CPU or TPU, the output layer in float32): the source's policy on a GPU, not on a CPU or TPU"
    ) in report


def test_a_mixed_bfloat16_model_is_the_source_s_policy_on_a_cpu_or_tpu():
    imported = import_source(Source("m", _mixed("mixed_bfloat16", "mixed_bfloat16", "float32")))
    assert imported.mixed_precision and "runtime: {mixed_precision: true}" in imported.text
    assert imported.notes[-1].endswith("the source's policy on a CPU or TPU, not on a GPU")


@pytest.mark.parametrize(
    ("policies", "said"),
    [
        (
            ("mixed_float16", "float32", "float32"),
            "layer 'f' computes in float32 in the source, in mixed precision in the spec",
        ),
        (
            ("mixed_float16", None, "float32"),  # no policy saved: Keras' global one, float32
            "layer 'f' computes in float32 in the source, in mixed precision in the spec",
        ),
        (
            ("mixed_float16", "mixed_float16", "mixed_float16"),
            "the output layer 'd' computes in mixed_float16 in the source, in float32 in the spec",
        ),
        (("mixed_float16", "mixed_bfloat16", "float32"), "the source uses both policies"),
    ],
    ids=["float32-inside", "unsaved-inside", "mixed-output", "both"],
)
def test_policies_the_runtime_setting_cannot_reproduce_are_said(policies, said):
    imported = import_source(Source("m", _mixed(*policies)))
    assert "runtime: {mixed_precision: true}" in imported.text
    note = imported.notes[-1]
    assert "which cannot reproduce the source's policies exactly: " in note and said in note


def test_a_float32_model_gets_no_runtime_setting():
    for config in (_mixed("float32", "float32", "float32"), _mixed("float32", None, "float32")):
        imported = import_source(Source("m", config))
        assert "runtime" not in imported.text and not imported.mixed_precision and imported.notes == []


def test_a_rewritten_hard_sigmoid_keeps_the_relu_s_mixed_policy():
    """The activation written for ReLU(6)(x + 3) / 6 computes in the ReLU's policy: not a float32
    layer inside a mixed model."""
    config = json.loads(TINY_OPS.read_text(encoding="utf-8"))
    for layer in config["config"]["layers"]:
        if layer["name"] != "se_mul" and isinstance(layer["config"].get("dtype"), dict):
            layer["config"]["dtype"] = _policy("mixed_float16")  # (the output stays float32)
    imported = import_source(Source("ops", config))
    assert imported.rewritten == 1
    assert imported.notes[-1].endswith("the source's policy on a GPU, not on a CPU or TPU"), imported.notes


# -- 3. named (dict) inputs and outputs -----------------------------------------------------------
def _named(config: dict[str, Any], inputs: Any = None, outputs: Any = None) -> dict[str, Any]:
    named = copy.deepcopy(config)
    if inputs is not None:
        named["config"]["input_layers"] = inputs
    if outputs is not None:
        named["config"]["output_layers"] = outputs
    return named


@pytest.mark.parametrize(
    ("inputs", "outputs", "notes"),
    [
        ({"img": ["in", 0, 0]}, {"cls": ["d", 0, 0]}, ["input is named 'img'", "output is named 'cls'"]),
        (["in", 0, 0], {"cls": ["d", 0, 0]}, ["output is named 'cls'"]),
        ({"img": ["in", 0, 0]}, [["d", 0, 0]], ["input is named 'img'"]),
    ],
    ids=["both", "output", "input"],
)
def test_one_named_input_and_output_import_as_listed_ones(tmp_path, inputs, outputs, notes):
    listed = _image()
    report, text = _imported(tmp_path, _named(listed, inputs, outputs))

    # the same spec, to the byte, below the comments (which carry the notes)
    def spec_lines(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("#")]

    assert spec_lines(text) == spec_lines(import_source(Source("model.keras", listed)).text)
    assert "# Note: the model's" in text
    said = report.split("note: ")[1:]
    assert len(said) == len(notes)
    for note, line in zip(notes, said, strict=True):
        assert line.startswith(f"the model's {note} (a dict): the spec's model")
        assert "the tensor itself, not a dict" in line


@pytest.mark.parametrize(
    "outputs",
    [{"a": ["d", 0, 0], "b": ["f", 0, 0]}, {"a": [["d", 0, 0], ["f", 0, 0]]}],
    ids=["two-names", "a-name-for-two"],
)
def test_several_named_outputs_import_as_listed_ones_with_a_note(tmp_path, outputs):
    report, text = _imported(tmp_path, _named(_image(), None, outputs))
    assert "\noutputs: [d, f]\n" in text
    assert "the model's outputs are named 'a', " in report and "(a dict)" in report


def test_several_named_inputs_are_refused_because_a_spec_has_one(tmp_path):
    output = refused(_write(tmp_path, _named(_image(), {"a": ["in", 0, 0], "b": ["in", 0, 0]}, None)))
    assert "the model has 2 inputs; import reads a model with one input" in output
    assert "hint: a spec has one input" in output


@pytest.mark.parametrize(
    ("outputs", "where"),
    [
        ({"cls": "d"}, "$.config.output_layers.cls"),
        ({"cls": [["nowhere", 0, 0]]}, "$.config.output_layers.cls[0]"),
        ({"a b": 3}, '$.config.output_layers["a b"]'),
    ],
    ids=["not-a-reference", "no-such-layer", "quoted-name"],
)
def test_a_broken_named_output_is_located_by_its_name(tmp_path, outputs, where):
    output = refused(_write(tmp_path, _named(_image(), outputs=outputs)))
    assert f"{where}: " in output


# -- 4. refused layers in layer order -------------------------------------------------------------
def test_refused_layers_are_listed_in_layer_order_not_by_name(tmp_path):
    config = functional(
        _layer("Masking", "zeta", [[_tensor("in")]]),
        _layer("RepeatVector", "yak", [[_tensor("zeta")]], n=2),
        _layer("SpectralNormalization", "bee", [[_tensor("yak")]]),
        dense("d", "bee"),
    )  # (three classes no kind builds: UnitNormalization, ELU and ActivityRegularization were)
    with pytest.raises(SpecError) as caught:
        import_source(Source("m", config))
    paths = [d.path for d in caught.value.diagnostics]
    assert paths == [f"m: $.config.layers[{i}]" for i in (1, 2, 3)]
    output = refused(_write(tmp_path, config))
    assert "3 layers cannot be imported; layer 'zeta'" in output
    assert output.index("'zeta' (Masking)") < output.index("'yak' (RepeatVector)")
    assert output.index("'yak' (RepeatVector)") < output.index("'bee' (SpectralNormalization)")


# -- 5. a truncated .keras file -------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".keras", ".json"])
@pytest.mark.parametrize("kept", [100, 0.5])
def test_a_truncated_keras_file_is_said_to_be_damaged_or_truncated(tmp_path, suffix, kept):
    data = TINY_KERAS.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: kept if isinstance(kept, int) else int(len(data) * kept)])
    output = refused(cut)
    assert "is a damaged or truncated .keras file (a zip archive without its table of contents)" in output
    assert "hint: copy or save the model again" in output


def test_a_file_that_is_no_zip_at_all_is_still_not_a_keras_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"not a zip at all")
    output = refused(path)
    assert "is not a .keras file (not a zip archive)" in output and "truncated" not in output


# -- slow: real Keras files ------------------------------------------------------------------------
@pytest.mark.slow
def test_keras_saves_what_the_fast_tests_assume_and_named_models_round_trip(tmp_path):
    """Real models: a uint8 input, a fixed batch size, mixed_float16 with a float32 output and
    named inputs/outputs import with the notes the fast tests check; the named ones built from
    the spec with the source's weights compute what the source computes."""
    import keras
    import numpy as np

    layers = keras.layers
    x = keras.Input((6, 6, 3), name="img")
    y = layers.Conv2D(2, 3, name="c")(x)
    models = {
        "dictio": keras.Model({"img": x}, {"cls": y}),
        "dictout": keras.Model(x, {"cls": y}),
        "uint8": keras.Sequential([keras.Input((6, 6, 3), dtype="uint8"), layers.Conv2D(2, 3)]),
        "batch": keras.Sequential([keras.Input((6, 6, 3), batch_size=4), layers.Conv2D(2, 3)]),
    }
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        m = keras.Input((6, 6, 3))
        hidden = layers.Flatten()(layers.Conv2D(2, 3)(m))
        models["mixed"] = keras.Model(m, layers.Dense(2, dtype="float32")(hidden))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    said = {
        "dictio": "the model's output is named 'cls' (a dict)",
        "dictout": "the model's output is named 'cls' (a dict)",
        "uint8": "the input's dtype uint8 is not kept",
        "batch": "the input's batch size 4 is not kept",
        "mixed": "the source computes in mixed_float16, its output layer in float32",
    }
    batch = np.random.default_rng(0).normal(size=(4, 6, 6, 3)).astype("float32")
    for name, model in models.items():
        source = tmp_path / f"{name}.keras"
        model.save(source)
        out = tmp_path / f"{name}.yaml"
        result = run_cli("import", str(source), "-o", str(out), "--weights")
        assert result.exit_code == 0, result.output
        assert said[name] in result.output, result.output
        assert ("runtime: {mixed_precision: true}" in out.read_text()) is (name == "mixed")
        if not name.startswith("dict"):
            continue
        built = tmp_path / f"{name}.built.keras"
        assert run_cli("build", str(out), "-o", str(built)).exit_code == 0
        ours = keras.saving.load_model(built, safe_mode=True).predict(batch, verbose=0)
        fed = {"img": batch} if name == "dictio" else batch
        theirs = keras.saving.load_model(source, safe_mode=True).predict(fed, verbose=0)
        assert np.array_equal(theirs["cls"], ours)


# -- automatic layer names ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("relu", "re_lu_3"),
        ("prelu", "p_re_lu"),
        ("elu", "elu_1"),
        ("conv2d", "conv2d_4"),
        ("max_pool2d", "max_pooling2d"),
    ],
)
def test_a_name_keras_made_up_is_known_as_one_when_folding(kind, name):
    """Folding reads structure from the source's names, and passes over the ones Keras made up
    from the class: those of ReLU, PReLU, ELU, Conv2D, MaxPooling2D… were spelled ``re_l_u``,
    ``conv2_d`` (a capital after a digit), so ``re_lu_3`` and ``conv2d_4`` counted as names."""
    from cnnspec.importer.fold import _automatic
    from cnnspec.importer.items import Layer

    assert _automatic(Layer(kind, {}, name), name)
    assert not _automatic(Layer(kind, {}, f"stem_{name}"), f"stem_{name}")


@pytest.mark.slow
def test_the_automatic_names_are_keras_own_for_every_kind():
    from keras.src.utils.naming import to_snake_case

    from cnnspec.layers.registry import REGISTRY
    from cnnspec.layers.reverse import keras_auto_name

    for kind in REGISTRY.values():
        assert keras_auto_name(kind.keras_class) == to_snake_case(kind.keras_class), kind.name
