"""`cnnspec import` of a model with one input and several outputs.

The spec names the output layers' items in a top-level ``outputs:`` list, in the source's output
order (a dict's outputs: Keras' order, by name). The fast tests read JSON only (the tiny ResNet
fixture given a second output); the slow ones build each tiny Keras source once, import its
``.keras`` file with the CLI and compare the model the spec builds with the source (output
shapes, layers, parameters, and with ``--weights`` the predictions). A model with several
inputs stays refused: a spec has one input.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cnnspec.analysis.passes import compile_text
from cnnspec.importer import import_source
from cnnspec.importer.losses import regression_loss_note
from cnnspec.importer.source import Source
from tests.test_import import Ran, run_cli

FIXTURES = Path(__file__).parent / "fixtures"
TINY_JSON = FIXTURES / "import" / "tiny_resnet.json"
TWO_HEADS = FIXTURES / "resolve" / "two_heads.yaml"


def outputs_line(text: str) -> list[str]:
    """The ids the spec's ``outputs:`` names (it has exactly one such line)."""
    found = re.findall(r"^outputs: \[(.*)\]$", text, flags=re.MULTILINE)
    assert len(found) == 1, text
    return [part.strip() for part in found[0].split(",")]


# -- TensorFlow-free: the tiny ResNet fixture with a second output --------------------------------
def _tiny(outputs: Any) -> dict:
    config = json.loads(TINY_JSON.read_text(encoding="utf-8"))
    config["config"]["output_layers"] = outputs
    return config


def test_an_auxiliary_output_inside_the_trunk_keeps_the_folded_trunk():
    """`avg_pool` is an output and feeds the classifier: the trunk still folds into its block
    and repeat, the output items get ids, and the compiled spec returns them in order."""
    imported = import_source(Source("two.json", _tiny([["predictions", 0, 0], ["avg_pool", 0, 0]])))
    assert outputs_line(imported.text) == ["predictions", "avg_pool"]
    assert imported.blocks == ["block"] and "repeat:" in imported.text
    assert imported.text.count("- residual:") == 2 and "- parallel:" in imported.text
    compiled = compile_text(imported.text)
    assert list(compiled.ir.outputs) == [imported.names["predictions"], imported.names["avg_pool"]]
    assert imported.notes == []
    # one output: no outputs key, as before
    assert "outputs:" not in import_source(str(TINY_JSON)).text


