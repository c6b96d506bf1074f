"""Freezing, statically (no TensorFlow): the ``trainable: false`` item flag, freeze/unfreeze
patterns, ``training.phases`` settings, and what ``cnnspec inspect`` shows of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnspec.analysis.freezing import Patterns
from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec, compile_text
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from tests.conftest import ROOT, cold_commands
from tests.test_lsp import FROZEN as LSP_FROZEN
from tests.test_no_tensorflow import HEAVY

HEAD = """\
cnnspec: 1
name: frozen
input: {shape: [8, 8, 1]}
blocks:
  unit:
    params: {f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 3, padding: same}
        id: c
      - batch_norm
"""
MODEL = """\
model:
  - unit: {f: 4}
    id: stem
  - repeat: {times: 2, layers: [unit: {f: 6}]}
    id: body
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
    id: head
"""
LINES = len((HEAD + MODEL).splitlines())  # the line before a training section
STEM = ["stem_c", "stem_batch_norm_1"]
BODY = ["body_unit_1_c", "body_unit_1_batch_norm_1", "body_unit_2_c", "body_unit_2_batch_norm_1"]


def compiled_with(model: str = MODEL, training: str = ""):
    return compile_text(HEAD + model + training, "spec.yaml")


def frozen_names(compiled) -> list[str]:
    return [node.name for node in compiled.ir.nodes if not node.trainable]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("  - unit: {f: 4}\n    id: stem\n", STEM),  # a block call
        ("  - repeat: {times: 2, layers: [unit: {f: 6}]}\n    id: body\n", BODY),  # a repeat
        ("  - dense: {units: 10, activation: softmax}\n    id: head\n", ["head"]),  # a layer
    ],
    ids=["block-call", "repeat", "layer"],
)
def test_trainable_false_freezes_every_layer_the_item_makes(item, expected):
    flagged = MODEL.replace(item, item + "    trainable: false\n")
    assert flagged != MODEL
    assert frozen_names(compiled_with(flagged)) == expected
    assert frozen_names(compiled_with()) == []


def test_the_innermost_trainable_flag_wins():
    spec = HEAD.replace("        id: c\n", "        id: c\n        trainable: true\n") + MODEL.replace(
        "    id: stem\n", "    id: stem\n    trainable: false\n"
    )
    assert frozen_names(compile_text(spec, "spec.yaml")) == ["stem_batch_norm_1"]


def test_trainable_must_be_a_boolean():
    with pytest.raises(SpecError) as info:
        compiled_with(MODEL.replace("    id: head\n", "    id: head\n    trainable: ${1 + 1}\n"))
    (error,) = info.value.errors
    assert "expected true or false" in error.message and error.path.endswith("trainable")


def test_inspect_json_counts_frozen_parameters(runner, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + MODEL.replace("    id: stem\n", "    id: stem\n    trainable: false\n"))
    result = runner.invoke(app, ["inspect", str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    rows = {row["name"]: row for row in summary["layers"]}
    compiled = compile_text(spec.read_text(), str(spec))
    frozen = sum(compiled.ir.node(name).counts.trainable for name in STEM)
    assert frozen > 0 and summary["frozen_params"] == frozen
    own = sum(node.counts.trainable for node in compiled.ir.nodes)  # (each layer's own weights)
    assert summary["trainable_params"] == compiled.ir.totals.trainable == own - frozen
    assert summary["non_trainable_params"] == compiled.ir.totals.non_trainable
    assert all(rows[name]["frozen_params"] == compiled.ir.node(name).counts.trainable for name in STEM)
    assert all(rows[name]["frozen_params"] == 0 for name in BODY)

    text = runner.invoke(app, ["inspect", str(spec)]).output
    assert "frozen" in text and f"{frozen:,}" in text


def test_inspect_shows_the_layers_frozen_when_training_starts(runner, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + MODEL + "training:\n  freeze: [body]\n")
    summary = json.loads(runner.invoke(app, ["inspect", str(spec), "--format", "json"]).output)
    frozen = {row["name"] for row in summary["layers"] if row["frozen_params"]}
    assert frozen == set(BODY)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("head", ["head"]),  # an id: the layer's name
        ("stem", STEM),  # a block instance: every layer inside
        ("body.unit_2", BODY[2:]),  # a hierarchical name
        ("body.unit_1.c", ["body_unit_1_c"]),  # down to one layer
        ("*_c", ["stem_c", "body_unit_1_c", "body_unit_2_c"]),  # a glob over layer names
        ("body.*", BODY),  # a glob over hierarchical names
    ],
)
def test_freeze_patterns(pattern, expected):
    config = training_config(compiled_with(training=f"training:\n  freeze: ['{pattern}']\n"))
    assert list(config.phases[0].frozen) == expected


def test_unfreeze_applies_after_freeze_and_after_the_item_flag():
    model = MODEL.replace("    id: stem\n", "    id: stem\n    trainable: false\n")
    config = training_config(compiled_with(model, "training:\n  freeze: ['*']\n  unfreeze: [stem_c, head]\n"))
    assert list(config.phases[0].frozen) == ["stem_batch_norm_1", *BODY]


def test_phases_carry_freezing_over_and_set_their_optimizer():
    config = training_config(
        compiled_with(
            training="""\
