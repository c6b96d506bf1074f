"""Completion under ``training:`` (and the other settings sections): the keys the JSON Schema
lists for the mapping at the cursor, in block or flow style, and the values it fixes (an
``enum``: optimizer, loss and task names; ``true``/``false`` for a boolean).

Driven through :func:`cnnspec.lsp.completion.complete` as the server calls it
(:func:`tests.test_lsp_completion_fixes.complete_at`), and once over the wire; every
expectation is read from the schema the completion reads
(:func:`cnnspec.spec.schema.json_schema`), never written by hand,
so a setting added to the schema is expected here too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from cnnspec.layers.registry import REGISTRY
from cnnspec.spec.schema import json_schema
from tests.test_lsp_completion_fixes import complete_at, labels

pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")

HEAD = """\
cnnspec: 1
name: t
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3}
  - flatten
  - dense: {units: 3, activation: softmax}
data: {source: digits}
"""
#: A section after the cursor's: the text loads as it would while the user types.
TAIL = "search:\n  objective: {metric: val_accuracy, direction: maximize}\n"


def training() -> dict[str, Any]:
    return json_schema()["properties"]["training"]


def keys(node: dict[str, Any]) -> list[str]:
    """The keys a schema mapping lists, in its order."""
    return list(node["properties"])


def enum(node: dict[str, Any]) -> list[str]:
    """The string values of the ``enum`` among a schema node's alternatives."""
    found = []
    for alternative in [node, *node.get("anyOf", [])]:
        found += [v for v in alternative.get("enum", []) if isinstance(v, str)]
    return found


def test_the_keys_of_training_in_block_style_leave_out_those_written():
    text = HEAD + "training:\n  epochs: 2\n  \n" + TAIL
    assert labels(complete_at(text, "2\n  \n", 4)) == [k for k in keys(training()) if k != "epochs"]
    typing = HEAD + "training:\n  lo\n" + TAIL
    assert labels(complete_at(typing, "  lo\n", 4)) == keys(training())


def test_the_keys_of_training_in_flow_style_on_the_line():
    """``training: {epochs: 2, |, seed: 1}``: what the schema lists, less the keys written
    before and after the cursor; a flow mapping nested in it is its own (an optimizer's)."""
    text = HEAD + "training: {epochs: 2, , seed: 1}\n" + TAIL
    found = labels(complete_at(text, "2, , seed", 3))
    assert found == [k for k in keys(training()) if k not in ("epochs", "seed")]
    nested = HEAD + "training: {optimizer: {adam: {learning_rate: 0.01, }}}\n" + TAIL
    adam = training()["properties"]["optimizer"]["anyOf"][1]["properties"]["adam"]
    assert labels(complete_at(nested, "0.01, }", 6)) == [k for k in keys(adam) if k != "learning_rate"]


@pytest.mark.parametrize("setting", ["optimizer", "loss", "task", "class_weight"])
def test_a_training_setting_the_schema_fixes_offers_its_names(setting: str):
    expected = enum(training()["properties"][setting])
    assert expected  # (the schema gives names: the test reads them)
    block = HEAD + f"training:\n  epochs: 2\n  {setting}: \n" + TAIL
    assert labels(complete_at(block, f"{setting}: \n", len(setting) + 2)) == expected
    flow = HEAD + f"training: {{epochs: 2, {setting}: }}\n" + TAIL
    assert labels(complete_at(flow, f"{setting}: }}", len(setting) + 2)) == expected
    typing = HEAD + f"training:\n  {setting}: a\n" + TAIL  # (the editor filters by what is typed)
    assert labels(complete_at(typing, f"{setting}: a", len(setting) + 3)) == expected


def test_a_boolean_setting_offers_true_and_false():
    for setting in ("deterministic", "mixup"):
        text = HEAD + f"training:\n  {setting}: \n" + TAIL
        assert labels(complete_at(text, f"{setting}: \n", len(setting) + 2)) == ["true", "false"]
    assert labels(complete_at(HEAD + "training:\n  epochs: \n" + TAIL, "epochs: \n", 8)) == []  # a number


