"""A finished run's relative paths, read again by the commands that load it (reporting/run.py
``run_spec``): a backbone's ``spec``/``weights``, ``weights:`` and the data files of every
source start at the folder of the spec the run was trained from, not at the run folder, and
from any working directory.

The fast tests write run folders by hand (resolved.yaml, spec.yaml, lock.json) and compile them
as the reporting commands do; the slow ones train tiny runs with `cnnspec train` in one folder
and evaluate and report them from another."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cnnspec.errors import SpecError
from cnnspec.reporting.run import run_spec, trained_spec
from tests.test_report_support import flat, invoke

PRETRAIN = """\
cnnspec: 1
name: pre
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
    id: body
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 96}
training: {epochs: 1, batch_size: 32, seed: 1}
"""

# a backbone from a spec file next to this one, with weights from a run folder beside `a/`
BACKBONE = """\
cnnspec: 1
name: bbft
input: {shape: [8, 8, 1]}
model:
  - backbone: {spec: pretrain.yaml, until: body, weights: ../runs/pre}
    id: bb
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 96}
training: {epochs: 1, batch_size: 32, seed: 1}
"""

LABELLED = """\
cnnspec: 1
name: mlf
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3}
  - global_avg_pool2d
  - dense: {units: 3, activation: sigmoid}
data:
  source: {images: imgs, labels: labels.csv}
