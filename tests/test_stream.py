"""Streamed sources (issue 20): image folders and labelled CSVs read from disk batch by batch,
bad files named by path before and during training, splits from the file list, the data hash
from file metadata, and each worker of a cluster reading only its part of the files."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError, UsageError
from cnnspec.training.data import load_dataset
from cnnspec.training.filelist import ImageFiles

#: TensorFlow's internal names that leaked into the old folder reader's error (issue 20)
TF_INTERNALS = ("function_node", "IteratorGetNext", "InvalidArgumentError", "__wrapped__")


def make_images(folder: Path, classes: dict[str, int], size: int = 8, seed: int = 0) -> list[Path]:
    """A class-folder tree of small random RGB PNGs; returns the files."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    files = []
    for name, count in classes.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            path = folder / name / f"{name}{i:03d}.png"
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype="uint8")).save(path)
            files.append(path)
    return files


def png_that_verifies_but_does_not_decode(path: Path) -> None:
    """A PNG whose chunks all have correct CRCs (Pillow's verify passes) but whose pixel data
    is not a zlib stream: it fails only when decoded, mid-epoch."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"not zlib data" * 4)
        + chunk(b"IEND", b"")
    )


def spec(data: str, units: int = 3, extra: str = "") -> str:
    return (
        "cnnspec: 1\nname: streamed\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - conv2d: {filters: 2, kernel_size: 3, padding: same, activation: relu}\n"
        "  - global_avg_pool2d\n"
        f"  - dense: {{units: {units}, activation: softmax}}\ndata: {data}\n"
        f"training: {{epochs: 1, batch_size: 8, seed: 3}}\n{extra}"
    )


def load(text: str, tmp_path: Path, seed: int = 0):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    compiled = compile_spec(path)
    config = training_config(compiled)
    return load_dataset(compiled, config, seed)


# -- listing, splitting, hashing: no TensorFlow ---------------------------------------------------


def test_folder_is_listed_and_split_from_the_file_list_without_decoding(tmp_path, monkeypatch):
    make_images(tmp_path / "imgs", {"a": 10, "b": 10, "c": 10})

    def no_decoding(*args, **kwargs):
        raise AssertionError("an image was decoded while loading a streamed source")

    monkeypatch.setattr("cnnspec.training.filelist.load_image", no_decoding)
    data = load(spec("{source: {directory: imgs}, test_split: 0.2, validation_split: 0.25}"), tmp_path)
    assert isinstance(data.x_train, ImageFiles) and data.streamed
    assert data.sizes() == {"train": 18, "validation": 6, "test": 6}
    assert data.sample_shape == (8, 8, 3) and data.integer_pixels
    # stratified: every class in every split; the splits are disjoint and cover every file
    for y in (data.y_train, data.y_val, data.y_test):
        assert set(np.bincount(y, minlength=3)) == {len(y) // 3}
    parts = [set(x.paths) for x in (data.x_train, data.x_val, data.x_test)]
    assert len(set.union(*parts)) == 30 and sum(map(len, parts)) == 30
    # labels follow the files
    for files, labels in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert [p.parent.name for p in files.paths] == [data.class_names[i] for i in labels]
    # the same seed gives the same split
    again = load(spec("{source: {directory: imgs}, test_split: 0.2, validation_split: 0.25}"), tmp_path)
    assert again.x_test.paths == data.x_test.paths


def test_train_validation_test_folders_are_used_as_given(tmp_path):
    root = tmp_path / "imgs"
    make_images(root / "train", {"a": 4, "b": 4})
    make_images(root / "validation", {"a": 2, "b": 1})
    make_images(root / "test", {"a": 1, "b": 3})
    data = load(spec("{source: {directory: imgs}}", units=2), tmp_path)
    assert data.class_names == ["a", "b"]
    assert data.sizes() == {"train": 8, "validation": 3, "test": 4}
    assert {p.parent.parent.name for p in data.x_test.paths} == {"test"}
    assert {p.parent.parent.name for p in data.x_val.paths} == {"validation"}


def test_csv_source_reads_paths_relative_to_the_csv_with_sorted_label_names(tmp_path):
    files = make_images(tmp_path / "data" / "pics", {"x": 6}, seed=1)
    labels = ["zebra", "ant", "moth"] * 2
    rows = "".join(f"pics/x/{f.name},{label}\n" for f, label in zip(files, labels, strict=True))
    (tmp_path / "data" / "labels.csv").write_text("file,label\n" + rows)
    text = (
        "{source: {csv: data/labels.csv, image_column: file, label_column: label}, "
        "test_split: 0.5, validation_split: 0}"
    )
    data = load(spec(text), tmp_path)
    assert data.class_names == ["ant", "moth", "zebra"]
    by_file = dict(zip((f.name for f in files), labels, strict=True))
    for split_files, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert [by_file[p.name] for p in split_files.paths] == [data.class_names[i] for i in y]
        assert all(p.is_file() for p in split_files.paths)


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("path,label\nx.png,a\n", "expected a column 'file' in labels.csv; its columns are 'path', 'label'"),
        ("file,label\nmissing.png,a\n", "1 are not: line 2:"),
        ("file,label\n", "only a header"),
    ],
)
def test_csv_mistakes_are_located_errors(tmp_path, csv_text, message):
    (tmp_path / "labels.csv").write_text(csv_text)
    with pytest.raises(SpecError) as info:
        load(spec("{source: {csv: labels.csv}}"), tmp_path)
    (error,) = info.value.errors
    assert message in error.message and error.path == "data.source.csv"
    assert error.loc is not None and error.loc.line == 8


def test_bad_files_are_named_before_training_up_to_twenty_then_counted(tmp_path):
    make_images(tmp_path / "imgs", {"a": 4, "b": 4})
    for i in range(23):
        (tmp_path / "imgs" / "a" / f"broken{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(10))
    (tmp_path / "imgs" / "b" / "text.jpg").write_text("not an image")
    with pytest.raises(SpecError) as info:
        load(spec("{source: {directory: imgs}}"), tmp_path)
    (error,) = info.value.errors
    assert error.path == "data.source.directory"
    assert "24 bad image file(s) of 32:" in error.message
    named = [line for line in error.message.splitlines() if line.strip().startswith(str(tmp_path))]
    assert len(named) == 20 and "... and 4 more" in error.message
    assert str(tmp_path / "imgs" / "a" / "broken00.png") + ": not a readable image" in error.message
    assert "on_bad_file: skip" in error.hint
    assert not any(word in error.message for word in TF_INTERNALS)


def test_a_folder_that_is_training_and_test_set_names_a_bad_file_once(tmp_path):
    """`--data FOLDER` reads one folder as both: its bad file was named twice, "2 … of 20"."""
    make_images(tmp_path / "imgs", {"a": 5, "b": 5})
    (tmp_path / "imgs" / "b" / "zz.png").write_bytes(b"GIF89a broken")
    import copy

    from cnnspec.training.data import _check_files
    from cnnspec.training.filelist import index_folder

    path = tmp_path / "spec.yaml"
    path.write_text(spec("{source: {directory: imgs}}"))
    compiled = compile_spec(path)
    listing = index_folder(tmp_path / "imgs", None)
    with pytest.raises(SpecError) as info:
        _check_files([listing, copy.deepcopy(listing)], training_config(compiled).data, compiled, ())
    (error,) = info.value.errors
    assert "1 bad image file(s) of 11:" in error.message
    assert len([line for line in error.message.splitlines() if "zz.png" in line]) == 1


def test_skip_leaves_bad_files_out(tmp_path):
    make_images(tmp_path / "imgs", {"a": 5, "b": 5})
    bad = tmp_path / "imgs" / "b" / "zz.png"
    bad.write_bytes(b"GIF89a broken")
    data = load(spec("{source: {directory: imgs}, on_bad_file: skip}"), tmp_path)
    assert [p for p, _ in data.bad_files] == [bad]
    every = [p for x in (data.x_train, data.x_val, data.x_test) for p in x.paths]
    assert len(every) == 10 and bad not in every


def test_data_hash_comes_from_names_sizes_and_times_or_content(tmp_path):
    files = make_images(tmp_path / "imgs", {"a": 4, "b": 4})
    text = spec("{source: {directory: imgs}}")
    first = load(text, tmp_path).content_hash()
    assert load(text, tmp_path).content_hash() == first
    stat = files[0].stat()
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, same bytes
    touched = load(text, tmp_path)
    assert touched.content_hash() != first
    touched.hash_content = True
    by_content = touched.content_hash()
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = load(text, tmp_path)
    again.hash_content = True
    assert again.content_hash() == by_content  # bytes unchanged: the content hash is too


def test_indexing_image_files_decodes_only_what_is_asked(tmp_path):
    from cnnspec.training.imagefiles import load_image

    files = make_images(tmp_path / "imgs", {"a": 3})
    images = ImageFiles(files, (6, 5), 1)
    assert images.shape == (3, 6, 5, 1) and len(images) == 3
    expected = [load_image(f, (6, 5), 1)[0] for f in files]
    np.testing.assert_array_equal(images[1], expected[1])
    np.testing.assert_array_equal(images[[2, 0]], np.stack([expected[2], expected[0]]))
    np.testing.assert_array_equal(np.asarray(images), np.stack(expected))


def test_predictions_on_a_streamed_test_split_decode_a_chunk_at_a_time(tmp_path):
    from cnnspec.reporting.model_graph import OutputKind
    from cnnspec.reporting.predictions import PREDICT_CHUNK, predict

    files = make_images(tmp_path / "imgs", {"a": PREDICT_CHUNK + 44}, size=4)
    seen: list[int] = []

    class Model:  # class "1" when the top-left pixel is bright: a stand-in for a Keras model
        def predict(self, batch, batch_size, verbose):
            seen.append(len(batch))
            bright = batch[:, 0, 0, 0] > 0.5
            return np.stack([~bright, bright], axis=1).astype("float32")

    images = ImageFiles(files, (4, 4), 3)
    probs = predict(Model(), images, 1 / 255, OutputKind())
    assert seen == [PREDICT_CHUNK, 44]  # never the whole split at once
    expected = np.stack([load_image_pixels(f) for f in files])[:, 0, 0, 0] > 127.5
    np.testing.assert_array_equal(probs.argmax(axis=1), expected.astype(int))


def load_image_pixels(path: Path) -> np.ndarray:
    from cnnspec.training.imagefiles import load_image

    return load_image(path, (4, 4), 3)[0].astype("float32")


# -- training through the CLI -----------------------------------------------------------------------


@pytest.mark.slow
def test_streamed_folder_trains_evaluates_and_its_pixels_are_the_decoders(tmp_path, runner):
    """One run covers the stream end to end: training with a disk cache in the run folder that
    is removed at the end, lock.json's metadata hash, the report, ``evaluate`` and ``visualize``
    reading the same files, and pixels equal to the decoder's."""
    import keras

    from cnnspec.training.trainer import train

    make_images(tmp_path / "imgs", {"a": 12, "b": 12, "c": 12})
    text = spec("{source: {directory: imgs}, cache: disk}").replace("epochs: 1", "epochs: 2")
    (tmp_path / "spec.yaml").write_text(text)
    out = tmp_path / "run"
    cached: list[list[str]] = []

    class CacheProbe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            cached.append(sorted(p.name for p in out.glob("data-cache*")))

    from cnnspec.reporting.html import write_report

    compiled = compile_spec(tmp_path / "spec.yaml")
    train(compiled, out=out, callbacks=[CacheProbe()], write_report=write_report, hash_content=True)
    assert cached[0] and cached[0] == cached[1]  # written in epoch 1, read in epoch 2
    assert not list(out.glob("data-cache*"))  # removed at the end of the run
    lock = json.loads((out / "lock.json").read_text())
    assert lock["data"]["kind"] == "directory" and lock["data"]["sizes"]["train"] > 0
    data = load(text, tmp_path, seed=lock["seed"])
    metadata_hash = data.content_hash()
    data.hash_content = True  # --hash-content: the files' bytes
    assert lock["data"]["hash"] == "content" and lock["data"]["content_hash"] == data.content_hash()
    assert metadata_hash != data.content_hash()
    assert (out / "report.html").is_file()  # the report drew the streamed test images
    evaluated = runner.invoke(app, ["evaluate", str(out), "-f", "json", "--out", str(tmp_path / "ev")])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert report["data"]["images"] == lock["data"]["sizes"]["test"]
    assert report["data"]["content_hash"] == lock["data"]["content_hash"]  # hashed as the run did
    assert not any("content hash" in note for note in report.get("notes", []))
    for what in ("samples", "confusion"):
        picture = runner.invoke(app, ["visualize", str(out), what, "--out", str(tmp_path / f"{what}.png")])
        assert picture.exit_code == 0 and (tmp_path / f"{what}.png").is_file(), picture.output
    # a resume hashes the files as the run did, with or without --hash-content on its command line
    (out / "metrics.json").unlink()
    again = train(compile_spec(tmp_path / "spec.yaml"), resume=out, write_report=None)  # not refused
    assert again.metrics["test_accuracy"] is not None

    # the pipeline's batches are the decoder's pixels (the in-memory reader's), in order
    from cnnspec.training.imagefiles import load_image
    from cnnspec.training.pipeline import PipelineSettings, make_dataset

    stream = make_dataset(data.x_test, data.y_test, PipelineSettings(batch_size=4))
    images = np.concatenate([batch.numpy() for batch, _ in stream])
    expected = np.stack([load_image(p, (8, 8), 3)[0] for p in data.x_test.paths]).astype("float32")
    np.testing.assert_array_equal(images, expected)
    data.x_test.cache = "memory"  # cached after the first pass: the same images again
    cached_stream = make_dataset(data.x_test, data.y_test, PipelineSettings(batch_size=4))
    for _ in range(2):
        np.testing.assert_array_equal(np.concatenate([b.numpy() for b, _ in cached_stream]), expected)


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode",
    [
        "error",
        # a second, longer proof: test_bad_files_run.py's run skips files that pass the check
        # before training and fail when decoded, and lists them in bad_files.txt
        pytest.param("skip", marks=pytest.mark.full),
    ],
)
def test_a_file_that_fails_to_decode_mid_epoch_is_named(tmp_path, runner, mode):
    make_images(tmp_path / "imgs", {"a": 8, "b": 8})
    bad = tmp_path / "imgs" / "a" / "late.png"
    png_that_verifies_but_does_not_decode(bad)
    text = spec(
        f"{{source: {{directory: imgs}}, on_bad_file: {mode}, test_split: 0.1, validation_split: 0}}",
        extra="",
    )
    (tmp_path / "spec.yaml").write_text(text)
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(tmp_path / "spec.yaml"), "--out", str(out), "-q"])
    output = " ".join(result.output.split())
    assert not any(word in result.output for word in TF_INTERNALS), result.output
    if mode == "error":
        assert result.exit_code == 2, result.output  # a usage error, not a crash
        assert "expected every image file to decode; 1 bad image file(s):" in output
        assert f"{bad}: cannot be decoded (broken data stream" in output
    else:
        assert result.exit_code == 0, result.output
        listed = (out / "bad_files.txt").read_text().splitlines()
        assert [line.split("\t")[0] for line in listed] == [str(bad)]


