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


def test_a_frozen_body_freezes_layers_its_own_configuration_left_trainable(tmp_path: Path) -> None:
    """Keras trains a layer only when every model around it is trainable."""

    def inner_trainable(data: dict[str, Any]) -> None:
        for entry in layer(data, "base")["config"]["layers"]:
            entry["config"]["trainable"] = True

    imported = imported_json(tmp_path, inner_trainable)
    compiled = compile_text(imported.text)
    by_name = {n.name: n for n in compiled.ir.nodes}
    assert not by_name[imported.names["top_conv"]].trainable
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
    np.testing.assert_array_equal(source.predict(batch, verbose=0), model.predict(batch, verbose=0))