training:
  optimizer: {sgd: {learning_rate: 0.1, momentum: 0.9}}
  phases:
    - {epochs: 2, freeze: ['*'], unfreeze: [head]}
    - {epochs: 3, unfreeze: [body.unit_2], learning_rate: 0.01}
    - {epochs: 1, unfreeze: ['*'], optimizer: {adam: {learning_rate: 0.0001}}}
"""
        )
    )
    assert config.epochs == 6 and config.phased
    assert [p.first_epoch for p in config.phases] == [0, 2, 5]
    assert list(config.phases[0].frozen) == STEM + BODY
    assert list(config.phases[1].frozen) == STEM + BODY[:2]
    assert list(config.phases[2].frozen) == []
    optimizers = [(p.optimizer.name, p.optimizer.learning_rate) for p in config.phases]
    assert optimizers == [("sgd", 0.1), ("sgd", 0.01), ("adam", 0.0001)]
    assert config.phases[1].optimizer.settings == {"momentum": 0.9}
    assert [config.phase_at(e) for e in range(7)] == [0, 0, 1, 1, 1, 2, 2]


def errors_of(training: str) -> list:
    with pytest.raises(SpecError) as info:
        training_config(compiled_with(training=training))
    return info.value.errors


def test_a_pattern_matching_nothing_is_a_located_error_with_near_names():
    errors = errors_of("training:\n  phases:\n    - {epochs: 1, freeze: [stme, 'conv9_*']}\n")
    assert [e.path for e in errors] == ["training.phases[0].freeze[0]", "training.phases[0].freeze[1]"]
    assert all("matches none" in e.message for e in errors)
    assert errors[0].hint == "did you mean `stem`?"
    assert "near names" in errors[1].hint and errors[0].loc.line == errors[1].loc.line == LINES + 3


def test_a_freeze_pattern_of_layers_without_weights_is_a_located_warning(runner, tmp_path):
    """Freezing (or unfreezing) only a pooling layer changes nothing: the run trained with
    nothing frozen without a word. Warned at the pattern, as a learning_rate_scale factor on
    such layers is; a pattern that also matches layers with weights is no warning."""
    training = """\
training:
  freeze: ['global_*', stem]
  unfreeze: [global_avg_pool2d_1]
  phases:
    - {epochs: 1, freeze: [body, 'global_*']}
    - {epochs: 1, unfreeze: ['global_*']}
"""
    warnings: list = []
    config = training_config(compiled_with(training=training), warnings)
    assert [(w.path, w.code, w.loc.line) for w in warnings] == [
        ("training.freeze[0]", "unused-setting", LINES + 2),
        ("training.unfreeze[0]", "unused-setting", LINES + 3),
        ("training.phases[0].freeze[1]", "unused-setting", LINES + 5),
        ("training.phases[1].unfreeze[0]", "unused-setting", LINES + 6),
    ]
    assert warnings[0].message == (
        "freezing 'global_*' has no effect: the layers it matches have no weights to train"
    )
    assert warnings[1].message.startswith("unfreezing 'global_avg_pool2d_1' has no effect")
    assert "`cnnspec inspect` shows their parameters" in warnings[0].hint
    assert list(config.phases[0].frozen) == STEM + BODY  # the patterns still apply
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + MODEL + "training:\n  phases: [{epochs: 1, freeze: [body]}]\n")
    result = runner.invoke(
        app, ["validate", str(spec), "--set", "training.phases[0].freeze=[global_avg_pool2d_1]"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning: training.phases[0].freeze[0]: freezing 'global_avg_pool2d_1' has no effect" in text


def test_a_freeze_that_its_own_unfreeze_undoes_is_a_located_warning():
    """``freeze: [body]`` beside ``unfreeze: ["*"]`` trained the body without a word (unfreezing
    comes second). Warned at the freeze pattern, naming the unfreeze patterns that undo it; a
    freeze that an unfreeze narrows (``["*"]`` then ``[head]``) is the usual idiom, no warning."""
    training = """\
