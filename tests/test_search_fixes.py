"""``cnnspec search`` fixes: studies sharing one ``--out``, the values best.yaml holds, the paths
it makes absolute, candidate values ``cnnspec validate`` compiles (float ranges, stepped ranges,
the objective per value), search paths through list items, ids and scalar-written layers, and a
search whose every trial failed. Fast: searches run with a stand-in for the training (no
TensorFlow); the section checks compile only."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnnspec.analysis.passes import compile_spec, compile_text
from cnnspec.cli.app import app
from cnnspec.errors import SpecError, UsageError
from cnnspec.spec.search import apply_values, grid_values

SPEC = """\
cnnspec: 1
name: tiny_search
input: {shape: [8, 8, 1]}
vars: {width: 4}
model:
  - conv2d: {filters: "${width}", kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - {id: drop, dropout: 0.1}
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 128}
training: {epochs: 1, batch_size: 32, seed: 1}
search:
  trials: 1
  seed: 3
  pruner: none
  space:
    drop.rate: {float: [0.0, 0.5]}
"""


def flat(text: str) -> str:
    """Output with Rich's line wrapping undone."""
    return " ".join(text.split())


def errors(text: str) -> list:
    with pytest.raises(SpecError) as caught:
        compile_text(text, "s.yaml")
    return caught.value.errors


# -- searches with a stand-in training ------------------------------------------------------------


@pytest.fixture
def fake_train(monkeypatch):
    """``train`` of a trial without TensorFlow: it writes the trial's spec values into the run
    folder (``trained.json``) and logs what ``fake_train.history`` says (default: accuracy 0.5);
    ``fake_train.error`` makes it raise instead."""
    pytest.importorskip("optuna")
    from cnnspec.search import worker
    from cnnspec.training import trainer

    class Pruning:
        pruned_at = None

    def train(compiled: Any, *, out: Path, **_: Any) -> Any:
        if state.error is not None:
            raise state.error
        (out / "trained.json").write_text(json.dumps(compiled.doc.data, default=str))
        return trainer.TrainResult(out, {"test_accuracy": 0.5}, list(state.history), {})

    class State:
        history: list[dict[str, float]] = [{"val_accuracy": 0.5}]  # noqa: RUF012
        error: Exception | None = None

    state = State()
    monkeypatch.setattr(trainer, "train", train)
    monkeypatch.setattr(worker, "_quiet_tensorflow", lambda: None)
    monkeypatch.setattr(worker, "pruning_callback", lambda trial, metric: Pruning())
    return state


def search(runner, spec: Path, out: Path, *args: str):
    return runner.invoke(app, ["search", str(spec), "--out", str(out), "-q", *args])


def test_a_second_study_in_the_same_out_gets_its_own_trial_folders_and_summaries(
    runner, write_spec, tmp_path, fake_train
):
    spec, out = write_spec(SPEC), tmp_path / "out"
    first = search(runner, spec, out)
    assert first.exit_code == 0, first.output
    kept = [out / "trial-000" / "trial.json", out / "search.json", out / "search.html", out / "best.yaml"]
    before = [path.read_bytes() for path in kept]

    other = search(runner, spec, out, "--study", "other")
    assert other.exit_code == 0, other.output
    assert [path.read_bytes() for path in kept] == before  # the first study's files, as they were
    trial = json.loads((out / "trial-other-000" / "trial.json").read_text())
    assert trial["state"] == "COMPLETE"
    summary = json.loads((out / "search-other.json").read_text())
    assert summary["study"] == "other" and summary["trials"][0]["run_dir"] == "trial-other-000"
    assert summary["files"]["best"] == "best-other.yaml" and (out / "best-other.yaml").is_file()
    assert json.loads((out / "search.json").read_text())["study"] == "tiny_search"
    assert "best-other.yaml" in (out / "search-other.html").read_text()
    assert "written: best-other.yaml, history-other.png, search-other.json, search-other.html" in flat(
        other.output
    )  # (the plots too: one trial draws the history only)


def test_another_specs_own_study_in_the_same_out_gets_its_own_names(runner, write_spec, tmp_path, fake_train):
    """Each spec's own study took the plain names: a second spec searched into the same --out
    replaced the first's best.yaml, search.json and search.html."""
    out = tmp_path / "out"
    first = search(runner, write_spec(SPEC), out)
    assert first.exit_code == 0, first.output
    kept = [out / "search.json", out / "search.html", out / "best.yaml"]
    before = [path.read_bytes() for path in kept]
    second = write_spec(SPEC.replace("name: tiny_search", "name: tiny_other"), "other.yaml")
    for _ in range(2):  # (and again: it keeps its own names)
        other = search(runner, second, out)
        assert other.exit_code == 0, other.output
    assert [path.read_bytes() for path in kept] == before
    summary = json.loads((out / "search-tiny_other.json").read_text())
    assert summary["study"] == "tiny_other" and summary["trials"][0]["run_dir"] == "trial-tiny_other-000"


def test_study_tags_keep_names_apart():
    from cnnspec.search.study import study_tag

    assert study_tag("tiny", "tiny") == ""
    assert study_tag("other", "tiny") == "-other"
    assert study_tag("My Study", "tiny") != study_tag("my-study", "tiny")
    assert study_tag("../x/y", "tiny").count("/") == 0


def test_a_trial_whose_folder_is_taken_leaves_it_alone_and_takes_the_next(
    runner, write_spec, tmp_path, fake_train
):
    out = tmp_path / "out"
    (out / "trial-000").mkdir(parents=True)
    (out / "trial-000" / "notes.txt").write_text("mine")
    result = search(runner, write_spec(SPEC), out)
    assert result.exit_code == 0, result.output
    assert [p.name for p in (out / "trial-000").iterdir()] == ["notes.txt"]  # no trial.json written
    summary = json.loads((out / "search.json").read_text())
    assert [t["state"] for t in summary["trials"]] == ["SKIPPED", "COMPLETE"]  # the budget: 1 trained
    assert summary["trials"][0]["skipped"].startswith("run folder taken")
    assert summary["counts"] == {"COMPLETE": 1, "SKIPPED": 1}
    assert "2 trial(s): 1 complete, 1 skipped" in flat(result.output)  # (it counted it "1 failed")
    assert json.loads((out / "trial-001" / "trial.json").read_text())["state"] == "COMPLETE"


