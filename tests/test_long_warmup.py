"""A learning-rate warm-up as long as the run: ``warmup_steps`` not below the steps a schedule
spans (an epoch's steps × its phase's epochs) is a located warning: the rate would rise all
along and never reach the schedule's first value. ``cnnspec validate`` warns where
``training.steps_per_epoch`` gives the steps; ``cnnspec train`` once the data does (slow).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_text
from tests.conftest import TINY_DIGITS_MODEL

HEAD = "cnnspec: 1\nname: warm\n" + TINY_DIGITS_MODEL
COSINE = "{cosine_decay: {initial_learning_rate: 0.01, warmup_steps: WARM}}"


def warnings_of(text: str) -> list[str]:
    compiled = compile_text(text, "spec.yaml")
    found: list = []
    training_config(compiled, found)
    return [
        f"{w.loc.line}:{w.loc.column} {w.path}: {w.message} | {w.hint}"
        for w in found
        if w.code == "long-warmup"
    ]


@pytest.mark.parametrize(("warm", "warned"), [(23, False), (24, True), (1000, True)])
def test_validate_warns_where_steps_per_epoch_gives_the_steps(warm, warned):
    text = HEAD + (
        "training:\n  epochs: 4\n  steps_per_epoch: 6\n"
        f"  optimizer: {{adam: {{learning_rate: {COSINE.replace('WARM', str(warm))}}}}}\n"
    )
    expected = (
        "12:96 training.optimizer.adam.learning_rate.cosine_decay.warmup_steps: "
        f"warmup_steps {warm} is not below the 24 steps of the run (6 per epoch × 4 epoch(s)): the "
        "learning rate rises all along and never reaches 0.01 | lower warmup_steps (a tenth of the steps "
        "is usual), or train longer"
    )
    assert warnings_of(text) == ([expected] if warned else [])


def test_each_phase_s_schedule_is_held_to_its_own_steps():
    """Each phase compiles a fresh optimizer: its schedule spans that phase's steps alone.
    Phase 1 keeps the optimizer's cosine warm-up (12 of 15 steps: fine; of 10: warned), phase 2
    warms its own piecewise rate for all its 10 steps (warned), phase 3's own optimizer warms
    up for 9 of 10 (fine)."""
    text = HEAD + (
        "training:\n  steps_per_epoch: 5\n"
        f"  optimizer: {{adam: {{learning_rate: {COSINE.replace('WARM', '12')}}}}}\n"
        "  phases:\n"
        "    - {epochs: 3}\n"
        "    - {epochs: 2, learning_rate: {piecewise_constant: "
        "{boundaries: [4], values: [0.1, 0.01], warmup_steps: 10}}}\n"
        "    - {epochs: 2, optimizer: {sgd: {learning_rate: {exponential_decay: "
        "{initial_learning_rate: 0.2, decay_steps: 3, decay_rate: 0.5, warmup_steps: 9}}}}}\n"
    )
    assert warnings_of(text) == [
        "14:108 training.phases[1].learning_rate.piecewise_constant.warmup_steps: warmup_steps 10 is not "
        "below the 10 steps of phase 2 (5 per epoch × 2 epoch(s)): the learning rate rises all along and "
        "never reaches 0.1 | lower warmup_steps (a tenth of the steps is usual), or train longer",
    ]
    longer = text.replace("- {epochs: 3}", "- {epochs: 2}")  # 10 steps: 12 is too many
    assert [warning.split(": warmup_steps")[0] for warning in warnings_of(longer)] == [
        "11:96 training.optimizer.adam.learning_rate.cosine_decay.warmup_steps",
        "14:108 training.phases[1].learning_rate.piecewise_constant.warmup_steps",
    ]
    assert (
        "warmup_steps 12 is not below the 10 steps of phase 1 (5 per epoch × 2 epoch(s))"
        in (warnings_of(longer)[0])
    )


@pytest.mark.slow
def test_train_warns_once_the_data_gives_the_steps(tmp_path: Path):
    """The digits (data.limit 128) give 4 training steps of 32 an epoch: a warm-up of 1000
    steps over 2 epochs never reaches its rate; one of 5 does."""
    from cnnspec.training.trainer import train

    text = HEAD + (
        "training:\n  epochs: 2\n"
        f"  optimizer: {{adam: {{learning_rate: {COSINE.replace('WARM', '1000')}}}}}\n"
    )
    result = train(compile_text(text, "spec.yaml"), out=tmp_path / "run")
    warned = [note for note in result.notes if "warmup_steps" in note]
    assert warned == [
        "spec.yaml:11:96: warning: training.optimizer.adam.learning_rate.cosine_decay.warmup_steps: "
        "warmup_steps 1000 is not below the 8 steps of the run (4 per epoch × 2 epoch(s)): the learning "
        "rate rises all along and never reaches 0.01; lower warmup_steps (a tenth of the steps is usual), "
        "or train longer"
    ]
    # the same check of the same 4 steps an epoch for a warm-up of 5: not warned (what train
    # hands it is the first run's; one more train would prove nothing more)
    from cnnspec.training.builders import long_warmup_warnings

    for warmup, count in (("1000", 1), ("5", 0)):
        compiled = compile_text(text.replace("1000", warmup), "spec.yaml")
        assert len(long_warmup_warnings(compiled, training_config(compiled), 4)) == count, warmup


def test_a_schedule_two_phases_keep_is_warned_about_once():
    text = HEAD + (
        "training:\n  steps_per_epoch: 5\n"
        f"  optimizer: {{adam: {{learning_rate: {COSINE.replace('WARM', '100')}}}}}\n"
        "  phases: [{epochs: 1}, {epochs: 2}]\n"
    )
    assert [warning.split(" | ")[0] for warning in warnings_of(text)] == [
        "11:96 training.optimizer.adam.learning_rate.cosine_decay.warmup_steps: warmup_steps 100 is not "
        "below the 5 steps of phase 1 (5 per epoch × 1 epoch(s)): the learning rate rises all along and "
        "never reaches 0.01"
    ]
