"""Run folders someone else made, or damaged ones (reporting/run.py ``read_lock``,
``read_history``; reporting/runs.py; export/runtimes.py): every command that reads a run says
"damaged run file", naming the file and the key, and exits 2 as for any damaged run; never an
internal error (exit 3). ``cnnspec runs`` lists such a run as damaged beside the good ones.

The run folders are written by hand (lock.json, metrics.json, history.json, resolved.yaml and
a stand-in model.keras): every refusal comes before a model is loaded, so nothing here needs
TensorFlow."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import pytest

from cnnspec.errors import UsageError
from cnnspec.export.runtimes import choose, find_export, installed, record_path, record_text, write_record
from tests.test_report_support import flat, invoke

SPEC = """\
cnnspec: 1
name: tiny
input: {shape: [8, 8, 1]}
model:
  - flatten
  - dense: {units: 3, activation: softmax}
data: {source: digits}
"""

#: A lock.json as the current cnnspec writes it (training/rundir.py), trimmed of nothing the
#: reporting commands read.
LOCK = {
    "format": 1,
    "name": "tiny",
    "created": "2026-01-02T03:04:05+0000",
    "spec_file": None,
    "spec_path": None,
    "spec_hash": "0123456789abcdef" * 4,
    "overrides": [],
    "command": ["cnnspec", "train", "tiny.yaml"],
    "weights": None,
    "seed": 1,
    "deterministic": False,
    "dtype_policy": "float32",
    "jit_compile": {"setting": False, "chosen": False},
    "tasks": [{"name": "dense", "task": "classification", "shape": [3], "threshold": 0.5}],
    "data": {
        "kind": "digits",
        "content_hash": "ab" * 32,
        "sizes": {"train": 100, "validation": 10, "test": 30},
        "sample_shape": [8, 8, 1],
        "dtype": "float32",
        "classes": ["a", "b", "c"],
        "target": "class",
    },
    "phases": [
        {
            "epochs": 2,
            "first_epoch": 1,
            "last_epoch": 2,
            "frozen": [],
            "optimizer": "adam",
            "learning_rate": {"cosine_decay": {"decay_steps": 10}},
        }
    ],
    "versions": {"python": "3.11.9", "cnnspec": "0.1.0", "onnx": "not installed"},
    "machine": {"platform": "Linux", "cpu_count": 2, "gpus": []},
}
#: What an older cnnspec wrote: fewer keys (no phases, weights, tasks, spec_path, machine).
OLD_LOCK = {
    "format": 1,
    "name": "tiny",
    "created": "2025-01-01T00:00:00+0000",
    "seed": 3,
    "data": {"kind": "digits"},
}
METRICS = {"test_accuracy": 0.5, "test_loss": 1.2, "epochs_run": 2, "epochs_planned": 2, "train_seconds": 3.0}
HISTORY = {"epoch": [1, 2], "loss": [1.5, "nan"], "accuracy": [0.3, 0.5], "val_loss": [1.6, 1.4]}
#: Nested deeper than Python's json decoder can recurse (a RecursionError, not a ValueError).
DEEP = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"


def make_run(folder: Path, *, lock: dict | None = None, model: bool = True) -> Path:
    """A finished run folder written by hand; ``model``: with a stand-in model.keras (the
    commands refuse a damaged run before they load it)."""
    folder.mkdir(parents=True)
    (folder / "resolved.yaml").write_text(SPEC)
    (folder / "lock.json").write_text(json.dumps(LOCK if lock is None else lock))
    (folder / "metrics.json").write_text(json.dumps(METRICS))
    (folder / "history.json").write_text(json.dumps(HISTORY))
    if model:
        stand_in_model(folder / "model.keras")
    return folder


def stand_in_model(path: Path) -> None:
    """A .keras archive as far as its zip directory tells (what `cnnspec runs` reads of it),
    never loaded: a config.json of no model."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")