training:
  freeze: [stem, body]
  unfreeze: ['body.*', stem_c]
  phases:
    - {epochs: 1, freeze: ['*'], unfreeze: [head]}
    - {epochs: 1, freeze: [body, head], unfreeze: ['*']}
"""
    warnings: list = []
    config = training_config(compiled_with(training=training), warnings)
    assert [(w.path, w.code, w.loc.line) for w in warnings] == [
        ("training.freeze[1]", "unused-setting", LINES + 2),
        ("training.phases[1].freeze[0]", "unused-setting", LINES + 6),
        ("training.phases[1].freeze[1]", "unused-setting", LINES + 6),
    ]
    assert warnings[0].message == (
        "freezing 'body' has no effect: the unfreeze beside it ('body.*') frees every layer it "
        "matches, and unfreezing comes after freezing"
    )
    assert "('*')" in warnings[2].message and "narrow the unfreeze patterns" in warnings[2].hint
    assert list(config.phases[0].frozen) == STEM + BODY  # the patterns still apply as written
    assert list(config.phases[1].frozen) == []


def test_a_phase_with_two_learning_rates_is_a_located_error():
    """A phase's learning_rate beside its optimizer's own would replace it without a word (the
    run trained at 0.01, not 0.5): refused at the phase's key, as training refuses one beside
    its optimizer, with the optimizer to write instead."""
    (error,) = errors_of(
        "training:\n  phases:\n    - {epochs: 1}\n"
        "    - epochs: 1\n      optimizer: {sgd: {learning_rate: 0.5, momentum: 0.9}}\n"
        "      learning_rate: 0.01\n"
    )
    assert error.path == "training.phases[1].learning_rate"
    assert (error.loc.line, error.loc.column) == (LINES + 6, 7)
    assert error.message == (
        "expected one learning rate in phase 2; received learning_rate beside optimizer.sgd.learning_rate"
    )
    assert error.hint == (
        "the phase's learning_rate would replace the optimizer's 0.5: write optimizer: "
        "{sgd: {learning_rate: 0.01, momentum: 0.9}}, or remove one of them"
    )
    # a rate for an optimizer the phase names without one of its own is what the key is for
    config = training_config(
        compiled_with(
            training="training:\n  phases:\n    - {epochs: 1, optimizer: sgd, learning_rate: 0.01}\n"
            "    - {epochs: 1, optimizer: {sgd: {momentum: 0.9}}, learning_rate: 0.02}\n"
        )
    )
    assert [phase.optimizer.learning_rate for phase in config.phases] == [0.01, 0.02]


def test_a_phase_with_zero_epochs_is_a_located_error():
    with pytest.raises(SpecError) as info:
        compiled_with(training="training:\n  phases:\n    - {epochs: 1}\n    - {epochs: 0}\n")
    (error,) = info.value.errors
    assert error.path == "training.phases[1].epochs" and error.loc.line == LINES + 4


def test_epochs_beside_phases_is_an_error():
    (error,) = errors_of("training:\n  epochs: 5\n  phases:\n    - {epochs: 1}\n")
    assert error.path == "training.epochs" and "sum of the phases" in error.hint


@pytest.mark.parametrize(
    ("parent", "child", "epochs", "phased"),
    [
        ("  epochs: 20\n", "  phases:\n    - {epochs: 2, freeze: [body]}\n    - {epochs: 3}\n", [2, 3], True),
        ("  phases:\n    - {epochs: 2, freeze: [body]}\n", "  epochs: 4\n", [4], False),
    ],
    ids=["phases-drop-epochs", "epochs-drop-phases"],
)
def test_a_child_spec_replaces_the_parents_epochs_with_its_phases_and_back(
    runner, tmp_path, parent, child, epochs, phased
):
    """The phases set the epochs: a fine-tuning spec that extends a pretraining spec with
    `epochs: 20` writes its phases without the parent's epochs being refused beside them (it
    could not remove them: `epochs: null` is no value), and a child's epochs replace phases."""
    (tmp_path / "parent.yaml").write_text(HEAD + MODEL + "training:\n  batch_size: 8\n" + parent)
    spec = tmp_path / "child.yaml"
    spec.write_text("extends: parent.yaml\nname: child\ntraining:\n" + child)
    config = training_config(compile_spec(spec))
    assert [phase.epochs for phase in config.phases] == epochs and config.phased is phased
    assert config.batch_size == 8  # the rest of the parent's training section is merged as before
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output


