"""The ``search:`` section as a front-end pass (spec/search.py, analysis/search_check.py):
located errors with did-you-mean, and ``cnnspec validate`` compiling every candidate value and
every combination of the model's dimensions. TensorFlow-free and Optuna-free."""

from __future__ import annotations

import json

import pytest

from cnnspec.analysis.passes import compile_text
from cnnspec.errors import SpecError
from cnnspec.spec.search import apply_values
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "search" / "digits_search.yaml"

BASE = """\
cnnspec: 1
name: s
input: {shape: [8, 8, 1]}
vars: {width: 8, act: relu}
model:
  - conv2d: {filters: "${width}", kernel_size: 3, activation: "${act}"}
  - batch_norm
  - global_avg_pool2d
  - {id: head, dropout: 0.2}
  - dense: {units: 10, activation: softmax}
data: {source: digits, validation_split: 0.1}
training:
  epochs: 2
  optimizer: {adam: {learning_rate: 0.001}}
search:
  trials: 4
"""


def spec(space: str, extra: str = "") -> str:
    return BASE + extra + "  space:\n" + "".join(f"    {line}\n" for line in space.strip().splitlines())


def errors(text: str) -> list:
    with pytest.raises(SpecError) as caught:
        compile_text(text, "s.yaml")
    return caught.value.errors


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_the_starting_weights_are_not_searched_and_the_hint_says_how_to_compare_them():
    """``weights:`` is no path a search draws (each source would split its trials' test images
    its own way, with its own seed); the hint said only "no layer has an id"."""
    text = spec("weights: {choice: [runs/a, runs/b]}")
    (error,) = errors(text)
    assert (error.path, error.loc.line, error.loc.column) == (
        "search.space.weights",
        line_of(text, "weights"),
        5,
    )
    assert error.message.startswith("'weights' is neither vars, a section")
    assert error.hint == (
        "the model's starting weights are not searched: search each source as a study of its own, e.g. "
        "cnnspec search SPEC --set weights=runs/a --study from-a (then from-b …), and compare their best "
        "trials"
    )


@pytest.mark.parametrize(
    ("space", "message", "hint", "at"),
    [
        (
            "vars.widht: {choice: [8, 16]}",
            "unknown var 'widht'",
            "did you mean `width`?",
            "widht",  # located at the part that is wrong
        ),
        (
            "training.optimzer.adam.learning_rate: {float: [0.001, 0.01]}",
            "training has no 'optimzer'",
            "did you mean `optimizer`?",
            "optimzer",  # the part that is wrong
        ),
        ("haed.rate: {float: [0.0, 0.5]}", "nor the id of a layer", "did you mean `head`?", "haed.rate"),
        (
            "head.rat: {float: [0.0, 0.5]}",
            "dropout has no parameter 'rat'",
            "did you mean `rate`?",
            "rat:",
        ),
        (
            "data.sorce: {choice: [digits, fashion_mnist]}",
            "data has no 'sorce'",
            "did you mean `source`?",
            "sorce",
        ),
        (
            "model[0].conv2d.padding: {int: [1, 3]}",
            "for a int range; model[0].conv2d.padding is not a number",
            "use {choice: [...]}",
            "[1, 3]",
        ),
        (
            "vars.act: {float: [0.1, 0.5]}",
            "vars.act is not a number",
            "use {choice: [...]}",
            "[0.1, 0.5]",
        ),
        (
            "training.epochs: {float: [1.5, 3.5]}",
            "is not a float (it takes integers)",
            "use {int: [lo, hi]}",
            "[1.5, 3.5]",
        ),
        ("training.batch_size: {int: [64, 16]}", "expected low < high", None, "[64, 16]"),
        ("head.rate: {float: [0.0, 0.5], log: true}", "expected low > 0 for a log range", None, "[0.0, 0.5]"),
    ],
    ids=[
        "unknown-var",
        "misspelt-section-key",
        "unknown-id",
        "unknown-param",
        "data-key",
        "range-on-string-param",
        "range-on-string-var",
        "float-on-int",
        "empty-range",
        "log-from-zero",
    ],
)
def test_bad_space_is_a_located_error(space, message, hint, at):
    text = spec(space)
    found = errors(text)
    assert len(found) == 1, [d.headline() for d in found]
    error = found[0]
    assert message in error.message
    assert error.hint == hint or (hint is not None and hint in (error.hint or ""))
    line = line_of(text, at)
    assert error.loc.file == "s.yaml" and error.loc.line == line
    assert error.loc.column == text.splitlines()[line - 1].index(at) + 1