def damage(run: Path, file: str, change: object) -> None:
    """Write ``change`` over ``file``: text as it is, a function of the file's JSON as JSON."""
    if isinstance(change, str):
        (run / file).write_text(change)
    else:
        document = json.loads((run / file).read_text())
        (run / file).write_text(json.dumps(change(document)))  # type: ignore[operator]


def assert_damaged(result, run: Path, file: str, *words: str) -> None:
    """Exit 2 with the damaged-run error naming the file (and the key), no internal error."""
    text = flat(result)
    assert result.exit_code == 2, result.output
    assert "internal error" not in text and "Traceback" not in text
    assert f"damaged run file {run / file}" in text, text
    for word in words:
        assert word in text, (word, text)


# -- 1. JSON nested too deeply to read -----------------------------------------------------------
@pytest.mark.parametrize("file", ["lock.json", "metrics.json", "history.json"])
def test_report_of_a_run_with_a_deeply_nested_file_is_a_damaged_run_error(tmp_path, file):
    run = make_run(tmp_path / "run", model=False)
    damage(run, file, DEEP)
    assert_damaged(invoke("report", run), run, file, "nested too deeply")
    assert not (run / "report.html").exists()


def test_evaluate_and_predict_of_a_run_with_a_deeply_nested_lock_are_damaged_run_errors(tmp_path):
    run = make_run(tmp_path / "run")
    damage(run, "lock.json", DEEP)
    image = tmp_path / "image.png"
    image.write_bytes(b"not read")
    assert_damaged(invoke("evaluate", run), run, "lock.json", "nested too deeply")
    assert_damaged(invoke("predict", run, image), run, "lock.json", "nested too deeply")


def test_visualize_history_of_a_deeply_nested_history_is_a_damaged_run_error(tmp_path):
    run = make_run(tmp_path / "run")
    damage(run, "history.json", DEEP)
    assert_damaged(invoke("visualize", run, "history"), run, "history.json", "nested too deeply")


@pytest.mark.parametrize("file", ["lock.json", "metrics.json"])
def test_runs_lists_a_deeply_nested_run_as_damaged_beside_the_good_ones(tmp_path, file):
    root = tmp_path / "runs"
    make_run(root / "good")
    broken = make_run(root / "broken")
    damage(broken, file, DEEP)
    result = invoke("runs", root, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["run"]: row for row in json.loads(result.stdout)}
    assert rows["good"]["status"] == "finished" and rows["good"]["test_accuracy"] == 0.5
    assert rows["broken"]["status"] == "damaged"
    assert rows["broken"]["problems"] == [f"{file} is not valid JSON (nested too deeply to read)"]
    table = invoke("runs", root)
    assert table.exit_code == 0, table.output
    assert "good" in table.stdout and f"damaged: {broken}: {file} is not valid JSON" in flat(table)


def test_runs_compare_notes_a_deeply_nested_history(tmp_path):
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    damage(b, "history.json", DEEP)
    result = invoke("runs", "compare", a, b, "--png", tmp_path / "c.png", "--format", "json")
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    assert any(f"damaged run file {b / 'history.json'}" in note for note in notes), notes


# -- 2. a non-finite number in an export record --------------------------------------------------
META = {
    "input": {
        "shape": [8, 8, 1],
        "color_mode": "grayscale",
        "rescale_integer": 1 / 255,
        "rescale_float": None,
    },
    "output": {"binary": False, "from_logits": False, "classes": ["a", "b", "c"]},
}


