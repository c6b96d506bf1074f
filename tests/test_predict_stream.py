"""`cnnspec predict` reads its inputs a chunk at a time (``PREDICT_CHUNK`` samples): the answers,
notes, mask names and mask bytes are those of reading every input at once; no more than a
chunk is decoded ahead of the model; a file that cannot be an input is refused before the
model loads, and one that fails to decode later is a clean error naming it.

The chunk is made 3 here, with 12 inputs (images whose mask names collide, a resized one, a
gray one, arrays with and without a batch axis, of uint8, uint16, int64 and float32 pixels),
so every chunk boundary falls somewhere else; "at once" is a chunk larger than the inputs.
Scores are compared to float32's precision (:func:`same_answers`): where oneDNN is off,
TensorFlow's own CPU kernels round a row's sums by the batch it is in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cnnspec.errors import UsageError
from cnnspec.reporting import images as images_module
from cnnspec.reporting import task_predict
from tests.test_report_support import flat, invoke

CHUNK = 3
AT_ONCE = 10**6


def _mix(folder: Path, size: int) -> list[Path]:
    """Inputs of ``size``×``size``×3 models, 12 samples in 9 files, in the order given."""
    rng = np.random.default_rng(5)

    def picture(height: int, width: int) -> np.ndarray:
        return rng.integers(0, 256, (height, width, 3), dtype="uint8")

    paths: list[Path] = []

    def image(name: str, pixels: np.ndarray) -> None:
        paths.append(folder / name)
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(paths[-1])

    def array(name: str, values: np.ndarray) -> None:
        paths.append(folder / name)
        np.save(paths[-1], values)

    image("a/x.png", picture(size, size))
    image("b/x.png", picture(size + 5, size + 3))  # resized (a note; its mask at its own size)
    image("x_2.png", picture(size, size))  # the stem the second x.png would be numbered to
    array("x.npy", picture(3 * size, size).reshape(3, size, size, 3).astype("uint16") * 257)  # x_0..x_2
    array("deep.npy", picture(size, size).astype("int64"))  # int64 of 0–255: 8-bit, one sample
    array("floats.npy", rng.random((2, size, size, 3), dtype="float32"))  # as stored
    image("gray.png", picture(size, size)[..., 0])  # L → 3 channels (a note)
    array("rows.npy", picture(size, size)[None])  # a batch of one: labelled rows.npy[0]
    image("c/x.png", picture(size, size))
    return paths


def _predict(monkeypatch: pytest.MonkeyPatch, chunk: int, *args: Any) -> tuple[Any, dict[str, bytes]]:
    """``predict ARGS -f json`` read ``chunk`` samples at a time: its JSON document (without
    mask paths' folder) and the bytes of every mask it names."""
    monkeypatch.setattr(task_predict, "PREDICT_CHUNK", chunk)
    result = invoke("predict", *args, "-f", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    masks = {}
    for prediction in document["predictions"]:
        for entry in prediction.get("outputs", {}).values():
            if "mask" in entry:
                masks[Path(entry["mask"]).name] = Path(entry["mask"]).read_bytes()
    return document, masks


def same_answers(got: Any, expected: Any) -> bool:
    """Whether two predict documents are the same, each score within float32's precision of
    the other's and all else exactly: TensorFlow's own CPU kernels (oneDNN off, as on CPUs with
    AVX2 and no AVX-512) sum a row differently in a batch of 3 than in one of 12 (0.5612180 and
    0.5612179), where oneDNN's give the same bits."""
    if isinstance(got, dict):
        return (
            isinstance(expected, dict)
            and got.keys() == expected.keys()
            and all(same_answers(got[key], expected[key]) for key in got)
        )
    if isinstance(got, list):
        return (
            isinstance(expected, list)
            and len(got) == len(expected)
            and all(same_answers(a, b) for a, b in zip(got, expected, strict=True))
        )
    if isinstance(got, float) and isinstance(expected, float):
        return math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-7)
    return type(got) is type(expected) and got == expected


def test_same_answers_tolerates_float32_rounding_only():
    answer = {"predictions": [{"input": "a.png", "top": [["cat", 0.5612180233001709]], "rank": 1}]}
    rounded = json.loads(json.dumps(answer).replace("0.5612180233001709", "0.5612179636955261"))
    assert same_answers(answer, rounded)
    for other in ("0.5612", '"0.5612180233001709"'):
        assert not same_answers(answer, json.loads(json.dumps(answer).replace("0.5612180233001709", other)))
    assert not same_answers(answer, json.loads(json.dumps(answer).replace("cat", "dog")))
    assert not same_answers(answer, {"predictions": []})


def _text(monkeypatch: pytest.MonkeyPatch, chunk: int, *args: Any) -> str:
    monkeypatch.setattr(task_predict, "PREDICT_CHUNK", chunk)
    result = invoke("predict", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


# -- the same answers, a chunk at a time ---------------------------------------------------------
# (its users are grouped on one xdist worker, so the models are made once)
@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained bare models (tests/test_bare_tasks_audit.py's: ``multi`` answers with a mask,
    labels and a value; ``seg`` with a mask) and an 8×8 classifier, the ``seg`` model exported
    to ONNX when tf2onnx and onnxruntime are installed."""
    from tests.test_bare_tasks_audit import bare_models
    from tests.test_report_support import bare_model

    folder = tmp_path_factory.mktemp("stream")
    files = bare_models(folder)
    files["classifier"] = bare_model(folder)
    return files


@pytest.mark.slow
@pytest.mark.xdist_group("stream_models")
def test_a_task_model_answers_alike_a_chunk_at_a_time(models, tmp_path, monkeypatch):
    """Masks (names made unique over all inputs, bytes), labels, values, notes, order, text."""
    inputs = _mix(tmp_path / "in", 16)
    args = (models["multi"], *inputs, "-r", "keras", "-o", tmp_path / "out")
    streamed, streamed_masks = _predict(monkeypatch, CHUNK, *args)
    at_once, at_once_masks = _predict(monkeypatch, AT_ONCE, *args)
    assert same_answers(streamed, at_once)
    assert streamed_masks == at_once_masks
    labels = [p["input"] for p in streamed["predictions"]]
    assert len(labels) == 12 and labels[3:6] == [f"{inputs[3]}[{i}]" for i in range(3)]
    # a/x, b/x (x_2 is x_2.png's), x_2.png, x.npy's rows (its [2]: x_2 again), …, c/x
    stems = ("x", "x_3", "x_2", "x_0", "x_1", "x_2_2", "deep", "floats_0", "floats_1", "gray")
    assert sorted(streamed_masks) == sorted(f"{stem}_mask_mask.png" for stem in (*stems, "rows_0", "x_4"))
    assert streamed["predictions"][1]["outputs"]["mask"]["mask_size"] == [21, 19]  # b/x.png's own size
    assert _text(monkeypatch, CHUNK, *args) == _text(monkeypatch, AT_ONCE, *args)


@pytest.mark.slow
@pytest.mark.xdist_group("stream_models")
def test_a_classifier_answers_alike_a_chunk_at_a_time(models, tmp_path, monkeypatch):
    inputs = _mix(tmp_path / "in", 8)
    args = (models["classifier"], *inputs, "-k", "3", "-r", "keras")
    streamed, _ = _predict(monkeypatch, CHUNK, *args)
    assert same_answers(streamed, _predict(monkeypatch, AT_ONCE, *args)[0])
    assert [p["input"] for p in streamed["predictions"]][-3:] == [
        str(inputs[6]),
        f"{inputs[7]}[0]",
        str(inputs[8]),
    ]
    assert any("resized" in note for note in streamed["predictions"][1]["notes"])
    assert _text(monkeypatch, CHUNK, *args) == _text(monkeypatch, AT_ONCE, *args)


@pytest.mark.slow
@pytest.mark.xdist_group("stream_models")
def test_an_onnx_export_answers_alike_a_chunk_at_a_time(models, tmp_path, monkeypatch):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    exported = invoke("export", models["seg"], "--format", "onnx")
    assert exported.exit_code == 0, exported.output
    inputs = _mix(tmp_path / "in", 16)
    args = (models["seg"], *inputs, "-r", "onnx", "-o", tmp_path / "out")
    streamed, streamed_masks = _predict(monkeypatch, CHUNK, *args)
    at_once, at_once_masks = _predict(monkeypatch, AT_ONCE, *args)
    assert streamed["runtime"] == "onnx" and same_answers(streamed, at_once)
    assert streamed_masks == at_once_masks and len(streamed_masks) == 12


# -- no more than a chunk decoded ahead of the model (no TensorFlow: the model stood in for) -------
def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the samples decoded (one entry per sample, as each is read)."""
    decoded: list[int] = []
    read = images_module.file_samples

    def file_samples(file: Any, shape: tuple[int, ...]) -> Iterator[Any]:
        for sample in read(file, shape):
            decoded.append(1)
            yield sample

    monkeypatch.setattr(images_module, "file_samples", file_samples)
    monkeypatch.setattr(task_predict, "PREDICT_CHUNK", CHUNK)
    return decoded


def test_a_task_model_is_run_with_no_more_than_a_chunk_decoded_ahead(tmp_path, monkeypatch):
    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_spec
    from cnnspec.reporting.images import plan_inputs
    from cnnspec.reporting.pixel_ranges import pixel_depth
    from tests.conftest import ROOT

    tasks = training_config(compile_spec(ROOT / "specs" / "unet_shapes.yaml")).tasks  # 64×64×3
    shape = (64, 64, 3)
    files = plan_inputs(_mix(tmp_path / "in", 64), shape)
    decoded = _counting(monkeypatch)
    first_call: list[int] = []  # how many samples were decoded when the model was first run
    predicted = 0

    def model(batch: np.ndarray) -> np.ndarray:
        nonlocal predicted
        first_call[:] = first_call or [len(decoded)]
        assert len(decoded) - predicted <= CHUNK, (len(decoded), predicted)  # never a chunk ahead
        predicted += len(batch)
        scores = np.zeros((len(batch), 64, 64, 4), dtype="float32")
        scores[..., 1] = batch.mean(axis=(1, 2, 3))[:, None, None]  # (class 1 or 0 by brightness)
        scores[..., 0] = 0.3
        return scores

    def rescale(integer: bool, pixels: np.ndarray) -> float | None:
        return 1 / pixel_depth(pixels) if integer else None

    results = task_predict.predict_file_tasks(tasks, {}, files, shape, tmp_path / "out", 1, rescale, model)
    assert len(results) == predicted == len(decoded) == 12
    assert first_call == [CHUNK]  # the first batch went to the model with one chunk read, of 12
    masks = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(masks) == 12 and all(name.endswith("_mask.png") for name in masks)


def test_a_classifier_is_run_with_no_more_than_a_chunk_decoded_ahead(tmp_path, monkeypatch):
    from cnnspec.cli.predict import _classified
    from cnnspec.reporting.images import plan_inputs

    shape = (8, 8, 3)
    files = plan_inputs(_mix(tmp_path / "in", 8), shape)
    decoded = _counting(monkeypatch)
    predicted = 0

    def probabilities(batch: np.ndarray) -> np.ndarray:
        nonlocal predicted
        assert len(decoded) - predicted <= CHUNK, (len(decoded), predicted)
        predicted += len(batch)
        means = batch.mean(axis=(1, 2))
        return means / means.sum(axis=1, keepdims=True)

    def rescale(integer: bool, pixels: np.ndarray) -> float | None:
        return 1 / 255 if integer else None

    results, names = _classified(files, shape, rescale, probabilities, ["r", "g", "b"], 2)
    assert names == ["r", "g", "b"] and predicted == len(decoded) == len(results) == 12
    assert [r["input"] for r in results] == [label for file in files for label in file.labels]


def test_an_array_split_between_chunks_is_scaled_by_the_whole_file(tmp_path, monkeypatch):
    """int64 rows of 0–200 and one of 999: the whole file's depth is unknown, refused before its
    first rows are predicted, as when it was read at once (its rows alone would be 8-bit)."""
    from cnnspec.reporting.images import plan_inputs
    from cnnspec.reporting.pixel_ranges import pixel_depth

    path = tmp_path / "deep.npy"
    np.save(path, np.stack([np.full((2, 2, 1), v, dtype="int64") for v in (10, 200, 150, 999)]))
    monkeypatch.setattr(task_predict, "PREDICT_CHUNK", 2)
    groups = task_predict.streamed_groups(
        plan_inputs([path], (2, 2, 1)), (2, 2, 1), lambda i, p: 1 / pixel_depth(p) if i else None
    )
    with pytest.raises(UsageError, match=r"int64 from 10 to 999 in .*deep\.npy"):
        next(groups)
    np.save(path, np.stack([np.full((2, 2, 1), v, dtype="int64") for v in (10, 200, 150, 255)]))
    groups = task_predict.streamed_groups(
        plan_inputs([path], (2, 2, 1)), (2, 2, 1), lambda i, p: 1 / pixel_depth(p) if i else None
    )
    batches = [batch for batch, _ in groups]
    assert [len(b) for b in batches] == [2, 2] and np.allclose(batches[1][1], 1.0)  # 255/255


# -- refusals: early from the headers, clean late ------------------------------------------------
@pytest.mark.slow
@pytest.mark.xdist_group("stream_models")
def test_a_file_that_cannot_be_an_input_is_refused_before_the_model_loads(models, tmp_path, monkeypatch):
    """The last of many inputs cannot be one: refused from its header, before the model is
    loaded (loading it fails the test)."""
    from cnnspec.training import modelfile

    def load_model(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model was loaded before the inputs' headers were checked")

    monkeypatch.setattr(modelfile, "load_model", load_model)
    inputs = _mix(tmp_path / "in", 8)
    notes = tmp_path / "in" / "z.png"
    notes.write_text("I am text, not a PNG")
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cut = tmp_path / "cut.npy"
    np.save(cut, np.zeros((50, 8, 8, 3), dtype="float32"))
    cut.write_bytes(cut.read_bytes()[:400])  # the header whole, most rows missing
    for bad, words in ((notes, "is not one"), (objects, "no pickled objects"), (cut, "cannot read")):
        result = invoke("predict", models["classifier"], *inputs, bad, "-r", "keras")
        assert result.exit_code == 2, result.output
        assert words in flat(result) and str(bad) in "".join(flat(result).split()), result.output
        assert "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.xdist_group("stream_models")
def test_a_folder_with_several_bad_files_names_them_all(models, tmp_path):
    """predict FOLDER stopped at its first bad file: a folder of many with a few bad ones took a
    run per file to clean. They are listed together, as training lists a folder's; one alone
    keeps its own message."""
    folder = tmp_path / "in"
    inputs = _mix(folder, 8)
    (folder / "notes.png").write_text("I am text, not a PNG")
    (folder / "empty.jpg").write_bytes(b"")
    Image.fromarray(np.zeros((8, 8), dtype="uint8")).save(folder / "scan.png", format="TIFF")
    result = invoke("predict", models["classifier"], folder, "-r", "keras")
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    total = len(inputs) + 3
    assert lines[:4] == [
        f"error: expected every input to be read; 3 bad image file(s) of {total}:",
        f"  {folder / 'empty.jpg'}: no PNG, JPEG, BMP or GIF image (or .npy array), or truncated or corrupt "
        f"(cannot identify image file '{folder / 'empty.jpg'}')",
        f"  {folder / 'notes.png'}: no PNG, JPEG, BMP or GIF image (or .npy array), or truncated or corrupt "
        f"(cannot identify image file '{folder / 'notes.png'}')",
        f"  {folder / 'scan.png'}: expected a PNG, JPEG, BMP or GIF image; {folder / 'scan.png'} is TIFF",
    ], result.output
    assert "hint: remove or replace these files" in flat(result)


@pytest.mark.slow
@pytest.mark.xdist_group("stream_models")
def test_a_truncated_image_late_in_the_list_is_a_clean_error(models, tmp_path, monkeypatch):
    """Its header passes; its pixels fail when its chunk is decoded: a UsageError naming it, and
    no mask of the chunks before it is written (they are staged, and moved into --out only once
    every input is answered; an earlier call's masks there stay as they were:
    test_a_failure_late_in_the_inputs_writes_no_mask_and_keeps_the_earlier_calls). Before, the
    masks of the four chunks before it were written."""
    inputs = _mix(tmp_path / "in", 16)
    whole = tmp_path / "whole.png"
    Image.fromarray(np.full((16, 16, 3), 90, dtype="uint8")).save(whole)
    cut = tmp_path / "in" / "cut.png"
    cut.write_bytes(whole.read_bytes()[:60])  # signature and header; the pixels cut off
    monkeypatch.setattr(task_predict, "PREDICT_CHUNK", CHUNK)
    out = tmp_path / "out"
    result = invoke("predict", models["seg"], *inputs, cut, "-r", "keras", "-o", out)
    assert result.exit_code == 2, result.output
    text = flat(result)
    # (told as evaluate tells a file that fails to decode; it said "is not one, or is truncated")
    assert f"expected every image file to decode; 1 bad image file(s): {cut}: cannot be decoded (" in text
    assert "Traceback" not in result.output and "internal error" not in text
    assert f"no mask file was written to {out}" in text
    assert not out.exists()  # (nor any leftover: the folder the call made is gone with it)


# -- the masks of a call: all of them or none ------------------------------------------------------
def _seg_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``predict_file_tasks`` of unet_shapes' mask output (64×64×3 inputs, the 12 of :func:`_mix`,
    read :data:`CHUNK` at a time) with a stand-in model: ``call(out, fail_at=None, level=0.3)``
    answers, or raises ``fail_at`` (an exception) on the model's third batch."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_spec
    from cnnspec.reporting.images import plan_inputs
    from tests.conftest import ROOT

    tasks = training_config(compile_spec(ROOT / "specs" / "unet_shapes.yaml")).tasks
    shape = (64, 64, 3)
    files = plan_inputs(_mix(tmp_path / "in", 64), shape)
    monkeypatch.setattr(task_predict, "PREDICT_CHUNK", CHUNK)

    def call(out: Path, fail_at: BaseException | None = None, level: float = 0.3) -> Any:
        batches = 0

        def model(batch: np.ndarray) -> np.ndarray:
            nonlocal batches
            batches += 1
            if fail_at is not None and batches == 3:
                raise fail_at
            scores = np.zeros((len(batch), 64, 64, 4), dtype="float32")
            scores[..., 1] = batch.mean(axis=(1, 2, 3))[:, None, None]
            scores[..., 0] = level  # (another level: other masks)
            return scores

        return task_predict.predict_file_tasks(tasks, {}, files, shape, out, 1, lambda i, p: None, model)

    return call


def _contents(folder: Path) -> dict[str, bytes]:
    """Every entry of ``folder`` (hidden ones too: a staged leftover would show) with its bytes."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_failure_late_in_the_inputs_writes_no_mask_and_keeps_the_earlier_calls(tmp_path, monkeypatch):
    """A damaged input (or a full disk) in the third batch, after two batches' masks were made:
    no mask reaches --out, the earlier call's masks there stay byte for byte, nothing is left
    behind; the same call then replaces them all. Before, the masks of the batches before it
    were written (six new beside six old, and no answer said which)."""
    call = _seg_call(tmp_path, monkeypatch)
    out = tmp_path / "out"
    call(out)
    before = _contents(out)
    assert len(before) == 12 and all(name.endswith("_mask.png") for name in before)
    bad = UsageError("expected every image file to decode; …", "fix it")
    with pytest.raises(UsageError) as caught:
        call(out, bad, level=0.9)
    assert caught.value.hint == f"fix it; no mask file was written to {out}"
    assert _contents(out) == before
    call(out, level=0.9)
    after = _contents(out)
    assert sorted(after) == sorted(before) and after != before  # each replaced, by the new masks


def test_a_stop_mid_way_leaves_no_folder_and_no_mask(tmp_path, monkeypatch):
    """A Ctrl-C (or SIGTERM, raised as KeyboardInterrupt) in the third batch: the --out folder
    the call would have made is not there, and the folder above holds nothing new."""
    call = _seg_call(tmp_path, monkeypatch)
    out = tmp_path / "masks" / "run1"
    with pytest.raises(KeyboardInterrupt):
        call(out, KeyboardInterrupt())
    assert not (tmp_path / "masks").exists()


def test_masks_of_an_answer_refused_as_nan_are_not_written(tmp_path, monkeypatch):
    """The model answers NaN (a diverged training): predict refuses it (exit 2) after every mask
    was made, and none of them reaches --out (they did: masks of an answer refused)."""
    from cnnspec.cli import predict
    from cnnspec.fileio import write_atomic

    image = tmp_path / "cat.npy"
    np.save(image, np.zeros((8, 8, 1), "float32"))
    out = tmp_path / "out"

    def predict_keras(model: Path, files: list[Path], top: int, out: Path, *args: Any) -> Any:
        mask = write_atomic(out / "cat_mask.png", task_predict.mask_png(np.zeros((8, 8), "uint8")))
        answer = {"task": "segmentation", "mask": str(mask), "pixel_share": {"a": float("nan")}}
        results = [{"input": str(image), "notes": [], "outputs": {"mask": answer}}]
        return results, ["a"], tmp_path / "m.keras", [1.0]

    monkeypatch.setattr(predict, "_predict_keras", predict_keras)
    result = invoke("predict", tmp_path, image, "-r", "keras", "-o", out)
    assert result.exit_code == 2, result.output
    assert f"the model's answer for {image} is NaN or infinite (outputs.mask.pixel_share.a)" in flat(result)
    assert not out.exists()


def test_a_stop_after_the_masks_are_in_place_says_they_were_written(tmp_path, monkeypatch):
    """A Ctrl-C while the answers print, once the masks were moved into --out: exit 130 as for
    any stop, with a note that the masks are written ("interrupted" alone said --out was as it
    was, though its masks were replaced)."""
    from cnnspec.cli import predict
    from cnnspec.fileio import write_atomic

    image = tmp_path / "cat.npy"
    np.save(image, np.zeros((8, 8, 1), "float32"))
    out = tmp_path / "out"

    def predict_keras(model: Path, files: list[Path], top: int, out: Path, *args: Any) -> Any:
        mask = write_atomic(out / "cat_mask.png", task_predict.mask_png(np.zeros((8, 8), "uint8")))
        answer = {"task": "segmentation", "mask": str(mask), "pixel_share": {"a": 1.0}}
        results = [{"input": str(image), "notes": [], "outputs": {"mask": answer}}]
        return results, ["a"], tmp_path / "m.keras", [1.0]

    def stopped(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(predict, "_predict_keras", predict_keras)
    monkeypatch.setattr(predict, "_print_predictions", stopped)
    result = invoke("predict", tmp_path, image, "-r", "keras", "-o", out)
    assert result.exit_code == 130, result.output
    assert f"note: the 1 mask file(s) were written to {out} before the stop" in flat(result)
    assert sorted(path.name for path in out.iterdir()) == ["cat_mask.png"]


def test_a_folder_that_holds_the_masks_of_the_call_before_is_read_without_them(tmp_path):
    """`predict RUN .` writes ./predictions/x_mask.png; the same command again read that mask as
    an input (and wrote x_mask_mask.png for it). The masks (and any picture cnnspec drew) are
    left out of a folder, with a note; a folder holding nothing else is refused as an empty one."""
    from cnnspec.fileio import write_atomic
    from cnnspec.reporting.images import expand_inputs

    Image.fromarray(np.zeros((4, 4, 3), "uint8")).save(tmp_path / "x.png")
    write_atomic(tmp_path / "predictions" / "x_mask.png", task_predict.mask_png(np.zeros((4, 4), "uint8")))
    files, notes = expand_inputs([tmp_path])
    assert files == [tmp_path / "x.png"]
    assert notes == [
        f"left out 1 picture(s) of {tmp_path} that cnnspec drew (masks predict wrote, plots; the first: "
        f"{Path('predictions', 'x_mask.png')})"
    ]
    with pytest.raises(UsageError) as caught:
        expand_inputs([tmp_path / "predictions"])
    assert caught.value.args[0] == (
        f"expected images or .npy files in the folder {tmp_path / 'predictions'}; it holds none but 1 "
        "picture(s) cnnspec drew (masks, plots)"
    )
    assert expand_inputs([tmp_path / "predictions" / "x_mask.png"])[0] == [
        tmp_path / "predictions" / "x_mask.png"
    ]


#: A 2-class model's answer, likeliest first.
TWO_CLASSES = [
    {"class": "dog", "index": 1, "probability": 0.75},
    {"class": "cat", "index": 0, "probability": 0.25},
]


def _answering(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, answer: Any) -> list[Path]:
    """Two .npy inputs, answered by ``answer(top)`` (one prediction's entries) in place of the
    model."""
    from cnnspec.cli import predict

    images = [tmp_path / "a.npy", tmp_path / "b.npy"]
    for image in images:
        np.save(image, np.zeros((8, 8, 1), "float32"))

    def predict_keras(model: Path, files: list[Path], top: int, *args: Any) -> Any:
        results = [{"input": str(file), "notes": [], **answer(top)} for file in files]
        return results, ["cat", "dog"], tmp_path / "m.keras", [1.0]

    monkeypatch.setattr(predict, "_predict_keras", predict_keras)
    return images


def test_top_k_beyond_the_classes_shows_every_class_with_one_note(tmp_path, monkeypatch):
    """`predict --top-k 5` of a 2-class model showed 2 classes without a word: a note says so,
    once per call (not per input); the default 3 is no request (nothing is noted)."""
    two = TWO_CLASSES
    images = _answering(monkeypatch, tmp_path, lambda top: {"top": two[:top]})
    result = invoke("predict", tmp_path, *images, "-r", "keras", "--top-k", "5")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("note:") == 1
    assert "note: --top-k 5: the model has only 2 classes" in flat(result)
    assert result.stdout.count("dog") == 2 and result.stdout.count("cat") == 2
    for args in ([], ["-k", "2"]):
        result = invoke("predict", tmp_path, *images, "-r", "keras", *args)
        assert result.exit_code == 0 and "note:" not in result.stderr, result.output


def test_top_k_beyond_an_outputs_classes_names_the_output(tmp_path, monkeypatch):
    """A multi-output model: each classifier output of fewer classes than --top-k is named in a
    note of its own (once); a multi-label output shows every label whatever --top-k says."""
    two = TWO_CLASSES
    four = [{"class": str(i), "index": i, "probability": 0.25} for i in range(4)]
    tags = {"task": "multilabel", "labels": [], "threshold": 0.5, "probabilities": {"x": 0.1}}

    def answer(top: int) -> dict[str, Any]:
        return {
            "outputs": {
                "kind": {"task": "classification", "top": two[:top]},
                "breed": {"task": "classification", "top": four[:top]},
                "tags": tags,
            }
        }

    images = _answering(monkeypatch, tmp_path, answer)
    result = invoke("predict", tmp_path, *images, "-r", "keras", "-k", "3", "-f", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("note:") == 1
    assert "note: --top-k 3: the output kind has only 2 classes" in flat(result)
    result = invoke("predict", tmp_path, *images, "-r", "keras", "-k", "9", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("note:") == 2
    assert "note: --top-k 9: the output breed has only 4 classes" in flat(result)


def test_a_commit_whose_undo_fails_says_which_masks_are_new_and_where_the_old_one_is(tmp_path, monkeypatch):
    """The fourth mask's rename into place fails (an I/O error), and so does putting back the
    third one's old mask: the error says the third mask is new, every other file as it was, and
    where its old mask is kept, not "no mask file was written" (which was added to its hint).
    Moving the kept file back, as the hint says, restores the folder; the same call then works."""
    import os
    import time

    from cnnspec import fileio
    from cnnspec.errors import PartlyWrittenError

    call = _seg_call(tmp_path, monkeypatch)
    out = tmp_path / "out"
    call(out)
    before = _contents(out)
    names = list(before)
    real = os.replace
    renames: list[str] = []  # the renames into --out: the commit's, then its undo's

    def replace(source: Any, destination: Any) -> None:
        if Path(destination).parent == out:
            renames.append(Path(destination).name)
            if len(renames) in (4, 5):  # the fourth mask's rename; then the third's old one put back
                raise OSError(5, "Input/output error")
        real(source, destination)

    monkeypatch.setattr(fileio.os, "replace", replace)
    with pytest.raises(PartlyWrittenError) as caught:
        call(out, level=0.9)
    monkeypatch.setattr(fileio.os, "replace", real)
    first, second, third, fourth = renames[:4]
    assert renames[4:] == [third, second, first]  # (the undo, the last replaced first)
    (scratch,) = [entry for entry in out.iterdir() if entry.name.startswith(".cnnspec-staged.")]
    kept_in = scratch / "old"
    assert str(caught.value) == (
        f"cannot write {out / fourth}: Input/output error; putting back what it replaced failed too: "
        f"{third} in {out} is new (this write's), every other file there as it was; "
        f"the old {third} is kept in {kept_in}"
    )
    assert caught.value.hint == f"move the file in {kept_in} back into {out}, then run the same command again"
    now = {name: (out / name).read_bytes() for name in names}
    assert {name: now[name] for name in names if name != third} == {
        name: before[name] for name in names if name != third
    }
    assert os.listdir(kept_in) == [third] and (kept_in / third).read_bytes() == before[third]
    assert not os.path.samefile(out / third, kept_in / third)  # (the new mask, not a link to the old)
    os.replace(kept_in / third, out / third)
    assert {name: (out / name).read_bytes() for name in names} == before
    past = time.time() - 2 * fileio.STALE_AFTER_S
    os.utime(scratch, (past, past))  # (a leftover the next write removes once it is this old)
    call(out, level=0.9)
    after = _contents(out)
    assert sorted(after) == sorted(before) and after[third] == now[third]  # (and no leftover)