def test_choice_value_the_schema_rejects_is_located_at_that_choice_with_did_you_mean():
    text = spec("training.optimizer: {choice: [adam, sgdd]}")
    (error,) = errors(text)
    line = line_of(text, "sgdd")
    assert (error.loc.line, error.loc.column) == (line, text.splitlines()[line - 1].index("sgdd") + 1)
    assert "received string 'sgdd'" in error.message
    assert error.hint == "did you mean `sgd`?"


def test_choice_value_a_layer_rejects_is_located_at_that_choice():
    text = spec("model[0].conv2d.padding: {choice: [same, vaild]}")
    (error,) = errors(text)
    line = line_of(text, "vaild")
    assert (error.loc.line, error.loc.column) == (line, text.splitlines()[line - 1].index("vaild") + 1)
    assert error.hint == "did you mean `valid`?"


def test_objective_the_training_does_not_log():
    text = spec("head.rate: {float: [0.0, 0.5]}", "  objective: val_acc\n")
    (error,) = errors(text)
    assert "expected an objective the training logs every epoch; received 'val_acc'" in error.message
    assert error.hint == "did you mean `val_accuracy`?"
    assert error.loc.line == line_of(text, "objective: val_acc")


def test_validation_objective_without_a_validation_split():
    text = spec("head.rate: {float: [0.0, 0.5]}").replace(", validation_split: 0.1", ", validation_split: 0")
    (error,) = errors(text)
    assert error.hint == "validation values need data.validation_split > 0"


def test_a_width_that_breaks_shapes_fails_in_validate_with_the_search_values_as_notes():
    # a 5×5 kernel without padding needs at least 5×5: after a 2×2 pool of 8×8 only 4×4 are left
    text = spec(
        "vars.width: {choice: [8, 16]}\nvars.k: {choice: [3, 5]}",
    ).replace("vars: {width: 8, act: relu}", "vars: {width: 8, act: relu, k: 3}")
    text = text.replace(
        "  - batch_norm\n", '  - max_pool2d: 2\n  - conv2d: {filters: 4, kernel_size: "${k}"}\n'
    )
    assert compile_text(text.replace("[3, 5]", "[3, 1]"), "s.yaml").search is not None
    found = errors(text)
    assert len(found) == 1, [d.headline() for d in found]
    notes = [n.message for n in found[0].notes]
    assert any("vars.k = 5" in n for n in notes), notes


def test_combinations_are_checked_together_not_only_one_at_a_time():
    # each value compiles alone (with the other var at its spec value); only width 4096 with
    # 4096 filters in the head (scale 2) passes the parameter limit
    text = spec("vars.width: {choice: [8, 4096]}\nvars.scale: {choice: [1, 4096]}").replace(
        "vars: {width: 8, act: relu}", "vars: {width: 8, act: relu, scale: 1}"
    )
    text = text.replace(
        "  - global_avg_pool2d\n",
        '  - conv2d: {filters: "${width * scale}", kernel_size: 1}\n  - global_avg_pool2d\n',
    )
    found = errors(text.replace("  trials: 4\n", "  trials: 4\n"))
    assert len(found) == 1
    notes = " ".join(n.message for n in found[0].notes)
    assert "vars.width = 4096" in notes and "vars.scale = 4096" in notes


def test_overlapping_paths_are_refused():
    (error,) = errors(
        spec(
            "training.optimizer: {choice: [adam, sgd]}\n"
            "training.optimizer.adam.learning_rate: {float: [0.001, 0.01]}"
        )
    )
    assert "search paths overlap" in error.message


def test_grid_needs_discrete_dimensions():
    (error,) = errors(spec("head.rate: {float: [0.0, 0.5]}", "  sampler: grid\n"))
    assert "grid sampler" in error.message