def exported(tmp_path: Path, runtime: str, meta: dict) -> Path:
    """A run with a stand-in export of ``runtime`` and a verified record of ``meta``."""
    run = make_run(tmp_path / "run")
    export = run / "export" / f"model.{runtime}"
    export.parent.mkdir()
    export.write_bytes(b"export bytes")
    # written as a hand edit would leave it: cnnspec's own writer refuses NaN (no JSON)
    record = json.loads(
        record_text(export, run / "model.keras", {"verified": True, "max_abs_diff": 1e-7}, {})
    )
    record_path(export).write_text(json.dumps({**record, **meta}, indent=2), encoding="utf-8")
    return run


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("key", ["rescale_integer", "rescale_float"])
def test_a_non_finite_rescale_in_a_record_is_refused_with_the_re_export_hint(tmp_path, key, value):
    run = exported(tmp_path, "onnx", {**META, "input": {**META["input"], key: value}})
    with pytest.raises(UsageError) as info:
        find_export(run, "onnx")
    assert f"has an input {key} that is no number ({value!r})" in str(info.value)
    assert info.value.hint == f"re-export it: cnnspec export {run} --format onnx"
    runtime, record, notes = choose(run, "auto")  # auto passes it over, to Keras
    assert (runtime, record) == ("keras", None) and any(key in note for note in notes)


def test_any_non_finite_number_of_what_predict_reads_is_refused(tmp_path):
    outputs = [{"name": "mask", "task": "segmentation", "shape": [8, 8, 1], "threshold": math.nan}]
    run = exported(tmp_path, "onnx", {**META, "outputs": outputs})
    with pytest.raises(UsageError, match=r"has outputs\[0\]\.threshold nan, which is no finite number"):
        find_export(run, "onnx")


def test_a_deeply_nested_record_is_refused(tmp_path):
    run = exported(tmp_path, "onnx", META)
    record_path(run / "export" / "model.onnx").write_text(DEEP)
    with pytest.raises(UsageError, match=r"unreadable record .* \(nested too deeply"):
        find_export(run, "onnx")


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_predict_with_a_nan_rescale_in_the_record_exits_2(tmp_path, runtime):
    if not installed(runtime):
        pytest.skip(f"the {runtime} runtime is not installed")
    run = exported(tmp_path, runtime, {**META, "input": {**META["input"], "rescale_integer": math.nan}})
    image = tmp_path / "image.png"
    image.write_bytes(b"not read")
    result = invoke("predict", run, image, "--runtime", runtime)
    assert result.exit_code == 2, result.output
    text = flat(result)
    assert "has an input rescale_integer that is no number (nan)" in text and "internal error" not in text
    assert f"cnnspec export {run} --format {runtime}" in text


# -- 3. run files of the wrong types, or inconsistent ---------------------------------------------
WRONG = {
    "lock-data-list": ("lock.json", lambda d: {**d, "data": [1]}, "data is a list ([1]), expected an object"),
    "lock-versions-text": (
        "lock.json",
        lambda d: {**d, "versions": "x"},
        "versions is a string ('x'), expected an object",
    ),
    "lock-machine-number": ("lock.json", lambda d: {**d, "machine": 5}, "machine is a number (5)"),
    "lock-sizes-text": (
        "lock.json",
        lambda d: {**d, "data": {**d["data"], "sizes": {"train": "many"}}},
        "data.sizes.train is a string ('many'), expected a number",
    ),
    "lock-gpus": (
        "lock.json",
        lambda d: {**d, "machine": {"gpus": [1]}},
        "machine.gpus is a list ([1]), expected a list of strings",
    ),
    "lock-classes-object": (
        "lock.json",
        lambda d: {**d, "data": {**d["data"], "classes": {"a": 1}}},
        "data.classes is an object",
    ),
    "lock-frozen-number": (
        "lock.json",
        lambda d: {**d, "phases": [{**d["phases"][0], "frozen": 3}, d["phases"][0]]},
        "phases[0].frozen is a number (3), expected a list",
    ),
    "lock-seed-text": ("lock.json", lambda d: {**d, "seed": "abc"}, "seed is a string ('abc')"),
    "lock-list": ("lock.json", "[1, 2]", "expected a JSON object; received list"),
    "history-longer-loss": (
        "history.json",
        lambda d: {**d, "loss": [1, 2, 3, 4, 5]},
        "loss has 5 value(s), epoch has 2 (one per epoch)",
    ),
    "history-text": (
        "history.json",
        lambda d: {**d, "accuracy": [0.1, "x"]},
        "accuracy[1] is a string ('x')",
    ),
    "history-null": (
        "history.json",
        lambda d: {**d, "loss": [None, 1]},
        "loss[0] is null, expected a number",
    ),
    "history-epoch-object": (
        "history.json",
        lambda d: {**d, "epoch": {"a": 1}},
        "epoch is an object ({'a': 1}), expected a list of whole numbers",
    ),
}