def _images_cut_short(tmp_path: Path) -> list[Path]:
    """A class folder tree of 12 images and 4 JPEGs cut short (they pass the header check and
    fail to decode in the first epoch), and spec.yaml training on it; the JPEGs' paths."""
    from tests.test_script_data_audit4 import truncated_jpeg

    make_images(tmp_path / "imgs", {"a": 6, "b": 6})
    cut = [tmp_path / "imgs" / "a" / f"cut{index}.jpg" for index in range(4)]
    for path in cut:
        truncated_jpeg(path)
    text = spec("{source: {directory: imgs}}", 2).replace("batch_size: 8", "batch_size: 4")
    (tmp_path / "spec.yaml").write_text(text)
    return cut


@pytest.mark.slow
def test_a_run_stopped_by_a_file_that_fails_to_decode_leaves_no_folder_to_start_again(tmp_path, runner):
    """A run stopped in its first epoch by files that pass the header check and fail to decode
    (JPEGs cut short) left lock.json, spec.yaml and resolved.yaml: once the files were removed,
    as the error said, `train -o run` was refused (not empty, hinting --resume) and `--resume
    run` too (the data's hash changed). It leaves no folder now, and the same command trains."""
    cut = _images_cut_short(tmp_path)
    # (without its page: nothing here reads it)
    command = ["train", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "out" / "run"), "-q"]
    command.append("--no-report")
    result = runner.invoke(app, command)
    assert result.exit_code == 2 and "cannot be decoded" in result.output, result.output
    assert not (tmp_path / "out").exists()  # (nor the folder above it that --out made)
    for path in cut:
        path.unlink()
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_a_run_stopped_before_an_epoch_in_a_folder_it_did_not_make_is_hinted_to_start_anew(tmp_path, runner):
    """The same stop in an empty folder the user made: its files stay (the folder is not the
    run's to remove), and once the bad files are removed, `train -o` and `--resume` no longer
    hint only at a resume that the data's changed hash refuses."""
    cut = _images_cut_short(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    result = runner.invoke(app, ["train", str(tmp_path / "spec.yaml"), "--out", str(out), "-q"])
    assert result.exit_code == 2 and "cannot be decoded" in result.output, result.output
    assert (out / "lock.json").is_file()
    for path in cut:
        path.unlink()
    result = runner.invoke(app, ["train", str(tmp_path / "spec.yaml"), "--out", str(out), "-q"])
    assert result.exit_code == 2 and "stopped before it saved an epoch" in " ".join(result.output.split())
    result = runner.invoke(app, ["train", str(tmp_path / "spec.yaml"), "--resume", str(out), "-q"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "the data's content hash changed" in said, result.output
    assert "the run saved no epoch, so nothing of it is lost" in said


def test_a_failure_before_an_epoch_removes_only_a_stub_no_resume_needs(tmp_path):
    """What :func:`_discard_unsaved` removes: the files of a run that saved no epoch, stopped by an
    error no resume mends; not a run with a saved epoch, nor one a stop says to resume."""
    from cnnspec.errors import UsageError, WriteError
    from cnnspec.training.distribute import ClusterError
    from cnnspec.training.outcomes import TrainingInterrupted
    from cnnspec.training.runlock import LOCK_NAME
    from cnnspec.training.trainer import _discard_unsaved

    def stub(name: str, epoch: bool = False) -> Path:
        folder = tmp_path / name
        (folder / "state").mkdir(parents=True)
        for file in ("lock.json", "spec.yaml", "resolved.yaml", LOCK_NAME):
            (folder / file).write_text("{}")
        if epoch:
            (folder / "state" / "epoch-1.json").write_text("{}")
        return folder

    failed = stub("failed")
    _discard_unsaved(failed, UsageError("expected every image file to decode; …"))
    assert [p.name for p in failed.iterdir()] == [LOCK_NAME]  # (the lock's release removes it)
    for name, exc, epoch in (
        ("saved", UsageError("…"), True),
        ("stopped", TrainingInterrupted(tmp_path, 0, "cnnspec train --resume x"), False),
        ("full", WriteError(tmp_path / "cache", "no space left"), False),
        ("killed", KeyboardInterrupt(), False),
        # a lost worker: its message says to restart every worker with --resume of this folder
        ("cluster", ClusterError("a worker was lost after 0 whole epoch(s)", "restart …"), False),
    ):
        folder = stub(name, epoch)
        _discard_unsaved(folder, exc)
        assert (folder / "lock.json").is_file(), name


def test_a_folder_made_by_another_before_the_mkdir_keeps_its_files_when_refused(tmp_path, monkeypatch):
    """`train -o X`: whether this run makes X was decided by an exists() test before the mkdir;
    a folder another made in between (the user's, or a second run's) was then refused as not
    empty, and the refusal's clean-up removed its files as this run's stub."""
    from cnnspec.api import compile_text
    from cnnspec.errors import UsageError
    from cnnspec.training.trainer import train

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("my thesis")
    real = Path.exists
    seen = {"once": False}

    def exists(self: Path, *args: object, **kwargs: object) -> bool:
        if self == folder and not seen["once"]:  # (the folder appears just after the test)
            seen["once"] = True
            return False
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    with pytest.raises(UsageError, match="expected a new or empty run folder"):
        tiny = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel: [flatten, dense: 10]\n"
        train(compile_text(tiny, "t.yaml"), out=folder)
    assert (folder / "notes.txt").read_text() == "my thesis"


def test_bad_files_whose_names_are_not_utf8_are_listed_as_their_bytes(tmp_path):
    # writing the list was an internal error, after the run folder was started
    from cnnspec.training.badfiles import write_list

    bad = Path(os.fsdecode(b"a/bad\xfe.png"))
    write_list(tmp_path, [(bad, "not an image")])
    assert (tmp_path / "bad_files.txt").read_bytes() == b"a/bad\xfe.png\tnot an image\n"


# a second, longer proof: test_faults.py's run of a streamed folder with `cache: disk` that an
# error ends in its first epoch leaves no data-cache* either (the same removal, whatever the
# error), and the [error] case above stops on a file that fails when decoded
@pytest.mark.slow
@pytest.mark.full
def test_a_run_that_stops_on_a_bad_file_leaves_no_disk_cache(tmp_path, runner):
    """`cache: disk` is removed when the run ends, also when it ends with an error: a truncated
    JPEG (it passes the header check) stopped the run in its first epoch, exit 2, and the
    cache's files stayed in the run folder (a resume rebuilds the cache: they were never read)."""
    from PIL import Image

    make_images(tmp_path / "photos", {"a": 8, "b": 8, "c": 8})
    bad = tmp_path / "photos" / "b" / "3x.jpg"
    noise = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype="uint8")
    Image.fromarray(noise).save(bad, quality=95)
    bad.write_bytes(bad.read_bytes()[:-144])  # the end of its scan cut off: the header is whole
    text = spec("{source: {directory: photos}, on_bad_file: error, cache: disk}")
    (tmp_path / "spec.yaml").write_text(text)
    out = tmp_path / "run"
    command = ["train", str(tmp_path / "spec.yaml"), "--out", str(out), "-q", "--epochs", "2"]
    result = runner.invoke(app, command)
    assert result.exit_code == 2 and "cannot be decoded" in result.output, result.output
    # it stopped before an epoch was saved, in a folder it made: nothing is left there, its cache
    # neither (a stub of lock.json and the spec files could be neither started again nor resumed)
    assert not out.exists(), sorted(p.name for p in out.iterdir())


@pytest.mark.slow
# several TensorFlow worker processes: never beside the other multi-process tests of group
# "workers" on 2 cores, where their timeouts (a stalled worker is the failure) would be load
@pytest.mark.xdist_group("workers")
# two TensorFlow workers and a chief's run folder (about 45 s of CPU): part of `make
# test-multiworker` (in `make test-full`), not of `make test`'s 10 minutes
@pytest.mark.skipif(
    not os.environ.get("CNNSPEC_MULTIWORKER"),
    reason="two workers streaming their shares run in `make test-multiworker` (make test-full)",
)
def test_two_workers_each_read_their_own_files_once_per_epoch(tmp_path):
    """Two workers on 127.0.0.1 train two epochs of a streamed folder: each reads only its half
    of the training, validation and test files, every training image is read by exactly one
    worker once per epoch (reshuffled), and the chief's test results are those of the whole
    test split in file order (the same as predicting it in one process)."""
    from PIL import Image

    from tests.test_distribute import finish, start_workers

    rng = np.random.default_rng(0)
    for name, count, low in (("a", 10, 0), ("b", 9, 200)):  # odd parts: one worker's runs out first
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(count):  # dark and bright images: the model's predictions differ by class
            pixels = rng.integers(low, low + 56, (8, 8, 3), dtype="uint8")
            Image.fromarray(pixels).save(tmp_path / "imgs" / name / f"{name}{i:03d}.png")
    data_text = "{source: {directory: imgs}, test_split: 0.3, validation_split: 0.3}"
    # (a high learning rate: the model tells dark from bright after two short epochs)
    text = spec(data_text, units=2).replace("epochs: 1", "epochs: 2, optimizer: {adam: {learning_rate: 0.2}}")
    (tmp_path / "spec.yaml").write_text(text + "runtime: {distribute: multi_worker}\n")
    trace, scratch = tmp_path / "trace", tmp_path / "scratch"
    trace.mkdir()
    scratch.mkdir()
    os.environ["CNNSPEC_STREAM_TRACE"] = str(trace)
    try:
        workers = start_workers(
            tmp_path / "spec.yaml", tmp_path / "run", scratch, "--out", str(tmp_path / "run")
        )
    finally:
        del os.environ["CNNSPEC_STREAM_TRACE"]
    results = finish(workers, timeout=300)
    assert [code for code, _, _ in results] == [0, 0], results
    logs = sorted(trace.glob("reads-*.txt"))
    assert len(logs) == 2
    split = load(spec(data_text, units=2), tmp_path, seed=3)
    names = {key: [str(p) for p in getattr(split, f"x_{key}").paths] for key in ("train", "val", "test")}
    assert [len(names[key]) for key in ("train", "val", "test")] == [9, 4, 6]
    traces = [[line.split("\t") for line in log.read_text().splitlines()] for log in logs]
    for key, tag in (("train", "train"), ("val", "eval"), ("test", "eval")):
        reads = [[path for kind, path in lines if kind == tag and path in names[key]] for lines in traces]
        shards = [set(r) for r in reads]
        assert sorted(len(s) for s in shards) == sorted([(len(names[key]) + 1) // 2, len(names[key]) // 2]), (
            key
        )
        assert shards[0].isdisjoint(shards[1]) and shards[0] | shards[1] == set(names[key]), key
    for lines in traces:
        train = [path for kind, path in lines if kind == "train"]
        shard = set(train)
        # Before fit, the multi-worker model build peeks at one batch through its own iterator
        # (distribute.prepare_model), which reads ahead at most one pass; the two epochs follow,
        # each reading every file of the shard exactly once (in a reshuffled order, which with a
        # shard of a few files may by chance repeat: not asserted).
        first, second = train[-2 * len(shard) : -len(shard)], train[-len(shard) :]
        assert set(first) == set(second) == shard and len(train) <= 3 * len(shard)
        # validation: each file of the part once per epoch; test: once to evaluate, once to predict
        val = [path for kind, path in lines if kind == "eval" and path in names["val"]]
        test = [path for kind, path in lines if kind == "eval" and path in names["test"]]
        assert len(val) == 2 * len(set(val)) and len(test) == 2 * len(set(test))

    import keras

    from cnnspec.training.imagefiles import load_image

    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    images = np.stack([load_image(Path(p), (8, 8), 3)[0] for p in names["test"]]).astype("float32")
    probabilities = model.predict(images / 255.0, verbose=0)
    predicted, truth = probabilities.argmax(axis=1), np.asarray(split.y_test)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    confusion = [[int(np.sum((truth == t) & (predicted == p))) for p in range(2)] for t in range(2)]
    assert len(set(predicted)) == 2  # (so that rows out of order would change the matrix)
    assert metrics["confusion_matrix"] == confusion  # predict's rows came back in file order
    loss = -np.mean(np.log(probabilities[np.arange(len(truth)), truth]))
    assert metrics["test_loss"] == pytest.approx(float(loss), rel=1e-4)  # evaluate over both parts


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["directory", "csv", "presplit"])
def test_generated_training_script_streams_the_same_files_and_pixels(tmp_path, kind):
    """``codegen --script``'s train.py lists the files instead of loading them, splits them as
    cnnspec does, and its pipeline reads the pixels cnnspec's decoder reads."""
    import importlib.util

    from cnnspec.backends.python_emitter import generate_code

    if kind == "presplit":  # test/ and validation/ as given
        files = [
            *make_images(tmp_path / "imgs" / "train", {"a": 4, "b": 4, "c": 4}, size=10),
            *make_images(tmp_path / "imgs" / "validation", {"a": 1, "b": 1, "c": 1}, size=10, seed=1),
            *make_images(tmp_path / "imgs" / "test", {"a": 2, "b": 1, "c": 2}, size=10, seed=2),
        ]
    else:
        files = make_images(tmp_path / "imgs", {"a": 6, "b": 6, "c": 6}, size=10)
    if kind == "csv":
        rows = "".join(f"imgs/{f.parent.name}/{f.name},{f.parent.name}\n" for f in files)
        (tmp_path / "labels.csv").write_text("path,kind\n" + rows)
        source = "{csv: labels.csv, image_column: path, label_column: kind}"
    else:
        source = "{directory: imgs}"
    text = spec(f"{{source: {source}{'' if kind == 'presplit' else ', test_split: 0.25'}}}")
    (tmp_path / "spec.yaml").write_text(text)
    script = tmp_path / "train_script.py"
    script.write_text(generate_code(compile_spec(tmp_path / "spec.yaml"), script=True, output=script).text)
    module_spec = importlib.util.spec_from_file_location("generated_train_script", script)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)

    data_path = tmp_path / ("labels.csv" if kind == "csv" else "imgs")
    (x_train, y_train), (x_test, y_test), names, found = module.load_data(data_path)
    ours = load(text, tmp_path, seed=3)
    assert names == ours.class_names and x_test.dtype.kind == "U"  # paths, not pixels
    assert found["bad_files"] == []
    if kind == "presplit":  # validation/ as given, as cnnspec train uses it
        x_val, y_val = found["validation"]
        assert [Path(p) for p in x_val] == [p.resolve() for p in ours.x_val.paths]
        np.testing.assert_array_equal(y_val, ours.y_val)
        fitted, fitted_y = ours.x_train.paths, ours.y_train
    else:  # the script splits validation off later
        assert found["validation"] is None
        fitted, fitted_y = [*ours.x_train.paths, *ours.x_val.paths], [*ours.y_train, *ours.y_val]
    assert sorted(Path(p) for p in x_train) == sorted(p.resolve() for p in fitted)
    assert sorted(y_train) == sorted(fitted_y)
    assert [Path(p) for p in x_test] == [p.resolve() for p in ours.x_test.paths]
    np.testing.assert_array_equal(y_test, ours.y_test)
    batches = module.make_dataset(x_test, y_test, 4, scale=None)
    pixels = np.concatenate([images.numpy() for images, _ in batches])
    np.testing.assert_array_equal(pixels, np.asarray(ours.x_test).astype("float32"))


@pytest.mark.slow  # (tf.data, in cnnspec and in the script)
def test_shuffle_buffer_bounds_the_uncached_index_shuffle_in_cnnspec_and_the_script(tmp_path):
    """``data.shuffle_buffer: 1`` keeps the listed order, in the stream and in the generated
    script alike (the uncached stream shuffled every index whatever it said)."""
    import importlib.util

    from cnnspec.backends.python_emitter import generate_code
    from cnnspec.training.pipeline import PipelineSettings
    from cnnspec.training.stream import make_stream

    paths = make_images(tmp_path / "imgs", {"a": 4, "b": 4, "c": 4})
    y = np.repeat(np.arange(3), 4)  # listed class by class
    files = ImageFiles(paths, (8, 8), 3)

    def streamed(buffer: int | None) -> list[int]:
        settings = PipelineSettings(batch_size=4)
        batches = make_stream(files, y, settings, training=True, seed=3, shuffle_buffer=buffer)
        return [int(label) for _, labels in batches for label in np.asarray(labels)]

    assert streamed(1) == y.tolist()
    assert streamed(None) != y.tolist() and sorted(streamed(None)) == y.tolist()  # (a full shuffle)
    (tmp_path / "spec.yaml").write_text(spec("{source: {directory: imgs}, shuffle_buffer: 1}"))
    script = tmp_path / "train_script.py"
    script.write_text(generate_code(compile_spec(tmp_path / "spec.yaml"), script=True, output=script).text)
    module_spec = importlib.util.spec_from_file_location("generated_shuffle_script", script)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    batches = module.make_dataset(np.array([str(p) for p in paths]), y, 4, scale=None, training=True)
    assert [int(label) for _, labels in batches for label in np.asarray(labels)] == y.tolist()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["error", "skip"])