def test_a_feature_output_and_an_auxiliary_head_mid_trunk_keep_the_trunk_folded():
    """A stage's output returned (as a feature pyramid does) and an auxiliary head read from
    the middle of the trunk: the trunk folds as the one-output model's does; the head is
    written after it, reading the trunk by id."""
    config = _tiny([["predictions", 0, 0], ["stage2_block3_out", 0, 0], ["aux_cls", 0, 0]])
    layers = config["config"]["layers"]
    pool, dense = (
        copy.deepcopy(next(layer for layer in layers if layer["name"] == name))
        for name in ("avg_pool", "predictions")
    )
    for layer, name, reads in ((pool, "aux_pool", "stage3_block1_out"), (dense, "aux_cls", "aux_pool")):
        layer["name"] = layer["config"]["name"] = name
        layer.pop("build_config", None)  # (another input shape than the copied layer's)
        layer["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = reads
    layers += [pool, dense]
    imported = import_source(Source("aux.json", config))
    single = import_source(str(TINY_JSON))
    assert outputs_line(imported.text) == ["predictions", "stage2_block3", "aux_cls"]
    assert imported.blocks == single.blocks and imported.text.count("repeat:") == 2
    assert "inputs: stage3_block1" in imported.text
    compiled = compile_text(imported.text)
    assert list(compiled.ir.outputs) == [
        imported.names[name] for name in ("predictions", "stage2_block3_out", "aux_cls")
    ]


def test_verification_refuses_a_spec_that_returns_other_outputs():
    """align checks the compiled spec's outputs against the source's, in order: a located error."""
    from cnnspec.errors import SpecError
    from cnnspec.importer.graph import read_graph
    from cnnspec.importer.mapping import map_layers
    from cnnspec.importer.structure import Structurer
    from cnnspec.importer.verify import align

    graph = read_graph(_tiny([["predictions", 0, 0], ["avg_pool", 0, 0]]))
    structurer = Structurer(graph, map_layers(graph))
    items = structurer.items()
    text = import_source(
        Source("two.json", _tiny([["predictions", 0, 0], ["avg_pool", 0, 0]])), folding=False
    ).text
    compiled = compile_text(text)
    assert align(compiled, items, graph)["avg_pool"] in compiled.ir.outputs
    graph.outputs.reverse()
    with pytest.raises(SpecError, match="the imported spec returns") as caught:
        align(compiled, items, graph)
    assert caught.value.diagnostics[0].path == "$.config.output_layers"


def test_named_outputs_are_listed_in_keras_order_with_a_note():
    imported = import_source(
        Source("two.json", _tiny({"zeta": ["predictions", 0, 0], "alpha": ["avg_pool", 0, 0]}))
    )
    assert outputs_line(imported.text) == ["avg_pool", "predictions"]  # alpha, zeta
    assert len(imported.notes) == 1
    assert imported.notes[0].startswith("the model's outputs are named 'alpha', 'zeta' (a dict)")
    assert "# Note: the model's outputs are named" in imported.text


def test_an_output_named_twice_is_refused_with_its_path():
    config = _tiny([["predictions", 0, 0], ["predictions", 0, 0]])
    from cnnspec.errors import SpecError

    with pytest.raises(SpecError, match=r"returns layer 'predictions' twice") as caught:
        import_source(Source("two.json", config))
    assert caught.value.diagnostics[0].path.endswith(": $.config.output_layers[1]")


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        (
            ["sparse_categorical_crossentropy", "mse"],
            "training: {outputs: {box: {task: regression, loss: mse}}}",
        ),
        (
            {"cls": "categorical_crossentropy", "box": "mae"},
            "{outputs: {box: {task: regression, loss: mae}}}",
        ),
        ("mse", "{outputs: {cls: {task: regression, loss: mse}, box: {task: regression, loss: mse}}}"),
        (["categorical_crossentropy", "binary_crossentropy"], None),
        (
            {
                "cls": "sparse_categorical_crossentropy",
                "box": {"class_name": "Huber", "config": {"delta": 0.5}},
            },
            "compiled with regression losses (box: huber (delta 0.5)); the spec keeps no training settings, "
            "and without them a linear output is read as a classifier's logits: add "
            "training: {outputs: {box: {task: regression, loss: {huber: {delta: 0.5}}}}} before training it",
        ),
        (
            [
                {"class_name": "Huber", "config": {"delta": 1}},
                {"class_name": "Huber", "config": {"delta": 3}},
            ],
            "training: {outputs: {cls: {task: regression, loss: huber}, "
            "box: {task: regression, loss: {huber: {delta: 3.0}}}}}",
        ),
    ],
    ids=["list", "by-name", "one-for-all", "no-regression", "huber-delta", "huber-default-delta"],
)
def test_per_output_losses_are_said_of_the_output_ids(loss, expected):
    from cnnspec.importer.graph import read_graph

    graph = read_graph(_tiny([["predictions", 0, 0], ["avg_pool", 0, 0]]))
    # the Keras names of the outputs are their layers' names: cls, box here
    graph.outputs, graph.output_keys = ["cls_layer", "box_layer"], ["cls", "box"]
    note = regression_loss_note({"compile_config": {"loss": loss}}, graph, ["cls", "box"])
    if expected is None:
        assert note is None
    else:
        assert note is not None and expected in note, note


# -- built models (TensorFlow) -------------------------------------------------------------------
def _save(model: Any, path: Path) -> Path:
    model.save(path)
    return path


