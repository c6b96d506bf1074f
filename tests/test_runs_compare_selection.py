"""`runs compare` tells two selections of one source file (``data.limit`` against
``data.per_class``: whose content hashes differ, since they trained on other images) apart from
data whose files changed. Run folders are written by hand, as training leaves them (no
TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.test_report_support import flat, invoke
from tests.test_runs import make_run, write_resolved

CREATED = "2026-01-01T10:00:00+0000"
FILE_HASH = "ab" * 32


def npz_run(
    folder: Path,
    selection: str,
    *,
    content: str,
    file_hash: str = FILE_HASH,
    test: int = 30,
    seed: int = 1,
) -> Path:
    """A finished run of ``sorted.npz`` whose resolved ``data`` holds ``selection`` (YAML lines)
    and whose lock.json records these hashes, test size and seed."""
    run = make_run(folder, lr=0.01, accuracy=0.5, created=CREATED)
    data = {
        "kind": "npz",
        "path": "/data/sorted.npz",
        "file_sha256": file_hash,
        "content_hash": content * 64,
        "sizes": {"train": 40, "validation": 15, "test": test},
    }
    lock = json.loads((run / "lock.json").read_text(encoding="utf-8"))
    (run / "lock.json").write_text(json.dumps({**lock, "seed": seed, "data": data}), encoding="utf-8")
    resolved = f"name: digits\ndata:\n  source: {{npz: sorted.npz}}\n{selection}training: {{epochs: 3}}\n"
    write_resolved(run, resolved)
    return run


def compared(a: Path, b: Path, png: Path) -> tuple[dict[str, Any], str]:
    """``runs compare``'s JSON ``data`` and its text output, flattened."""
    document = invoke("runs", "compare", a, b, "--png", png, "--format", "json", "--force")
    assert document.exit_code == 0, document.output
    text = invoke("runs", "compare", a, b, "--png", png, "--force")
    assert text.exit_code == 0 and "Traceback" not in text.output, text.output
    return json.loads(document.stdout)["data"], flat(text)


def test_a_limit_and_a_per_class_of_one_file_are_the_same_source_and_test_split(tmp_path):
    a = npz_run(tmp_path / "limit", "  limit: 40\n", content="c")
    b = npz_run(tmp_path / "per", "  per_class: 5\n", content="d")
    data, text = compared(a, b, tmp_path / "c.png")
    assert data["same"] is False and data["source"] == "same" and data["test_same"] is True
    assert data["selection"] == [
        {"key": "limit", "a": 40, "b": None},
        {"key": "per_class", "a": None, "b": 5},
    ]
    assert "data (A → B): the same source (/data/sorted.npz, file sha256 abababababab…)" in text
    assert "another selection: limit 40 → (none), per_class (none) → 5" in text
    assert "the test split can be the same (30 test images, seed 1" in text
    assert "the files or their splits changed" not in text


def test_another_test_size_or_seed_says_the_test_images_differ(tmp_path):
    a = npz_run(tmp_path / "limit", "  limit: 10\n", content="c", test=10)
    b = npz_run(tmp_path / "per", "  per_class: 5\n", content="d", seed=2)
    data, text = compared(a, b, tmp_path / "c.png")
    assert data["source"] == "same" and data["test_same"] is False
    assert "the test images differ too (10 → 30 test images, seed 1 → 2)" in text


def test_a_changed_file_is_still_said_to_differ(tmp_path):
    a = npz_run(tmp_path / "old", "  limit: 40\n", content="c")
    b = npz_run(tmp_path / "new", "  per_class: 5\n", content="d", file_hash="cd" * 32)
    data, text = compared(a, b, tmp_path / "c.png")
    assert data["source"] == "differs" and data["test_same"] is None
    assert "data (A → B): differs (content hash cccccccccccc… → dddddddddddd… in /data/sorted.npz)" in text
    assert "the files or their splits changed between the runs" in text


def test_one_selection_split_with_another_seed_names_the_seed(tmp_path):
    a = npz_run(tmp_path / "one", "  limit: 40\n", content="c", seed=1)
    b = npz_run(tmp_path / "two", "  limit: 40\n", content="d", seed=2)
    data, text = compared(a, b, tmp_path / "c.png")
    assert data["source"] == "same" and data["selection"] == []
    assert "the same source (/data/sorted.npz) and data settings, split with another seed (1 → 2)" in text


