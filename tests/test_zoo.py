"""The packaged model zoo, statically (no TensorFlow): ``zoo:NAME`` wherever a spec path goes,
family variants as data, the head vars, located errors, ``cnnspec zoo``.

``tests/test_zoo_parity.py`` builds every variant against keras.applications; here each variant
compiles to the figures keras.applications publishes, kept in :data:`KERAS_FIGURES` (a family
added to the zoo must add its rows).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import Diagnostics, SpecError
from cnnspec.resources import zoo_dir
from cnnspec.spec.loader import load_file
from cnnspec.spec.zoo import variants
from tests.conftest import ROOT

#: variant → (keras.applications function, parameters, default input shape): the figures of
#: https://keras.io/api/applications/ that the parity test confirms against the built models.
KERAS_FIGURES: dict[str, tuple[str, int, tuple[int, int, int]]] = {
    "vgg16": ("VGG16", 138_357_544, (224, 224, 3)),
    "vgg19": ("VGG19", 143_667_240, (224, 224, 3)),
    "resnet50": ("ResNet50", 25_636_712, (224, 224, 3)),
    "resnet101": ("ResNet101", 44_707_176, (224, 224, 3)),
    "resnet152": ("ResNet152", 60_419_944, (224, 224, 3)),
    "resnet50_v2": ("ResNet50V2", 25_613_800, (224, 224, 3)),
    "resnet101_v2": ("ResNet101V2", 44_675_560, (224, 224, 3)),
    "resnet152_v2": ("ResNet152V2", 60_380_648, (224, 224, 3)),
    "xception": ("Xception", 22_910_480, (299, 299, 3)),
    "mobilenet": ("MobileNet", 4_253_864, (224, 224, 3)),
    "mobilenet_v2": ("MobileNetV2", 3_538_984, (224, 224, 3)),
    "densenet121": ("DenseNet121", 8_062_504, (224, 224, 3)),
    "densenet169": ("DenseNet169", 14_307_880, (224, 224, 3)),
    "densenet201": ("DenseNet201", 20_242_984, (224, 224, 3)),
    "inception_v3": ("InceptionV3", 23_851_784, (299, 299, 3)),
    "mobilenet_v3_small": ("MobileNetV3Small", 2_554_968, (224, 224, 3)),
    "mobilenet_v3_large": ("MobileNetV3Large", 5_507_432, (224, 224, 3)),
    "efficientnet_b0": ("EfficientNetB0", 5_330_571, (224, 224, 3)),
    "efficientnet_b1": ("EfficientNetB1", 7_856_239, (240, 240, 3)),
    "efficientnet_b2": ("EfficientNetB2", 9_177_569, (260, 260, 3)),
    "efficientnet_b3": ("EfficientNetB3", 12_320_535, (300, 300, 3)),
    "efficientnet_b4": ("EfficientNetB4", 19_466_823, (380, 380, 3)),
    "efficientnet_b5": ("EfficientNetB5", 30_562_527, (456, 456, 3)),
    "efficientnet_b6": ("EfficientNetB6", 43_265_143, (528, 528, 3)),
    "efficientnet_b7": ("EfficientNetB7", 66_658_687, (600, 600, 3)),
    "efficientnet_v2_b0": ("EfficientNetV2B0", 7_200_312, (224, 224, 3)),
    "efficientnet_v2_b1": ("EfficientNetV2B1", 8_212_124, (240, 240, 3)),
    "efficientnet_v2_b2": ("EfficientNetV2B2", 10_178_374, (260, 260, 3)),
    "efficientnet_v2_b3": ("EfficientNetV2B3", 14_467_622, (300, 300, 3)),
    "efficientnet_v2_s": ("EfficientNetV2S", 21_612_360, (384, 384, 3)),
    "efficientnet_v2_m": ("EfficientNetV2M", 54_431_388, (480, 480, 3)),
    "efficientnet_v2_l": ("EfficientNetV2L", 119_027_848, (480, 480, 3)),
}
VARIANTS = list(variants())
FAMILY_FILES = sorted(zoo_dir().glob("*.yaml"))
MAX_SPEC_LINES = 80


# -- every variant ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", VARIANTS)
def test_variant_compiles_to_the_keras_figures(name):
    assert name in KERAS_FIGURES, f"add {name!r} to KERAS_FIGURES (keras.applications' published figures)"
    keras_name, params, input_shape = KERAS_FIGURES[name]
    compiled = compile_spec(f"zoo:{name}")
    assert compiled.warnings == []
    assert compiled.name == name
    assert variants()[name].keras_name == keras_name
    assert compiled.ir.totals.params == params
    assert compiled.ir.input_shape == input_shape
    assert compiled.ir.output_shapes == [(1000,)]


@pytest.mark.parametrize("path", FAMILY_FILES, ids=lambda p: p.stem)
def test_family_spec_is_short_and_declares_its_variants(path):
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= MAX_SPEC_LINES, "a family this long means the language is missing a feature"
    # relative to the file, the modeline reaches the packaged schema: cnnspec/schemas/ (a link to
    # schemas/ in the repository, the package cnnspec.schemas in a wheel; tests/test_packaging.py)
    assert lines[0] == "# yaml-language-server: $schema=../schemas/cnnspec.schema.json"
    target = path.parent / "../schemas/cnnspec.schema.json"
    assert target.resolve() == ROOT / "schemas" / "cnnspec.schema.json"
    assert "keras/src/applications/" in text
    data = load_file(path).data
    assert data["family"] and data["variants"]
    assert data["name"] == next(iter(data["variants"])), "the file's own name is its default variant"
    # keras.applications' head arguments, with its defaults, in every family
    assert {"include_top": True, "pooling": None, "classes": 1000}.items() <= data["vars"].items()
    assert data["input"]["shape"] == "${input_shape}"


def test_variant_names_are_unique_across_the_zoo():
    seen: dict[str, str] = {}
    for path in FAMILY_FILES:
        for name in load_file(path).data["variants"]:
            assert name not in seen, f"{name} is in both {seen[name]} and {path.name}"
            seen[name] = path.name
    assert list(seen) == VARIANTS


# -- head vars, as keras.applications' arguments ---------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "output"),
    [
        ([], (1000,)),
        (["vars.classes=10"], (10,)),
        (["vars.include_top=false"], (7, 7, 2048)),
        (["vars.include_top=false", "vars.pooling=avg"], (2048,)),
        (["vars.include_top=false", "vars.pooling=max"], (2048,)),
        (["vars.include_top=false", "vars.input_shape=[64, 96, 3]"], (2, 3, 2048)),
    ],
)
def test_head_vars_switch_the_top_as_keras_applications_does(overrides, output):
    compiled = compile_spec("zoo:resnet50", overrides)
    assert compiled.ir.output_shapes == [output]
    kinds = [node.kind for node in compiled.ir.nodes]
    pooling = next((o.split("=")[1] for o in overrides if "pooling" in o), None)
    assert kinds.count("global_max_pool2d") == (pooling == "max")
    assert kinds.count("dense") == (output[0] in (10, 1000))


def test_mobilenet_top_is_a_convolution_reshaped_to_classes():
    compiled = compile_spec("zoo:mobilenet", ["vars.classes=7"])
    assert [node.kind for node in compiled.ir.nodes][-4:] == ["dropout", "conv2d", "reshape", "activation"]
    assert compiled.ir.output_shapes == [(7,)]


# -- addressing -------------------------------------------------------------------------------------
def test_specs_anywhere_extend_and_use_the_zoo(write_spec):
    """From a folder outside the zoo, without --allow-outside: the zoo is packaged and trusted."""
    child = write_spec(
        "cnnspec: 1\nname: small_resnet\nextends: zoo:resnet50\n"
        "vars: {classes: 10, input_shape: [64, 64, 3]}\n"
    )
    compiled = compile_spec(child)
    assert compiled.name == "small_resnet" and compiled.ir.output_shapes == [(10,)]
    assert compiled.ir.input_shape == (64, 64, 3)
    user = write_spec(
        "cnnspec: 1\nname: u\nuse: [zoo:blocks/resnet]\ninput: {shape: [16, 16, 8]}\n"
        "model: [bottleneck: 4, global_avg_pool2d]\n",
        "other/u.yaml",
    )
    assert compile_spec(user).ir.output_shapes == [(16,)]


def test_a_variant_of_a_local_family_file(write_spec):
    family = (zoo_dir() / "densenet.yaml").read_text(encoding="utf-8")
    path = write_spec(family, "fam.yaml")
    assert compile_spec(f"{path}#densenet169").name == "densenet169"
    assert compile_spec(path).name == "densenet121"  # the first variant is the default
    child = write_spec("cnnspec: 1\nname: c\nextends: fam.yaml#densenet201\n", "child.yaml")
    assert compile_spec(child).ir.totals.params == KERAS_FIGURES["densenet201"][1]
    with pytest.raises(SpecError) as caught:
        compile_spec(f"{path}#densenet16")
    assert "no variant 'densenet16'" in caught.value.errors[0].message
    assert caught.value.errors[0].hint == "did you mean `densenet169`?"


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("extends: zoo:resnt50\n", "no model 'zoo:resnt50' in the zoo", "did you mean `zoo:resnet50`?"),
        (
            "use: [zoo:blocks/resnt]\ninput: {shape: [8, 8, 3]}\nmodel: [flatten]\n",
            "no block library 'zoo:blocks/resnt' in the zoo",
            "did you mean `zoo:blocks/resnet`?",
        ),
        (
            "use: [zoo:resnet50]\ninput: {shape: [8, 8, 3]}\nmodel: [flatten]\n",
            "`use` imports block libraries",
            None,
        ),
    ],
)
def test_unknown_zoo_names_are_located_with_did_you_mean(write_spec, text, message, hint):
    with pytest.raises(SpecError) as caught:
        compile_spec(write_spec("cnnspec: 1\nname: s\n" + text))
    error = caught.value.errors[0]
    assert message in error.message
    assert error.hint == hint
    assert error.loc is not None and error.loc.line == 3


def test_errors_inside_a_zoo_spec_are_located_in_the_packaged_file(write_spec):
    child = write_spec("cnnspec: 1\nname: c\nextends: zoo:resnet50\nvars: {stage_blocks: [3, 4, 6]}\n")
    with pytest.raises(SpecError) as caught:
        compile_spec(child)
    (error,) = caught.value.errors
    assert error.loc is not None
    assert Path(error.loc.file).resolve() == (zoo_dir() / "resnet.yaml").resolve()
    line = (zoo_dir() / "resnet.yaml").read_text(encoding="utf-8").splitlines()[error.loc.line - 1]
    assert "stage_blocks[3]" in line
    assert any("included from" in note.message for note in error.notes)


# -- the command line -------------------------------------------------------------------------------
def test_cli_commands_take_zoo_names(runner, tmp_path):
    result = runner.invoke(app, ["inspect", "--format", "json", "zoo:mobilenet_v2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total_params"] == KERAS_FIGURES["mobilenet_v2"][1]
    result = runner.invoke(app, ["validate", "zoo:vgg19", "zoo:resnet50", "--set", "vars.classes=10"])
    assert result.exit_code == 0, result.output
    assert "ok zoo:vgg19" in result.stdout and "ok zoo:resnet50" in result.stdout
    result = runner.invoke(app, ["codegen", "zoo:mobilenet", "--no-format", "-o", str(tmp_path / "m.py")])
    assert result.exit_code == 0, result.output
    assert "ReLU(" in (tmp_path / "m.py").read_text(encoding="utf-8")
    family = (ROOT / "cnnspec" / "zoo" / "mobilenet.yaml").read_text(encoding="utf-8")
    lines = sum(1 for line in family.splitlines() if line.strip())
    assert f"from {lines} spec lines" in " ".join(result.output.split())  # the family file's
    result = runner.invoke(app, ["validate", "zoo:resnet5"])
    assert result.exit_code == 1
    assert "did you mean `zoo:resnet50`?" in result.output


def test_zoo_command_lists_every_variant(runner):
    result = runner.invoke(app, ["zoo", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [entry["name"] for entry in listed] == VARIANTS
    for entry in listed:
        assert set(entry) == {
            "name",
            "family",
            "keras_name",
            "params",
            "macs",
            "input_shape",
            "min_input_shape",
            "spec",
        }
        keras_name, params, input_shape = KERAS_FIGURES[entry["name"]]
        assert (entry["keras_name"], entry["params"], tuple(entry["input_shape"])) == (
            keras_name,
            params,
            input_shape,
        )
        assert entry["macs"] > 0 and Path(entry["spec"]).is_file()
    text = runner.invoke(app, ["zoo"])
    assert text.exit_code == 0
    assert all(name in text.stdout for name in VARIANTS)


def test_every_packaged_variant_and_library_passes_the_schema_it_skips():
    """`cnnspec validate zoo:…` skips the JSON schema for a zoo model as packaged (issue 15):
    sound only while every packaged variant and block library passes it, checked here."""
    from cnnspec.spec.compose import load_spec
    from cnnspec.spec.schema import validate_document

    diags = Diagnostics()
    for name in VARIANTS:
        doc = load_spec(f"zoo:{name}")
        assert doc.schema_checked
        doc.schema_checked = False
        validate_document(doc, diags)
    for library in sorted((zoo_dir() / "blocks").glob("*.yaml")):
        validate_document(load_file(library), diags, library=True)
    assert not diags.items


def test_overrides_of_a_zoo_model_are_schema_checked():
    """A `--set` makes the document the user's: the schema checks it again."""
    from cnnspec.spec.compose import load_spec
    from cnnspec.spec.schema import validate_document

    diags = Diagnostics()
    validate_document(load_spec("zoo:resnet50", ["training.epochs=-3"]), diags)
    assert [d.path for d in diags.errors] == ["training.epochs"]
