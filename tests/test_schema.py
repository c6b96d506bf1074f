"""The committed JSON Schema: generated from the registry, fresh, valid Draft 2020-12, and it
accepts every shipped spec."""

from __future__ import annotations

import json

import jsonschema
import pytest

from cnnspec.cli.schema import schema_text
from cnnspec.resources import schema_file
from cnnspec.spec.loader import load_file
from tests.conftest import FIXTURES, ROOT, SPEC_FILES


def committed() -> dict:
    return json.loads(schema_file().read_text(encoding="utf-8"))


def test_committed_schema_is_fresh():
    assert schema_file().read_text(encoding="utf-8") == schema_text(), (
        "schemas/cnnspec.schema.json is stale: run `cnnspec schema -o schemas/cnnspec.schema.json`"
    )


def test_schema_resource_is_the_top_level_file():
    assert (ROOT / "schemas" / "cnnspec.schema.json").read_text() == schema_file().read_text()


def test_schema_is_valid_draft_2020_12():
    schema = committed()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_every_spec_validates_against_the_committed_schema(path):
    jsonschema.Draft202012Validator(committed()).validate(load_file(path).data)


#: Every spec a user may open besides specs/: the zoo's families, the examples and the specs the
#: tests compile (what cnnspec accepts, the editor's schema must not mark).
OTHER_SPECS = sorted(
    [
        *(ROOT / "cnnspec" / "zoo").glob("*.yaml"),
        *(ROOT / "examples").rglob("*.yaml"),
        *(FIXTURES / "resolve").glob("*.yaml"),
        *(FIXTURES / "codegen").glob("*.yaml"),
    ]
)