@pytest.mark.parametrize(("file", "change", "words"), WRONG.values(), ids=WRONG.keys())
def test_report_of_a_run_file_of_the_wrong_types_is_a_damaged_run_error(tmp_path, file, change, words):
    for model in (False, True):  # an unfinished run's report, and a finished one's
        run = make_run(tmp_path / f"run-{model}", model=model)
        damage(run, file, change)
        assert_damaged(invoke("report", run), run, file, words)


@pytest.mark.parametrize("case", ["lock-data-list", "lock-versions-text", "lock-list"])
def test_every_command_that_reads_the_lock_refuses_a_damaged_one(tmp_path, case):
    file, edit, words = WRONG[case]
    run = make_run(tmp_path / "run")
    damage(run, file, edit)
    image = tmp_path / "image.png"
    image.write_bytes(b"not read")
    for command in (["evaluate", run], ["predict", run, image], ["visualize", run, "history"]):
        assert_damaged(invoke(*command), run, file, words)


def test_visualize_history_refuses_a_history_longer_than_its_epochs(tmp_path):
    run = make_run(tmp_path / "run")
    damage(run, "history.json", lambda d: {**d, "loss": [1, 2, 3, 4, 5]})
    assert_damaged(invoke("visualize", run, "history"), run, "history.json", "loss has 5 value(s)")
    assert not (run / "history.png").exists()


def test_runs_lists_a_run_with_a_wrong_typed_lock_as_damaged_beside_the_good_ones(tmp_path):
    root = tmp_path / "runs"
    make_run(root / "good")
    broken = make_run(root / "broken")
    damage(broken, "lock.json", lambda d: {**d, "data": [1], "versions": "x"})
    result = invoke("runs", root, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["run"]: row for row in json.loads(result.stdout)}
    assert rows["good"]["status"] == "finished" and rows["good"]["problems"] == []
    assert rows["broken"]["status"] == "damaged"
    assert rows["broken"]["problems"] == [
        "lock.json: data is a list ([1]), expected an object",
        "lock.json: versions is a string ('x'), expected an object",
    ]
    assert rows["broken"]["spec"] == "tiny" and rows["broken"]["test_accuracy"] == 0.5


@pytest.mark.parametrize("lock", [LOCK, OLD_LOCK, {}], ids=["current", "older", "empty"])
def test_runs_written_by_this_or_an_older_cnnspec_are_not_refused(tmp_path, lock):
    run = make_run(tmp_path / "run", lock=lock, model=False)
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    assert (run / "report.html").is_file() and (run / "history.png").is_file()
    listed = invoke("runs", tmp_path, "--format", "json")
    (row,) = json.loads(listed.stdout)  # (the page needs no model; the run does)
    assert row["status"] == "damaged"
    assert row["problems"] == ["model.keras: missing, though metrics.json says the run finished"]
    stand_in_model(run / "model.keras")
    listed = invoke("runs", tmp_path, "--format", "json")
    assert [row["status"] for row in json.loads(listed.stdout)] == ["finished"]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            lambda model: model.write_bytes(b""),
            "expected a Keras model (a .keras zip archive); it is not one",
        ),
        (
            lambda model: model.write_bytes(model.read_bytes()[:30]),
            "it is not one (corrupt or another format)",
        ),
        (lambda model: (model.unlink(), model.mkdir()), "expected a .keras model file; it is a folder"),
    ],
    ids=["empty", "cut-short", "folder"],
)
def test_runs_lists_a_run_whose_model_cannot_be_loaded_as_damaged(tmp_path, change, said):
    """An empty, cut-short or folder model.keras was listed "finished", while evaluate refused it."""
    run = make_run(tmp_path / "run")
    change(run / "model.keras")
    (row,) = json.loads(invoke("runs", tmp_path, "--format", "json").stdout)
    assert row["status"] == "damaged"
    assert len(row["problems"]) == 1 and row["problems"][0].startswith("model.keras: ")
    assert said in row["problems"][0]