def test_generated_training_script_names_bad_files_before_training(tmp_path, mode, capsys):
    """train.py checks every file's header first (Pillow's verify): ``on_bad_file: error`` stops
    naming each bad file, ``skip`` leaves them out and writes them to bad_files.txt."""
    import importlib.util

    from cnnspec.backends.python_emitter import generate_code

    make_images(tmp_path / "imgs", {"a": 5, "b": 5})
    broken, renamed = tmp_path / "imgs" / "a" / "broken.png", tmp_path / "imgs" / "b" / "text.png"
    broken.write_bytes((tmp_path / "imgs" / "a" / "a000.png").read_bytes()[:40])  # truncated
    renamed.write_text("not an image")
    text = spec(f"{{source: {{directory: imgs}}, on_bad_file: {mode}, test_split: 0.2}}")
    (tmp_path / "spec.yaml").write_text(text)
    script = tmp_path / "train_bad.py"
    script.write_text(generate_code(compile_spec(tmp_path / "spec.yaml"), script=True, output=script).text)
    module_spec = importlib.util.spec_from_file_location("generated_train_bad", script)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if mode == "error":
        with pytest.raises(SystemExit) as info:
            module.load_data(tmp_path / "imgs")
        message = str(info.value)
        assert "2 bad image file(s) of 12:" in message
        assert f"{broken.resolve()}: not a readable image" in message and f"{renamed.resolve()}:" in message
        return
    (x_train, _), (x_test, _), _, found = module.load_data(tmp_path / "imgs")
    assert sorted(path for path, _ in found["bad_files"]) == sorted(
        [str(broken.resolve()), str(renamed.resolve())]
    )
    assert len(x_train) + len(x_test) == 10 and not {str(broken.resolve()), str(renamed.resolve())} & {
        *x_train,
        *x_test,
    }
    assert "leaving out 2 bad image file(s)" in capsys.readouterr().out