def test_best_yaml_holds_the_values_the_grid_trial_trained_with(runner, write_spec, tmp_path, fake_train):
    text = SPEC.replace("pruner: none", "pruner: none\n  sampler: grid").replace(
        "{float: [0.0, 0.5]}", "{float: [0, 0.5], step: 0.5}"
    )
    out = tmp_path / "out"
    result = search(runner, write_spec(text), out, "-n", "2")
    assert result.exit_code == 0, result.output
    best = yaml.safe_load((out / "best.yaml").read_text())["model"][2]["dropout"]
    run_dir = json.loads((out / "search.json").read_text())["best"]["run_dir"]
    trained = json.loads((out / run_dir / "trained.json").read_text())["model"][2]["dropout"]
    assert best == trained and type(best) is type(trained) is float


def test_grid_values_of_a_float_range_are_floats():
    space = compile_text(SPEC.replace("{float: [0.0, 0.5]}", "{float: [0, 1], step: 0.5}"), "s.yaml").search
    values = grid_values(space.dimensions[0])
    assert values == [0.0, 0.5, 1.0] and all(type(v) is float for v in values)


def test_best_yaml_takes_the_trials_own_values_over_optunas_params(tmp_path):
    optuna = pytest.importorskip("optuna")
    from cnnspec.search.results import write_summary

    compiled = compile_text(SPEC.replace("vars: {width: 4}", "vars: {width: 4, rate: 0.1}"), "s.yaml")
    space = compiled.search
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    trial.suggest_float("drop.rate", 0.0, 0.5)
    trial.set_user_attr("values", {"drop.rate": 0.25})  # what run_trial records it trained with
    study.tell(trial, 0.9)
    write_summary(tmp_path, study, space, "memory", compiled)
    assert yaml.safe_load((tmp_path / "best.yaml").read_text())["model"][2]["dropout"] == 0.25


def test_best_yaml_makes_every_path_of_the_spec_absolute(tmp_path):
    optuna = pytest.importorskip("optuna")
    from cnnspec.search.results import write_summary

    folder = tmp_path / "specs"
    folder.mkdir()
    text = SPEC.replace(
        "data: {source: digits, limit: 128}",
        "data: {source: {images: imgs, values: values.csv}}\nweights: start.weights.h5",
    ).replace("activation: softmax", "activation: linear")
    text = text.replace("training: {", "training: {task: regression, loss: mse, metrics: [mae], ")
    text = text.replace("  seed: 3\n", "  seed: 3\n  objective: val_loss\n")
    (folder / "spec.yaml").write_text(text)
    compiled = compile_spec(folder / "spec.yaml", [])
    study = optuna.create_study(direction="minimize")
    trial = study.ask()
    trial.suggest_float("drop.rate", 0.0, 0.5)
    study.tell(trial, 0.1)
    write_summary(tmp_path / "out", study, compiled.search, "memory", compiled)
    best = yaml.safe_load((tmp_path / "out" / "best.yaml").read_text())
    assert best["data"]["source"] == {"images": str(folder / "imgs"), "values": str(folder / "values.csv")}
    assert best["weights"] == str(folder / "start.weights.h5")
    # a path written as an expression is written as the path it names (an absolute `root`
    # became FOLDER/${root}/start.weights.h5, which names nothing)
    (folder / "spec.yaml").write_text(
        text.replace("vars: {width: 4}", f"vars: {{width: 4, root: {folder}}}").replace(
            "weights: start.weights.h5", 'weights: "${root}/start.weights.h5"'
        )
    )
    compiled = compile_spec(folder / "spec.yaml", [])
    write_summary(tmp_path / "out2", study, compiled.search, "memory", compiled)
    best = yaml.safe_load((tmp_path / "out2" / "best.yaml").read_text())
    assert best["weights"] == str(folder / "start.weights.h5")  # (what the expression names)


def test_a_search_whose_every_trial_failed_exits_non_zero_with_the_reason(
    runner, write_spec, tmp_path, fake_train
):
    fake_train.error = UsageError("the data folder has no images")
    out = tmp_path / "out"
    result = search(runner, write_spec(SPEC), out, "-n", "2")
    assert result.exit_code == 1, result.output
    text = flat(result.output)
    assert "no trial finished: all 2 trial(s) of this search failed" in text
    assert "UsageError: the data folder has no images" in text
    assert "Traceback" not in text
    assert (out / "search.json").is_file()  # the summary is written all the same


def test_a_diverged_trial_says_so_in_the_study_and_its_trial_json(runner, write_spec, tmp_path, fake_train):
    fake_train.history = [{"val_accuracy": math.nan}, {"val_accuracy": math.inf}]
    out = tmp_path / "out"
    result = search(runner, write_spec(SPEC), out)
    assert result.exit_code == 1, result.output
    reason = "val_accuracy was not a finite number at any epoch: the training diverged"
    assert reason in flat(result.output)
    trial = json.loads((out / "trial-000" / "trial.json").read_text())
    assert trial["state"] == "FAIL" and trial["failed"] == reason


def test_no_objective_tells_never_logged_from_never_finite():
    from cnnspec.search.worker import no_objective

    assert no_objective([{"loss": 1.0}], "val_loss") == "the training logged no val_loss"
    assert "diverged" in no_objective([{"val_loss": math.nan}], "val_loss")


# -- the section: candidates, paths -----------------------------------------------------------------

BASE = """\
cnnspec: 1
name: s
input: {shape: [8, 8, 1]}
vars: {width: 8}
blocks:
  cb:
    params: {filters: int, stride: {type: int, default: 1}}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: 3, strides: "${stride}", padding: same}
model:
  - cb: 8
  - conv2d: {filters: "${width}", kernel_size: 3, padding: same, groups: 4}
  - max_pool2d: 2
  - global_avg_pool2d
  - {id: drop, dropout: 0.3}
  - dense: {units: 10, activation: softmax}
augmentation:
  - {id: shift, random_translation: {height_factor: 0.1, width_factor: 0.1}}
data: {source: digits, validation_split: 0.2}
training:
  epochs: 1
  callbacks:
    - early_stopping: {monitor: val_loss, patience: 2}
search:
  space:
"""


