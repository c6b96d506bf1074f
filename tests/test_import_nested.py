"""`cnnspec import` of a model with models inside it (cnnspec/importer/nested.py).

The fixture ``tiny_nested.keras`` is Keras' transfer-learning pattern (make_fixtures.py): an
augmentation Sequential, a frozen body model called with ``training=False`` whose ``dropout``
is named as the head's is, and a new head. The fast tests read JSON and h5 only; the slow one
builds the imported spec with its weights and compares it with the source.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cnnspec.analysis.passes import compile_text
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.importer import import_source

NESTED = Path(__file__).parent / "fixtures" / "import" / "tiny_nested.keras"
#: The body's layers, in order, as the spec's model has them after the two augmentation layers.
BODY = ["stem_conv", "stem_bn", "stem_relu", "block1_conv", "block1_bn", "block1_add", "dropout", "top_conv"]


def config() -> dict[str, Any]:
    with zipfile.ZipFile(NESTED) as archive:
        return json.loads(archive.read("config.json"))


def imported_json(tmp_path: Path, edit: Any) -> Any:
    """The import of the fixture's configuration after ``edit`` (a JSON file: no weights)."""
    data = config()
    edit(data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return import_source(str(path))


def refusal(tmp_path: Path, edit: Any) -> str:
    with pytest.raises(SpecError) as caught:
        imported_json(tmp_path, edit)
    return "\n".join(f"{d.path}: {d.message}" for d in caught.value.errors)


def layer(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in data["config"]["layers"] if entry["name"] == name)


def test_nested_models_are_written_as_their_layers_in_line() -> None:
    imported = import_source(str(NESTED))
    compiled = compile_text(imported.text)
    kinds = [n.kind for n in compiled.ir.nodes if n.name != compiled.ir.input_name]
    assert kinds[:2] == ["random_flip", "random_rotation"] and kinds[-3:] == [
        "global_avg_pool2d",
        "dropout",
        "dense",
    ]
    assert imported.source_layers == 14  # the input, 2 + 8 nested layers, 3 of the head
    # the frozen body's layers are frozen, the head's not
    frozen = {n.name for n in compiled.ir.nodes if not n.trainable and n.counts.params}
    assert {
        imported.names[name] for name in ("stem_conv", "stem_bn", "block1_conv", "block1_bn", "top_conv")
    } == frozen
    # where the weights file keeps each layer: its nested model's path; a name taken outside
    # the body (the head's dropout) is the body's as base/dropout
    assert imported.stored["base/stem_conv"] == imported.names["stem_conv"]
    assert imported.stored["augment/rotate"] == imported.names["rotate"]
    assert imported.stored["base/dropout"] == imported.names["base/dropout"]
    assert imported.stored["dropout"] == imported.names["dropout"] != imported.names["base/dropout"]
    notes = "\n".join(imported.notes)
    assert "the nested model 'augment' (Sequential) is written as its 2 layers, in line" in notes
    assert "'base' (Functional) is written as its 8 layers, in line (named like layers outside it: " in notes
    assert "'dropout' as 'base/dropout')" in notes
    # frozen batch norms run in inference mode in both: only the dropout acts otherwise
    assert "so its 'base/dropout' acts in training as in inference" in notes
    assert "batch norm" not in notes


def test_a_trainable_body_called_in_inference_mode_is_noted(tmp_path: Path) -> None:
    """Keras' fine-tuning advice: unfreeze the body, keep calling it with training=False. Its
    batch norms then use their moving statistics while they train, which a spec cannot say."""

    def unfreeze(data: dict[str, Any]) -> None:
        base = layer(data, "base")
        base["config"]["trainable"] = True
        for entry in base["config"]["layers"]:
            entry["config"]["trainable"] = True

    notes = "\n".join(imported_json(tmp_path, unfreeze).notes)
    assert "so its 2 trainable batch norm(s) ('stem_bn', 'block1_bn') normalize with their moving" in notes


def test_a_body_built_for_any_size_takes_the_size_it_is_called_on(tmp_path: Path) -> None:
    """keras.applications' default, ``MobileNetV2(include_top=False)``: the body's input is
    ``(None, None, 3)``, its layers' saved shapes too, and Keras saves no build_config for it;
    the call's tensor has the size. Imported as the fixed-size body."""

    def any_size(data: dict[str, Any]) -> None:
        base = layer(data, "base")
        base.pop("build_config", None)
        for entry in base["config"]["layers"]:
            if entry["class_name"] == "InputLayer":
                entry["config"]["batch_shape"][1:3] = [None, None]
            shape = (entry.get("build_config") or {}).get("input_shape")
            for one in shape if shape and isinstance(shape[0], list) else [shape] if shape else []:
                one[1:3] = [None, None]

    def sizes(imported: Any) -> list[Any]:
        return [(n.kind, n.shape) for n in compile_text(imported.text).ir.nodes]

    assert "build_config" in layer(config(), "base")
    assert sizes(imported_json(tmp_path, any_size)) == sizes(import_source(str(NESTED)))
    # without the call's size (a hand-written file) it is still the refusal it was
    unsized = refusal(tmp_path, lambda data: (any_size(data), _drop_call_shapes(layer(data, "base"))))
    assert "base': expected a fully known input shape; received [None, None, 3]" in unsized


def _drop_call_shapes(entry: dict[str, Any]) -> None:
    for call in entry["inbound_nodes"]:
        for tensor in call["args"]:
            tensor["config"].pop("shape", None)


def test_what_the_nested_models_own_reading_notes_is_kept(tmp_path: Path) -> None:
    """The notes of a nested model's own reading (here its input's dtype, which Keras casts to
    at the nested boundary; a model nested in it is read the same way) reach the report, said
    of that model."""

    def uint8_body(data: dict[str, Any]) -> None:
        for entry in layer(data, "base")["config"]["layers"]:
            if entry["class_name"] == "InputLayer":
                entry["config"]["dtype"] = "uint8"

    notes = "\n".join(imported_json(tmp_path, uint8_body).notes)
    assert "in the nested model 'base': " in notes and "uint8" in notes


def test_a_layer_unfrozen_inside_a_frozen_body_trains_as_keras_trains_it(tmp_path: Path) -> None:
    """Keras 3 sets a frozen model's flag on every layer in it, and trains each weight by its
    layer's own flag: a layer set trainable after the body was frozen trains (saved so, and
    loaded so), and is imported trainable. A layer saved without a flag (a configuration written
    by hand) is frozen with its model."""

    def partly_unfrozen(data: dict[str, Any]) -> None:
        for entry in layer(data, "base")["config"]["layers"]:
            if entry["config"]["name"] == "top_conv":
                entry["config"]["trainable"] = True
            elif entry["config"]["name"] == "stem_bn":
                del entry["config"]["trainable"]

    imported = imported_json(tmp_path, partly_unfrozen)
    by_name = {n.name: n for n in compile_text(imported.text).ir.nodes}
    assert by_name[imported.names["top_conv"]].trainable
    assert not by_name[imported.names["stem_bn"]].trainable
    assert not by_name[imported.names["block1_bn"]].trainable
    assert by_name[imported.names["predictions"]].trainable


def test_weights_are_relabelled_inside_the_nested_groups(tmp_path: Path) -> None:
    """``--weights``: each layer of the body, kept in its model's group of the file, is
    relabelled to its layer in the spec's model (h5py only, no TensorFlow)."""
    import h5py

    out = tmp_path / "nested.yaml"
    result = CliRunner().invoke(app, ["import", str(NESTED), "-o", str(out), "--weights"])
    assert result.exit_code == 0, result.output
    compiled = compile_text(out.read_text().replace("weights: nested.weights.h5\n", ""))
    weighted = {n.name for n in compiled.ir.nodes if n.counts.params}
    found: set[str] = set()

    def visit(group: Any) -> None:
        for key in group:
            entry = group[key]
            if "vars" in entry and len(entry["vars"]):
                found.add(entry["vars"].attrs["name"])
            if "layers" in entry:
                visit(entry["layers"])

    with h5py.File(tmp_path / "nested.weights.h5") as handle:
        visit(handle["layers"])
    assert found == weighted


def test_importing_a_nested_model_never_imports_tensorflow(tmp_path: Path) -> None:
    probe = (
        "import sys\nfrom typer.testing import CliRunner\nfrom cnnspec.cli.app import app\n"
        "r = CliRunner().invoke(app, sys.argv[1:])\nassert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    args = ["import", str(NESTED), "-o", str(tmp_path / "n.yaml"), "--weights"]
    run = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"


def test_a_nested_model_called_twice_is_refused(tmp_path: Path) -> None:
    def twice(data: dict[str, Any]) -> None:
        base = layer(data, "base")
        base["inbound_nodes"].append(base["inbound_nodes"][0])

    said = refusal(tmp_path, twice)
    assert "$.config.layers[2]: layer 'base' (Functional) is called 2 times (shared weights)" in said


def test_a_nested_model_with_two_outputs_is_refused_at_its_output_layers(tmp_path: Path) -> None:
    def two(data: dict[str, Any]) -> None:
        inner = layer(data, "base")["config"]
        inner["output_layers"] = [["top_conv", 0, 0], ["stem_relu", 0, 0]]

    said = refusal(tmp_path, two)
    assert "$.config.layers[2].config.output_layers: nested model 'base': the model has 2 outputs" in said


def test_a_nested_model_called_in_training_mode_is_refused(tmp_path: Path) -> None:
    def training(data: dict[str, Any]) -> None:
        layer(data, "base")["inbound_nodes"][0]["kwargs"]["training"] = True

    said = refusal(tmp_path, training)
    assert "$.config.layers[2].inbound_nodes[0].kwargs.training: layer 'base' (Functional)" in said
    assert "the fixed argument training=true" in said


def test_a_refused_layer_inside_a_nested_model_is_named_where_it_is(tmp_path: Path) -> None:
    def custom(data: dict[str, Any]) -> None:
        entry = layer(data, "base")["config"]["layers"][3]
        entry["class_name"], entry["module"] = "Lambda", "keras.layers"

    said = refusal(tmp_path, custom)
    assert "$.config.layers[2].config.layers[3]: layer 'stem_relu' (Lambda) cannot be imported" in said


def test_a_broken_reference_inside_a_nested_model_is_located_there(tmp_path: Path) -> None:
    def dangling(data: dict[str, Any]) -> None:
        entry = layer(data, "base")["config"]["layers"][4]
        entry["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "nowhere"

    said = refusal(tmp_path, dangling)
    assert "$.config.layers[2].config.layers[4].inbound_nodes[0].args: nested model 'base': " in said
    assert "reads 'nowhere', which is not a layer of the model" in said


@pytest.mark.slow
def test_the_imported_spec_with_its_weights_computes_what_the_source_does(tmp_path: Path) -> None:
    import keras
    import numpy as np

    out = tmp_path / "nested.yaml"
    assert CliRunner().invoke(app, ["import", str(NESTED), "-o", str(out), "--weights"]).exit_code == 0
    built = tmp_path / "built.keras"
    result = CliRunner().invoke(app, ["build", str(out), "-o", str(built)])
    assert result.exit_code == 0, result.output
    assert "loaded 15 of 15 weight tensors" in result.output
    source = keras.saving.load_model(NESTED, safe_mode=True)
    model = keras.saving.load_model(built, safe_mode=True)
    batch = np.random.default_rng(0).normal(size=(4, 16, 16, 3)).astype("float32")
    # each model called once in inference mode (predict() would first trace a graph of each)
    np.testing.assert_array_equal(source(batch, training=False), model(batch, training=False))


# -- a nested keras.applications model: the zoo's backbone item ----------------------------------
VGG = Path(__file__).parent / "fixtures" / "import" / "nested_vgg16.json"


def vgg_config() -> dict[str, Any]:
    return json.loads(VGG.read_text(encoding="utf-8"))


def imported_vgg(tmp_path: Path, edit: Any = None, **options: Any) -> Any:
    data = vgg_config()
    if edit is not None:
        edit(data)
    path = tmp_path / "vgg.json"
    path.write_text(json.dumps(data))
    return import_source(str(path), **options)


def test_a_nested_zoo_model_is_written_as_a_backbone_item(tmp_path: Path) -> None:
    imported = imported_vgg(tmp_path)
    model = imported.text.split("\nmodel:\n", 1)[1]
    assert model.splitlines()[:2] == [
        '  - backbone: {spec: "zoo:vgg16", vars: {include_top: false}}',
        "    trainable: false",
    ]
    assert imported.lines <= 15 and imported.source_layers == 21
    assert "'vgg16' (Functional) is the zoo's vgg16 (keras.applications.VGG16)" in " ".join(imported.notes)
    # each source layer has its backbone layer, and the weights file's path of it
    compiled = compile_text(imported.text)
    names = {n.name for n in compiled.ir.nodes}
    assert imported.stored["vgg16/block1_conv1"] == imported.names["block1_conv1"] in names
    assert imported.stored["predictions"] == imported.names["predictions"] in names
    assert len({imported.stored[k] for k in imported.stored}) == len(imported.stored)
    frozen = [n for n in compiled.ir.nodes if n.counts.params and not n.trainable]
    assert len(frozen) == 13  # VGG16's convolutions, not the head


@pytest.mark.parametrize(
    "change",
    ["activation", "renamed", "partly frozen", "no fold"],
)
def test_a_nested_model_that_is_not_the_zoo_model_is_written_in_line(tmp_path: Path, change: str) -> None:
    """Another activation, a model name that is no keras.applications name, a body whose layers
    are not all frozen alike: the zoo spec would not be the source, so its layers are written
    in line (exact); so is every layer with --no-fold."""

    def edit(data: dict[str, Any]) -> None:
        base = layer(data, "vgg16")
        conv = next(e for e in base["config"]["layers"] if e["name"] == "block5_conv3")
        if change == "activation":
            conv["config"]["activation"] = "elu"
        elif change == "renamed":
            base["config"]["name"] = "body"
        elif change == "partly frozen":
            base["config"]["trainable"] = True
            conv["config"]["trainable"] = True

    imported = imported_vgg(tmp_path, edit, folding=change != "no fold")
    assert "backbone:" not in imported.text
    assert "is written as its 18 layers, in line" in " ".join(imported.notes)
    compiled = compile_text(imported.text)
    assert len([n for n in compiled.ir.nodes if n.kind == "conv2d"]) == 13


@pytest.mark.slow
def test_a_backbone_item_with_the_source_weights_computes_what_the_source_does(tmp_path: Path) -> None:
    """keras.applications.MobileNetV2 (batch norms, residual adds, ReLU6) inside a model, with
    its weights: the 14-line spec builds a model whose outputs are the source's."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    base.trainable = False
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    source = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dropout(0.2)(pooled)))
    batch = np.random.default_rng(0).uniform(0, 1, size=(4, 32, 32, 3)).astype("float32")
    for norm in (n for n in base.layers if isinstance(n, keras.layers.BatchNormalization)):
        norm.moving_mean.assign(np.full(norm.moving_mean.shape, 0.1, dtype="float32"))
    source.save(tmp_path / "source.keras")
    out = tmp_path / "imported.yaml"
    result = CliRunner().invoke(app, ["import", str(tmp_path / "source.keras"), "-o", str(out), "--weights"])
    assert result.exit_code == 0, result.output
    assert 'backbone: {spec: "zoo:mobilenet_v2", vars: {include_top: false}}' in out.read_text()
    built = tmp_path / "built.keras"
    result = CliRunner().invoke(app, ["build", str(out), "-o", str(built)])
    assert result.exit_code == 0, result.output
    assert "loaded 262 of 262 weight tensors" in result.output
    model = keras.saving.load_model(built, safe_mode=True)
    # each model called once in inference mode (predict() would first trace a graph of each)
    np.testing.assert_array_equal(source(batch, training=False), model(batch, training=False))
    assert len(model.trainable_weights) == len(source.trainable_weights) == 2


def _spec(body: str) -> Any:
    return compile_text("cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\nmodel:\n" + body)


SAME = """  - conv2d: {filters: 4, kernel_size: 1}
    id: a
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: swish}
    id: b
    inputs: [input]
  - add:
    inputs: [a, b]
  - relu: 6
  - normalization: {axis: 3, mean: [0, 0, 0, 0], variance: [1, 1, 1, 1]}
  - zero_padding2d: 1
"""


@pytest.mark.parametrize(
    ("body", "same"),
    [
        # the layers in another order, the add's inputs swapped, Keras' other names of one
        # activation, 6 for 6.0, an axis counted from the back and a padding of 1 written out
        # (keras.applications' MobileNetV2 at 48×48 saves 1, the zoo writes [[1, 1], [1, 1]]):
        # the same model
        (
            """  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: silu}
    id: b
  - conv2d: {filters: 4, kernel_size: 1}
    id: a
    inputs: [input]
  - add:
    inputs: [b, a]
  - relu: 6.0
  - normalization: {axis: -1, mean: [0, 0, 0, 0], variance: [1, 1, 1, 1]}
  - zero_padding2d: [[1, 1], [1, 1]]
""",
            True,
        ),
        (SAME.replace("kernel_size: 1}", "kernel_size: 1, use_bias: false}"), False),
        (SAME.replace("swish", "gelu"), False),
        (SAME.replace("relu: 6", "relu: 5"), False),
        (SAME.replace("add:", "subtract:"), False),
        (SAME.replace("zero_padding2d: 1", "zero_padding2d: [[1, 1], [1, 2]]"), False),
    ],
    ids=["reordered", "parameter", "activation", "value", "kind", "padding"],
)
def test_the_backbone_check_compares_models_not_how_they_are_written(body: str, same: bool) -> None:
    from cnnspec.importer.backbones import same_model

    reference, other = _spec(SAME), _spec(body)
    names = {n.name: n.name for n in reference.ir.nodes}
    if same:
        paired = same_model(other, reference, names)
        assert paired["a"] == "a" and paired["b"] == "b"
    else:
        with pytest.raises(SpecError, match="the backbone spec is not the nested model"):
            same_model(other, reference, names)
