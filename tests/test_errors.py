"""Diagnostics (cnnspec/errors.py): did-you-mean, de-duplication across calls, notes."""

from __future__ import annotations

import pytest

from cnnspec.errors import Diagnostic, Diagnostics, Loc, Note, did_you_mean
from cnnspec.layers.registry import REGISTRY

KINDS = [*REGISTRY, "residual", "parallel", "repeat"]


@pytest.mark.parametrize(
    ("word", "choices", "suggestion"),
    [
        ("rleu", ["relu", "elu", "selu"], "relu"),  # two letters swapped
        ("conv2D", KINDS, "conv2d"),  # case only
        ("batchnorm", KINDS, "batch_norm"),
        ("maxpool2d", KINDS, "max_pool2d"),
        ("clases", ["classes", "width"], "classes"),
        ("filtres", ["filters", "kernel_size"], "filters"),
        ("epoch", ["epochs", "batch_size"], "epochs"),
        ("val_acc", ["loss", "accuracy", "val_loss", "val_accuracy"], "val_accuracy"),  # abbreviation
    ],
)
def test_did_you_mean_proposes_a_near_choice(word, choices, suggestion):
    assert did_you_mean(word, choices) == f"did you mean `{suggestion}`?"


@pytest.mark.parametrize(
    ("word", "choices"),
    [
        ("regularization", KINDS),  # a long word near none (`normalization` is a kind now)
        ("xyz", KINDS),
        ("conv", KINDS),  # begins conv1d, conv2d, …: no single guess
        ("learning", ["epochs", "batch_size", "optimizer"]),
        ("w" * 100_000, ["width"]),
    ],
)
def test_did_you_mean_proposes_nothing_far_away(word, choices):
    assert did_you_mean(word, choices) is None


LOC = Loc("x.yaml", 8, 27)
CALL_1 = Note("in block 'b' called from model[0] (x.yaml:12:5)", Loc("x.yaml", 12, 5), "model[0]")
CALL_2 = Note("in block 'b' called from model[1] (x.yaml:13:5)", Loc("x.yaml", 13, 5), "model[1]")


def test_the_same_mistake_in_another_call_adds_only_its_call_site():
    diags = Diagnostics()
    diags.error(
        "received integer -24", LOC, "blocks.b.layers[0]", code="parameter", notes=[CALL_1], context=1
    )
    diags.error(
        "received integer -16", LOC, "blocks.b.layers[0]", code="parameter", notes=[CALL_2], context=2
    )
    (error,) = diags.errors
    assert error.message == "received integer -24"
    assert error.notes == (CALL_1, Note("also " + CALL_2.message, CALL_2.loc, CALL_2.path))


def test_a_chain_of_calls_met_again_reads_as_another_chain():
    """The same mistake in a block called directly and through another block: the second
    chain's notes after the first's read as one deeper stack, unless the second begins with
    "also"; a call both chains share is not repeated."""
    inner_direct = Note(
        "in block 'inner' called from model[0] (x.yaml:15:5)", Loc("x.yaml", 15, 5), "model[0]"
    )
    inner_in_outer = Note(
        "in block 'inner' called from blocks.outer.layers[0] (x.yaml:13:9)",
        Loc("x.yaml", 13, 9),
        "blocks.outer.layers[0]",
    )
    outer_1 = Note("in block 'outer' called from model[1] (x.yaml:16:5)", Loc("x.yaml", 16, 5), "model[1]")
    outer_2 = Note("in block 'outer' called from model[2] (x.yaml:17:5)", Loc("x.yaml", 17, 5), "model[2]")
    origin = Note("w is integer 0, set at x.yaml:4:11", Loc("x.yaml", 4, 11), "vars.w")
    diags = Diagnostics()
    for context, notes in enumerate(
        [[inner_direct, origin], [inner_in_outer, outer_1], [inner_in_outer, outer_2]]
    ):
        diags.error(
            "received integer 0",
            LOC,
            "blocks.inner.layers[0]",
            code="parameter",
            notes=notes,
            context=context,
        )
    (error,) = diags.errors
    assert [n.message for n in error.notes] == [
        inner_direct.message,
        origin.message,
        "also " + inner_in_outer.message,
        outer_1.message,
        "also " + outer_2.message,
    ]


def test_different_mistakes_at_one_place_in_one_call_stay_apart():
    diags = Diagnostics()
    diags.error("missing `filters`", LOC, "p", code="missing-parameter", context=1)
    diags.error("missing `kernel_size`", LOC, "p", code="missing-parameter", context=1)
    diags.error("missing `filters`", LOC, "p", code="missing-parameter", context=2)
    assert [e.message for e in diags.errors] == ["missing `filters`", "missing `kernel_size`"]


def test_errors_in_included_files_say_where_they_are_included_from():
    diags = Diagnostics(
        includes={
            "lib.yaml": (Loc("base.yaml", 3, 5), "use[0]"),
            "base.yaml": (Loc("spec.yaml", 2, 10), "extends"),
        }
    )
    diags.error("unknown parameter", Loc("lib.yaml", 7, 9), "blocks.b", notes=[CALL_1])
    (error,) = diags.errors
    assert [n.message for n in error.notes] == [
        "included from base.yaml:3:5",
        "included from spec.yaml:2:10",
        CALL_1.message,
    ]
    assert error.to_json()["trace"][1] == {
        "file": "spec.yaml",
        "line": 2,
        "column": 10,
        "path": "extends",
        "message": "included from spec.yaml:2:10",
    }


def test_errors_located_on_the_command_line_say_so():
    diags = Diagnostics()
    diags.error("unknown key 'epoch'", Loc("<--set 1>", 1, 10), "training.epoch")
    diags.add(Diagnostic("unknown key 'epoch'", Loc("<--set 1>", 1, 10), "training.epoch"))
    (error,) = diags.errors
    assert error.message == "unknown key 'epoch' (in a --set option on the command line)"