def spec(*space: str) -> str:
    return BASE + "".join(f"    {line}\n" for line in space)


def test_a_float_range_on_an_integer_parameter_fails_validate():
    text = spec("vars.width: {float: [8, 16]}")
    found = errors(text)
    assert found and all("expected a positive integer" in e.message for e in found)
    assert any("vars.width = 12.5" in note.message for e in found for note in e.notes)


def test_float_candidates_are_floats_with_a_fractional_one_and_steps_end_at_the_last_step():
    dims = compile_text(
        spec(
            "drop.rate: {float: [0, 1]}",
            "training.optimizer.adam.learning_rate: {float: [0.1, 0.5], step: 0.25}",
            "vars.width: {int: [4, 14], step: 4}",
        ),
        "s.yaml",
    ).search.dimensions
    assert dims[0].candidates() == (0.0, 1.0, 0.5) and type(dims[0].candidates()[0]) is float
    assert dims[1].candidates() == (0.1, 0.35)  # Optuna draws at most 0.35 ([0.1, 0.35, …])
    assert dims[2].candidates() == (4, 12)  # 14 is never drawn: groups: 4 takes 4, 8 and 12


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("training.callbacks[1].early_stopping.patience", "training.callbacks has 1 item; received index 1"),
        ("data.classes[0]", "the spec has no data.classes; received index 0"),
    ],
)
def test_a_list_index_the_spec_lacks_is_located_at_the_search_key(path, message):
    text = spec(f"{path}: {{int: [1, 3]}}")
    (error,) = errors(text)
    assert error.message == message
    assert error.path == f"search.space.{path}"
    assert error.loc.line == len(text.splitlines())


def test_an_existing_list_item_is_searchable():
    space = compile_text(
        spec("training.callbacks[0].early_stopping.patience: {int: [1, 3]}"), "s.yaml"
    ).search
    assert space.dimensions[0].target == ("training", "callbacks", 0, "early_stopping", "patience")


def test_parameters_beside_a_main_parameter_written_alone_do_not_overlap():
    text = spec(
        "drop.rate: {float: [0.1, 0.5]}",
        "drop.seed: {choice: [1, 2]}",
        "model[2].max_pool2d.pool_size: {choice: [2, 3]}",
        "model[2].max_pool2d.strides: {choice: [1, 2]}",
    )
    compiled = compile_text(text, "s.yaml")
    values = {"drop.rate": 0.2, "drop.seed": 2, "model[2].max_pool2d.pool_size": 3}
    doc = apply_values(compiled.doc, compiled.search, {**values, "model[2].max_pool2d.strides": 1})
    assert doc.data["model"][4] == {"id": "drop", "dropout": {"rate": 0.2, "seed": 2}}
    assert doc.data["model"][2] == {"max_pool2d": {"pool_size": 3, "strides": 1}}


def test_the_objective_is_checked_for_every_data_and_training_value():
    text = (
        spec("data.validation_split: {choice: [0.0, 0.2]}")
        .replace("    - early_stopping: {monitor: val_loss, patience: 2}\n", "")
        .replace("  callbacks:\n", "")
    )
    (error,) = errors(text)
    assert "the objective 'val_accuracy'" in error.message and "data.validation_split = 0.0" in error.message
    line = text.splitlines()[error.loc.line - 1]
    assert line[error.loc.column - 1 :].startswith("0.0")  # at the bad choice
    assert error.hint == "validation values need data.validation_split > 0"


def test_an_augmentation_layers_id_is_searchable():
    space = compile_text(spec("shift.height_factor: {float: [0.0, 0.2]}"), "s.yaml").search
    assert space.dimensions[0].target == ("augmentation", 0, "random_translation", "height_factor")


def test_a_block_called_with_one_value_keeps_it_when_another_parameter_is_searched():
    compiled = compile_text(spec("model[0].cb.stride: {choice: [1, 2]}"), "s.yaml")  # compiles 1 and 2
    doc = apply_values(compiled.doc, compiled.search, {"model[0].cb.stride": 2})
    assert doc.data["model"][0] == {"cb": {"filters": 8, "stride": 2}}
    alone = compile_text(spec("model[0].cb.filters: {choice: [8, 16]}"), "s.yaml")
    assert apply_values(alone.doc, alone.search, {"model[0].cb.filters": 16}).data["model"][0] == {"cb": 16}


def test_a_training_whose_kept_weights_come_from_a_nan_loss_is_no_result():
    """Its objective may still be a number (val_accuracy at chance level on NaN outputs): such a
    trial was "complete" and could become the best, with every trial diverged and exit 0."""
    from cnnspec.search.worker import diverged

    nan = float("nan")
    history = [{"loss": 0.9, "val_accuracy": 0.5}, {"loss": nan, "val_accuracy": 0.1}]
    assert diverged(history, {}) == (
        "the training loss was nan at epoch 2, whose weights the model kept: the training diverged"
    )
    assert diverged(history, {"best_epoch": 1}) is None  # a callback put epoch 1's weights back
    assert diverged(history[:1], {}) is None and diverged([], {}) is None


def test_a_list_written_as_a_kinds_one_value_is_searched_as_that_value():
    """`permute: [2, 1, 3]` and `reshape: [64, 8]` are the kind's main parameter written alone,
    not a list to index (before: internal error, TypeError, in validate, search and the LSP)."""
    text = (
        "cnnspec: 1\nname: s\ninput: {shape: [8, 8, 1]}\nmodel:\n"
        "  - conv2d: {filters: 8, kernel_size: 3, padding: same}\n"
        "  - {id: perm, permute: [2, 1, 3]}\n"
        "  - {id: flat, reshape: [64, 8]}\n"
        "  - {id: pr, prelu: [1, 2]}\n"
        "  - flatten\n  - dense: {units: 10, activation: softmax}\n"
        "data: {source: digits, validation_split: 0.1}\ntraining: {epochs: 1}\n"
        "search:\n  trials: 2\n  space:\n"
        "    perm.dims: {choice: [[2, 1, 3], [1, 2, 3]]}\n"
        "    flat.target_shape: {choice: [[64, 8], [32, 16]]}\n"
        "    pr.alpha_initializer: {choice: [zeros, ones]}\n"
    )
    compiled = compile_text(text, "s.yaml")
    values = {"perm.dims": [1, 2, 3], "flat.target_shape": [32, 16], "pr.alpha_initializer": "ones"}
    model = apply_values(compiled.doc, compiled.search, values).data["model"]
    assert model[1] == {"id": "perm", "permute": [1, 2, 3]}  # written alone, as the user wrote it
    assert model[2] == {"id": "flat", "reshape": [32, 16]}
    assert model[3] == {"id": "pr", "prelu": {"shared_axes": [1, 2], "alpha_initializer": "ones"}}
    (error,) = errors(text.replace("[1, 2, 3]]}", "[1, 2]]}"))  # a bad choice: located
    assert "permutation of 1 to 3" in error.message and error.loc.line == 16  # perm.dims