def test_a_good_section_compiles_and_is_read():
    text = spec(
        "training.optimizer.adam.learning_rate: {float: [0.0001, 0.01], log: true}\n"
        "vars.width: {int: [4, 16], step: 4}\n"
        "head.rate: {float: [0.0, 0.5]}\n"
        "training.batch_size: {choice: [16, 32]}",
        "  objective: {metric: val_loss}\n  pruner: hyperband\n",
    )
    space = compile_text(text, "s.yaml").search
    assert [d.name for d in space.dimensions] == [
        "training.optimizer.adam.learning_rate",
        "vars.width",
        "head.rate",
        "training.batch_size",
    ]
    assert (space.objective, space.direction, space.pruner, space.trials) == (
        "val_loss",
        "minimize",
        "hyperband",
        4,
    )
    assert [d.affects_model for d in space.dimensions] == [False, True, True, False]
    # the main parameter written alone (`dropout: 0.2`) is still the parameter's path: searched
    # alone it stays written alone (apply_values), beside another parameter it becomes a mapping
    assert space.dimensions[2].target == ("model", 3, "dropout", "rate")
    doc = apply_values(compile_text(text, "s.yaml").doc, space, {"head.rate": 0.25})
    assert doc.data["model"][3] == {"id": "head", "dropout": 0.25}


def test_apply_values_writes_a_trial_spec_without_the_search_section():
    text = spec("head.seed: {choice: [1, 2]}\nmodel[1].batch_norm.momentum: {float: [0.8, 0.99]}")
    compiled = compile_text(text, "s.yaml")
    doc = apply_values(compiled.doc, compiled.search, {"head.seed": 2, "model[1].batch_norm.momentum": 0.9})
    assert "search" not in doc.data and "search" in compiled.doc.data
    assert doc.data["model"][3] == {"id": "head", "dropout": {"rate": 0.2, "seed": 2}}
    assert doc.data["model"][1] == {"batch_norm": {"momentum": 0.9}}
    trial = compile_text(json.dumps(doc.data), "trial.yaml")
    assert trial.search is None


def test_the_shipped_example_validates():
    from cnnspec.analysis.passes import compile_spec

    space = compile_spec(EXAMPLE).search
    assert {d.name for d in space.dimensions} == {
        "training.optimizer.adam.learning_rate",
        "vars.width",
        "head_dropout.rate",
        "training.batch_size",
    }


