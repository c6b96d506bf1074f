"""`codegen --script` mixes training batches as `cnnspec train` does: the same Keras MixUp or
CutMix layer, seeded alike, after the augmentation and the labels (one-hot for a classifier,
multi-hot floats for a multilabel output) — so the script's history is train's, to 1e-6.

Each test runs the generated script in a fresh process and `cnnspec train` in this one, on tiny
data: image files streamed from disk (MixUp after a random augmentation) and the embedded shapes
source (MixUp or CutMix, switched batch by batch, on multi-hot targets); 2 epochs.
"""

from __future__ import annotations

import pytest

from tests import test_codegen_parity as files
from tests.test_mixing import MULTILABEL, SIGMOID
from tests.test_script_parity_audit import assert_same_history, run_both

#: Second proofs (make test-long): test_mixing checks the scripts' mixing code and trains with it.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.full,
    pytest.mark.filterwarnings("ignore:Your input ran out of data"),
]

#: A classifier of image files streamed from a folder, with a random augmentation before the
#: mixing (both draw from seed generators).
MIXUP = files.SPEC.replace(
    "data: {source:", "augmentation:\n  - random_translation: 0.1\ndata: {source:"
).replace("  seed: 9\n", "  mixup: {alpha: 0.4}\n  seed: 9\n")

#: A multilabel model with MixUp and CutMix both on: each batch mixed by one of them
#: (training.mix_switch; the script's switch_mixing, cnnspec train's switch layer).
CUTMIX = MULTILABEL.replace(
    "  seed: 3\nTRAINING\n",
    "  optimizer: {adam: {learning_rate: 0.01}}\n  metrics: [f1, auc]\n  mixup: {alpha: 0.3}\n"
    "  cutmix: {factor: 0.8}\n  mix_switch: 0.6\n  seed: 13\n",
)


def test_the_script_mixes_streamed_image_files_as_cnnspec_train_does(tmp_path):
    assert "random_translation" in MIXUP and "mixup: {alpha: 0.4}" in MIXUP
    theirs, ours = files.run_both(tmp_path, MIXUP)
    assert_same_history(theirs, ours)
    assert theirs["test_loss"] == pytest.approx(ours.metrics["test_loss"], abs=1e-6)


def test_the_task_script_switches_between_mixup_and_cutmix_as_cnnspec_train_does(tmp_path):
    assert "cutmix: {factor: 0.8}\n  mix_switch: 0.6" in CUTMIX and "seed: 13" in CUTMIX
    theirs, _, ours = run_both(tmp_path, CUTMIX)
    assert_same_history(theirs, ours)
    assert theirs["history"]["loss"] == pytest.approx([row["loss"] for row in ours.history], abs=1e-6)


def test_the_script_scores_a_mixed_sigmoid_head_on_rounded_labels_as_cnnspec_train_does(tmp_path):
    """A 1-unit sigmoid classifier under MixUp: the script's training accuracy, AUC, precision
    and recall (its on_rounded_labels) are train's, epoch by epoch."""
    theirs, _, ours = run_both(tmp_path, SIGMOID)
    assert set(theirs["history"]) >= {"accuracy", "auc", "precision", "recall"}
    assert_same_history(theirs, ours)