@pytest.mark.parametrize("name", ["body", "model"])
def test_a_block_named_as_a_key_on_the_way_leaves_its_list_a_list(name):
    """A block named `body` or `model`: the residual's `body:` and the `model:` on a searched
    id's path are lists of items, not the block's one value (3713549 wrapped them in a mapping:
    "expected a list of layers; received dict")."""
    text = (
        "cnnspec: 1\nname: s\ninput: {shape: [8, 8, 1]}\n"
        f"blocks:\n  {name}:\n    params: {{f: int}}\n    layers:\n"
        '      - conv2d: {filters: "${f}", kernel_size: 1}\n'
        "model:\n  - residual:\n      body:\n"
        "        - {id: c1, conv2d: {filters: 1, kernel_size: 3, padding: same}}\n"
        f"  - {name}: 4\n  - flatten\n  - dense: {{units: 10, activation: softmax}}\n"
        "data: {source: digits, validation_split: 0.1}\ntraining: {epochs: 1}\n"
        "search:\n  trials: 2\n  space:\n    c1.kernel_size: {choice: [3, 5]}\n"
    )
    compiled = compile_text(text, "s.yaml")
    model = apply_values(compiled.doc, compiled.search, {"c1.kernel_size": 5}).data["model"]
    assert model[0]["residual"]["body"][0]["conv2d"]["kernel_size"] == 5
    assert model[1] == {name: 4}


@pytest.mark.parametrize("option", ["model[2].dropout=0.2", "model[2].dropout={rate: 0.2}"])
def test_a_set_of_what_the_search_draws_is_refused_before_any_trial(runner, tmp_path, option):
    """Each trial wrote its drawn value over it: the option did nothing, without a word. Training
    the spec, which leaves its search alone, takes it."""
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    result = runner.invoke(app, ["search", str(spec), "--out", str(out), "-q", "--set", option])
    assert result.exit_code == 1, result.output
    assert "to the search, which draws it for every trial (search.space.drop.rate)" in flat(result.output)
    assert not out.exists()
    compile_spec(spec, [option])  # validate and train take it


def test_a_set_around_the_searched_value_that_leaves_it_out_is_taken(tmp_path):
    from cnnspec.analysis.search_check import check_not_set

    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    compiled = compile_spec(spec, ["vars={width: 8}"])  # a mapping around no searched value
    check_not_set(compiled, compiled.search)
    compiled = compile_spec(spec, ["model[2]={id: drop, dropout: 0.3}"])  # one that holds it
    with pytest.raises(SpecError, match="expected --set to leave"):
        check_not_set(compiled, compiled.search)


def test_a_set_of_the_epochs_a_search_over_the_phases_drops_is_refused(tmp_path):
    """Each trial's phases dropped `training.epochs` beside them, the option's too: it did
    nothing, unsaid. The spec's own epochs are still dropped (the phases stand for the plan)."""
    spec = tmp_path / "s.yaml"
    spec.write_text(
        SPEC.replace(
            "  space:\n", "  space:\n    training.phases: {choice: [[{epochs: 1}], [{epochs: 2}]]}\n"
        )
    )
    compile_spec(spec)
    with pytest.raises(SpecError) as caught:
        compile_spec(spec, ["training.epochs=3"])
    (error,) = caught.value.errors
    assert (error.loc.file, error.path) == ("<--set 1>", "training.epochs")
    assert error.message.startswith("expected the epochs in each phase; received training.epochs beside")
    assert error.notes[1].message.startswith("with search value training.phases = ")


def test_a_waiting_trial_shows_the_values_it_was_enqueued_with(tmp_path):
    """A retry (or any enqueued trial) has no params of its own until a worker takes it: the
    table and search.json showed it empty; the values it will run with are shown."""
    import optuna

    from cnnspec.search.results import trial_rows

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    trial = study.ask({"vars.width": optuna.distributions.CategoricalDistribution([2, 4])})
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number, "retry_reason": "worker died"})
    first, retry = trial_rows(study, tmp_path)
    assert retry["state"] == "WAITING" and retry["retry_of"] == 0
    assert retry["params"] == first["params"] == {"vars.width": trial.params["vars.width"]}


@pytest.mark.parametrize(("direction", "best"), [("minimize", 2.31515), ("maximize", 2.34099)])
def test_a_pruned_trials_objective_is_its_best_epochs_as_trial_json_says(tmp_path, direction, best):
    """search.json and the leaderboard showed a pruned trial's last epoch (Optuna's value)."""
    import optuna

    from cnnspec.search.results import trial_rows

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction)
    trial = study.ask()
    for epoch, value in enumerate([2.31515, 2.32859, 2.34099], start=1):
        trial.report(value, epoch)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    (row,) = trial_rows(study, tmp_path)
    assert row["state"] == "PRUNED" and row["value"] == pytest.approx(best)


