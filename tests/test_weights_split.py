"""A run started from the weights of a run folder (``train --weights RUN``, ``weights: RUN``)
and the split of its data (cnnspec/analysis/weights_run.py, cnnspec/training/weights_split.py,
cnnspec/training/overlap.py).

Without ``training.seed`` a run draws a seed, and digits, shapes, folders … are split by it: a
run fine-tuned from an earlier run of the same data drew another test split, mostly of images
the starting weights were trained on, and scored itself on them unsaid. It now splits with the
weights run's seed; a run that sets its own seed is told how many of its test images those
weights trained or validated on. The generated script takes the same seed. Only the two tests
of train and search train (one tiny digits run, runs/base, that both start from, then theirs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cnnspec.analysis.passes import compile_spec
from cnnspec.analysis.settings import training_config
from cnnspec.analysis.weights_run import WeightsRun, adopted_note, adopted_seed, weights_run
from cnnspec.spec.weights import WeightsSource
from cnnspec.training.filelist import ImageFiles
from cnnspec.training.overlap import seen_images
from cnnspec.training.weights_split import shared_note

SPEC = """\
cnnspec: 1
name: tiny
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 2, kernel_size: 3}
  - flatten
  - dense: {units: 10, activation: softmax}
data: %s
training: {epochs: 1%s}
"""


def _config(write_spec, data: str = "{source: digits, limit: 200}", training: str = "", name="spec.yaml"):
    return training_config(compile_spec(write_spec(SPEC % (data, training), name)))


def _run_folder(folder: Path, seed: object, data: dict, test_split: float | None = None) -> Path:
    """A run folder as far as its split goes: lock.json with its seed and data, resolved.yaml
    with its data.test_split (none: the default, 0.2)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lock.json").write_text(json.dumps({"seed": seed, "data": data}), encoding="utf-8")
    split = "" if test_split is None else f", test_split: {test_split}"
    (folder / "resolved.yaml").write_text(f"data: {{source: digits{split}}}\n", encoding="utf-8")
    return folder


def _source(file: Path, *, spec: bool = False) -> WeightsSource:
    return WeightsSource("run", "runs/base", file, path="weights" if spec else "")


# -- the comparison ------------------------------------------------------------------------------
def test_seen_images_counts_per_split_by_pixels_and_by_file(tmp_path):
    rng = np.random.default_rng(1)
    train, val, other = (rng.integers(0, 255, (n, 4, 4, 1), dtype="uint8") for n in (5, 3, 4))
    test = np.concatenate([train[[0, 2, 4]], val[[1]], other])
    own = seen_images(test, (train, val))
    assert (own.images, own.counts, own.trained, own.by) == (
        8,
        {"training": 3, "validation": 1, "test": 0},
        4,
        "pixels",
    )
    assert own.listed() == "3 training and 1 validation"
    assert seen_images(test[:0], (train, val)).total == 0  # (no test image: nothing to hash)
    # files: the same file under a link is the same image; arrays are never a folder's files
    names = [tmp_path / f"{i}.png" for i in range(4)]
    for i, name in enumerate(names):
        name.write_bytes(bytes([i]))
    os.symlink(names[1], tmp_path / "link.png")
    files = ImageFiles([tmp_path / "link.png", names[2], names[3]], (4, 4), 1)
    own = seen_images(files, (ImageFiles(names[:2], (4, 4), 1), ImageFiles(names[2:3], (4, 4), 1)))
    assert (own.counts, own.by) == ({"training": 1, "validation": 1, "test": 0}, "file")
    assert seen_images(files, (train, val)).total == 0


# -- the seed, from lock.json alone --------------------------------------------------------------
def test_a_run_without_a_seed_takes_the_seed_of_a_weights_run_of_the_same_data(write_spec, tmp_path):
    config = _config(write_spec)
    base = _run_folder(tmp_path / "runs" / "base", 1388604514, {"kind": "digits", "target": "class"})
    run = weights_run(_source(base / "model.keras"), config.data)
    assert run == WeightsRun(base, "--weights runs/base", 1388604514, True, True, 0.2)
    assert adopted_seed(config, run) == 1388604514
    # the spec's weights: says so; a model file of the run's checkpoints is the run's too
    run = weights_run(_source(base / "checkpoints" / "best.keras", spec=True), config.data)
    assert run == WeightsRun(base, "weights: runs/base", 1388604514, True, True, 0.2)
    # data.classes picks from a split already drawn: the transfer example's digits 0–4 → 5–9
    picked = _config(write_spec, "{source: digits, classes: [5, 6, 7, 8, 9]}")
    assert adopted_seed(picked, weights_run(_source(base / "model.keras"), picked.data)) == 1388604514


