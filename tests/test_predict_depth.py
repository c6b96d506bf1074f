"""`cnnspec predict` (and the feature-map view, and an export's record) scale an integer array by
its own pixel depth, as ``data.rescale: auto`` scaled the training images: a uint16 ``.npy`` by
1/65535, a PNG given with it by 1/255; an array whose depth neither dtype nor values tell is a
usage error naming it. And the generated classifier script refuses too few npz class_names,
as ``cnnspec train`` does."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from cnnspec.errors import UsageError
from cnnspec.reporting.images import Sample
from cnnspec.reporting.pixel_ranges import pixel_depth
from cnnspec.reporting.run import Run
from cnnspec.reporting.task_predict import scaled_groups, source_of
from tests.test_data_checks import classes, npz_spec, pixels, refused
from tests.test_report_support import colour_images, invoke, trained_run
from tests.test_script_data_parity import script_functions


def depth_rescale(integer: bool, batch: np.ndarray) -> float | None:
    """data.rescale: auto without a model that scales itself: 1/depth for integers."""
    return 1.0 / pixel_depth(batch) if integer else None


# -- batches: decided per input file ----------------------------------------------------------
def test_source_of_drops_the_array_row_only():
    assert source_of("b.npy[3]") == "b.npy" and source_of("a[1].npy[0]") == "a[1].npy"
    assert source_of("a[1].npy") == "a[1].npy" and source_of("cat.png") == "cat.png"


def test_a_png_and_a_uint16_array_are_scaled_each_by_its_own_depth():
    png = Sample("p.png", np.full((2, 2, 1), 255, dtype="uint8"))
    wide = [Sample(f"w.npy[{i}]", np.full((2, 2, 1), 65535, dtype="uint16")) for i in range(2)]
    small = Sample("s.npy", np.full((2, 2, 1), 255, dtype="int64"))  # 0–255 in int64: 8-bit
    floats = Sample("f.npy", np.full((2, 2, 1), 0.5, dtype="float32"))
    groups = list(scaled_groups([png, *wide, small, floats], depth_rescale))
    seen = {index: batch[row] for batch, group in groups for row, (index, _) in enumerate(group)}
    assert sorted(seen) == [0, 1, 2, 3, 4]
    for index in range(4):  # full intensity is 1 whatever the depth (stacked, the PNG was 255/65535)
        assert np.all(seen[index] == 1.0), index
    assert np.all(seen[4] == 0.5)  # floats as stored
    assert all(len({s.pixels.dtype for _, s in group}) == 1 for _, group in groups)


def test_many_inputs_are_scaled_in_batches_of_at_most_a_chunk(monkeypatch):
    """A folder of many images is run in batches of PREDICT_CHUNK, each input once, each batch
    scaled by its file's own factor, as one batch would be."""
    from cnnspec.reporting import task_predict

    monkeypatch.setattr(task_predict, "PREDICT_CHUNK", 4)
    images = [Sample(f"{i}.png", np.full((2, 2, 1), i, dtype="uint8")) for i in range(9)]
    wide = [Sample(f"w.npy[{i}]", np.full((2, 2, 1), 65535, dtype="uint16")) for i in range(5)]
    groups = list(scaled_groups([*images, *wide], depth_rescale))
    assert [len(group) for _, group in groups] == [4, 4, 1, 4, 1]
    seen = {index: batch[row] for batch, group in groups for row, (index, _) in enumerate(group)}
    assert sorted(seen) == list(range(14))
    assert all(np.allclose(seen[i], i / 255) for i in range(9))
    assert all(np.all(seen[i] == 1.0) for i in range(9, 14))


def test_an_array_of_unknown_depth_is_a_usage_error_naming_it():
    samples = [Sample("p.png", np.zeros((2, 2, 1), "uint8")), Sample("big.npy", np.full((2, 2, 1), 999))]
    with pytest.raises(UsageError, match=r"int64 from 999 to 999 in big\.npy") as info:
        list(scaled_groups(samples, depth_rescale))
    assert "data.rescale" in str(info.value.hint)