def test_a_grid_smaller_than_the_trials_asked_says_where_the_study_ends(
    runner, write_spec, tmp_path, fake_train
):
    """The header said "4 trial(s)" and the search ended after 2 without a word: the grid had 2
    points, each tried once."""
    text = SPEC.replace("  pruner: none\n", "  pruner: none\n  sampler: grid\n").replace(
        "drop.rate: {float: [0.0, 0.5]}", "vars.width: {choice: [4, 8]}"
    )
    out = tmp_path / "out"
    done = runner.invoke(app, ["search", str(write_spec(text)), "--out", str(out), "--trials", "4"])
    assert done.exit_code == 0, done.output
    assert "note: the grid has 2 point(s): the study ends at 2 trial(s), not 4" in flat(done.output)
    assert len(json.loads((out / "search.json").read_text())["trials"]) == 2
    plain = runner.invoke(
        app, ["search", str(write_spec(text)), "--out", str(tmp_path / "o2"), "--trials", "2"]
    )
    assert plain.exit_code == 0 and "the grid has" not in plain.output


# -- best.yaml and the trials: the paths they read, the seed they train with -----------------------


def test_best_yaml_writes_the_path_an_expression_or_a_set_value_names_as_the_trial_read_it(
    tmp_path, monkeypatch
):
    """A data path written as ``${…}`` stayed so (``npz: ${dfile}``, read next to best.yaml:
    OUT/d.npz), and a ``--set`` one stayed relative (read from OUT, not from where search ran)."""
    optuna = pytest.importorskip("optuna")
    from cnnspec.search.results import write_summary

    folder, work = tmp_path / "ex", tmp_path / "work"
    folder.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    text = SPEC.replace("vars: {width: 4}", "vars: {width: 4, dfile: d.npz}").replace(
        "data: {source: digits, limit: 128}", 'data: {source: {npz: "${dfile}"}}'
    )
    (folder / "x.yaml").write_text(text)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    trial.suggest_float("drop.rate", 0.0, 0.5)
    study.tell(trial, 0.9)
    compiled = compile_spec(folder / "x.yaml", [])
    write_summary(tmp_path / "out", study, compiled.search, "memory", compiled)
    best = yaml.safe_load((tmp_path / "out" / "best.yaml").read_text())
    assert best["data"]["source"] == {"npz": str(folder / "d.npz")}  # the spec's folder, as training
    compiled = compile_spec(folder / "x.yaml", ["data.source.npz=ex/d.npz"])
    write_summary(tmp_path / "out2", study, compiled.search, "memory", compiled)
    best = yaml.safe_load((tmp_path / "out2" / "best.yaml").read_text())
    assert best["data"]["source"] == {"npz": str(work / "ex" / "d.npz")}  # --set: the working folder


UNSEEDED = SPEC.replace(
    "training: {epochs: 1, batch_size: 32, seed: 1}", "training: {epochs: 1, batch_size: 32}"
)


def test_a_spec_without_a_training_seed_trains_every_trial_with_the_studys_one(
    runner, write_spec, tmp_path, fake_train
):
    """Each trial drew a seed of its own: trials were scored on different validation splits,
    and best.yaml (no seed) could not train the best trial again."""
    out, spec = tmp_path / "out", write_spec(UNSEEDED.replace("  seed: 3\n", ""))
    first = runner.invoke(app, ["search", str(spec), "--out", str(out), "-n", "2"])
    assert first.exit_code == 0, first.output
    summary = json.loads((out / "search.json").read_text())
    seed = summary["training_seed"]
    assert isinstance(seed, int)
    assert (
        flat(first.output).count(f"note: no training.seed: every trial trains with the study's seed {seed}")
        == 1
    )
    again = search(runner, spec, out, "-n", "3")  # continued: the study's seed, not a new one
    assert again.exit_code == 0, again.output
    summary = json.loads((out / "search.json").read_text())
    assert summary["training_seed"] == seed and [t["seed"] for t in summary["trials"]] == [seed] * 3
    for number in range(3):
        trained = json.loads((out / f"trial-{number:03d}" / "trained.json").read_text())
        assert trained["training"]["seed"] == seed
    best = (out / "best.yaml").read_text()
    assert yaml.safe_load(best)["training"]["seed"] == seed
    assert (
        f"# training.seed {seed} is the study's: the spec sets none, and every trial trained with it" in best
    )


def test_the_studys_seed_comes_from_search_seed_and_a_spec_seed_is_left_as_it_is(
    runner, write_spec, tmp_path, fake_train
):
    out = tmp_path / "out"
    done = search(runner, write_spec(UNSEEDED), out)  # search.seed 3
    assert done.exit_code == 0, done.output
    assert json.loads((out / "search.json").read_text())["training_seed"] == 3
    assert json.loads((out / "trial-000" / "trained.json").read_text())["training"]["seed"] == 3
    own = runner.invoke(app, ["search", str(write_spec(SPEC)), "--out", str(tmp_path / "o2")])
    assert own.exit_code == 0, own.output
    assert "no training.seed" not in own.output
    summary = json.loads((tmp_path / "o2" / "search.json").read_text())
    assert summary["training_seed"] is None and "seed" not in summary["trials"][0]
    assert yaml.safe_load((tmp_path / "o2" / "best.yaml").read_text())["training"]["seed"] == 1
    assert "is the study's" not in (tmp_path / "o2" / "best.yaml").read_text()


def test_best_yaml_says_the_splits_differed_where_a_split_setting_was_searched(
    runner, write_spec, tmp_path, fake_train
):
    """best.yaml said every trial had "the same validation and test split" while the search drew
    data.validation_split."""
    text = UNSEEDED.replace("drop.rate: {float: [0.0, 0.5]}", "data.validation_split: {choice: [0.1, 0.3]}")
    out = tmp_path / "out"
    done = search(runner, write_spec(text), out)
    assert done.exit_code == 0, done.output
    assert "data.validation_split decides which images the trials train" in flat(done.output)
    best = (out / "best.yaml").read_text()
    assert (
        "every trial trained with it (but data.validation_split drew the images of each trial's splits: "
        "they differ)." in best
    )
    assert "the same validation and test split" not in best