training: {epochs: 1, batch_size: 4, seed: 1}
"""


def write_labelled(folder: Path, count: int = 20) -> None:
    """``count`` 8×8 RGB PNGs in ``folder/imgs`` and their labels in ``folder/labels.csv``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "imgs").mkdir(parents=True)
    names = ["cat", "dog", "fox"]
    rows = ["file,labels"]
    for index in range(count):
        pixels = rng.integers(0, 255, (8, 8, 3)).astype("uint8")
        Image.fromarray(pixels).save(folder / "imgs" / f"{index}.png")
        rows.append(f"{index}.png,{' '.join(names[: 1 + index % 3])}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def fake_run(project: Path, spec: str, spec_file: str, run: str, data: dict | None = None) -> Path:
    """A run folder as `cnnspec train spec_file --out run` leaves it (from ``project``), without
    a model: the spec as written and resolved, and a lock.json that names the spec as given."""
    folder = project / run
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(spec, encoding="utf-8")
    (folder / "resolved.yaml").write_text("# resolved\n" + spec, encoding="utf-8")
    lock = {"format": 1, "name": "x", "spec_file": spec_file, "seed": 1, "weights": None, "data": data or {}}
    (folder / "lock.json").write_text(json.dumps(lock), encoding="utf-8")
    return folder


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path/proj with a/pretrain.yaml, a/bb.yaml (its backbone), ml/ (images and labels) and
    a pretrained run folder runs/pre; the working directory is elsewhere."""
    root = tmp_path / "proj"
    (root / "a").mkdir(parents=True)
    (root / "a" / "pretrain.yaml").write_text(PRETRAIN, encoding="utf-8")
    (root / "a" / "bb.yaml").write_text(BACKBONE, encoding="utf-8")
    (root / "ml").mkdir()
    (root / "ml" / "ml.yaml").write_text(LABELLED, encoding="utf-8")
    write_labelled(root / "ml")
    (root / "runs" / "pre").mkdir(parents=True)
    (root / "runs" / "pre" / "model.keras").write_bytes(b"PK")  # only its place is read here
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return root


def test_a_backbone_spec_and_weights_are_read_from_the_trained_specs_folder(project):
    from cnnspec.training.transfer_loads import spec_loads

    run = fake_run(project, BACKBONE + "weights: ../runs/pre\n", "a/bb.yaml", "runs/bb")
    found = trained_spec(run, json.loads((run / "lock.json").read_text()))
    assert found == (project / "a" / "bb.yaml").resolve()
    compiled = run_spec(run, json.loads((run / "lock.json").read_text()))
    assert compiled is not None and compiled.ir.node("bb_body") is not None  # pretrain.yaml's body
    model = (project / "runs" / "pre" / "model.keras").resolve()
    # the backbone's weights, then the top-level weights: section, both from a/../runs/pre
    assert [load.source.file.resolve() for load in spec_loads(compiled)] == [model, model]


def test_every_data_path_is_read_from_the_trained_specs_folder_without_the_lock(project):
    from cnnspec.analysis.settings import training_config

    run = fake_run(project, LABELLED, "ml/ml.yaml", "runs/mlf")  # lock.json records no data paths
    compiled = run_spec(run, json.loads((run / "lock.json").read_text()))
    assert compiled is not None
    data = training_config(compiled).data
    assert (data.path, data.labels_path) == (project / "ml" / "imgs", project / "ml" / "labels.csv")


def test_the_data_paths_lock_json_records_are_taken(project, tmp_path):
    from cnnspec.analysis.settings import training_config

    moved = tmp_path / "moved"
    recorded = {"kind": "image_labels", "path": str(moved / "imgs"), "labels_path": str(moved / "l.csv")}
    run = fake_run(project, LABELLED, "ml/ml.yaml", "runs/mlf", recorded)
    compiled = run_spec(run, json.loads((run / "lock.json").read_text()))
    assert compiled is not None
    data = training_config(compiled).data
    assert (data.path, data.labels_path) == (moved / "imgs", moved / "l.csv")


def test_the_spec_copy_decides_between_two_files_of_the_same_name(project, tmp_path, monkeypatch):
    """The working directory has a/bb.yaml too (another project): the one whose text is the
    run's spec.yaml is taken."""
    other = tmp_path / "other"
    (other / "a").mkdir(parents=True)
    (other / "a" / "bb.yaml").write_text(BACKBONE.replace("bbft", "another"), encoding="utf-8")
    monkeypatch.chdir(other)
    run = fake_run(project, BACKBONE, "a/bb.yaml", "runs/bb")
    found = trained_spec(run, json.loads((run / "lock.json").read_text()))
    assert found == (project / "a" / "bb.yaml").resolve()


def test_a_spec_no_longer_found_is_named_in_a_note(project, tmp_path):
    run = fake_run(project, BACKBONE, "a/bb.yaml", "runs/bb")
    moved = tmp_path / "moved-run"
    run.rename(moved)  # no folder above it holds a/bb.yaml any more
    with pytest.raises(SpecError) as caught:
        run_spec(moved, json.loads((moved / "lock.json").read_text()))
    (error,) = caught.value.errors
    assert "no such backbone spec" in error.message
    assert any("lock.json: a/bb.yaml), which was not found" in note.message for note in error.notes)


# -- trained runs, read from another working directory ----------------------------------------
def _train(project: Path, monkeypatch: pytest.MonkeyPatch, spec: str, out: str, elsewhere: Path) -> Path:
    """`cnnspec train SPEC --out OUT` from ``project`` (relative names, as a user types them)."""
    monkeypatch.chdir(project)
    result = invoke("train", spec, "--out", out)
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(elsewhere)
    return project / out


def _read_back(run: Path, tmp_path: Path) -> None:
    assert (run / "report.html").is_file(), "train writes report.html at its end"
    evaluated = invoke("evaluate", run)
    assert evaluated.exit_code == 0, evaluated.output
    reported = invoke("report", run, "--out", tmp_path / f"{run.name}.html")
    assert reported.exit_code == 0, reported.output
    assert "wrote" in flat(reported)


# a second, longer proof: run_spec's reading of a backbone's spec and weights from the trained
# spec's folder is proven without TensorFlow above, and the reporting commands' use of run_spec
# on a real run by test_the_commands_read_a_moved_projects_data_or_say_that_its_recorded_path_is_gone
@pytest.mark.slow
@pytest.mark.full
def test_a_run_with_a_backbone_from_a_spec_file_is_evaluated_and_reported(project, tmp_path, monkeypatch):
    elsewhere = Path.cwd()
    (project / "runs" / "pre" / "model.keras").unlink()
    (project / "runs" / "pre").rmdir()
    _train(project, monkeypatch, "a/pretrain.yaml", "runs/pre", elsewhere)
    run = _train(project, monkeypatch, "a/bb.yaml", "runs/bb", elsewhere)
    assert json.loads((run / "transfer.json").read_text())["loaded"] > 0
    _read_back(run, tmp_path)


@pytest.mark.slow
def test_a_run_of_images_and_labels_is_evaluated_and_reported(project, tmp_path, monkeypatch):
    run = _train(project, monkeypatch, "ml/ml.yaml", "runs/mlf", Path.cwd())
    _read_back(run, tmp_path)


def test_a_run_trained_with_allow_outside_reads_its_outside_backbone_again_only_when_asked(project):
    """The backbone spec lies above the spec's folder: read again only when this command says
    --allow-outside. The run folder's own lock.json (anyone who hands over the folder writes
    it) no longer lifts the rule; it only puts the way out in the hint."""
    from cnnspec.errors import SpecError

    outside = BACKBONE.replace("spec: pretrain.yaml", "spec: ../a/pretrain.yaml").replace(
        ", weights: ../runs/pre", ""
    )
    (project / "c").mkdir()
    (project / "c" / "bb.yaml").write_text(outside, encoding="utf-8")
    run = fake_run(project, outside, "c/bb.yaml", "runs/outside")
    lock = json.loads((run / "lock.json").read_text())
    with pytest.raises(SpecError, match="outside the spec's folder"):
        run_spec(run, lock)
    lock["command"] = ["cnnspec", "train", "c/bb.yaml", "--allow-outside"]
    with pytest.raises(SpecError, match="outside the spec's folder") as refused:
        run_spec(run, lock)
    assert any("pass --allow-outside" in (d.hint or "") for d in refused.value.diagnostics)
    compiled = run_spec(run, lock, allow_outside=True)
    assert compiled is not None and compiled.ir.node("bb_body") is not None


# -- a project folder renamed or moved since training -----------------------------------------
def test_a_renamed_projects_data_is_read_where_it_is_now_when_it_hashes_as_recorded(project, tmp_path):
    """lock.json records the data's absolute paths, gone once the project folder is renamed:
    the spec's own paths, read from where the spec is now, are taken when the data there hashes
    as lock.json records (its files named as they were), with a note; else the recorded paths
    stay, and loading them says they are gone."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.reporting.run import moved_data_note
    from cnnspec.training.data import load_dataset

    run = fake_run(project, LABELLED, "ml/ml.yaml", "runs/mlf")
    compiled = run_spec(run, json.loads((run / "lock.json").read_text()))
    assert compiled is not None
    config = training_config(compiled)
    recorded = {**config.data.describe(), "content_hash": load_dataset(compiled, config, 1).content_hash()}
    lock = {**json.loads((run / "lock.json").read_text()), "data": recorded}
    lock["spec_path"] = str(project / "ml" / "ml.yaml")
    (run / "lock.json").write_text(json.dumps(lock), encoding="utf-8")
    moved = project.rename(tmp_path / "renamed")

    compiled = run_spec(moved / "runs" / "mlf", lock)
    assert compiled is not None
    config = training_config(compiled)
    assert (config.data.path, config.data.labels_path) == (moved / "ml" / "imgs", moved / "ml" / "labels.csv")
    assert moved_data_note(config, lock) == (
        f"data moved: read {moved / 'ml' / 'imgs'}, recorded as {project / 'ml' / 'imgs'}; read "
        f"{moved / 'ml' / 'labels.csv'}, recorded as {project / 'ml' / 'labels.csv'} (lock.json; the "
        "same data by its recorded hash)"
    )
    # other labels since: not the run's data; the recorded (gone) paths are kept
    labels = moved / "ml" / "labels.csv"
    labels.write_text(labels.read_text(encoding="utf-8").replace("0.png,cat", "0.png,dog"), encoding="utf-8")
    compiled = run_spec(moved / "runs" / "mlf", lock)
    assert compiled is not None
    config = training_config(compiled)
    assert (config.data.path, config.data.labels_path) == (
        project / "ml" / "imgs",
        project / "ml" / "labels.csv",
    )
    assert moved_data_note(config, lock) is None


@pytest.fixture(scope="module")
def colors_run(tmp_path_factory):
    from tests.test_report_support import trained_run

    return trained_run(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_the_commands_read_a_moved_projects_data_or_say_that_its_recorded_path_is_gone(colors_run, tmp_path):
    """The tiny run's project (spec.yaml, colors.npz, run/) copied to proj/, its lock.json saying
    it was trained in old/ (the folder renamed since): evaluate, calibrate, visualize and report
    read proj/colors.npz, of the SHA-256 lock.json records, with a note. Another colors.npz
    there: each names the recorded path as gone, and how to go on."""
    project, old = tmp_path / "proj", tmp_path / "old"
    project.mkdir()
    for name in ("spec.yaml", "colors.npz"):
        (project / name).write_bytes((colors_run.parent / name).read_bytes())
    run = project / "run"
    shutil.copytree(colors_run, run)
    lock = json.loads((run / "lock.json").read_text("utf-8"))
    lock["spec_path"], lock["spec_file"] = str(old / "spec.yaml"), "spec.yaml"  # (`train spec.yaml`)
    lock["data"]["path"] = str(old / "colors.npz")
    (run / "lock.json").write_text(json.dumps(lock), encoding="utf-8")

    moved = f"note: data moved: read {project / 'colors.npz'}, recorded as {old / 'colors.npz'}"
    for command in (
        ["evaluate", run, "-o", tmp_path / "e"],
        ["calibrate", run, "--force"],
        ["visualize", run, "samples", "-o", tmp_path / "s.png"],
    ):
        result = invoke(*command)
        assert result.exit_code == 0, result.output
        assert moved in flat(result), result.output
    evaluation = json.loads((tmp_path / "e" / "evaluation.json").read_text("utf-8"))
    assert evaluation["data"]["matches_run"] is True

    other = dict(np.load(project / "colors.npz"))
    other["y_test"] = (other["y_test"] + 1) % 3
    np.savez(project / "colors.npz", **other)
    gone = f"error: data.source.npz: expected an .npz file; {old / 'colors.npz'} does not exist"
    hint = (
        f"hint: the run read its data from {old / 'colors.npz'} (lock.json), which is gone: put it "
        "back there, or pass --data SOURCE to use other data"
    )
    note = (
        f"note: {project / 'colors.npz'}, where the spec's path leads from here, is not the data the "
        "run trained on: its SHA-256 is not the one lock.json records"
    )
    for command in (["evaluate", run], ["calibrate", run], ["visualize", run, "samples"]):
        result = invoke(*command)
        assert result.exit_code == 1, result.output
        assert gone in flat(result) and hint in flat(result) and note in flat(result), result.output
        assert "Traceback" not in result.output
    reported = invoke("report", run, "-o", tmp_path / "r.html")
    assert reported.exit_code == 0, reported.output
    page = " ".join((tmp_path / "r.html").read_text("utf-8").split())
    assert f"{old / 'colors.npz'} does not exist; the run read its data from" in page