def test_two_selections_of_one_folder_say_its_files_are_not_known_to_be_the_same(tmp_path):
    """A folder has no hash of its files alone in lock.json: the same path with another
    selection is said so, and that whether its files changed is not recorded."""
    runs = []
    for name, selection, content in (("limit", "  limit: 40\n", "c"), ("per", "  per_class: 5\n", "d")):
        run = npz_run(tmp_path / name, selection, content=content)
        lock = json.loads((run / "lock.json").read_text(encoding="utf-8"))
        lock["data"] = {**lock["data"], "kind": "directory", "path": "/data/flowers"}
        del lock["data"]["file_sha256"]
        (run / "lock.json").write_text(json.dumps(lock), encoding="utf-8")
        runs.append(run)
    data, text = compared(runs[0], runs[1], tmp_path / "c.png")
    assert data["source"] is None and data["test_same"] is True
    assert "the same source path (/data/flowers; whether its files changed is not recorded)" in text
    assert "another selection: limit 40 → (none), per_class (none) → 5" in text


def test_two_sources_are_said_to_be_other_sources_not_changed_files(tmp_path):
    """digits against shapes (or an npz against a folder) said "differs (content hash …; ? →
    /data/flowers): the files or their splits changed between the runs": nothing of one changed,
    the runs read two sources (and a built-in one has no path: `?`)."""
    a = npz_run(tmp_path / "npz", "  limit: 40\n", content="c")
    b = npz_run(tmp_path / "digits", "", content="d")
    lock = json.loads((b / "lock.json").read_text(encoding="utf-8"))
    lock["data"] = {"kind": "digits", "content_hash": "d" * 64, "sizes": lock["data"]["sizes"]}
    (b / "lock.json").write_text(json.dumps(lock), encoding="utf-8")
    data, text = compared(a, b, tmp_path / "c.png")
    assert data["source"] == "differs"
    assert "data (A → B): different sources (/data/sorted.npz → digits), so the metrics are not" in text
    assert "changed between the runs" not in text and "?" not in text.split("data (A → B)")[1].split(".")[0]


def test_a_default_written_and_one_left_out_are_one_selection(tmp_path):
    """One spec writing ``test_split: 0.2`` (and ``validation_split: 0.1``, ``cache: none``),
    the defaults, and one leaving them out select alike: it listed ``test_split 0.2 → (none)``
    as another selection and said the test images differ. A key left out is compared as its
    default; another value is still told."""
    written = "  test_split: 0.2\n  validation_split: 0.1\n  cache: none\n"
    runs = []
    # (another validation split trains on other images: another content hash)
    for name, selection, content in (
        ("written", written, "c"),
        ("left", "", "c"),
        ("other", "  validation_split: 0.3\n", "d"),
    ):
        run = npz_run(tmp_path / name, selection, content=content)
        lock = json.loads((run / "lock.json").read_text(encoding="utf-8"))
        lock["data"] = {**lock["data"], "kind": "directory", "path": "/data/flowers"}
        (run / "lock.json").write_text(json.dumps(lock), encoding="utf-8")
        runs.append(run)
    data, text = compared(runs[0], runs[1], tmp_path / "c.png")
    assert data["selection"] == [] and data["test_same"] is True
    assert "another selection" not in text and "test images differ" not in text
    data, text = compared(runs[1], runs[2], tmp_path / "d.png")
    assert data["selection"] == [{"key": "validation_split", "a": 0.1, "b": 0.3}]
    assert "another selection: validation_split 0.1 → 0.3" in text


def test_test_split_has_no_default_where_the_source_has_a_test_set(tmp_path):
    """An npz file brings its own test set: no ``test_split`` is put in where the specs left it
    out (it would read as one the run split by)."""
    a = npz_run(tmp_path / "a", "", content="c")
    b = npz_run(tmp_path / "b", "  limit: 40\n", content="c")
    data, _ = compared(a, b, tmp_path / "c.png")
    assert data["selection"] == [{"key": "limit", "a": None, "b": 40}]


def test_the_same_classes_in_another_order_keep_an_array_sources_test_images(tmp_path):
    """data.classes [7, 2, 9, 4] against [4, 9, 2, 7]: the test images of an array source are the
    same (split, or given, before the selection relabels them), which compare said differed
    ("another classes"); another set of classes, or a folder (selected, then split by the new
    labels), still differs."""
    a = npz_run(tmp_path / "a", "  classes: [7, 2, 9, 4]\n", content="c")
    b = npz_run(tmp_path / "b", "  classes: [4, 9, 2, 7]\n", content="d")
    data, text = compared(a, b, tmp_path / "c.png")
    assert data["test_same"] is True and "the test split can be the same" in text
    other = npz_run(tmp_path / "other", "  classes: [4, 9, 2, 8]\n", content="e")
    data, text = compared(a, other, tmp_path / "c.png")
    assert data["test_same"] is False and "the test images differ too (another classes)" in text
    for run in (a, b):  # the same runs, of an image folder
        lock = json.loads((run / "lock.json").read_text(encoding="utf-8"))
        lock["data"] = {**lock["data"], "kind": "directory", "file_sha256": None}
        (run / "lock.json").write_text(json.dumps(lock), encoding="utf-8")
    data, text = compared(a, b, tmp_path / "c.png")
    assert data["test_same"] is not True