def test_runs_lists_a_run_whose_lock_json_is_a_folder_as_damaged(tmp_path):
    """It was left out of the listing without a word: no row, no note."""
    run = make_run(tmp_path / "run")
    (run / "lock.json").unlink()
    (run / "lock.json").mkdir()
    (row,) = json.loads(invoke("runs", tmp_path, "--format", "json").stdout)
    assert row["status"] == "damaged"
    assert row["problems"][0].startswith("lock.json: not a file, though the folder holds a run's")


@pytest.mark.parametrize("model", [True, False], ids=["corrupt", "missing"])
def test_report_of_a_finished_run_whose_model_is_damaged_warns_on_stderr(tmp_path, model):
    """The page is written with everything else the run holds (exit 0), and the damage the page
    mentions is said on stderr too: before, only the page said it."""
    run = make_run(tmp_path / "run", model=model)
    if model:
        (run / "model.keras").write_bytes(b"no zip archive")
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    assert (run / "report.html").is_file()
    warning = " ".join(result.stderr.split())
    if model:
        expected = (
            "warning: the model could not be loaded, so the page has no sample predictions: expected a Keras "
            f"model (a .keras zip archive); {run / 'model.keras'} is not one (corrupt or another format)"
        )
    else:
        expected = (
            f"warning: {run / 'model.keras'} is missing: the page has no sample predictions or feature maps"
        )
    assert warning == expected
    assert result.stdout.startswith(f"wrote {run / 'report.html'}")


def test_report_of_an_unfinished_run_without_a_model_gives_no_warning(tmp_path):
    run = make_run(tmp_path / "run", model=False)
    (run / "metrics.json").unlink()  # (training in progress, or stopped before its end)
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_plot_history_draws_columns_of_other_lengths_cut_to_the_epochs(tmp_path):
    from cnnspec.training.plots import plot_history

    target = plot_history({"epoch": [1, 2], "loss": [1.0, 0.5, 0.2], "val_loss": [1.1]}, tmp_path / "h.png")
    assert target.read_bytes()[:4] == b"\x89PNG"


def test_export_of_a_damaged_run_keeps_its_earlier_export(tmp_path):
    """The lock was read for the record after the new export had replaced the old one, and the
    export was then deleted (exit 2, the old record orphaned): the run files are read first."""
    import zipfile

    run = exported(tmp_path, "tflite", META)
    with zipfile.ZipFile(run / "model.keras", "w") as archive:  # passes the archive check
        archive.writestr("config.json", "{}")
    export = run / "export" / "model.tflite"
    write_record(export, run / "model.keras", {"verified": True, "max_abs_diff": 1e-7}, META)
    before = {p.name: p.read_bytes() for p in export.parent.iterdir()}
    damage(run, "lock.json", lambda d: {**d, "data": [1]})
    result = invoke("export", run, "--format", "tflite")
    assert_damaged(result, run, "lock.json", "data is a list")
    assert {p.name: p.read_bytes() for p in export.parent.iterdir()} == before