def test_a_search_from_a_weights_run_says_its_seed_is_the_runs(runner, write_spec, tmp_path, fake_train):
    """The study takes the split seed of the run its weights: come from, said in one line (the
    trials that train: tests/test_weights_split.py)."""
    base = tmp_path / "runs" / "base"
    base.mkdir(parents=True)
    (base / "lock.json").write_text(json.dumps({"seed": 77, "data": {"kind": "digits"}}))
    (base / "resolved.yaml").write_text("data: {source: digits}\n")
    (base / "model.keras").write_bytes(b"")  # (only named: the stand-in training reads nothing)
    spec = write_spec(UNSEEDED.replace("  seed: 3\n", "") + "weights: runs/base\n")
    done = runner.invoke(app, ["search", str(spec), "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert (
        "note: no training.seed: every trial trains with the study's seed 77, the split seed of "
        "weights: runs/base, trained on the same data, so that the trials' test images are none those "
        "weights trained on"
    ) in flat(done.output)
    assert json.loads((tmp_path / "out" / "trial-000" / "trained.json").read_text())["training"]["seed"] == 77


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true"])
def test_a_sqlite_database_in_memory_is_refused_before_anything(runner, write_spec, tmp_path, url):
    """Optuna's heartbeat thread printed a traceback (no such table: trial_heartbeats), the
    finished trial was lost ("0 trial(s): none yet", no best.yaml) and the search exited 0."""
    pytest.importorskip("optuna")
    out = tmp_path / "out"
    result = runner.invoke(app, ["search", str(write_spec(SPEC)), "--out", str(out), "--storage", url])
    assert result.exit_code == 2, result.output
    text = flat(result.output)
    assert f"error: expected a SQLite database file for --storage; {url} is a database in memory" in text
    assert "hint: name a file: --storage sqlite:///path.db" in text
    assert "Traceback" not in text and not out.exists()


def test_a_study_of_the_same_name_in_another_storage_is_refused_in_the_same_out(
    runner, write_spec, tmp_path, fake_train, monkeypatch
):
    """Its trials found their folders taken (recorded as failed), and it replaced the first
    study's best.yaml, search.json, search.html and plots."""
    monkeypatch.chdir(tmp_path)
    spec = write_spec(SPEC)
    first = search(runner, spec, Path("out"))
    assert first.exit_code == 0, first.output
    kept = {path: path.read_bytes() for path in (tmp_path / "out").rglob("*") if path.is_file()}
    # (the journal inside OUT is named from OUT: a moved OUT holds the same study)
    assert json.loads((tmp_path / "out" / "search.json").read_text())["storage_id"] == "OUT/study.journal"
    url = f"sqlite:///{tmp_path}/sw.db"
    other = search(runner, spec, Path("out"), "-n", "2", "--storage", url)
    assert other.exit_code == 2, other.output
    assert flat(other.output) == (
        "error: expected --out to hold no study 'tiny_search' of another storage; out/search.json is "
        "that of the study 'tiny_search' in out/study.journal, and this search's is in "
        f"{url}: its trials' folders and its summaries would take the first's hint: choose another "
        "--out (e.g. runs/NAME-search) or another --study name; to go on with the study of "
        "search.json, search with the storage it is in (out/study.journal); --force replaces no trial "
        "folder: out holds that study's trained runs (trial-000), whose names this study's trials "
        "would take"
    )
    # --force too: the trial folders are trained runs (the hint says why it does not help)
    forced = search(runner, spec, Path("out"), "-n", "2", "--storage", url, "--force")
    assert forced.exit_code == 2 and flat(forced.output) == flat(other.output)
    assert {path: path.read_bytes() for path in (tmp_path / "out").rglob("*") if path.is_file()} == kept
    assert not (tmp_path / "sw.db").exists()  # refused before the storage was opened
    # the same storage spelled another way (an absolute --out) is the same study: it goes on
    again = search(runner, spec, tmp_path / "out", "-n", "2")
    assert again.exit_code == 0, again.output
    assert len(json.loads((tmp_path / "out" / "search.json").read_text())["trials"]) == 2


def test_force_replaces_the_summaries_of_another_storages_study_whose_trials_are_elsewhere(
    runner, write_spec, tmp_path, fake_train, monkeypatch
):
    """--force's help promised to replace the summary files, but a summary of the study of the
    same name in another storage was refused with --force too, and the hint did not say why."""
    monkeypatch.chdir(tmp_path)
    spec = write_spec(SPEC)
    assert search(runner, spec, Path("a")).exit_code == 0
    # b holds the summaries of a's study only, as `search --out b --storage a/study.journal`
    # writes them (its trials are in a); and a plot that a study of one trial does not draw
    (tmp_path / "b").mkdir()
    summary = json.loads((tmp_path / "a" / "search.json").read_text())
    summary.update(storage="a/study.journal", storage_id=str(tmp_path / "a" / "study.journal"))
    (tmp_path / "b" / "search.json").write_text(json.dumps(summary))
    for name, copied in (("best.yaml", "best.yaml"), ("history.png", "importances.png")):
        (tmp_path / "b" / copied).write_bytes((tmp_path / "a" / name).read_bytes())
    refused = search(runner, spec, Path("b"))
    assert refused.exit_code == 2, refused.output
    assert flat(refused.output).endswith(
        "search with the storage it is in (a/study.journal), or pass --force to replace its summaries "
        "(search.json …: its trials are in another --out, and the study stays in its storage)"
    )
    assert not (tmp_path / "b" / "study.journal").exists()
    forced = search(runner, spec, Path("b"), "--force")
    assert forced.exit_code == 0, forced.output
    assert (
        "note: --force: the summaries of the study 'tiny_search' in a/study.journal (search.json …) are "
        "replaced by this study's; its trials are in another --out, and it stays in its storage (a search "
        "with --storage a/study.journal writes them again)"
    ) in flat(forced.output)
    summary = json.loads((tmp_path / "b" / "search.json").read_text())
    assert (summary["storage_id"], [row["run_dir"] for row in summary["trials"]]) == (
        "OUT/study.journal",
        ["trial-000"],
    )
    assert not (tmp_path / "b" / "importances.png").exists()  # (a's: not this study's)
    assert (tmp_path / "a" / "study.journal").is_file() and (tmp_path / "a" / "trial-000").is_dir()


def test_a_moved_search_folder_goes_on_with_its_own_study(runner, write_spec, tmp_path, fake_train):
    """A renamed OUT was refused: its search.json named the journal by its old absolute path
    ("expected --out to hold no study … of another storage"; the hint named a folder gone)."""
    spec = write_spec(SPEC)
    first = search(runner, spec, tmp_path / "A")
    assert first.exit_code == 0, first.output
    (tmp_path / "A").rename(tmp_path / "B")
    again = search(runner, spec, tmp_path / "B", "-n", "2")
    assert again.exit_code == 0, again.output
    summary = json.loads((tmp_path / "B" / "search.json").read_text())
    assert [row["state"] for row in summary["trials"]] == ["COMPLETE", "COMPLETE"]
    assert (tmp_path / "B" / "trial-001" / "trial.json").is_file() and not (tmp_path / "A").exists()
    # an explicit --storage of the journal inside OUT is the same study
    (tmp_path / "B").rename(tmp_path / "C")
    named = search(
        runner, spec, tmp_path / "C", "-n", "3", "--storage", str(tmp_path / "C" / "study.journal")
    )
    assert named.exit_code == 0, named.output
    assert len(json.loads((tmp_path / "C" / "search.json").read_text())["trials"]) == 3


def test_a_journal_outside_out_that_moved_is_taken_for_the_same_storage(
    runner, write_spec, tmp_path, fake_train
):
    """A journal on a shared disk mounted at another path, or moved: its recorded path is gone."""
    spec, out = write_spec(SPEC), tmp_path / "out"
    (tmp_path / "disk1").mkdir()
    first = search(runner, spec, out, "--storage", str(tmp_path / "disk1" / "study.journal"))
    assert first.exit_code == 0, first.output
    assert json.loads((out / "search.json").read_text())["storage_id"] == str(
        tmp_path / "disk1" / "study.journal"
    )
    (tmp_path / "disk1").rename(tmp_path / "disk2")
    again = search(runner, spec, out, "-n", "2", "--storage", str(tmp_path / "disk2" / "study.journal"))
    assert again.exit_code == 0, again.output
    assert len(json.loads((out / "search.json").read_text())["trials"]) == 2
    # a journal still where search.json says is another storage: refused as before
    (tmp_path / "disk3").mkdir()
    other = search(runner, spec, out, "-n", "3", "--storage", str(tmp_path / "disk3" / "study.journal"))
    assert other.exit_code == 2, other.output
    assert "expected --out to hold no study 'tiny_search' of another storage" in flat(other.output)


def test_a_search_json_of_an_earlier_cnnspec_naming_a_folder_gone_is_taken(
    runner, write_spec, tmp_path, fake_train
):
    """Earlier search.json files named the default journal by its absolute path."""
    spec = write_spec(SPEC)
    assert search(runner, spec, tmp_path / "A").exit_code == 0
    path = tmp_path / "A" / "search.json"
    path.write_text(
        json.dumps({**json.loads(path.read_text()), "storage_id": str(path.with_name("study.journal"))})
    )
    (tmp_path / "A").rename(tmp_path / "B")
    again = search(runner, spec, tmp_path / "B", "-n", "2")
    assert again.exit_code == 0, again.output


def test_a_search_the_timeout_cut_short_says_so(runner, write_spec, tmp_path, fake_train, monkeypatch):
    """It ended at 1 of 3 trials without a word (`search tiny: 1 trial(s): 1 complete`, exit 0)."""
    import time

    from cnnspec.training import trainer

    train = trainer.train

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)  # (longer than the timeout: the next trial does not start)
        return train(*args, **kwargs)

    monkeypatch.setattr(trainer, "train", slow)
    spec = write_spec(SPEC.replace("  trials: 1\n", "  trials: 3\n  timeout: 0.3\n"))
    result = search(runner, spec, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (
        "note: timeout (0.3 s) reached after 1 of 3 trial(s); the same command continues the study"
        in flat(result.output)
    )
    assert (tmp_path / "out" / "best.yaml").is_file() and not (tmp_path / "out" / "trial-001").exists()


def test_a_search_the_timeout_ended_before_any_trial_exits_non_zero(
    runner, write_spec, tmp_path, fake_train, monkeypatch
):
    """`0 trial(s): none yet`, no best.yaml, exit 0 and no word of the timeout."""
    import time
    import types

    from cnnspec.search import worker

    clock = iter([0.0])  # the worker's first reading (ready); every later one is past the timeout
    fake = types.SimpleNamespace(
        **{
            **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")},
            "monotonic": lambda: next(clock, 1e9),
        }
    )
    monkeypatch.setattr(worker, "time", fake)
    result = search(runner, write_spec(SPEC), tmp_path / "out", "--timeout", "5", "-n", "3")
    assert result.exit_code == 1, result.output
    text = flat(result.output)
    assert "note: timeout (5 s) reached after 0 of 3 trial(s); the same command continues the study" in text
    assert text.endswith(
        "error: expected a trial of the study to finish before the timeout (5 s); none did (0 of 3 trial(s) "
        "started), so there is no best.yaml hint: raise the timeout (--timeout or search.timeout; 5 s now, "
        "counted from when a worker is ready, and one trial takes a whole training), then run the same "
        "command again"
    )
    assert not (tmp_path / "out" / "best.yaml").exists()


def test_a_storage_shared_by_two_outs_says_which_out_holds_a_trial(runner, write_spec, tmp_path, fake_train):
    """P2's summary pointed at trial-000 as its own (`best: trial 0 → trial-000`): it was in P1."""
    import socket

    spec, journal = write_spec(SPEC), str(tmp_path / "shared.journal")
    first = search(runner, spec, tmp_path / "P1", "--storage", journal)
    assert first.exit_code == 0, first.output
    fake_train.history = [{"val_accuracy": 0.25}]  # (P2's trial is worse: the best stays P1's)
    second = search(runner, spec, tmp_path / "P2", "-n", "2", "--storage", journal)
    assert second.exit_code == 0, second.output
    where = f"{socket.gethostname()}:{tmp_path / 'P1'}"
    assert f"best: trial 0 → trial-000 in {where}; spec with its values: best.yaml" in flat(second.output)
    # the leaderboard marks the trial whose folder is P1's, and says what the mark means
    table = second.output
    assert re.search(r"│ 1 │ +0\* │", table) and re.search(r"│ 2 │ +1 │", table), table
    assert "* its run folder is in another --out (search.json and search.html say which)" in second.output
    rows = json.loads((tmp_path / "P2" / "search.json").read_text())["trials"]
    assert [(row["run_dir"], row.get("elsewhere")) for row in rows] == [
        ("trial-000", where),
        ("trial-001", None),
    ]
    assert rows[1]["report"] is None or rows[1]["report"] == "trial-001/report.html"
    page = (tmp_path / "P2" / "search.html").read_text()
    assert f"best: trial 0, val_accuracy 0.5000 (trial-000 in {where})" in page
    assert f"<br><small>trial-000 in {where}</small>" in page
    # P1's own summary, written again, names P2 for trial 1
    again = search(runner, spec, tmp_path / "P1", "-n", "2", "--storage", journal)
    assert again.exit_code == 0, again.output
    rows = json.loads((tmp_path / "P1" / "search.json").read_text())["trials"]
    assert [row.get("elsewhere") for row in rows] == [None, f"{socket.gethostname()}:{tmp_path / 'P2'}"]


def test_another_sampler_on_an_existing_study_is_refused_at_search_sampler(
    runner, write_spec, tmp_path, fake_train
):
    """A grid continued after random trials skipped points and ran others twice (lr 0.004,
    0.002, 0.002, 0.001 of a 4-point grid: 0.003 never ran) and said the study was done."""
    text = SPEC.replace("  pruner: none\n", "  pruner: none\n  sampler: random\n").replace(
        "{float: [0.0, 0.5]}", "{float: [0.1, 0.4], step: 0.1}"
    )
    out, spec = tmp_path / "out", write_spec(text)
    first = search(runner, spec, out, "-n", "2")
    assert first.exit_code == 0, first.output
    before = (out / "search.json").read_bytes()
    spec.write_text(text.replace("sampler: random", "sampler: grid"))
    grid = search(runner, spec, out, "-n", "4")
    assert grid.exit_code == 1, grid.output
    line = next(n for n, row in enumerate(spec.read_text().splitlines(), 1) if "sampler:" in row)
    assert flat(grid.output) == (
        f"{spec}:{line}:12: error: search.sampler: expected search.sampler to be random, the sampler of "
        f"the study 'tiny_search' in {out}/study.journal; received grid: its trials were drawn by random, "
        f"and a grid continued after them skips points and runs others twice {line} | sampler: grid ^ "
        "hint: search with sampler: random to continue the study, or give this search another --study "
        "name (its files in the same --out are named apart) or another --out"
    )
    assert (out / "search.json").read_bytes() == before and not (out / "trial-002").exists()


def test_a_study_that_kept_no_sampler_is_known_by_its_trials():
    """A study of an older cnnspec has no record of its sampler: a grid's trials carry a grid_id."""
    optuna = pytest.importorskip("optuna")
    from cnnspec.search.study import SAMPLER_ATTR, check_sampler

    text = SPEC.replace("{float: [0.0, 0.5]}", "{choice: [0.1, 0.2]}")
    random = compile_text(text, "s.yaml").search
    grid = compile_text(
        text.replace("  pruner: none\n", "  pruner: none\n  sampler: grid\n"), "s.yaml"
    ).search
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda trial: trial.suggest_categorical("drop.rate", [0.1, 0.2]), n_trials=1)
    with pytest.raises(SpecError) as caught:
        check_sampler(study, "s", "memory", grid)
    assert caught.value.errors[0].message.startswith(
        "expected search.sampler to be random or tpe, the sampler"
    )
    check_sampler(study, "s", "memory", random)  # (taken: recorded as the study's now)
    assert study.user_attrs[SAMPLER_ATTR] == "tpe"