def test_arrays_of_the_same_name_in_other_folders_are_scaled_each_by_its_own(tmp_path):
    """`a/x.npy` and `b/x.npy` were one source (grouped by the label `x.npy`): scaled by their
    joint depth, and a refusal did not say which of the two it meant."""
    from cnnspec.reporting.images import read_inputs

    files = [tmp_path / "a" / "x.npy", tmp_path / "b" / "x.npy"]
    for path, high in zip(files, (200, 999)):
        path.parent.mkdir()
        np.save(path, np.full((2, 2, 2, 1), high, dtype="int64"))  # int64: the values tell the depth
    samples = read_inputs(files, (2, 2, 1))
    assert [s.label for s in samples] == [
        f"{files[0]}[0]",
        f"{files[0]}[1]",
        f"{files[1]}[0]",
        f"{files[1]}[1]",
    ]
    with pytest.raises(UsageError, match=r"int64 from 999 to 999 in " + str(files[1]).replace(".", r"\.")):
        list(scaled_groups(samples, depth_rescale))
    ((batch, group),) = scaled_groups(samples[:2], depth_rescale)  # a/x.npy alone: 8-bit
    assert np.allclose(batch, 200 / 255) and [index for index, _ in group] == [0, 1]


def test_an_export_record_scales_by_depth_where_it_says_so():
    from cnnspec.cli.predict import _record_rescale

    def record(by_depth: object) -> SimpleNamespace:
        data = {"input": {"rescale_integer": 1 / 255, "rescale_float": None, "rescale_by_depth": by_depth}}
        return SimpleNamespace(data=data, rescale=lambda i: data["input"]["rescale_integer"] if i else None)

    wide = np.array([0, 65535], dtype="uint16")
    assert _record_rescale(record(True))(True, wide) == 1 / 65535
    assert _record_rescale(record(True))(False, wide.astype("float32")) is None
    assert _record_rescale(record(None))(True, wide) == 1 / 255  # a record written before: 8-bit


def test_the_exporter_records_whether_integers_follow_their_depth(tmp_path):
    from cnnspec.export.serving_record import _rescale_by_depth

    bare = Run(tmp_path / "model.keras")  # no spec: 1/depth unless the model rescales itself
    assert _rescale_by_depth(bare, SimpleNamespace(layers=[])) is True


# -- through the CLI, with the tiny trained model -----------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


def probabilities(result) -> dict[str, list[float]]:
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    return {
        p["input"]: [t["probability"] for t in sorted(p["top"], key=lambda t: t["index"])]
        for p in doc["predictions"]
    }


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")  # the session's one trained run, on its worker
def test_a_uint16_array_predicts_as_the_same_picture_in_8_bits(run_dir, tmp_path):
    x, _ = colour_images(3, 5)
    np.save(tmp_path / "eight.npy", x)
    np.save(tmp_path / "sixteen.npy", x.astype("uint16") * 257)  # the same pictures, 16-bit
    Image.fromarray(x[0]).save(tmp_path / "one.png")
    files = [tmp_path / n for n in ("one.png", "sixteen.npy", "eight.npy")]
    got = probabilities(invoke("predict", run_dir, *files, "-k", "3", "-f", "json"))
    png, sixteen, eight = map(str, files)  # (each input is labelled with its path as given)
    for row in range(3):
        assert got[f"{sixteen}[{row}]"] == pytest.approx(got[f"{eight}[{row}]"], abs=1e-5)
    assert got[png] == pytest.approx(got[f"{eight}[0]"], abs=1e-5)  # not scaled as uint16


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_an_int64_array_above_255_is_a_usage_error_naming_it(run_dir, tmp_path):
    x, _ = colour_images(2, 5)
    np.save(tmp_path / "deep.npy", x.astype("int64") * 4)
    result = invoke("predict", run_dir, tmp_path / "deep.npy")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "deep.npy" in text and "data.rescale" in text and "Traceback" not in text


# -- the generated script: too few class_names ---------------------------------------------------
def test_the_script_refuses_too_few_class_names_as_train_does(tmp_path):
    x = pixels(12)
    path = npz_spec(tmp_path, x, classes(12), x[:6], classes(6), class_names=np.array(["a", "b"]))
    assert refused(path).message.startswith("expected a name for each of the 3 classes")
    load_data = script_functions(path)["load_data"]
    with pytest.raises(
        SystemExit, match=r"a name for each of the 3 classes \(labels 0–2\) .* class_names has 2"
    ):
        load_data(tmp_path / "d.npz")
    np.savez(tmp_path / "d.npz", x_train=x, y_train=classes(12), x_test=x[:6], y_test=classes(6),
             class_names=np.array(["a", "b", "c"]))  # fmt: skip
    assert load_data(tmp_path / "d.npz")[2] == ["a", "b", "c"]
