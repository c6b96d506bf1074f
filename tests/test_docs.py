"""docs/reference.md, docs/sections.md and docs/zoo.md are generated (``make docs``) and
committed: the committed files must equal what the generators write now, and every example must
be a valid layer item."""

from __future__ import annotations

import json

import jsonschema
import pytest

from cnnspec.analysis import zoo as zoo_catalogue
from cnnspec.analysis.docs import GENERATED, catalog_index, example_item
from cnnspec.analysis.zoo import INDEX, catalog
from cnnspec.layers.registry import REGISTRY
from cnnspec.resources import schema_file, zoo_dir
from cnnspec.spec.loader import load_text
from cnnspec.spec.zoo import variants
from tests.conftest import ROOT

# one xdist worker: the module's compile of the whole zoo (3 s) is made once, not once on each
pytestmark = pytest.mark.xdist_group("docs")


@pytest.fixture(scope="module", autouse=True)
def one_zoo_compile():
    """zoo.md and catalog.json are both rendered from a compile of the whole zoo (seconds): the
    generators share one here. The fallback test below compiles a part of the zoo on its own
    and compares with this one."""
    from cnnspec.analysis import docs

    compiled = zoo_catalogue.compile_catalog()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(docs, "compile_catalog", lambda: compiled)
        yield compiled


@pytest.mark.parametrize("name", GENERATED)
def test_committed_docs_are_fresh(name):
    committed = (ROOT / "docs" / name).read_text(encoding="utf-8")
    assert committed == GENERATED[name](), f"docs/{name} is stale: run `make docs`"


def test_committed_zoo_catalogue_is_fresh():
    """`cnnspec zoo` reads it while its hash matches the zoo's files: it must equal a compile now."""
    committed = (zoo_dir() / INDEX).read_text(encoding="utf-8")
    assert committed == catalog_index(), "cnnspec/zoo/catalog.json is stale: run `make docs`"
    assert [entry.name for entry in catalog()] == list(variants())


def test_zoo_command_compiles_when_the_catalogue_does_not_match(monkeypatch, one_zoo_compile):
    # catalog() compiles (docs.compile_catalog, not this module's, is the shared compile) the
    # variants it is given: one of each zoo file here, as the module compiled all of them once.
    # Read from catalog.json instead, it would hold every variant.
    every = zoo_catalogue.variants()
    first: dict[object, str] = {}
    for name, variant in every.items():
        first.setdefault(variant.file, name)
    chosen = set(first.values())
    monkeypatch.setattr(zoo_catalogue, "variants", lambda: {n: v for n, v in every.items() if n in chosen})
    monkeypatch.setattr(zoo_catalogue, "sources_hash", lambda: "another zoo")
    assert zoo_catalogue.catalog() == [entry for entry in one_zoo_compile if entry.name in chosen]


def test_reference_documents_every_kind_and_parameter():
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    for kind in REGISTRY.values():
        section = text.split(f"\n## {kind.name}\n", 1)[1].split("\n## ", 1)[0]
        assert f"`keras.layers.{kind.keras_class}`" in section
        assert all(f"| `{p.name}` |" in section for p in kind.params), kind.name


@pytest.mark.parametrize("kind", list(REGISTRY))
def test_reference_example_is_a_valid_layer_item(kind):
    item = example_item(REGISTRY[kind])
    doc = load_text(f"cnnspec: 1\nname: x\ninput: {{shape: [8, 8, 3]}}\nmodel:\n  {item}\n")
    schema = json.loads(schema_file().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(doc.data)


def test_zoo_page_lists_every_variant():
    text = (ROOT / "docs" / "zoo.md").read_text(encoding="utf-8")
    for name, variant in variants().items():
        assert f"| `zoo:{name}` | {variant.family} | `{variant.keras_name}` |" in text


#: The input shape of each rank (without the batch axis) an example is tried on: wide enough for
#: every kind's example at its defaults (group_norm's 32 groups need 32 channels).
_EXAMPLE_INPUTS = {1: [16], 2: [16, 32], 3: [16, 16, 32], 4: [4, 16, 16, 32]}


def _reference_example(name: str) -> object:
    """The one layer item of the example of ``name`` in the committed docs/reference.md."""
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (item,) = load_text(f"model:\n  {example}").data["model"]
    return item


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_reference_example_validates(name):
    """The example of every kind in docs/reference.md compiles where such a kind goes: an
    augmentation in `augmentation:` (on RGB images), a merge over two layers, any other in
    `model` on an input of a rank it takes."""
    from cnnspec.api import compile_text

    kind = REGISTRY[name]
    item = _reference_example(name)
    shape = _EXAMPLE_INPUTS[(kind.ranks or (3,))[0]]
    spec: dict = {"cnnspec": 1, "name": "example", "input": {"shape": shape}}
    if kind.augmentation:
        spec["input"] = {"shape": [16, 16, 3]}
        spec["augmentation"] = [item]
        spec["model"] = ["flatten"]
    elif kind.arity == "many":
        item = {name: None} if isinstance(item, str) else dict(item)
        branches = [{"dense": 4, "id": "a"}, {"dense": 4, "id": "b", "inputs": "input"}]
        spec["model"] = [*branches, {**item, "inputs": ["a", "b"]}]
    else:
        spec["model"] = [item]
    compile_text(json.dumps(spec))  # (JSON is YAML)