def test_validate_cli_reports_a_bad_choice(runner, write_spec):
    from cnnspec.cli.app import app

    path = write_spec(spec("training.optimizer: {choice: [adam, sgdd]}"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "did you mean `sgd`?" in result.output


def test_a_space_key_counts_an_index_from_the_end_as_set_does(runner, write_spec):
    """`model[-1].dense.units` was "expected a dotted spec path like training.batch_size or
    vars.width": --set reads it as the last item, and so does the search, in validate, in a
    trial's spec and in the editor; the dimension keeps the name the user wrote."""
    from cnnspec.cli.app import app
    from cnnspec.spec.search import space_target

    text = spec(
        "model[-1].dense.units: {choice: [10, 16]}\nmodel[-4].batch_norm.momentum: {float: [0.8, 0.99]}"
    )
    result = runner.invoke(app, ["validate", str(write_spec(text))])
    assert result.exit_code == 0, result.output
    compiled = compile_text(text, "s.yaml")
    assert [(d.name, d.target) for d in compiled.search.dimensions] == [
        ("model[-1].dense.units", ("model", 4, "dense", "units")),
        ("model[-4].batch_norm.momentum", ("model", 1, "batch_norm", "momentum")),
    ]
    values = {"model[-1].dense.units": 16, "model[-4].batch_norm.momentum": 0.9}
    doc = apply_values(compiled.doc, compiled.search, values)
    assert doc.data["model"][4] == {"dense": {"units": 16, "activation": "softmax"}}
    assert doc.data["model"][1] == {"batch_norm": {"momentum": 0.9}}
    assert doc.locs[("model", 4, "dense", "units")].line == line_of(text, "model[-1]")
    assert space_target(compiled.doc, "model[-5].conv2d.filters") == ("model", 0, "conv2d", "filters")
    assert space_target(compiled.doc, "model[-6].conv2d.filters") is None


def test_a_space_key_s_index_past_the_first_item_is_located_with_set_s_words(runner, write_spec):
    from cnnspec.cli.app import app

    text = spec("model[-6].conv2d.filters: {int: [2, 8]}")
    result = runner.invoke(app, ["validate", str(write_spec(text))])
    assert result.exit_code == 1
    line = line_of(text, "model[-6]")
    assert result.output.splitlines()[0].endswith(
        f"spec.yaml:{line}:10: error: search.space.model[-6].conv2d.filters: expected an index from -5 "
        "to 4 (`model` has 5 items); received -6"
    )
    assert "  hint: `model[-1]` is its last item and `model[-5]` its first" in result.output.splitlines()
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("path", "objective", "direction", "metrics", "headline"),
    [
        ("specs/unet_shapes.yaml", "val_mean_iou", "maximize", {"task": "segmentation"}, "test_mean_iou"),
        ("specs/shapes_multilabel.yaml", "val_f1", "maximize", {"task": "multilabel"}, "test_f1_macro"),
        ("specs/shapes_count.yaml", "val_mae", "minimize", {"task": "regression"}, "test_mae"),
        ("tests/fixtures/codegen/tiny_tasks.yaml", "val_loss", "minimize", None, "mask.test_mean_iou"),
        ("examples/search/digits_search.yaml", "val_accuracy", "maximize", {}, "test_accuracy"),
    ],
)
def test_the_default_objective_and_test_metric_follow_the_task(path, objective, direction, metrics, headline):
    """Without `objective`, a search optimises the task's validation metric (as the training
    logs it, in the direction that is better) and shows each trial with the task's test value;
    the check that the training logs the objective passes."""
    from cnnspec.search.worker import test_headline

    text = (ROOT / path).read_text(encoding="utf-8")
    if "search:" in text:  # (the digits example: its objective left out)
        text = text.replace("  objective: {metric: val_accuracy, direction: maximize}", "")
    else:
        text += "search:\n  trials: 2\n  space:\n    training.batch_size: {choice: [8, 16]}\n"
    space = compile_text(text, str(ROOT / path)).search
    assert (space.objective, space.direction) == (objective, direction)
    # a metrics.json of the task (several outputs: one summary per output, under `outputs`)
    if metrics is None:
        mask = {"task": "segmentation", "test_mean_iou": 0.5, "test_pixel_accuracy": 0.9}
        metrics = {"task": "multi-output", "outputs": {"mask": mask}}
        value = 0.5
    else:
        value = 0.25
        metrics[headline] = value
        metrics["test_loss"] = 9.0
    assert test_headline(metrics) == (headline, value)


def test_a_stated_direction_stays_with_the_task_objective():
    text = (ROOT / "specs/shapes_count.yaml").read_text(encoding="utf-8")
    text += "search:\n  objective: {direction: maximize}\n"
    text += "  space:\n    training.batch_size: {choice: [8, 16]}\n"
    space = compile_text(text, str(ROOT / "specs/shapes_count.yaml")).search
    assert (space.objective, space.direction) == ("val_mae", "maximize")


def _kernels(k: str, j: str, widths: int) -> str:
    """Two valid-padded convolutions of kernels ``vars.k``, ``vars.j``, and ``widths`` choices
    of width (a range counts as its two ends)."""
    choices = list(range(8, 8 + widths))
    text = spec(f"vars.k: {{choice: {k}}}\nvars.j: {{choice: {j}}}\nvars.width: {{choice: {choices}}}")
    text = text.replace("vars: {width: 8, act: relu}", "vars: {width: 8, act: relu, k: 1, j: 1}")
    text = text.replace('kernel_size: 3, activation: "${act}"}', 'kernel_size: "${k}", activation: "${act}"}')
    return text.replace("  - batch_norm\n", '  - conv2d: {filters: 4, kernel_size: "${j}"}\n')


def test_a_space_over_the_limit_is_sampled_and_says_so():
    """Above 256 combinations every value is compiled alone and 256 combinations drawn with a
    fixed seed, with a warning: before, none was compiled and validate said ok, and a trial
    failed on shapes (here a kernel of 5 then 5 leaves nothing of 8×8)."""
    found = errors(_kernels("[1, 3, 5]", "[1, 3, 5]", 30))  # 9 × 30 = 270 combinations
    assert found and all("kernel" in e.message for e in found)
    notes = " ".join(n.message for e in found for n in e.notes)
    assert "vars.k = 5" in notes and "vars.j = 5" in notes
    fine = compile_text(_kernels("[1, 3]", "[1, 3]", 70), "s.yaml")  # 280, all fit
    (warning,) = [w for w in fine.warnings if w.code == "search-sampled"]
    assert "280 combinations" in warning.message and "256 combinations drawn" in warning.message
    under = compile_text(_kernels("[1, 3]", "[1, 3]", 60), "s.yaml")  # 240: all compiled
    assert not [w for w in under.warnings if w.code == "search-sampled"]


def test_an_unknown_key_of_a_range_is_named_with_the_one_meant():
    """Before: "expected a mapping; received a mapping with keys int, steps"."""
    text = spec("vars.width: {int: [8, 16], steps: 2}")
    (error,) = errors(text)
    assert (error.message, error.path, error.hint) == (
        "unknown key 'steps'",
        "search.space.vars.width.steps",
        "did you mean `step`?",
    )


def test_a_misspelt_kind_of_space_is_named_with_the_one_meant():
    """Before: "expected a mapping; received a mapping with keys choise" (a mapping it was)."""
    (error,) = errors(spec("vars.width: {choise: [8, 16]}"))
    assert error.message == (
        "expected a mapping with one of the keys float, int, choice; received a mapping with keys choise"
    )
    assert error.hint == "did you mean `choice`?"


def test_an_empty_space_says_so():
    """Before: "expected exactly one of ; received 0 keys"."""
    (error,) = errors(BASE + "  space: {}\n")
    assert (error.path, error.message) == (
        "search.space",
        "expected at least 1 entry; received an empty mapping",
    )


def test_a_space_key_is_the_spec_path_a_trial_writes():
    """space_target (what the editor's go-to-definition follows): a var, a setting, a layer's
    parameter by its id or its index; a key the search refuses has none."""
    from cnnspec.spec.loader import load_text
    from cnnspec.spec.search import space_target

    doc = load_text(BASE, "s.yaml")
    assert space_target(doc, "vars.width") == ("vars", "width")
    assert space_target(doc, "training.optimizer.adam.learning_rate") == (
        "training", "optimizer", "adam", "learning_rate"
    )  # fmt: skip
    assert space_target(doc, "head.rate") == ("model", 3, "dropout", "rate")
    assert space_target(doc, "model[0].conv2d.filters") == ("model", 0, "conv2d", "filters")
    for refused in ("vars.depth", "training.epoch", "nohead.rate", "not a path"):
        assert space_target(doc, refused) is None, refused


def test_a_key_that_names_nothing_is_said_once_not_once_per_candidate():
    """A learning_rate_scale factor searched under a pattern that matches no layer: the same
    error came at the key and again at each end of the range."""
    text = spec("training.learning_rate_scale.hed: {float: [0.5, 2.0]}").replace(
        "training:\n", "training:\n  learning_rate_scale: {hed: 1.5}\n", 1
    )
    found = [e for e in errors(text) if "matches none" in e.message]
    assert len(found) == 1 and found[0].path == "training.learning_rate_scale.hed"
    assert found[0].hint == "did you mean `head`?"


def test_a_glob_factor_is_no_search_path_and_the_hint_says_what_is():
    found = errors(spec("training.learning_rate_scale.conv*: {float: [0.1, 1.0]}"))
    assert "expected a dotted spec path" in found[0].message
    assert "write the factor as '${NAME}' and search vars.NAME" in found[0].hint


def test_the_learning_rate_is_searched_where_the_optimizer_holds_it():
    """`training.learning_rate` was told "did you mean `learning_rate_scale`?": the rate is the
    optimizer's, as validate says of it in the training section."""
    (found,) = errors(spec("training.learning_rate: {float: [0.001, 0.01], log: true}"))
    assert "the learning rate is the optimizer's" in found.message
    assert found.hint.startswith("search training.optimizer.adam.learning_rate")


def test_a_choice_of_one_value_is_refused_as_a_step_that_leaves_one_is():
    """`{choice: [16]}` passed and every trial trained 16, without a word."""
    from cnnspec.analysis.passes import compile_text

    text = (
        "cnnspec: 1\nname: s\ninput: {shape: [8, 8, 1]}\n"
        "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
        "data: {source: digits}\ntraining: {epochs: 1}\n"
        "search:\n  trials: 2\n  space:\n    training.batch_size: {choice: [16]}\n"
    )
    with pytest.raises(SpecError) as caught:
        compile_text(text, "s.yaml")
    (error,) = caught.value.errors
    assert "expected at least two choices; received one" in error.message and error.loc.line == 10
    compile_text(text.replace("[16]", "[16, 32]"), "s.yaml")


def test_the_schema_asks_for_two_choices_as_validate_does():
    """The JSON schema (and docs/sections.md) took `{choice: [0.02]}`, which validate refuses;
    a choice of none is said in the same words."""
    from cnnspec.spec.schema import json_schema

    space = json_schema()["properties"]["search"]["properties"]["space"]["additionalProperties"]
    choice = next(alt for alt in space["anyOf"] if "choice" in alt["properties"])["properties"]["choice"]
    assert choice["minItems"] == 2
    text = (
        "cnnspec: 1\nname: s\ninput: {shape: [8, 8, 1]}\n"
        "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
        "data: {source: digits}\ntraining: {epochs: 1}\n"
        "search:\n  trials: 2\n  space:\n    training.batch_size: {choice: []}\n"
    )
    with pytest.raises(SpecError) as caught:
        compile_text(text, "s.yaml")
    (error,) = caught.value.errors
    assert (error.message, error.hint) == (
        "expected at least two choices; received none",
        "list the values to try: {choice: [16, 32]}",
    )
    assert (error.loc.line, error.loc.column) == (10, 35)


GROUPS = """\
cnnspec: 1
name: groups
input: {shape: [8, 8, 1]}
vars: {g: 1}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - conv2d: {filters: 4, kernel_size: 3, padding: same, groups: "${g}"}
  - flatten
  - dense: {units: 10, activation: softmax}
data: {source: digits, validation_split: 0.2, test_split: 0.2}
training: {epochs: 1, batch_size: 32, optimizer: adam, seed: 1}
search: {trials: 4, sampler: grid, space: {vars.g: {int: RANGE}}}
"""


def test_every_value_of_a_small_int_range_is_compiled():
    """Only the ends were: validate said ok for groups in [1, 4], and trial 0 (g=3) failed."""
    (error,) = errors(GROUPS.replace("RANGE", "[1, 4]"))
    assert (error.message, error.path) == (
        "expected input channels (4) divisible by groups (3) (input shape [8, 8, 4])",
        "model[1].conv2d.groups",
    )
    assert [note.message for note in error.notes][-1] == "with search value vars.g = 3 (s.yaml:12:52)"
    assert compile_text(GROUPS.replace("RANGE", "[1, 4], step: 3"), "s.yaml").search is not None  # 1, 4


def test_the_failing_values_of_a_range_past_the_first_three_are_listed_in_a_note():
    found = errors(GROUPS.replace("RANGE", "[1, 64]"))
    assert [e.message.split("groups ")[1] for e in found] == [
        "(3) (input shape [8, 8, 4])",
        "(5) (input shape [8, 8, 4])",
        "(6) (input shape [8, 8, 4])",
    ]
    assert found[-1].notes[-1].message == "vars.g fails with 7, 8, 9, 10, 11, 12, … too (58 more value(s))"


def test_a_range_beyond_the_budget_is_compiled_at_its_ends():
    """Every value is compiled while the model's ranges add up to 256 values (~1 s); a larger
    range keeps its ends (here 1 and 300: 300 fails, 3 is never compiled)."""
    from cnnspec.analysis.search_check import MAX_VALUES, enumerated

    assert MAX_VALUES == 256
    found = errors(GROUPS.replace("RANGE", "[1, 300]"))
    assert [e.message.split("groups ")[1] for e in found] == ["(300) (input shape [8, 8, 4])"]
    space = compile_text(GROUPS.replace("RANGE", "[1, 2]"), "s.yaml").search
    assert space is not None and enumerated(space) == {"vars.g": (1, 2)}
    # a choice is compiled at each value anyway: it takes none of the budget
    text = spec("vars.width: {int: [8, 263]}\nvars.act: {choice: [relu, gelu]}")
    assert enumerated(compile_text(text, "s.yaml").search) == {"vars.width": tuple(range(8, 264))}
    assert enumerated(compile_text(text.replace("263", "264"), "s.yaml").search) == {}


def test_a_split_setting_searched_is_warned_of_at_its_key():
    """Each trial was scored on another validation split, and nothing said so."""
    text = spec("data.validation_split: {choice: [0.1, 0.3]}\nhead.rate: {float: [0.0, 0.5]}")
    (warning,) = [w for w in compile_text(text, "s.yaml").warnings if w.code == "search-objective"]
    assert (warning.path, warning.loc.line, warning.loc.column) == (
        "search.space.data.validation_split",
        line_of(text, "data.validation_split:"),
        5,
    )
    assert warning.message == (
        "data.validation_split decides which images the trials train, validate and are scored on: "
        "each trial's val_accuracy is measured on other images, so the trials do not compare alike"
    )
    assert warning.hint == "fix data.validation_split in the spec, and search the rest"


MULTI = """\
cnnspec: 1
name: mo
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
  - {global_avg_pool2d: {}, id: gap}
  - {dense: {units: 3, activation: softmax}, id: cls, inputs: gap}
  - {dense: {units: 1}, id: reg, inputs: gap}
outputs: [cls, reg]
data: {source: {npz: mo.npz}, validation_split: 0.2}
training:
  epochs: 1
  outputs:
    cls: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}
    reg: {task: regression, loss: mse}
search:
  trials: 2
OBJECTIVE  space:
    training.outputs.cls.loss_weight: {choice: [0.01, 1.0]}
"""


def test_an_outputs_loss_weight_searched_against_the_weighted_loss_is_warned_of():
    """A smaller weight lowered val_loss by itself: the "best" trial was the smallest weight."""
    text = MULTI.replace("OBJECTIVE", "")
    (warning,) = [w for w in compile_text(text, "s.yaml").warnings if w.code == "search-objective"]
    assert warning.path == "search.space.training.outputs.cls.loss_weight"
    assert warning.message.startswith(
        "the objective val_loss is the outputs' losses weighted by loss_weight, which "
        "training.outputs.cls.loss_weight draws: a trial with a smaller weight scores better"
    )
    assert warning.hint == (
        "search an objective the weight does not scale: val_cls_loss, or one of its metrics "
        "(search.objective)"
    )
    own = MULTI.replace("OBJECTIVE", "  objective: val_cls_loss\n")
    assert not [w for w in compile_text(own, "s.yaml").warnings if w.code == "search-objective"]


@pytest.mark.parametrize(
    ("key", "whole"),
    [
        ("data.source.shapes.max_shapes: {int: [1, 3]}", "data.source"),
        ("training.loss.categorical_focal_crossentropy.gamma: {float: [1.0, 2.0]}", "training.loss"),
    ],
)
def test_a_path_through_a_named_value_the_trials_would_replace_is_refused(key, whole):
    """`data.source: digits` and a search of data.source.shapes.max_shapes trained every trial
    on shapes, without a word (as `loss: …` and a search of another loss's setting): `--set`
    refuses the path. A name that is the key the path goes on with is its short form."""
    text = spec(key).replace("training:\n", "training:\n  loss: sparse_categorical_crossentropy\n")
    (error,) = errors(text)
    assert error.message.startswith(f"expected a mapping at {whole} to set ")
    assert "which each trial would replace" in error.message
    assert error.hint is not None and error.hint.startswith(f"search {whole} whole")
    assert error.loc.line == line_of(text, key.split(":")[0])
    short = spec("training.optimizer.adam.learning_rate: {float: [0.001, 0.1], log: true}")
    compile_text(short.replace("optimizer: {adam: {learning_rate: 0.001}}", "optimizer: adam"), "s.yaml")


@pytest.mark.parametrize(
    ("phases", "key", "warned"),
    [
        ("[{epochs: 1, learning_rate: 0.01}, {epochs: 1, learning_rate: 0.003}]", "learning_rate", True),
        ("[{epochs: 1, learning_rate: 0.01}, {epochs: 1}]", "learning_rate", False),
        ("[{epochs: 1, optimizer: sgd}, {epochs: 1}]", "beta_1", True),
        ("[{epochs: 1}, {epochs: 1, learning_rate: 0.003}]", "beta_1", False),
    ],
)
def test_an_optimizer_setting_the_phases_leave_unused_is_warned_of(phases, key, warned):
    """A searched rate that every phase sets trained identical trials, each recorded with its
    drawn value, without a word."""
    from cnnspec.api import compile_text as compiled_text

    values = "{float: [0.0001, 0.1], log: true}" if key == "learning_rate" else "{float: [0.8, 0.95]}"
    text = spec(f"training.optimizer.adam.{key}: {values}").replace("  epochs: 2\n", f"  phases: {phases}\n")
    codes = [w.code for w in compiled_text(text, "s.yaml").warnings]
    assert ("search-unused" in codes) is warned


def test_epochs_set_beside_searched_phases_are_hinted_to_the_search_choices():
    """`--set training.epochs=3` beside a search of training.phases was hinted to set a phase's
    epochs with --set training.phases[0].epochs=N, which search refuses too (the phases are
    the search's)."""
    phases = "[[{epochs: 1}], [{epochs: 2}]]"
    text = spec(f"training.phases: {{choice: {phases}}}").replace(
        "  epochs: 2\n", "  phases: [{epochs: 1}]\n"
    )
    with pytest.raises(SpecError) as caught:
        compile_text(text, "s.yaml", ["training.epochs=3"])
    (error,) = caught.value.errors
    assert error.hint == "the search draws the phases: set the epochs in its choices of them (search.space)"


@pytest.mark.parametrize(
    "cutmix", ["{choice: [true, {factor: 0.5}]}", "{choice: [false, true]}", "{float: [0.5, 1.0]}"]
)
def test_mix_switch_beside_a_searched_mixer_the_spec_lacks_is_taken(cutmix):
    """Each value was compiled with the other dimensions at the spec's own settings: a mixer
    the spec leaves out and the search turns on in every trial was absent, and mix_switch
    refused as 'only training.mixup is'. A switch beside a mixer nothing turns on still is."""
    key = "training.cutmix" if "choice" in cutmix else "training.cutmix.factor"
    text = spec(f"training.mix_switch: {{float: [0.2, 0.8]}}\n{key}: {cutmix}").replace(
        "  epochs: 2\n", "  epochs: 2\n  mixup: {alpha: 0.2}\n"
    )
    compile_text(text, "s.yaml")
    alone = spec("training.mix_switch: {float: [0.2, 0.8]}").replace(
        "  epochs: 2\n", "  epochs: 2\n  mixup: true\n"
    )
    (error,) = errors(alone)
    assert "only training.mixup is" in error.message


def test_an_error_of_a_setting_only_the_trials_make_is_at_the_search_key():
    """A search of training.cutmix.factor on a segmentation model: the refusal of
    training.cutmix, which the spec does not write, was shown at `epochs: 1` (the nearest line
    the spec has), hinted to remove training.cutmix."""
    text = (
        "cnnspec: 1\nname: seg\ninput: {shape: [16, 16, 3]}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}\n"
        "data: {source: {shapes: {target: mask}}}\ntraining:\n  epochs: 1\n  task: segmentation\n"
        "search:\n  trials: 2\n  space:\n    training.cutmix.factor: {float: [0.5, 1.0]}\n"
    )
    (error,) = errors(text)
    assert error.path == "search.space.training.cutmix.factor"
    assert error.loc.line == line_of(text, "training.cutmix.factor")
    assert error.hint.startswith("take training.cutmix.factor out of search.space")
    assert error.message.startswith("expected a classification or multilabel output for training.cutmix")