def test_export_benchmark_writes_a_streamed_test_split_in_chunks(tmp_path, monkeypatch):
    """``cnnspec export --benchmark`` hands the timing workers the scaled test split as a file
    they map from disk, written a few images at a time: a streamed split is never read whole."""
    from cnnspec.export import benchmark

    files = ImageFiles(make_images(tmp_path / "imgs", {"a": 4, "b": 3}), (8, 8), 3)
    rows_read: list[int] = []
    original = ImageFiles.__getitem__

    def counting(self, key):
        out = original(self, key)
        rows_read.append(len(out) if out.ndim == 4 else 1)
        return out

    monkeypatch.setattr(ImageFiles, "__getitem__", counting)
    monkeypatch.setattr(ImageFiles, "__array__", lambda *_: pytest.fail("the whole split was read"))
    monkeypatch.setattr(benchmark, "CHUNK_IMAGES", 3)
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    images, written = benchmark._write_test_split(files, labels, 1 / 255, tmp_path)
    assert max(rows_read) <= 3
    mapped = np.load(images, mmap_mode="r")
    expected = np.stack([files.load(i) for i in range(len(files))]).astype("float32") / 255
    np.testing.assert_allclose(mapped, expected, rtol=1e-6)
    np.testing.assert_array_equal(np.load(written), labels)


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("batch_size", [2, 3, 8])
def test_every_worker_cuts_its_part_into_the_same_number_of_batches(workers, batch_size):
    """A worker whose part ran out a step early would get an empty batch, which fails the step on
    a CPU: the parts' batches are cut so that every worker has as many, all of them read."""
    from cnnspec.training.stream import shard_batches

    for total in range(workers, 60):
        cuts = [shard_batches(total, workers, index, batch_size) for index in range(workers)]
        assert len({len(cut) for cut in cuts}) == 1, (total, cuts)
        for index, cut in enumerate(cuts):
            assert sum(cut) == len(range(index, total, workers))  # every file of the part, once
            assert all(1 <= size <= batch_size for size in cut)
        largest = -(-total // workers)
        assert len(cuts[0]) == -(-largest // batch_size)  # no more steps than needed
    with pytest.raises(UsageError, match="at least one image per step"):
        shard_batches(workers - 1, workers, 0, batch_size)  # fewer files than workers


def test_one_image_per_replica_over_uneven_parts_is_a_usage_error():
    from cnnspec.training.stream import shard_batches

    assert shard_batches(4, 2, 1, 1) == [1, 1]  # even parts: fine
    with pytest.raises(UsageError, match="leave a worker short"):
        shard_batches(5, 2, 1, 1)


def test_hidden_files_and_folders_are_no_images_of_a_class(tmp_path):
    """macOS' ._x.png resource forks and a notebook's .ipynb_checkpoints/ are left out (they
    would stop a run as unreadable images); the generated script lists the folder alike."""
    from cnnspec.training.filelist import index_folder

    files = make_images(tmp_path / "imgs", {"a": 2, "b": 2})
    (tmp_path / "imgs" / "a" / "._a000.png").write_bytes(b"\x00\x05\x16\x07 not an image")
    (tmp_path / "imgs" / "b" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "imgs" / "b" / ".ipynb_checkpoints" / "b000.png").write_bytes(files[0].read_bytes())
    listing = index_folder(tmp_path / "imgs")
    assert sorted(p.name for p in listing.paths) == sorted(p.name for p in files)


def test_settling_files_counts_their_own_bad_reads_only(tmp_path):
    """The bad reads live as long as the process: another run's unreadable files (an earlier
    command of a test session, or of a program using cnnspec) stopped the evaluation of good
    files with "expected every image file to decode" naming those other files."""
    from cnnspec.training.stream import BAD_READS, settle

    BAD_READS.clear()
    try:
        BAD_READS.record(tmp_path / "elsewhere" / "cut.jpg", "cannot be decoded (truncated)")
        files = ImageFiles(make_images(tmp_path / "imgs", {"a": 2, "b": 2}), (8, 8), 3)
        kept, labels = settle(files, np.arange(4))
        assert kept is files and list(labels) == [0, 1, 2, 3]
        BAD_READS.record(files.paths[1], "cannot be decoded (truncated)")  # its own: said
        with pytest.raises(UsageError, match="expected every image file to decode"):
            settle(files, np.arange(4))
    finally:
        BAD_READS.clear()