@pytest.mark.parametrize("path", OTHER_SPECS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_zoo_examples_and_fixtures_validate_against_the_schema(path):
    jsonschema.Draft202012Validator(committed()).validate(load_file(path).data)


ITEM = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nvars: {k: 3, n: 2}\nmodel:\n  - %s\n"


@pytest.mark.parametrize(
    ("item", "accepted"),
    [
        # list items may be ${…} expressions, as the resolver substitutes them one by one
        ('conv2d: {filters: 8, kernel_size: ["${k}", "${k}"], strides: [1, "${n}"]}', True),
        ('max_pool2d: ["${n}", 2]', True),
        ('zero_padding2d: [["${k}", 1], [1, 1]]', True),
        ('reshape: [-1, "${n * 4}"]', True),
        # an expression is the whole value: "x${k}" is the string 'x3', no number
        ('conv2d: {filters: "x${k}", kernel_size: 3}', False),
        # an id is an identifier, whose parts may be expressions
        ("conv2d: {filters: 8, kernel_size: 3}\n    id: block${n}_a", True),
        ("conv2d: {filters: 8, kernel_size: 3}\n    id: 3x", False),
        ("conv2d: {filters: 8, kernel_size: 3}\n    id: a-b", False),
    ],
)
def test_the_editor_schema_marks_what_cnnspec_marks(item, accepted, tmp_path):
    from cnnspec.errors import SpecError
    from cnnspec.spec.loader import load_text

    text = ITEM % item
    errors = list(jsonschema.Draft202012Validator(committed()).iter_errors(load_text(text).data))
    assert (not errors) == accepted, [e.message for e in errors]
    from cnnspec.api import compile_text

    if accepted:
        compile_text(text)
    else:
        with pytest.raises(SpecError):
            compile_text(text)


@pytest.mark.parametrize(
    "text",
    [
        # docs/graphs.md: "A default may also fill a required parameter"
        "defaults:\n  conv2d: {kernel_size: 3}\nmodel:\n  - conv2d: {filters: 4}\n  - flatten\n",
        "defaults:\n  conv2d: {filters: 4, kernel_size: 3}\nmodel:\n  - conv2d:\n  - conv2d\n  - flatten\n",
        # a block's defaults fill its own layers' parameters
        "blocks:\n  stem:\n    defaults: {conv2d: {kernel_size: 3}}\n"
        "    layers: [conv2d: {filters: 4}]\nmodel: [stem, flatten]\n",
    ],
    ids=["spec", "every-parameter", "block"],
)
def test_the_editor_schema_accepts_a_required_parameter_that_defaults_fill(text):
    from cnnspec.api import compile_text
    from cnnspec.spec.loader import load_text

    text = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\n" + text
    errors = list(jsonschema.Draft202012Validator(committed()).iter_errors(load_text(text).data))
    assert not errors, [e.message for e in errors]
    compile_text(text)


def test_a_required_parameter_nothing_fills_is_still_reported_by_validate():
    from cnnspec.api import compile_text
    from cnnspec.errors import SpecError

    text = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\nmodel:\n  - conv2d: {filters: 4}\n  - flatten\n"
    with pytest.raises(SpecError) as caught:
        compile_text(text)
    (error,) = caught.value.errors
    assert (error.loc.line, error.loc.column, error.path) == (5, 13, "model[0].conv2d")
    assert error.message == "missing required parameter `kernel_size` for `conv2d`"


@pytest.mark.parametrize(
    "name",
    ["unknown_param", "zero_filters", "activation_typo", "training_typo", "wrong_version", "empty_model"],
)
def test_editor_schema_rejects_what_cnnspec_rejects(name):
    doc = load_file(FIXTURES / "invalid" / f"{name}.yaml")
    assert list(jsonschema.Draft202012Validator(committed()).iter_errors(doc.data))


def test_committed_block_library_schema_is_fresh():
    assert schema_file("cnnspec-blocks.schema.json").read_text(encoding="utf-8") == schema_text("library"), (
        "run `cnnspec schema --library -o schemas/cnnspec-blocks.schema.json`"
    )


@pytest.mark.parametrize(
    "path", sorted((ROOT / "cnnspec" / "zoo" / "blocks").glob("*.yaml")), ids=lambda p: p.stem
)
def test_block_libraries_have_modeline_and_validate(path):
    assert path.read_text().splitlines()[0] == (
        "# yaml-language-server: $schema=../../schemas/cnnspec-blocks.schema.json"
    )
    target = path.parent / "../../schemas/cnnspec-blocks.schema.json"  # cnnspec/schemas/ (packaged)
    assert target.resolve() == ROOT / "schemas" / "cnnspec-blocks.schema.json"
    library = json.loads(schema_file("cnnspec-blocks.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(library)
    jsonschema.Draft202012Validator(library).validate(load_file(path).data)


def test_a_model_name_too_long_for_its_files_is_a_located_error(tmp_path, monkeypatch):
    """A 250-character name was valid: `build` blamed its `-o` (which was not given) and `train`
    failed when it made runs/NAME-… (an internal error, exit 3). It is refused at `name:` now,
    in every command, before anything is written; at the limit the default files fit."""
    from typer.testing import CliRunner

    from cnnspec.cli.app import app

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "long.yaml"
    body = "input: {shape: [8, 8, 1]}\nmodel: [flatten, {dense: {units: 10}}]\ndata: {source: digits}\n"
    spec.write_text(f"cnnspec: 1\nname: {'m' * 101}\n{body}", encoding="utf-8")
    runner = CliRunner()
    for command in (["validate"], ["build"], ["train"], ["codegen", "--script"]):
        result = runner.invoke(app, [*command, str(spec)])
        assert result.exit_code == 1, (command, result.output)
        assert "long.yaml:2:7: error: name: expected at most 100 characters; received 101" in result.output
        assert "hint: a shorter name" in " ".join(result.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.yaml"]
    spec.write_text(f"cnnspec: 1\nname: {'m' * 100}\n{body}", encoding="utf-8")
    assert runner.invoke(app, ["validate", str(spec)]).exit_code == 0
    # at the limit, the default files' names pass the checks of what can be written here
    from cnnspec.fileio import check_writable

    check_writable(tmp_path / "runs" / f"{'m' * 100}-20261207-021701-99", option="--out")
    check_writable(tmp_path / f"{'m' * 100}.keras", option="-o", folder=False)