def test_a_record_edited_after_the_export_is_refused_and_auto_passes_it_over(tmp_path):
    """Another input shape fed ONNX Runtime the wrong tensor (exit 3), and a TFLite session was
    resized to it and answered otherwise; other class names were printed as the model's."""
    run = make_run(tmp_path / "run")
    export = run / "export" / "model.onnx"
    export.parent.mkdir()
    export.write_bytes(b"export bytes")
    text = record_text(export, run / "model.keras", {"verified": True, "max_abs_diff": 1e-7}, META)
    record_path(export).write_text(text, encoding="utf-8")
    assert find_export(run, "onnx").sample_shape == (8, 8, 1)  # as written: served
    for edit in (
        {"input": {**META["input"], "shape": [8, 8, 3]}},
        {"output": {**META["output"], "classes": ["x", "y", "z"]}},
    ):
        record_path(export).write_text(json.dumps({**json.loads(text), **edit}), encoding="utf-8")
        with pytest.raises(UsageError, match="was edited after the export") as info:
            find_export(run, "onnx")
        assert info.value.hint == f"re-export it: cnnspec export {run} --format onnx"
        runtime, record, notes = choose(run, "auto")
        assert (runtime, record) == ("keras", None) and any("edited" in note for note in notes)
    older = {k: v for k, v in json.loads(text).items() if k != "serving_sha256"}  # before the digest
    record_path(export).write_text(json.dumps(older), encoding="utf-8")
    assert find_export(run, "onnx").classes == ["a", "b", "c"]


# -- 4. a resolved.yaml changed or cut since training wrote it -----------------------------------
def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: lock.json as training writes it now: with the SHA-256 of the run's resolved.yaml (SPEC).
HASHED_LOCK = {**LOCK, "resolved_sha256": _sha256(SPEC)}
#: SPEC cut as a copy that stopped halfway cuts it: in the middle of a layer's name.
CUT = SPEC[: SPEC.index("dense") + 3]
CHANGED = "resolved.yaml: expected the file training wrote (lock.json's resolved_sha256); its SHA-256 differs"


def test_a_cut_resolved_yaml_is_a_damaged_run_file_not_the_users_spec_error(tmp_path):
    """A resolved.yaml cut in `- dense` was compiled as the spec: report and evaluate said
    "d.yaml (resolved in bad):6:5: error: model[1].den: unknown layer kind" (a line of the user's
    spec that is something else), exit 1; runs listed the run as finished."""
    spec = tmp_path / "d.yaml"
    spec.write_text(SPEC)
    run = make_run(tmp_path / "runs" / "bad", lock={**HASHED_LOCK, "spec_path": str(spec)})
    (run / "resolved.yaml").write_text(CUT)
    for command in ("report", "evaluate"):
        result = invoke(command, run)
        assert_damaged(result, run, "resolved.yaml", "its SHA-256 differs: it was changed or cut since")
        assert "resolved in" not in flat(result) and str(spec) not in flat(result)
    assert not (run / "report.html").exists()
    make_run(tmp_path / "runs" / "good", lock=HASHED_LOCK)
    listed = invoke("runs", tmp_path / "runs", "--format", "json")
    assert listed.exit_code == 0, listed.output
    rows = {row["run"]: row for row in json.loads(listed.stdout)}
    assert rows["good"]["status"] == "finished" and rows["good"]["problems"] == []
    assert rows["bad"]["status"] == "damaged"
    assert rows["bad"]["problems"] == [CHANGED + ": it was changed or cut since"]