def test_a_child_that_writes_both_epochs_and_phases_is_refused_in_the_child(tmp_path):
    (tmp_path / "parent.yaml").write_text(HEAD + MODEL + "training:\n  epochs: 20\n")
    spec = tmp_path / "child.yaml"
    spec.write_text("extends: parent.yaml\nname: child\ntraining:\n  epochs: 3\n  phases: [{epochs: 1}]\n")
    with pytest.raises(SpecError) as info:
        training_config(compile_spec(spec))
    (error,) = info.value.errors
    assert error.path == "training.epochs" and error.loc.file.endswith("child.yaml") and error.loc.line == 4


def test_a_training_error_in_an_extended_spec_names_the_file_that_extends_it(tmp_path):
    """An error the training settings find in the base is located there, with a note naming the
    spec that extends it (as the schema's and the model's errors have)."""
    parent = HEAD + MODEL + "training:\n  callbacks: [{early_stopping: {monitor: val_acc}}]\n"
    (tmp_path / "parent.yaml").write_text(parent)
    spec = tmp_path / "child.yaml"
    spec.write_text("# the fine-tuning\nextends: parent.yaml\nname: child\n")
    with pytest.raises(SpecError) as info:
        training_config(compile_spec(spec))
    (error,) = info.value.errors
    assert error.loc.file.endswith("parent.yaml") and error.loc.line == LINES + 2
    (note,) = error.notes
    assert note.message.startswith("included from ") and note.loc.file.endswith("child.yaml")
    assert (note.loc.line, note.loc.column, note.path) == (2, 10, "extends")