@pytest.mark.parametrize(
    ("data", "training", "recorded", "seed"),
    [
        # a seed of its own is kept (the shared images are counted then)
        ("{source: digits}", ", seed: 5", {"kind": "digits"}, 1),
        # another source, another generator's settings: not the same images
        ("{source: digits}", "", {"kind": "shapes", "options": {"images": 100}}, 1),
        ("{source: {shapes: {images: 100, seed: 1}}}", "", {"kind": "shapes", "options": {"images": 100}}, 1),
        # a lock.json without a seed (damaged): nothing to take
        ("{source: digits}", "", {"kind": "digits"}, "abc"),
        # nor one training.seed could not hold (NumPy would refuse it): as unreadable as none
        ("{source: digits}", "", {"kind": "digits"}, -5),
        ("{source: digits}", "", {"kind": "digits"}, 2**40),
        ("{source: digits}", "", {"kind": "digits"}, 2**32),
    ],
)
def test_the_seed_is_not_taken_otherwise(write_spec, tmp_path, data, training, recorded, seed):
    config = _config(write_spec, data, training)
    base = _run_folder(tmp_path / "base", seed, recorded)
    assert adopted_seed(config, weights_run(_source(base / "model.keras"), config.data)) is None


def test_an_out_of_range_seed_is_unread_and_the_script_draws_its_own(write_spec, tmp_path):
    from tests.test_listing_edges import script_functions

    config = _config(write_spec)
    base = _run_folder(tmp_path / "runs" / "base", -5, {"kind": "digits"})
    assert weights_run(_source(base / "model.keras"), config.data).seed is None
    (base / "model.keras").write_bytes(b"")
    spec = write_spec(SPEC % ("{source: digits}", "") + "weights: runs/base\n")
    assert script_functions(spec)["SEED"] is None  # (it wrote SEED = -5)
    # training.seed's own bound is a seed still
    base = _run_folder(tmp_path / "runs" / "top", 2**32 - 1, {"kind": "digits"})
    assert adopted_seed(config, weights_run(_source(base / "model.keras"), config.data)) == 2**32 - 1


def test_another_test_split_is_not_split_with_the_weights_runs_seed(write_spec, tmp_path):
    # the test split is drawn first, from every image: its fraction and the seed decide it, so
    # the same seed with another data.test_split holds many of the images those weights learnt
    base = _run_folder(tmp_path / "base", 9, {"kind": "digits"})
    config = _config(write_spec, "{source: digits, test_split: 0.3}")
    run = weights_run(_source(base / "model.keras"), config.data)
    assert (run.same_data, run.same_split, run.test_split) == (True, False, 0.2)
    assert adopted_seed(config, run) is None
    # validation_split is drawn from what is left: it does not matter
    config = _config(write_spec, "{source: digits, validation_split: 0.3}")
    assert adopted_seed(config, weights_run(_source(base / "model.keras"), config.data)) == 9
    # the run's test_split as its resolved.yaml writes it; the default is 0.2 on both sides
    base = _run_folder(tmp_path / "b3", 9, {"kind": "digits"}, test_split=0.3)
    config = _config(write_spec, "{source: digits, test_split: 0.3}")
    assert adopted_seed(config, weights_run(_source(base / "model.keras"), config.data)) == 9
    assert (
        adopted_seed(
            _config(write_spec), weights_run(_source(base / "model.keras"), _config(write_spec).data)
        )
        is None
    )
    # a run folder without a readable resolved.yaml: its test split unknown, its seed not taken
    (base / "resolved.yaml").unlink()
    run = weights_run(_source(base / "model.keras"), config.data)
    assert (run.same_split, run.test_split, adopted_seed(config, run)) == (False, None, None)


def test_no_run_no_seed_and_a_fixed_test_set_takes_none(write_spec, tmp_path):
    config = _config(write_spec)
    assert weights_run(_source(tmp_path / "pre.keras"), config.data) is None  # no run folder
    assert weights_run(WeightsSource("imagenet", "imagenet"), config.data) is None
    assert adopted_seed(config, None) is None
    # mnist's and an .npz file's test sets are their own: the seed does not pick them
    same = WeightsRun(tmp_path, "--weights x", 3, True)
    assert adopted_seed(config, same) == 3
    for data, shape in (("{source: mnist}", "[28, 28, 1]"), ("{source: {npz: d.npz}}", "[8, 8, 1]")):
        spec = write_spec(SPEC.replace("[8, 8, 1]", shape) % (data, ""), "spec.yaml")
        assert adopted_seed(training_config(compile_spec(spec)), same) is None


def test_same_data_compares_the_files_the_paths_name(write_spec, tmp_path):
    images = tmp_path / "photos"
    (images / "a").mkdir(parents=True)
    config = _config(write_spec, "{source: {directory: photos}}")
    os.symlink(images, tmp_path / "link")
    base = _run_folder(tmp_path / "base", 7, {"kind": "directory", "path": str(tmp_path / "link")})
    assert weights_run(_source(base / "model.keras"), config.data).same_data is True
    (tmp_path / "other").mkdir()
    base = _run_folder(tmp_path / "base", 7, {"kind": "directory", "path": str(tmp_path / "other")})
    assert weights_run(_source(base / "model.keras"), config.data).same_data is False


