"""The least a repeat or block call makes, read from the text (cnnspec/spec/least_size.py).

The sizes are lower bounds: a spec within the budgets must never be refused by them. That is
checked against every shipped spec, zoo variant and compiler fixture (the layers the resolver
made), and against the walk's own count of a call's steps; the refusals themselves are in
tests/test_resolve.py and tests/fixtures/hostile/expected.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cnnspec.api import compile_spec
from cnnspec.errors import SpecError
from cnnspec.spec.least_size import CAP, said
from cnnspec.spec.limits import MAX_NESTING, least_sizes
from cnnspec.spec.resolve import Resolver
from cnnspec.spec.zoo import variants
from tests.conftest import FIXTURES, SPEC_FILES

SOURCES = [
    *(str(path) for path in SPEC_FILES),
    *(f"zoo:{name}" for name in variants()),
    *(str(path) for path in sorted((FIXTURES / "codegen").glob("*.yaml"))),
    *(str(path) for path in sorted((FIXTURES / "resolve").glob("*.yaml"))),
]


def least(text: str) -> tuple[int, int]:
    """The least (layers, steps) of a spec text's model list."""
    data = yaml.safe_load(text)
    return least_sizes(data.get("blocks") or {}).of_list(data["model"], 0)


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: Path(s).stem if ":" not in s else s)
def test_no_spec_makes_fewer_layers_than_its_least_size(source: str, monkeypatch) -> None:
    """The layers the walk made (before the dead ones are pruned), as the layer budget counts
    them: the top-level resolver's, whose pruning comes last (a backbone's resolver prunes its
    own first)."""
    walked: list[int] = []
    prune = Resolver.prune

    def counted(self: Resolver, outputs: list[str]) -> None:
        walked.append(len(self.nodes))
        prune(self, outputs)

    monkeypatch.setattr(Resolver, "prune", counted)
    try:
        compiled = compile_spec(source)
    except SpecError:  # a fixture of a refusal (every one of them is a refusal of its own)
        pytest.skip("the spec is refused")
    data = compiled.doc.data
    made, _ = least_sizes(data.get("blocks") or {}).of_list(data["model"], 0)
    assert 0 < made <= walked[-1]


def test_the_least_steps_of_a_call_are_the_walks_count() -> None:
    """The walk counts 20,002 steps for a call of `spin` (tests/test_resolve.py: the replay's
    refusal says so): the item of the repeat, its 10,000 iterations with their skipped layer,
    and the layer after it."""
    spin = [{"repeat": {"times": 10000, "layers": [{"identity": None, "when": False}]}}, "identity"]
    assert least_sizes({"spin": {"layers": spin}}).of_block("spin") == (1, 20_002)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("[flatten, {dense: 2}]", (2, 2)),
        # an item with a `when` may make nothing, but it is a step
        ("[{dense: 2, when: '${true}'}, flatten]", (1, 2)),
        # each iteration is a step, then its body's
        ("[{repeat: {times: 3, layers: [flatten, {dense: 2}]}}]", (6, 1 + 3 * (1 + 2))),
        ("[{repeat: {times: 0, layers: [flatten]}}]", (0, 1)),
        # a `times` computed from a var, a combinator's branches, an unknown kind: their own step
        ("[{repeat: {times: '${n}', layers: [flatten]}}]", (0, 1)),
        ("[{residual: {body: [{dense: 2}]}}]", (0, 1)),
        ("[{parallel: {branches: [[flatten], [flatten]]}}]", (0, 1)),
        ("[{no_such_kind: 1}, {dense: 2, id: d, trainable: false}]", (1, 2)),
        # a block's layers, once per call
        ("[twice, twice]", (4, 2 + 2 * 2)),
    ],
)
def test_least_sizes_of_items(model: str, expected: tuple[int, int]) -> None:
    text = f"blocks:\n  twice: {{layers: [flatten, {{dense: 3}}]}}\nmodel: {model}\n"
    assert least(text) == expected


def test_a_block_that_calls_itself_counts_as_nothing_there() -> None:
    blocks = {"a": {"layers": ["b", "flatten"]}, "b": {"layers": ["a", "flatten"]}}
    assert least_sizes(blocks).of_block("a") == (2, 4)


def test_sizes_stop_at_the_cap_and_are_said_as_over_it() -> None:
    items: list[Any] = ["flatten"]
    for _ in range(4):  # 10,000**4 layers
        items = [{"repeat": {"times": 10000, "layers": items}}]
    made, steps = least_sizes({}).of_list(items, 0)
    assert made == steps == CAP
    assert said(made) == f"over {CAP:,}" and said(30_000) == "at least 30,000"


def test_lists_nested_past_the_resolvers_limit_count_as_nothing() -> None:
    """The resolver refuses that nesting; the count never recurses as deep as the text goes."""
    items: list[Any] = ["flatten"]
    for _ in range(5000):
        items = [{"repeat": {"times": 2, "layers": items}}]
    made, steps = least_sizes({}).of_list(items, 0)
    # the lists down to depth MAX_NESTING + 1 are counted: 1 + 2 × (1 + the next one's) steps each
    assert made == 0 and steps == 3 * (2 ** (MAX_NESTING + 2) - 1)