def test_phases_set_over_the_specs_epochs_replace_them(tmp_path):
    """`--set training.phases=…` on a spec with epochs: the phases define the epochs, so they
    stand for the whole plan (as a child spec's phases drop its parent's epochs)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + MODEL + "training:\n  epochs: 5\n  batch_size: 8\n")
    config = training_config(compile_spec(spec, ["training.phases=[{epochs: 1}, {epochs: 2}]"]))
    assert [phase.epochs for phase in config.phases] == [1, 2] and config.phased
    assert config.batch_size == 8  # only the epochs are dropped


def test_a_search_over_phases_of_a_child_drops_the_inherited_epochs(runner, tmp_path):
    """Each trial's training.phases replace the base's training.epochs, as the child's own
    phases would: the search is valid, and each trial with it."""
    (tmp_path / "base.yaml").write_text(HEAD + MODEL + "training:\n  epochs: 2\n  batch_size: 8\n")
    spec = tmp_path / "search.yaml"
    spec.write_text(
        "extends: base.yaml\nname: search\nsearch:\n  trials: 2\n  space:\n"
        "    training.phases: {choice: [[{epochs: 1}], [{epochs: 1}, {epochs: 1, freeze: [body]}]]}\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    assert "beside training.phases" not in result.output


def test_a_search_over_epochs_of_a_phased_spec_says_to_search_a_phases_epochs(runner, tmp_path):
    spec = tmp_path / "search.yaml"
    spec.write_text(
        HEAD
        + MODEL
        + "training:\n  phases: [{epochs: 1}, {epochs: 1}]\n"
        + "search:\n  trials: 2\n  space:\n    training.epochs: {choice: [1, 2]}\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"search.yaml:{LINES + 6}:5: error: search.space.training.epochs" in text
    assert "hint: search training.phases[i].epochs, a phase's epochs (i from 0 to 1)" in text


def test_train_epochs_on_a_phased_spec_says_what_to_set_instead(runner, tmp_path):
    """`train --epochs N` becomes `--set training.epochs=N`: the error names the flag the user
    typed, and the hint says to set the phase's epochs instead."""
    spec = tmp_path / "phased.yaml"
    spec.write_text(HEAD + MODEL + "training:\n  phases:\n    - {epochs: 1}\n    - {epochs: 1}\n")
    result = runner.invoke(app, ["train", str(spec), "--epochs", "2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "instead of --epochs N, set a phase's epochs" in text and "in the --epochs option" in text
    assert "--set training.phases[0].epochs=N" in text and "remove training.epochs" not in text
    assert not (tmp_path / "run").exists()


EXAMPLE = ROOT / "examples" / "transfer"


def test_the_transfer_example_freezes_the_body_then_trains_everything():
    config = training_config(compile_spec(EXAMPLE / "finetune.yaml"))
    compiled = compile_spec(EXAMPLE / "finetune.yaml")
    body = [n.name for n in compiled.ir.nodes if n.group[:1] == ("body",) and n.counts.params]
    assert body and list(config.phases[0].frozen) == body and config.phases[1].frozen == ()
    assert config.data.classes == (5, 6, 7, 8, 9) and config.data.per_class == 10
    head, everything = (p.optimizer.learning_rate for p in config.phases)
    assert everything < head  # the whole model at a lower rate than the new head
    pretrain = compile_spec(EXAMPLE / "pretrain.yaml")
    shared = [n.name for n in pretrain.ir.nodes if n.counts.params]
    assert set(body) < set(shared)  # the body's layers have the pretrained run's names: they load


def test_the_shapes_transfer_example_reuses_the_pretrained_body_for_another_task():
    """examples/transfer/shapes: pretrained to tell which shapes are present (multi-label), the
    body fine-tuned to name the dominant one from 10 images of each, on other generated images."""
    folder = EXAMPLE / "shapes"
    compiled = compile_spec(folder / "finetune.yaml")
    config = training_config(compiled)
    body = [n.name for n in compiled.ir.nodes if n.group[:1] == ("body",) and n.counts.params]
    assert body and list(config.phases[0].frozen) == body and config.phases[1].frozen == ()
    assert config.data.per_class == 10
    pretrain = compile_spec(folder / "pretrain.yaml")
    shared = [n.name for n in pretrain.ir.nodes if n.counts.params]
    assert set(body) < set(shared)  # the body loads; the heads differ, so the new one starts anew
    assert [t.task for t in training_config(pretrain).tasks] == ["multilabel"]
    data = [spec.data for spec in (training_config(pretrain), config)]
    assert [d.kind for d in data] == ["shapes", "shapes"] and [d.target for d in data] == [
        "multilabel",
        "class",
    ]
    assert data[0].options["seed"] != data[1].options["seed"]  # other images than the pretraining's


def test_inspect_of_a_phased_spec_does_not_import_tensorflow():
    args = ["inspect", "--format", "json", str(EXAMPLE / "finetune.yaml")]
    [(code, stdout, stderr, heavy)] = cold_commands([args], HEAVY)
    assert code == 0, stderr
    assert heavy == []
    assert json.loads(stdout)["frozen_params"] > 0


# -- one iteration of a carrying repeat, by the names `cnnspec inspect` shows ---------------------

CARRY = """\
cnnspec: 1
name: carry
input: {shape: [8, 8, 1]}
blocks:
  cb:
    params: {f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 3, padding: same}
        id: c
      - batch_norm
  stage:
    layers:
      - id: st
        repeat:
          times: 2
          carry: {x: input}
          layers:
            - cb: {f: 4}
              inputs: x
              id: inner
            - id: deep
              repeat:
                times: 2
                carry: {z: inner}
                layers:
                  - conv2d: {filters: 4, kernel_size: 1}
                    inputs: z
                    id: pw
                next: {z: pw}
          next: {x: deep.z}
      - residual:
          body: [cb: {f: 4}]
        id: res
        inputs: st.x
model:
  - cb: {f: 4}
    id: stem
  - id: st
    repeat:
      times: 2
      carry: {x: stem}
      layers:
        - cb: {f: 4}
          inputs: x
          id: inner
      next: {x: inner}
  - stage:
    id: s1
  - stage:
    id: s2
  - conv2d: {filters: 4, kernel_size: 1}
  - conv2d: {filters: 4, kernel_size: 1}
  - conv2d: {filters: 4, kernel_size: 1}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
"""
ST0 = ["st_0_inner_c", "st_0_inner_batch_norm_1"]
ST1 = ["st_1_inner_c", "st_1_inner_batch_norm_1"]


def frozen_by(pattern: str) -> list[str]:
    spec = CARRY + f"training:\n  phases:\n    - {{epochs: 1, freeze: ['{pattern}']}}\n"
    return list(training_config(compile_text(spec, "spec.yaml")).phases[0].frozen)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("st[1]", ST1),  # one iteration: not `st1` by a character class
        ("st[1].inner", ST1),  # the block called in it
        ("st[0].inner.c", ST0[:1]),  # one layer of it
        ("st", ST0 + ST1),  # the repeat's id: every iteration
        ("st[0]/inner", ST0),  # as inspect shows the group
        ("s1.st[1].deep[0].pw", ["s1_st_1_deep_0_pw"]),  # nested carrying repeats in a block
        ("s2.st[0].deep", ["s2_st_0_deep_0_pw", "s2_st_0_deep_1_pw"]),
        ("st_1_*", ST1),  # a glob over layer names, as before
        ("conv2d_[12]", ["conv2d_1", "conv2d_2"]),  # brackets meant as a glob's character class
        ("st[*].inner", ST0 + ST1),  # a glob with literal brackets, where the class matches none
    ],
)
def test_patterns_name_the_iterations_of_a_carrying_repeat(pattern, expected):
    assert frozen_by(pattern) == expected