def test_a_weights_run_whose_data_is_gone_is_said_not_compared(write_spec, tmp_path):
    # a moved or renamed project folder: lock.json's absolute data path names nothing now
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    config = _config(write_spec, "{source: {directory: imgs}}")
    gone = str(tmp_path / "proj" / "imgs")
    base = _run_folder(tmp_path / "ra", 42, {"kind": "directory", "path": gone})
    run = weights_run(_source(base / "model.keras"), config.data)
    assert (run.same_data, run.data_gone, adopted_seed(config, run)) == (False, gone, None)
    expected = (
        f"the data split of --weights runs/base could not be compared with this run's: its data "
        f"(lock.json: {gone}) is no longer there, so its seed is not taken and its images are not "
        "counted among this run's test images; if it is this data moved, set training.seed to that "
        "run's seed, 42, to split as it did"
    )
    ours = SimpleNamespace(x_test=np.zeros((2, 8, 8, 1)))
    assert shared_note(ours, run, None, 7) == expected  # (not None: the split is not known to be apart)
    assert shared_note(ours, run, lambda folder: None, 7) == expected
    # a path that is there but another folder is other data: not compared, nothing said
    (tmp_path / "other").mkdir()
    base = _run_folder(tmp_path / "rb", 42, {"kind": "directory", "path": str(tmp_path / "other")})
    run = weights_run(_source(base / "model.keras"), config.data)
    assert run.data_gone is None and shared_note(ours, run, None, 7) is None
    # another kind of source is not this data, there or not
    base = _run_folder(tmp_path / "rc", 42, {"kind": "npz", "path": gone})
    assert weights_run(_source(base / "model.keras"), config.data).data_gone is None


def test_a_moved_project_folder_is_the_same_data_found_again(write_spec, tmp_path):
    # proj/d.yaml reading proj/imgs, trained into proj/ra, then `mv proj proj3`
    (tmp_path / "proj3" / "imgs" / "a").mkdir(parents=True)
    spec = write_spec(SPEC % ("{source: {directory: imgs}}", ""), "proj3/d.yaml")
    config = training_config(compile_spec(spec))
    then = {"kind": "directory", "path": str(tmp_path / "proj" / "imgs")}
    base = _run_folder(tmp_path / "proj3" / "ra", 42, then)
    lock = json.loads((base / "lock.json").read_text())
    (base / "lock.json").write_text(json.dumps({**lock, "spec_path": str(tmp_path / "proj" / "d.yaml")}))
    run = weights_run(_source(base / "model.keras"), config.data, spec)
    assert (run.same_data, run.data_gone, run.moved_from) == (True, None, then["path"])
    assert adopted_seed(config, run) == 42
    assert adopted_note(42, run) == (
        "seed 42: the split seed of --weights runs/base, trained on the same data (found here again: "
        f"lock.json names {then['path']}), so that this run's test images are none those weights "
        "trained on (training.seed sets another)"
    )
    # without the new spec's place, or another layout beside it, or the old spec still there:
    # not found again (said as not compared)
    assert weights_run(_source(base / "model.keras"), config.data).data_gone == then["path"]
    other = write_spec(SPEC % ("{source: {directory: ../proj3/imgs}}", ""), "elsewhere/d.yaml")
    run = weights_run(_source(base / "model.keras"), training_config(compile_spec(other)).data, other)
    assert (run.same_data, run.data_gone) == (False, then["path"])
    write_spec("", "proj/d.yaml")
    run = weights_run(_source(base / "model.keras"), config.data, spec)
    assert (run.same_data, run.data_gone) == (False, then["path"])


# -- the note ------------------------------------------------------------------------------------
def test_the_note_counts_the_test_images_the_weights_run_trained_or_validated_on(tmp_path):
    rng = np.random.default_rng(2)
    train, val, fresh = (rng.random((n, 8, 8, 1), dtype="float32") for n in (6, 2, 3))
    ours = SimpleNamespace(x_test=np.concatenate([train[:2], val[:1], fresh]))
    theirs = SimpleNamespace(x_train=train, x_val=val, source={"kind": "digits"})
    asked: list[Path] = []

    def run_data(folder: Path) -> SimpleNamespace:
        asked.append(folder)
        return theirs

    run = WeightsRun(tmp_path / "base", "--weights runs/base", 11, True)
    assert shared_note(ours, run, run_data, 5) == (
        "3 of this run's 6 test images are images --weights runs/base trained or validated on "
        "(2 training and 1 validation: the same pixels): the test figures may include images the "
        "starting weights learnt; set training.seed to that run's seed, 11, to split as it did, or "
        "hold out test images of their own (data.source.test_directory, an .npz file's x_test)"
    )
    assert asked == [tmp_path / "base"]
    # the same seed (another data.test_split): the hint is to split as it did
    assert "; split as that run did (its data.test_split and data), or hold out" in shared_note(
        ours, run, run_data, 11
    )
    # another test_split (the seed taken or not): the hint names that run's
    split = WeightsRun(tmp_path / "base", "--weights runs/base", 11, True, False, 0.2)
    assert "; set data.test_split to that run's, 0.2, to split as it did, or hold out" in shared_note(
        ours, split, run_data, 11
    )
    assert (
        "; set data.test_split to that run's, 0.2, to split as it did (and training.seed to its seed, "
        "11), or hold out"
    ) in shared_note(ours, split, run_data, 5)
    # a run whose seed is unreadable (none, or out of range): its split is not known, and said
    unread = WeightsRun(tmp_path / "base", "--weights runs/base", None, True)
    assert shared_note(ours, unread, run_data, 5) == (
        "the split seed of --weights runs/base could not be read from its lock.json: this run's test "
        "images may include images those weights trained or validated on, and are not counted; hold "
        "out test images of their own (data.source.test_directory, an .npz file's x_test)"
    )
    # none shared: no note; another source: not compared at all; the run's data gone: no note
    assert shared_note(SimpleNamespace(x_test=fresh), run, run_data, 5) is None
    asked.clear()
    other = WeightsRun(tmp_path / "base", "--weights runs/base", 11, False)
    assert shared_note(ours, other, run_data, 5) is None and asked == []
    assert shared_note(ours, run, lambda folder: None, 5) is None
    assert shared_note(ours, run, None, 5) is None