def test_runs_compare_does_not_show_a_cut_resolved_yaml_as_a_spec_change(tmp_path):
    a = make_run(tmp_path / "a", lock=HASHED_LOCK)
    b = make_run(tmp_path / "b", lock=HASHED_LOCK)
    (b / "resolved.yaml").write_text(CUT)
    result = invoke("runs", "compare", a, b, "--png", tmp_path / "c.png", "--format", "json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["spec_diff"] == [] and found["spec_missing"] == {"B": "resolved.yaml is damaged"}
    assert f"{b}: resolved.yaml is damaged: the resolved specs are not compared" in found["missing"]
    assert f"{b}: {CHANGED}: it was changed or cut since" in found["notes"]
    text = invoke("runs", "compare", a, b, "--png", tmp_path / "d.png")
    assert "resolved specs: not compared (B: resolved.yaml is damaged)" in flat(text)
    assert "-  - dense" not in text.stdout  # (no diff of the cut)


@pytest.mark.parametrize(
    ("cut", "problem"),
    [
        (CUT, ("6:5", "model[1].den: unknown layer kind 'den'")),
        (SPEC[: SPEC.index("model:")], ("1:1", "<root>: missing required key `model`")),
    ],
    ids=["in-a-name", "at-a-line"],
)
def test_an_older_runs_resolved_yaml_that_does_not_compile_is_damaged(tmp_path, cut, problem):
    """A lock.json of an older cnnspec records no hash of resolved.yaml: training wrote one that
    compiled, so one that does not was changed since. The same run whole is not refused."""
    run = make_run(tmp_path / "runs" / "old", lock=OLD_LOCK, model=False)
    result = invoke("report", run)  # (the page needs no model)
    assert result.exit_code == 0, result.output
    stand_in_model(run / "model.keras")
    listed = invoke("runs", tmp_path / "runs", "--format", "json")
    assert [(row["status"], row["problems"]) for row in json.loads(listed.stdout)] == [("finished", [])]
    (run / "resolved.yaml").write_text(cut)
    where, what = problem
    for command in ("report", "evaluate"):
        assert_damaged(invoke(command, run), run, "resolved.yaml", "expected a spec that compiles", what)
    (row,) = json.loads(invoke("runs", tmp_path / "runs", "--format", "json").stdout)
    assert row["status"] == "damaged"
    assert row["problems"] == [
        "resolved.yaml: expected a spec that compiles, as training wrote it; "
        f"{run / 'resolved.yaml'}:{where}: {what}"
    ]


def test_an_error_in_a_runs_resolved_yaml_names_that_file_not_the_users_spec(tmp_path):
    """resolved.yaml as training wrote it (its hash recorded), whose spec no longer compiles
    here: the error quotes resolved.yaml's line, and is located there, not in the user's spec
    (`d.yaml (resolved in run):5:5`, whose line 5 is something else)."""
    spec = tmp_path / "d.yaml"
    spec.write_text("# the user's spec, edited since\n" + SPEC)
    written = SPEC.replace("- flatten", "- flattenz")  # (a kind this cnnspec does not know)
    run = make_run(
        tmp_path / "run", lock={**LOCK, "spec_path": str(spec), "resolved_sha256": _sha256(written)}
    )
    (run / "resolved.yaml").write_text(written)
    result = invoke("report", run)
    assert result.exit_code == 1, result.output
    text = flat(result)
    assert f"{run / 'resolved.yaml'}:5:5: error: model[0].flattenz: unknown layer kind 'flattenz'" in text
    assert "resolved in" not in text and "5 | - flattenz" in text


def test_a_finished_run_that_lost_its_lock_is_listed_as_damaged(tmp_path):
    """`cnnspec runs` left such a folder out without a word: "0 run(s)", exit 0."""
    run = make_run(tmp_path / "x")
    (run / "lock.json").unlink()
    result = invoke("runs", run, "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["status"] == "damaged" and row["test_accuracy"] == 0.5
    assert row["problems"] == [
        "lock.json: missing, though the folder holds a run's metrics.json, model.keras, resolved.yaml"
    ]
    table = invoke("runs", tmp_path)
    assert "1 run(s)" in flat(table) and f"damaged: {run}: lock.json: missing" in flat(table)
    (run / "model.keras").unlink()  # (a folder with fewer of a run's files: not taken for one)
    assert json.loads(invoke("runs", tmp_path, "--format", "json").stdout) == []
