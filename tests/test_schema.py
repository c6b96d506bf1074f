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


@pytest.mark.parametrize("path", sorted((FIXTURES / "resolve").glob("*.yaml")), ids=lambda p: p.stem)
def test_resolve_fixtures_validate_against_the_schema(path):
    jsonschema.Draft202012Validator(committed()).validate(load_file(path).data)


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