# -- the generated script ------------------------------------------------------------------------
def test_the_script_splits_with_the_seed_train_takes(write_spec, tmp_path):
    from cnnspec.training.data import load_dataset
    from cnnspec.training.transfer_loads import whole_run
    from tests.test_listing_edges import script_functions

    base = _run_folder(tmp_path / "runs" / "base", 1388604514, {"kind": "digits", "target": "class"})
    (base / "model.keras").write_bytes(b"")  # (only named: neither reads it here)
    spec = write_spec(SPEC % ("{source: digits}", "") + "weights: runs/base\n")
    compiled = compile_spec(spec)
    config = training_config(compiled)
    seed = adopted_seed(config, whole_run(compiled, config))
    assert seed == 1388604514
    functions = script_functions(spec)
    assert functions["SEED"] == seed
    from sklearn.datasets import load_digits

    functions["load_digits"] = load_digits  # (its import is not among those script_functions runs)
    _, (x_test, y_test), _ = functions["load_data"]()
    dataset = load_dataset(compiled, config, seed)
    np.testing.assert_array_equal(x_test, dataset.x_test)
    np.testing.assert_array_equal(y_test, dataset.y_test)
    from cnnspec.backends.python_emitter import generate_code

    line = next(
        line for line in generate_code(compiled, script=True).text.splitlines() if line.startswith("SEED =")
    )
    assert line == (
        "SEED = 1388604514  # the split seed of weights: runs/base, trained on the same data "
        "(training.seed: none given): its test images are none those weights trained on, as in cnnspec train"
    )
    # a seed of its own is the script's too
    functions = script_functions(
        write_spec(SPEC % ("{source: digits}", ", seed: 4") + "weights: runs/base\n")
    )
    assert functions["SEED"] == 4


# -- train ---------------------------------------------------------------------------------------
#: The spec of the weights run both training tests start from (runs/base): no seed of its own.
BASE = SPEC % ("{source: digits, limit: 200}", "")