def test_a_new_phase_offers_the_keys_of_a_phase():
    phase = training()["properties"]["phases"]["items"]
    text = HEAD + "training:\n  phases:\n    - \n" + TAIL
    assert labels(complete_at(text, "phases:\n    - ", 14)) == keys(phase)
    more = HEAD + "training:\n  phases:\n    - epochs: 1\n      \n" + TAIL
    assert labels(complete_at(more, "1\n      \n", 8)) == [k for k in keys(phase) if k != "epochs"]
    chosen = HEAD + "training:\n  phases:\n    - epochs: 1\n      optimizer: \n" + TAIL
    assert labels(complete_at(chosen, "optimizer: \n", 11)) == enum(phase["properties"]["optimizer"])


def test_a_layers_values_and_keys_stay_its_kinds():
    """In a layer item the values and keys are the registry's, not a schema walk's."""
    kind, param = next(
        (k.name, p) for k in REGISTRY.values() for p in k.params if p.choices and not p.required
    )
    text = HEAD.replace("  - flatten\n", f"  - {kind}:\n      {param.name}: \n")
    assert labels(complete_at(text, f"{param.name}: \n", len(param.name) + 2)) == list(param.choices)
    flow = HEAD.replace("{filters: 4, kernel_size: 3}", "{filters: 4, }")
    written = {"filters"}
    assert labels(complete_at(flow, "4, }", 3)) == [
        p.name for p in REGISTRY["conv2d"].params if p.name not in written
    ]


# -- over the wire --------------------------------------------------------------------------------
pytest_lsp = pytest.importorskip("pytest_lsp", reason="the `lsp` extra is part of `dev`")
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

from tests.test_lsp import SERVE, _make_client, answer, open_text, position  # noqa: E402


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=[sys.executable, "-c", SERVE], client_factory=_make_client),
)
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(capabilities=types.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.xdist_group("lsp")
async def test_the_server_completes_under_training(client: LanguageClient, tmp_path: Path):
    path = tmp_path / "train.yaml"
    text = HEAD + "training:\n  epochs: 2\n  optimizer: \n  \n" + TAIL
    await open_text(client, path, text)
    doc = types.TextDocumentIdentifier(path.as_uri())

    async def labels_at(at: types.Position) -> list[str]:
        found = await answer(client.text_document_completion_async(types.CompletionParams(doc, at)))
        return [item.label for item in found.items]

    assert await labels_at(position(text, "optimizer: \n", 11)) == enum(training()["properties"]["optimizer"])
    written = {"epochs", "optimizer"}
    blank = types.Position(position(text, "optimizer: ").line + 1, 2)  # (the line under it)
    assert await labels_at(blank) == [k for k in keys(training()) if k not in written]
    client.text_document_did_close(types.DidCloseTextDocumentParams(doc))


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.xdist_group("lsp")
async def test_the_server_completes_a_text_that_never_loaded_and_edits_over_a_zoo_path(
    client: LanguageClient, tmp_path: Path
):
    """A document opened half-typed (it never loaded: no earlier document knows its blocks)
    still gets the block declared above the cursor; a zoo library after `zoo:blocks/he` comes
    as an edit over `blocks/he`, so the editor never writes `blocks/` twice."""
    from tests.test_lsp_completion_fixes import HALF_TYPED

    path = tmp_path / "half.yaml"
    text = HALF_TYPED.replace("  - mi\n", "  - mi\nuse: [lib.yaml, zoo:blocks/he\n")
    await open_text(client, path, text)
    doc = types.TextDocumentIdentifier(path.as_uri())
    at = position(text, "- mi\n", 4)
    found = await answer(client.text_document_completion_async(types.CompletionParams(doc, at)))
    assert "mine" in [item.label for item in found.items]
    at = position(text, "zoo:blocks/he", len("zoo:blocks/he"))
    found = await answer(client.text_document_completion_async(types.CompletionParams(doc, at)))
    head = next(item for item in found.items if item.label == "blocks/head")
    start = types.Position(at.line, at.character - len("blocks/he"))
    assert head.text_edit == types.TextEdit(types.Range(start, at), "blocks/head")
    assert head.insert_text is None
    client.text_document_did_close(types.DidCloseTextDocumentParams(doc))