def _import(tmp_path: Path, source: Path, *extra: str) -> tuple[Ran, str, Path]:
    out = tmp_path / "spec.yaml"
    result = run_cli("import", str(source), "-o", str(out), *extra)
    assert result.exit_code == 0, result.output
    checked = run_cli("validate", str(out))
    assert checked.exit_code == 0, checked.output
    return result, out.read_text(encoding="utf-8"), out


def _fingerprint(model: Any) -> dict[str, Any]:
    """tests/zoo_golden.py's fingerprint, every output's shape in order."""
    from tests.zoo_golden import signature

    return {
        "params": model.count_params(),
        "trainable": sum(math.prod(w.shape) for w in model.trainable_weights),
        "output_shapes": [tuple(t.shape) for t in model.outputs],
        "layers": len(model.layers),
        "classes": Counter(type(layer).__name__ for layer in model.layers),
        "configs": Counter(signature(layer) for layer in model.layers[1:]),
    }


def _built(text: str) -> Any:
    from cnnspec.api import build_model

    return build_model(compile_text(re.sub(r"^weights: .*\n", "", text, flags=re.MULTILINE)))


def _same(source: Any, ours: Any) -> None:
    a, b = _fingerprint(source), _fingerprint(ours)
    for key in a:
        assert a[key] == b[key], key