@pytest.fixture(scope="module")
def trained_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cnnspec train BASE -o runs/base`` once, for the tests that start runs from it (each
    trained the same run before): the run folder, which they copy (:func:`_base_run`), never
    write into. Trained in this process by the trainer `cnnspec train` calls, without the
    report.html it adds (a fifth of a training's time): the runs started from it read its
    model.keras, lock.json and data, never its page."""
    from tests.test_report_support import train_without_page

    folder = tmp_path_factory.mktemp("base")
    (folder / "spec.yaml").write_text(BASE, encoding="utf-8")
    train_without_page(folder / "spec.yaml", folder / "base")
    return folder / "base"


#: The tests of :func:`trained_base` run on one xdist worker, which trains it once (on two, each
#: trained its own).
BASE_RUN = pytest.mark.xdist_group("weights_base_run")


def _base_run(trained_base: Path, write_spec: Callable[..., Path], tmp_path: Path) -> Path:
    """BASE in tmp_path/spec.yaml and a copy of its trained run in tmp_path/runs/base, as
    ``cnnspec train spec.yaml -o runs/base`` in tmp_path leaves them: the spec's path."""
    shutil.copytree(trained_base, tmp_path / "runs" / "base", symlinks=True)
    return write_spec(BASE)


@pytest.mark.slow
@BASE_RUN
def test_train_from_a_run_splits_as_it_did_or_says_how_many_test_images_it_learnt(
    write_spec, runner, tmp_path, monkeypatch, trained_base
):
    from cnnspec.cli.app import app
    from cnnspec.reporting.own_data import run_data
    from cnnspec.training.data import load_dataset

    monkeypatch.chdir(tmp_path)
    spec = _base_run(trained_base, write_spec, tmp_path)  # (trained: `train spec.yaml -o runs/base`)
    seed = json.loads((tmp_path / "runs/base/lock.json").read_text())["seed"]
    result = runner.invoke(
        app, ["train", "--no-report", str(spec), "-o", "runs/b2", "--weights", "runs/base"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (
        f"seed {seed}: the split seed of --weights runs/base, trained on the same data, so that this "
        "run's test images are none those weights trained on (training.seed sets another)"
    ) in text
    assert "test images are images" not in text
    lock = json.loads((tmp_path / "runs/b2/lock.json").read_text())
    assert (lock["seed"], lock["seed_from"]) == (seed, str(tmp_path / "runs/base"))
    # a seed of its own is kept, and the shared images are counted, as evaluate --data counts them
    own = 1 if seed != 1 else 2
    result = runner.invoke(
        app,
        [
            "train",
            "--no-report",
            str(spec),
            "-o",
            "runs/b3",
            "--weights",
            "runs/base",
            "--set",
            f"training.seed={own}",
        ],
    )
    assert result.exit_code == 0, result.output
    compiled = compile_spec(spec, overrides=[f"training.seed={own}"])
    theirs = run_data(tmp_path / "runs/base")
    shared = seen_images(
        load_dataset(compiled, training_config(compiled), own).x_test, (theirs.x_train, theirs.x_val)
    )
    assert shared.trained > 0
    text = " ".join(result.output.split())
    assert (
        f"{shared.trained} of this run's 200 test images are images --weights runs/base trained or "
        f"validated on ({shared.listed(('training', 'validation'))}: the same pixels)"
    ) in text
    assert f"set training.seed to that run's seed, {seed}, to split as it did" in text
    lock = json.loads((tmp_path / "runs/b3/lock.json").read_text())
    # the note, recorded: a resumed run (a search's continued trial) says it again, not counted anew
    assert "seed_from" not in lock and f"note: {lock['test_note']}" in text
    assert lock["test_note"].startswith(f"{shared.trained} of this run's 200 test images are images")
    # a seed out of training.seed's range in its lock.json: unread, said, no internal error
    shutil.copytree(tmp_path / "runs/base", tmp_path / "runs/bad")
    lock = json.loads((tmp_path / "runs/bad/lock.json").read_text())
    (tmp_path / "runs/bad/lock.json").write_text(json.dumps({**lock, "seed": -5}))
    result = runner.invoke(app, ["train", "--no-report", str(spec), "-o", "runs/b4", "--weights", "runs/bad"])
    assert result.exit_code == 0, result.output
    assert (
        "note: the split seed of --weights runs/bad could not be read from its lock.json: this run's "
        "test images may include images those weights trained or validated on, and are not counted"
    ) in " ".join(result.output.split())


# -- search --------------------------------------------------------------------------------------
SEARCH = """\
vars: {lr: 0.001}
training: {epochs: 1, optimizer: {adam: {learning_rate: "${lr}"}}%s}
search: {trials: 1, sampler: random%s, space: {vars.lr: {float: [0.0005, 0.002], log: true}}}
"""


def test_a_search_from_a_run_trains_every_trial_with_the_weights_runs_seed(write_spec, tmp_path):
    import optuna

    from cnnspec.search.study import SEED_ATTR, adopted_split_seed, study_seed

    base = _run_folder(tmp_path / "runs" / "base", 1388604514, {"kind": "digits", "target": "class"})
    (base / "model.keras").write_bytes(b"")  # (only named: nothing reads it here)
    model = SPEC.split("training:")[0] % "{source: digits}"

    def compiled(training: str = "", search: str = "", weights: str = "weights: runs/base\n"):
        return compile_spec(write_spec(model + SEARCH % (training, search) + weights, "srch.yaml"))

    found = adopted_split_seed(compiled())
    assert found is not None and found[0] == 1388604514 and found[1].given == "weights: runs/base"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    assert study_seed(study, compiled().search, found[0]) == 1388604514
    assert study.user_attrs[SEED_ATTR] == 1388604514
    # taken before search.seed (the sampler's); a study that holds a seed keeps it
    assert study_seed(optuna.create_study(), compiled(search=", seed: 3").search, found[0]) == 1388604514
    assert study_seed(optuna.create_study(), compiled(search=", seed: 3").search, None) == 3
    assert study_seed(study, compiled().search, 5) == 1388604514
    # none taken: a seed of its own, another source's weights, no weights run
    assert adopted_split_seed(compiled(training=", seed: 4")) is None
    assert adopted_split_seed(compiled(weights="")) is None
    _run_folder(base, 1388604514, {"kind": "shapes"})
    assert adopted_split_seed(compiled()) is None


def _drawn(write_spec, tmp_path, space: str, data: str = "{source: digits}", training: str = ""):
    """The searched spec of a weights run (runs/base: seed 9, data.test_split 0.2) whose space is
    ``space``, compiled."""
    base = _run_folder(tmp_path / "runs" / "base", 9, {"kind": "digits"})
    (base / "model.keras").write_bytes(b"")  # (only named: nothing reads it here)
    text = SPEC % (data, training) + f"weights: runs/base\nsearch: {{trials: 2, space: {{{space}}}}}\n"
    return compile_spec(write_spec(text, "srch.yaml"))


@pytest.mark.parametrize(
    ("space", "data", "seed"),
    [
        # a trial can draw the run's test split: the study takes its seed, whatever the spec's own
        ("data.test_split: {choice: [0.2, 0.3]}", "{source: digits}", 9),
        ("data.test_split: {choice: [0.2, 0.3]}", "{source: digits, test_split: 0.3}", 9),
        ("data.test_split: {float: [0.1, 0.3], step: 0.1}", "{source: digits}", 9),
        # no trial can: the seed splits no trial as that run did (the spec's own 0.2 is no trial's)
        ("data.test_split: {choice: [0.25, 0.3]}", "{source: digits}", None),
        ("data.test_split: {float: [0.1, 0.3]}", "{source: digits}", None),
        # the space draws another setting: the spec's test split decides, as before
        ("data.validation_split: {choice: [0.1, 0.3]}", "{source: digits}", 9),
        ("data.validation_split: {choice: [0.1, 0.3]}", "{source: digits, test_split: 0.3}", None),
    ],
)
def test_a_search_that_draws_the_test_split_takes_the_seed_where_a_trial_can_split_as_the_run(
    write_spec, tmp_path, space, data, seed
):
    """The seed was decided by the spec's own data.test_split, which a search that draws it
    trains no trial with: the study took the run's seed for trials that all split otherwise,
    and said their test images were none those weights trained on."""
    from cnnspec.search.study import adopted_split_seed

    found = adopted_split_seed(_drawn(write_spec, tmp_path, space, data))
    assert (found[0] if found is not None else None) == seed


SOURCES = "data.source: {choice: [digits, shapes]}"
#: ... and the test split drawn beside it
BOTH = f"{SOURCES}, data.test_split: {{choice: [0.2, 0.3]}}"


@pytest.mark.parametrize(
    ("space", "data", "seed", "drawn"),
    [
        # a trial can draw the run's source: the study takes its seed, whatever the spec's own
        (SOURCES, "{source: shapes}", 9, ({"data.source": "digits"},)),
        (BOTH, "{source: shapes}", 9, ({"data.source": "digits"},)),
        # no trial can: the spec's own source (the run's) is no trial's
        ("data.source: {choice: [shapes, {shapes: {seed: 2}}]}", "{source: digits}", None, ()),
        # the run's source, but never its test split
        (f"{SOURCES}, data.test_split: {{choice: [0.25, 0.3]}}", "{source: digits}", None, ()),
    ],
)
def test_a_search_that_draws_the_source_takes_the_seed_where_a_trial_can_train_on_the_runs_data(
    write_spec, tmp_path, space, data, seed, drawn
):
    """The seed was decided by the spec's own data source, which a search that draws
    ``data.source`` trains no trial on: a search of other sources took the run's seed and said
    the trials' test images were none those weights learnt; one that can draw the run's source
    from another spec source took none."""
    from cnnspec.search.study import adopted_split_seed

    found = adopted_split_seed(_drawn(write_spec, tmp_path, space, data))
    assert (found.seed if found is not None else None) == seed
    assert (found.drawn if found is not None else ()) == drawn


def test_the_study_seeds_note_names_the_drawn_source_of_the_trials_that_split_as_the_run(
    write_spec, tmp_path
):
    from cnnspec.cli.search import seed_note
    from cnnspec.search.study import adopted_split_seed

    both = _drawn(write_spec, tmp_path, BOTH, "{source: shapes}")
    assert seed_note(9, adopted_split_seed(both), both.search) == (
        "no training.seed: every trial trains with the study's seed 9, the split seed of weights: "
        "runs/base, trained on the same data, so that the test images of the trials that draw its data "
        "(data.source digits) and its data.test_split, 0.2, are none those weights trained on (each other "
        "trial of its data counts those it holds: search.json's test_note)"
    )
    source = _drawn(write_spec, tmp_path, SOURCES, "{source: shapes}")
    assert seed_note(9, adopted_split_seed(source), source.search).endswith(
        "so that the test images of the trials that draw its data (data.source digits) are none those "
        "weights trained on"
    )
    # a study that holds another seed: not the run's, said plainly
    assert seed_note(4, adopted_split_seed(source), source.search) == (
        "no training.seed: every trial trains with the study's seed 4"
    )


def test_a_drawn_var_that_the_data_section_reads_decides_the_source(write_spec, tmp_path):
    from cnnspec.search.study import adopted_split_seed

    for name in ("a", "b"):
        (tmp_path / name / "c1").mkdir(parents=True)
    base = _run_folder(tmp_path / "runs" / "base", 9, {"kind": "directory", "path": str(tmp_path / "a")})
    (base / "model.keras").write_bytes(b"")
    text = (SPEC % ('{source: {directory: "${dir}"}}', "")).replace("data:", "vars: {dir: b}\ndata:") + (
        "weights: runs/base\nsearch: {trials: 2, space: {vars.dir: {choice: [a, b]}, "
        "data.test_split: {choice: [0.2, 0.3]}}}\n"
    )
    compiled = compile_spec(write_spec(text, "srch.yaml"))
    found = adopted_split_seed(compiled)
    assert found is not None and (found.seed, found.drawn) == (9, ({"vars.dir": "a"},))
    assert [w.split(" hint: ")[0] for w in _split_warnings(compiled)] == [
        "12:57 search.space.data.test_split: data.test_split: the trials of its data (vars.dir a) that "
        "draw 0.3 split off other test images than weights: runs/base did (its test_split is 0.2), so "
        "they test on images those weights trained or validated on: their test figures include images "
        "the starting weights learnt"
    ]


def _split_warnings(compiled) -> list[str]:
    return [
        f"{w.loc.line}:{w.loc.column} {w.path}: {w.message} hint: {w.hint}"
        for w in compiled.warnings
        if w.code == "search-split"
    ]


def test_validate_warns_at_a_drawn_test_split_that_tests_on_images_the_weights_learnt(write_spec, tmp_path):
    compiled = _drawn(write_spec, tmp_path, "data.test_split: {choice: [0.2, 0.25, 0.3]}")
    assert _split_warnings(compiled) == [
        "11:29 search.space.data.test_split: data.test_split: the trials that draw 0.25 or 0.3 split "
        "off other test images than weights: runs/base did (its test_split is 0.2), so they test on "
        "images those weights trained or validated on: their test figures include images the starting "
        "weights learnt hint: draw only 0.2 (or fix data.test_split: 0.2) for clean test figures; each "
        "such trial counts the images in search.json (test_note)"
    ]
    ranged = _drawn(write_spec, tmp_path, "data.test_split: {float: [0.1, 0.3]}")
    assert "the trials that draw a value of the range split off" in _split_warnings(ranged)[0]
    # a seed of the spec's own, not the run's: every trial
    seeded = _drawn(write_spec, tmp_path, "data.test_split: {choice: [0.2, 0.3]}", training=", seed: 4")
    assert (
        _split_warnings(seeded)[0]
        .split(" hint: ")[0]
        .endswith(
            "all trials split off other test images than weights: runs/base did (with training.seed 4, not "
            "its seed 9), so they test on images those weights trained or validated on: their test figures "
            "include images the starting weights learnt"
        )
    )
    # none: another setting drawn, another source
    assert _split_warnings(_drawn(write_spec, tmp_path, "data.validation_split: {choice: [0.1, 0.3]}")) == []
    other = _drawn(write_spec, tmp_path, "data.test_split: {choice: [0.2, 0.3]}", "{source: shapes}")
    assert _split_warnings(other) == []
    # a drawn source: the trials of the run's source, named, whatever the spec's own source
    drawn = _drawn(write_spec, tmp_path, BOTH, "{source: shapes}")
    assert _split_warnings(drawn) == [
        "11:70 search.space.data.test_split: data.test_split: the trials of its data (data.source digits) "
        "that draw 0.3 split off other test images than weights: runs/base did (its test_split is 0.2), so "
        "they test on images those weights trained or validated on: their test figures include images the "
        "starting weights learnt hint: draw only 0.2 (or fix data.test_split: 0.2) for clean test figures; "
        "each such trial counts the images in search.json (test_note)"
    ]
    shapes = "data.source: {choice: [shapes, {shapes: {seed: 2}}]}"
    elsewhere = _drawn(write_spec, tmp_path, f"{shapes}, data.test_split: {{choice: [0.2, 0.3]}}")
    assert _split_warnings(elsewhere) == []  # (no trial trains on the run's digits)


def test_a_trials_seed_from_and_test_note_are_listed_and_best_yaml_says_them(write_spec, tmp_path):
    import optuna
    import yaml

    from cnnspec.search.results import trial_rows, write_best
    from cnnspec.search.worker import record_split
    from cnnspec.training.outcomes import TrainResult

    compiled = _drawn(write_spec, tmp_path, "data.test_split: {choice: [0.2, 0.3]}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    note = "12 of this run's 128 test images are images weights: runs/base trained or validated on (…)"
    for value, seed_from, shared in ((0.9, None, note), (0.5, "/r/base", None)):
        trial = study.ask()
        trial.suggest_categorical("data.test_split", [0.2, 0.3])
        trial.set_user_attr("seed", 9)
        record_split(trial, TrainResult(tmp_path, {}, [], {}, shared_note=shared, seed_from=seed_from))
        study.tell(trial, value)
    rows = trial_rows(study, tmp_path)
    assert [(row.get("seed_from"), row.get("test_note")) for row in rows] == [(None, note), ("/r/base", None)]
    write_best(tmp_path / "best.yaml", compiled, compiled.search, rows[0], "s")
    text = (tmp_path / "best.yaml").read_text()
    assert f"# Its test split: {note}.\n" in text and yaml.safe_load(text)["training"]["seed"] == 9
    write_best(tmp_path / "best.yaml", compiled, compiled.search, rows[1], "s")
    assert (
        "# That seed is the split seed of /r/base, whose weights it starts from: its test images are "
        "none those weights trained on.\n"
    ) in (tmp_path / "best.yaml").read_text()
    # a spec that sets the run's seed itself: no study seed line for "That seed" to follow
    seeded = _drawn(write_spec, tmp_path, "data.test_split: {choice: [0.2, 0.3]}", training=", seed: 9")
    write_best(tmp_path / "best.yaml", seeded, seeded.search, rows[1], "s")
    text = (tmp_path / "best.yaml").read_text()
    assert (
        "is the study's" not in text
        and (
            "# Its training.seed is the split seed of /r/base, whose weights it starts from: its test images "
            "are none those weights trained on.\n"
        )
        in text
    )


def test_a_trial_recorded_from_its_run_folder_keeps_its_seed_from_and_test_note(tmp_path):
    """A trial whose worker died (or whose study storage failed) once its results were written
    is told the study from its run folder (record_finished); so is one stopped then
    (worker.recorded_split). Its test_note and seed_from were lost: record_split only reads a
    training's returned result."""
    import optuna

    from cnnspec.search.worker import record_finished

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.ask().set_user_attr("run_dir", "trial-000")
    folder = tmp_path / "trial-000"
    folder.mkdir()
    note = "12 of this run's 128 test images are images weights: runs/base trained or validated on (…)"
    files = {
        "metrics.json": {"epochs_run": 1},
        "history.json": {"epoch": [1], "val_accuracy": [0.5]},
        "trial.json": {"number": 0, "state": "COMPLETE", "value": 0.5},
        "lock.json": {"seed": 9, "seed_from": "/r/base", "test_note": note},
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content))
    (folder / "model.keras").write_bytes(b"")
    assert record_finished(study, study.get_trials()[0], tmp_path)
    (trial,) = study.get_trials()
    assert trial.state.name == "COMPLETE"
    assert (trial.user_attrs["seed_from"], trial.user_attrs["test_note"]) == ("/r/base", note)


@pytest.mark.slow
@BASE_RUN
def test_search_from_a_run_says_and_trains_with_its_seed(
    write_spec, runner, tmp_path, monkeypatch, trained_base
):
    from cnnspec.cli.app import app

    monkeypatch.chdir(tmp_path)
    _base_run(trained_base, write_spec, tmp_path)  # (trained: `train spec.yaml -o runs/base -q`)
    seed = json.loads((tmp_path / "runs/base/lock.json").read_text())["seed"]
    model = SPEC.split("training:")[0] % "{source: digits, limit: 200}"
    # a space that draws data.test_split: the trials of the run's split take its seed (seed_from,
    # tested without training beside), the others count the test images those weights learnt
    # (test_note in search.json); the grid's seed 1 draws 0.3 first, the one trial here
    drawn = (model + SEARCH % ("", "") + "weights: runs/base\n").replace(
        "sampler: random, space: {vars.lr: {float: [0.0005, 0.002], log: true}}",
        "sampler: grid, seed: 1, space: {data.test_split: {choice: [0.3, 0.2]}}",
    )
    result = runner.invoke(
        app, ["search", "--no-report", str(write_spec(drawn, "drawn.yaml")), "--out", "sd"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (
        f"note: no training.seed: every trial trains with the study's seed {seed}, the split seed of "
        "weights: runs/base, trained on the same data, so that the test images of the trials that draw "
        "its data.test_split, 0.2, are none those weights trained on (each other trial counts those it "
        "holds: search.json's test_note)"
    ) in text
    assert "data.test_split: the trials that draw 0.3 split off other test images" in text  # (warned)
    (row,) = json.loads((tmp_path / "sd/search.json").read_text())["trials"]
    assert row["values"] == {"data.test_split": 0.3} and "seed_from" not in row
    lock = json.loads((tmp_path / "sd/trial-000/lock.json").read_text())
    assert lock["seed"] == seed and "seed_from" not in lock
    assert re.match(
        r"[1-9]\d* of this run's \d+ test images are images weights: runs/base trained or validated on \(",
        row["test_note"],
    )
    assert f"# Its test split: {row['test_note']}.\n" in (tmp_path / "sd/best.yaml").read_text()


@pytest.mark.parametrize(
    ("theirs", "ours", "warned"), [([0, 1, 2, 3, 4], [5, 6, 7, 8, 9], False), ([0, 1], [1, 2], True)]
)
def test_no_learnt_test_images_are_warned_of_where_the_classes_share_none(
    write_spec, tmp_path, theirs, ours, warned
):
    """Weights of the digits 0–4, a search of the digits 5–9 that draws the test split: no test
    image of a trial can be one those weights learnt, yet validate warned that their test
    figures included such images (the trials' test_note counts none)."""
    compiled = _drawn(
        write_spec, tmp_path, "data.test_split: {choice: [0.1, 0.2]}", f"{{source: digits, classes: {ours}}}"
    )
    resolved = tmp_path / "runs" / "base" / "resolved.yaml"
    resolved.write_text(f"data: {{source: digits, classes: {theirs}}}\n", encoding="utf-8")
    compiled = compile_spec(compiled.path)
    assert bool(_split_warnings(compiled)) is warned