def test_an_iteration_that_is_not_there_is_still_an_error():
    spec = CARRY + "training:\n  phases:\n    - {epochs: 1, unfreeze: ['st[2]']}\n"
    with pytest.raises(SpecError) as info:
        training_config(compile_text(spec, "spec.yaml"))
    (error,) = info.value.errors
    assert "'st[2]' matches none" in error.message and "st[2]" not in error.hint


def test_every_group_inspect_shows_is_a_pattern_for_the_layers_under_it(runner, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(CARRY + "training:\n  phases:\n    - {epochs: 1, unfreeze: ['st[1]']}\n")
    assert runner.invoke(app, ["validate", str(spec)]).exit_code == 0
    result = runner.invoke(app, ["inspect", str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["layers"]
    groups = {
        "/".join(row["group"].split("/")[:k]) for row in rows for k in range(1, row["group"].count("/") + 2)
    }
    assert {"st[1]/inner", "s1/st[0]/deep[1]", "s2/res/cb_1"} <= groups
    patterns = Patterns(compile_spec(spec).ir)
    for group in sorted(groups - {""}):
        under = [row["name"] for row in rows if f"{row['group']}/".startswith(f"{group}/")]
        assert patterns.match(group) == patterns.match(group.replace("/", ".")) == under, group


def test_the_irs_totals_count_frozen_items_as_the_built_model_does(tmp_path: Path):
    """`CompiledSpec.ir.totals` (the Python API's totals) counted a `trainable: false` item's
    weights as trainable; they are the built model's counts now, and inspect's totals also
    count what training.freeze freezes."""
    path = tmp_path / "frozen.yaml"
    path.write_text(LSP_FROZEN.replace("training: {freeze: [late]}\n", ""), "utf-8")
    compiled = compile_spec(path)
    summary, totals = compiled.summary(), compiled.ir.totals
    assert (totals.trainable, totals.non_trainable) == (
        summary["trainable_params"],
        summary["non_trainable_params"],
    )
    assert summary["frozen_params"] > 0 and totals.params == summary["total_params"]
    path.write_text(LSP_FROZEN, "utf-8")
    late = compile_spec(path)
    assert late.ir.totals == totals  # (the model as built: the late layer trains there)
    assert late.summary()["trainable_params"] == totals.trainable - late.ir.node("late").counts.trainable