def test_a_trials_failure_keeps_its_whole_reason_and_hint(runner, write_spec, tmp_path, fake_train):
    """A trial that failed with an error of several lines (the bad image files a data error
    names) kept its first line alone, "2 bad image file(s) of 92:", in trial.json, search.json,
    the trial's line and the search's last error: the files and the error's hint were lost."""
    from cnnspec.errors import Diagnostic, Loc

    fake_train.error = SpecError(
        [
            Diagnostic(
                "expected every image file to be readable; 2 bad image file(s) of 92:\n"
                "  fc/one/bad.png: not a readable image\n  fc/two/trunc.png: not a readable image",
                Loc("s.yaml", 10, 23),
                "data.source.directory",
                "data",
                "remove or replace these files, or set data.on_bad_file: skip to leave them out",
            )
        ]
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["search", str(write_spec(SPEC)), "--out", str(out)])
    assert result.exit_code == 1, result.output
    whole = (
        "s.yaml:10:23: error: data.source.directory: expected every image file to be readable; 2 bad "
        "image file(s) of 92:\n  fc/one/bad.png: not a readable image\n  fc/two/trunc.png: not a "
        "readable image\n  hint: remove or replace these files, or set data.on_bad_file: skip to leave "
        "them out"
    )
    (trial,) = out.glob("*/trial.json")
    assert json.loads(trial.read_text())["failed"] == f"SpecError: {whole}"
    (row,) = json.loads((out / "search.json").read_text())["trials"]
    assert row["failed"] == f"SpecError: {whole}"
    first, rest = whole.split("\n", 1)
    assert f"trial 0: failed: {first}\n{rest}\n" in result.output  # (each line as it is)
    assert "fc/two/trunc.png: not a readable image" in result.output.split("no trial finished")[1]


def test_search_json_gives_each_trial_the_seconds_its_trial_json_and_console_line_say(
    runner, write_spec, tmp_path, fake_train, monkeypatch
):
    """search.json took Optuna's ask-to-tell time (5.46 s) where the console line and trial.json
    said the worker's own (5.2 s, 5.17 s): one trial, two figures."""
    import time

    from cnnspec.search import worker

    real = worker._write_trial_json

    def slow_bookkeeping(*args, **kwargs):  # the worker's own work around the training
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(worker, "_write_trial_json", slow_bookkeeping)
    spec, out = write_spec(SPEC), tmp_path / "out"
    done = search(runner, spec, out, "-n", "2")
    assert done.exit_code == 0, done.output
    rows = json.loads((out / "search.json").read_text())["trials"]
    for row in rows:
        said = json.loads((out / row["run_dir"] / "trial.json").read_text())["seconds"]
        assert row["seconds"] == said