@pytest.mark.slow
def test_two_heads_on_a_shared_trunk_import_with_their_weights(tmp_path):
    import keras
    import numpy as np

    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.Flatten(name="features")(h)
    h = keras.layers.Dense(8, activation="relu", name="hidden")(h)
    cls = keras.layers.Dense(3, activation="softmax", name="cls")(h)
    box = keras.layers.Dense(1, name="box")(h)
    source = keras.Model(inputs, [cls, box], name="heads")
    path = _save(source, tmp_path / "heads.keras")

    _, text, out = _import(tmp_path, path, "--weights")
    assert outputs_line(text) == ["cls", "box"]
    assert "inputs: hidden" in text  # the second head reads the trunk by id
    built = run_cli("build", str(out), "-o", str(tmp_path / "built.keras"))
    assert built.exit_code == 0, built.output
    assert "loaded 8 of 8 weight tensors" in built.output
    ours = keras.saving.load_model(tmp_path / "built.keras", safe_mode=True)
    _same(source, ours)
    batch = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    for theirs, mine in zip(source.predict(batch, verbose=0), ours.predict(batch, verbose=0), strict=True):
        np.testing.assert_allclose(theirs, mine, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_dict_outputs_and_per_output_losses(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D(name="pool")(keras.layers.Conv2D(4, 1, name="conv")(inputs))
    cls = keras.layers.Dense(3, activation="softmax", name="cls")(h)
    box = keras.layers.Dense(4, name="box")(h)
    source = keras.Model(inputs, {"zeta": cls, "alpha": box})
    source.compile(loss={"zeta": "sparse_categorical_crossentropy", "alpha": "mse"})
    result, text, out = _import(tmp_path, _save(source, tmp_path / "named.keras"))
    # Keras' order of a dict's outputs is by name: alpha (box), zeta (cls)
    assert [t.shape for t in source.outputs] == [(None, 4), (None, 3)]
    assert outputs_line(text) == ["box", "cls"]
    assert "the model's outputs are named 'alpha', 'zeta' (a dict)" in result.output
    setting = "training: {outputs: {box: {task: regression, loss: mse}}}"
    assert setting in result.output
    _same(source, _built(text))
    # the setting the note asks for is a valid one (with a data source that has a target per
    # output: an npz of y_train_box, y_train_cls…, which validate leaves to train to read)
    (out.parent / "d.npz").write_bytes(b"")
    out.write_text(f"{text}{setting}\ndata: {{source: {{npz: d.npz}}}}\n", encoding="utf-8")
    checked = run_cli("validate", str(out))
    assert checked.exit_code == 0, checked.output


@pytest.mark.slow
def test_auxiliary_outputs_that_other_layers_read(tmp_path):
    """An Inception-style auxiliary head in the middle of the network (the trunk after it keeps
    its residual), and an output tensor that the next layer also reads."""
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    aux = keras.layers.GlobalAveragePooling2D(name="aux_pool")(x)
    aux = keras.layers.Dense(2, activation="softmax", name="aux_cls")(aux)
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="body_a")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", name="body_b")(y)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    embedding = keras.layers.Dense(6, name="embedding")(x)
    main = keras.layers.Dense(3, activation="softmax", name="main")(embedding)
    source = keras.Model(inputs, [main, aux, embedding])
    _, text, _ = _import(tmp_path, _save(source, tmp_path / "aux.keras"))
    assert outputs_line(text) == ["main", "aux_cls", "embedding"]
    assert text.count("- residual:") == 1
    assert "inputs: stem" in text  # the auxiliary head, after the trunk, reads the stem by id
    _same(source, _built(text))


@pytest.mark.slow
def test_heads_after_a_residual_combinator(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="body_a")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", name="body_b")(y)
    x = keras.layers.Activation("relu", name="out_relu")(keras.layers.Add(name="add")([x, y]))
    cls = keras.layers.Dense(3, activation="softmax", name="cls")(keras.layers.Flatten(name="flat")(x))
    mask = keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    source = keras.Model(inputs, [cls, mask])
    _, text, _ = _import(tmp_path, _save(source, tmp_path / "residual.keras"))
    assert outputs_line(text) == ["cls", "mask"]
    assert text.count("- residual:") == 1 and "activation: relu" in text
    _same(source, _built(text))


@pytest.mark.slow
def test_mixed_precision_with_float32_heads_has_no_note_of_a_difference(tmp_path):
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inputs = keras.Input((8, 8, 3))
        h = keras.layers.Flatten(name="flat")(keras.layers.Conv2D(4, 3, name="conv")(inputs))
        cls = keras.layers.Dense(3, activation="softmax", dtype="float32", name="cls")(h)
        box = keras.layers.Dense(1, dtype="float32", name="box")(h)
        source = keras.Model(inputs, [cls, box])
        path = _save(source, tmp_path / "mixed.keras")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    result, text, _ = _import(tmp_path, path)
    assert "runtime: {mixed_precision: true}" in text
    assert "its output layers in float32" in result.output
    assert "cannot reproduce" not in result.output


@pytest.mark.slow
def test_the_two_heads_fixture_round_trips(tmp_path):
    from cnnspec.api import build_model

    model = build_model(compile_text(TWO_HEADS.read_text(encoding="utf-8")))
    _, text, _ = _import(tmp_path, _save(model, tmp_path / "two_heads.keras"))
    assert outputs_line(text) == ["classes", "box"]
    _same(model, _built(text))


@pytest.mark.slow
def test_several_inputs_are_refused_because_a_spec_has_one(tmp_path):
    import keras

    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    merged = keras.layers.Dense(2, name="d")(keras.layers.Add(name="add")([a, b]))
    path = _save(keras.Model([a, b], merged), tmp_path / "two_inputs.keras")
    result = run_cli("import", str(path), "-o", str(tmp_path / "out.yaml"))
    assert result.exit_code == 1
    assert "$.config.input_layers: the model has 2 inputs" in result.output
    assert "hint: a spec has one input" in result.output and "yet" not in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.yaml").exists()


@pytest.mark.parametrize(
    ("loss", "said", "gamma", "smoothing"),
    [
        (
            {"class_name": "CategoricalFocalCrossentropy", "config": {"gamma": 3.0, "alpha": 0.25}},
            "categorical_focal_crossentropy (gamma 3.0)",
            3.0,
            0.0,
        ),
        (
            {"class_name": "CategoricalCrossentropy", "config": {"label_smoothing": 0.1}},
            "categorical_crossentropy (label_smoothing 0.1)",
            None,
            0.1,
        ),
    ],
    ids=["focal", "smoothing"],
)
def test_a_classification_loss_other_than_crossentropy_is_noted_with_a_setting_that_compiles(
    loss, said, gamma, smoothing
):
    """Before, only a regression loss was noted: a model trained with a focal loss or label
    smoothing was imported without a word, and its spec trained with plain crossentropy. The
    note's setting, added to the spec, compiles to the source's loss."""
    from cnnspec.analysis.settings import training_config

    config = {**_tiny(["predictions", 0, 0]), "compile_config": {"loss": loss}}
    imported = import_source(Source("focal.json", config))
    notes = [note for note in imported.notes if "compiled with the loss" in note]
    assert len(notes) == 1 and said in notes[0], imported.notes
    setting = re.search(r"add (training: .*) to train it", notes[0])
    assert setting is not None, notes[0]
    assert "Note: the source was compiled with the loss" in imported.text
    compiled = compile_text(imported.text + setting.group(1) + "\n")
    trained = training_config(compiled).loss
    assert trained.label_smoothing == smoothing
    assert trained.focal == (gamma is not None) and (gamma is None or trained.gamma == gamma)


@pytest.mark.parametrize(
    ("loss", "said", "setting", "delta"),
    [
        (
            {"class_name": "Huber", "config": {"name": "huber_loss", "delta": 2.0}},
            "the regression loss huber (delta 2.0)",
            "training: {task: regression, loss: {huber: {delta: 2.0}}}",
            2.0,
        ),
        (
            {"class_name": "Huber", "config": {"name": "huber_loss", "delta": 1.0}},
            "the regression loss huber",
            "training: {task: regression, loss: huber}",
            1.0,
        ),
        ({"class_name": "function", "config": "huber"}, "the regression loss huber", None, 1.0),
        (  # Keras 3's Huber.get_config drops delta: the file does not say it, and the note says so
            {"class_name": "Huber", "config": {"name": "huber_loss", "reduction": "sum_over_batch_size"}},
            "the regression loss huber",
            "add training: {task: regression, loss: huber} before training it; the file does not record the "
            "huber loss's delta (Keras does not save it), so the setting takes its default 1: if the source "
            "was trained with another, write loss: {huber: {delta: …}}",
            1.0,
        ),
        ("mean_squared_logarithmic_error", "the regression loss msle", "loss: msle}", None),
    ],
    ids=["huber-delta", "huber-default", "huber-function", "huber-keras3", "msle"],
)
def test_a_regression_loss_is_noted_with_its_settings(loss, said, setting, delta):
    """Before, a Huber loss's ``delta`` was dropped from the note: the spec trained as the
    note said got Huber with delta 1. The note's setting now carries it, and compiles to it."""
    from cnnspec.analysis.settings import training_config

    config = {**_tiny(["predictions", 0, 0]), "compile_config": {"loss": loss}}
    head = next(layer for layer in config["config"]["layers"] if layer["name"] == "predictions")
    head["config"]["activation"] = "linear"
    imported = import_source(Source("huber.json", config))
    assert len(imported.notes) == 1 and f"compiled with {said};" in imported.notes[0], imported.notes
    assert setting is None or setting in imported.notes[0]
    found = re.search(r"add (training: .*) before training it", imported.notes[0])
    assert found is not None and f"Note: the source was compiled with {said};" in imported.text
    compiled = compile_text(imported.text + "data: {source: {npz: data.npz}}\n" + found.group(1) + "\n")
    trained = training_config(compiled).loss
    assert trained.name == ("huber" if delta is not None else "msle")
    assert delta is None or trained.delta == delta


@pytest.mark.parametrize(
    "loss",
    ["sparse_categorical_crossentropy", "categorical_crossentropy", "hinge", "mse"],
)
def test_crossentropy_or_a_loss_without_an_equal_gets_no_classification_note(loss):
    from cnnspec.importer.losses import classification_loss_note

    assert classification_loss_note({"compile_config": {"loss": loss}}) is None
