"""Data for segmentation, multi-label and regression: every layout, and every bad input as a
located error with nothing written (tiny generated files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnspec.analysis.settings import data_config, training_config
from cnnspec.analysis.settings_types import TrainConfig
from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.training.data import load_dataset

SEG_HEAD = "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n"
DENSE = "  - global_avg_pool2d\n  - dense: {units: UNITS, activation: ACT}\n"


def spec(tmp_path: Path, source: str, head: str = SEG_HEAD, extra: str = "") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 3, padding: same}\n"
        + head
        + f"data:\n  source: {source}\n"
        + extra,
        encoding="utf-8",
    )
    return path


def train_settings(compiled):
    """The settings `cnnspec train` reads. Where the training settings still refuse every output
    but a classifier's (before task training), the data section alone is read instead."""
    try:
        return training_config(compiled)
    except SpecError as exc:
        if "expected a classifier output" not in str(exc) and "expected one model output" not in str(exc):
            raise
        return TrainConfig(data=data_config(compiled, raise_errors=True))


def load(path: Path, seed: int = 0):
    compiled = compile_spec(path)
    return load_dataset(compiled, train_settings(compiled), seed)


def located_error(path: Path) -> tuple[str, int | None]:
    """The one error loading ``path`` raises, and its line relative to the ``source:`` line."""
    with pytest.raises(SpecError) as info:
        load(path)
    (error,) = info.value.errors
    source_line = next(i for i, line in enumerate(path.read_text().splitlines(), 1) if "source:" in line)
    return error.message, (error.loc.line - source_line if error.loc else None)


def masks_of(n: int, size: int = 8, classes: int = 3) -> list[np.ndarray]:
    """Masks whose class is the image's row band, so each image/mask pair is recognisable."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, classes, size=(size, size)).astype("uint8") for _ in range(n)]


def write_pairs(
    root: Path,
    masks: list[np.ndarray],
    *,
    mode: str = "L",
    palette: list[int] | None = None,
    ext: str = ".png",
) -> None:
    """images/iNN.png whose red channel is 80 × the class, and masks/iNN.png of those classes."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for index, mask in enumerate(masks):
        pixels = np.zeros((*mask.shape, 3), dtype="uint8")
        pixels[..., 0] = mask * 80
        Image.fromarray(pixels).save(root / "images" / f"i{index:02d}{ext}")
        if mode == "P":
            image = Image.fromarray(mask, mode="P")
            image.putpalette(palette or [0, 0, 0, 255, 0, 0, 0, 255, 0])
        elif mode == "RGB":
            colours = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype="uint8")
            image = Image.fromarray(colours[mask])
        else:
            image = Image.fromarray(mask)
        image.save(root / "masks" / f"i{index:02d}.png")


def assert_pairs_match(data) -> None:
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        np.testing.assert_array_equal(x[..., 0] // 80, y)


# -- segmentation --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "classes"),
    [
        ("L", ""),
        ("P", ", classes: [background, cat, dog]"),
        ("RGB", ", classes: {bg: [0, 0, 0], a: [255, 0, 0], b: [0, 0, 255]}"),
    ],
    ids=["index-png", "palette-png", "colour-table"],
)
def test_image_mask_folders(tmp_path, mode, classes):
    write_pairs(tmp_path / "d", masks_of(10), mode=mode)
    data = load(spec(tmp_path, f"{{images: d/images, masks: d/masks{classes}}}"))
    assert data.target == "mask" and data.sizes() == {"train": 7, "validation": 1, "test": 2}
    assert data.y_train.shape == (7, 8, 8) and np.issubdtype(data.y_train.dtype, np.integer)
    assert_pairs_match(data)
    expected = {"": ["0", "1", "2"], "P": ["background", "cat", "dog"], "RGB": ["bg", "a", "b"]}
    assert data.class_names == expected["" if mode == "L" else mode]
    assert data.source["kind"] == "image_masks"


def test_masks_resized_with_their_images_stay_class_indices(tmp_path):
    write_pairs(tmp_path / "d", masks_of(6, size=16), ext=".jpg")  # JPEG images, PNG masks
    data = load(spec(tmp_path, "{images: d/images, masks: d/masks, image_size: [8, 8]}"))
    assert data.x_train.shape[1:] == (8, 8, 3) and data.y_train.shape[1:] == (8, 8)
    assert set(np.unique(np.concatenate([data.y_train.ravel(), data.y_test.ravel()]))) <= {0, 1, 2}


def test_mask_of_another_size_is_located(tmp_path):
    write_pairs(tmp_path / "d", masks_of(4))
    Image.fromarray(np.zeros((6, 7), dtype="uint8")).save(tmp_path / "d" / "masks" / "i02.png")
    message, line = located_error(spec(tmp_path, "{images: d/images, masks: d/masks}"))
    assert "masks/i02.png is 7×6 and images/i02.png is 8×8" in message and line == 0


def test_class_index_beyond_the_classes_table(tmp_path):
    write_pairs(tmp_path / "d", masks_of(4, classes=3))
    two = SEG_HEAD.replace("filters: 3", "filters: 2")  # (fewer names than channels: refused by validate)
    message, line = located_error(
        spec(tmp_path, "{images: d/images, masks: d/masks, classes: [bg, cat]}", two)
    )
    assert "expected class indices below 2 (the classes table)" in message and "has 2" in message
    assert line == 0


def test_missing_mask_file_is_named(tmp_path):
    write_pairs(tmp_path / "d", masks_of(4))
    (tmp_path / "d" / "masks" / "i01.png").unlink()
    message, line = located_error(spec(tmp_path, "{images: d/images, masks: d/masks}"))
    assert "expected a mask for every image" in message and "i01.png" in message and line == 0


def test_a_mask_whose_image_is_gone_is_named(tmp_path):
    """It was passed over without a word (12 images trained, nothing said of `im07`'s mask),
    where a table's row naming a missing image is refused."""
    write_pairs(tmp_path / "d", masks_of(4))
    (tmp_path / "d" / "images" / "i01.png").unlink()
    message, line = located_error(spec(tmp_path, "{images: d/images, masks: d/masks}"))
    images = tmp_path / "d" / "images"
    assert message == f"expected an image for every mask; no image in {images} for the mask(s) i01.png"
    assert line == 0


def test_an_image_linked_twice_in_the_images_folder_is_refused(tmp_path):
    # the link was a second image of the same pixels, free to land in another split
    write_pairs(tmp_path / "d", masks_of(4))
    (tmp_path / "d" / "images" / "i09.png").symlink_to("i01.png")
    (tmp_path / "d" / "masks" / "i09.png").symlink_to("i01.png")
    message, line = located_error(spec(tmp_path, "{images: d/images, masks: d/masks}"))
    assert message.endswith("i01.png and i09.png are one file (a symbolic or hard link)") and line == 0


def test_colour_masks_need_a_table(tmp_path):
    write_pairs(tmp_path / "d", masks_of(3), mode="RGB")
    message, _ = located_error(spec(tmp_path, "{images: d/images, masks: d/masks}"))
    assert "is a colour image" in message
    message, _ = located_error(
        spec(
            tmp_path,
            "{images: d/images, masks: d/masks, classes: {bg: [0, 0, 0], a: [255, 0, 0]}}",
            SEG_HEAD.replace("filters: 3", "filters: 2"),
        )
    )
    assert "has the colour [0, 0, 255]" in message


def test_npz_masks(tmp_path):
    masks = np.stack(masks_of(20))
    x = np.repeat((masks * 80)[..., None], 3, axis=-1)
    np.savez(
        tmp_path / "d.npz", x_train=x[:15], y_train=masks[:15], x_test=x[15:], y_test=masks[15:, :, :, None]
    )
    data = load(spec(tmp_path, "{npz: d.npz}"))
    assert data.target == "mask" and data.y_test.shape == (5, 8, 8) and data.class_names == ["0", "1", "2"]
    assert_pairs_match(data)
    np.savez(
        tmp_path / "d.npz", x_train=x, y_train=masks, x_test=x, y_test=masks, class_names=np.array(["a", "b"])
    )
    message, _ = located_error(spec(tmp_path, "{npz: d.npz}"))
    assert "expected class indices below 2" in message
    np.savez(tmp_path / "d.npz", x_train=x, y_train=masks[:, :6, :6], x_test=x, y_test=masks)
    message, _ = located_error(spec(tmp_path, "{npz: d.npz}"))
    assert "expected masks of the images' size 8×8" in message and "6×6" in message


def test_masks_for_a_regression_are_the_datas_mistake_not_the_models(tmp_path):
    """The target kind is checked before the target's fit: masks for a stated regression are
    reported at the data source as targets of another task, not as a model that should end in
    a convolution."""
    masks = np.stack(masks_of(20))
    x = np.repeat((masks * 80)[..., None], 3, axis=-1)
    np.savez(tmp_path / "d.npz", x_train=x[:15], y_train=masks[:15], x_test=x[15:], y_test=masks[15:])
    head = DENSE.replace("UNITS", "1").replace("ACT", "linear")
    path = spec(tmp_path, "{npz: d.npz}", head, "training: {task: regression}\n")
    message, line = located_error(path)
    assert message.startswith("expected regression targets for the regression output") and line == 0
    assert message.endswith("the data has mask targets") and "conv2d" not in message


# -- multi-label ---------------------------------------------------------------------------------
def write_images(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(n):
        pixels = np.full((8, 8, 3), index * 20, dtype="uint8")
        Image.fromarray(pixels).save(folder / f"p{index}.png")
        names.append(f"p{index}.png")
    return names


LABELS = [["cat"], ["dog", "cat"], [], ["bird"], ["cat", "bird"], ["dog"]]
HOT = np.array([[label in row for label in ("bird", "cat", "dog")] for row in LABELS], dtype="float32")


@pytest.mark.parametrize("layout", ["csv-lists", "csv-columns", "json"])
def test_multilabel_tables(tmp_path, layout):
    names = write_images(tmp_path / "img", len(LABELS))
    if layout == "csv-lists":
        rows = ["file,labels", *[f"{n},{' '.join(ls)}" for n, ls in zip(names, LABELS, strict=True)]]
        (tmp_path / "labels.csv").write_text("\n".join(rows))
    elif layout == "csv-columns":
        rows = [
            "file,bird,cat,dog",
            *[f"{n},{','.join(str(int(v)) for v in h)}" for n, h in zip(names, HOT, strict=True)],
        ]
        (tmp_path / "labels.csv").write_text("\n".join(rows))
    else:
        (tmp_path / "labels.json").write_text(json.dumps(dict(zip(names, LABELS, strict=True))))
    table = "labels.json" if layout == "json" else "labels.csv"
    head = DENSE.replace("UNITS", "3").replace("ACT", "sigmoid")
    path = spec(
        tmp_path, f"{{images: img, labels: {table}}}", head, "  test_split: 0.5\n  validation_split: 0\n"
    )
    data = load(path)
    assert data.target == "multilabel" and data.class_names == ["bird", "cat", "dog"]
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    np.testing.assert_array_equal(y, HOT[x[:, 0, 0, 0] // 20])  # each image kept its own labels


def test_table_naming_a_missing_image(tmp_path):
    names = write_images(tmp_path / "img", 2)
    (tmp_path / "labels.csv").write_text(f"file,labels\n{names[0]},cat\nghost.png,dog\n")
    head = DENSE.replace("UNITS", "2").replace("ACT", "sigmoid")
    message, line = located_error(spec(tmp_path, "{images: img, labels: labels.csv}", head))
    assert "labels.csv row 3 (ghost.png)" in message and line == 0


def test_multilabel_units_must_match(tmp_path):
    names = write_images(tmp_path / "img", 6)
    (tmp_path / "labels.json").write_text(json.dumps(dict(zip(names, LABELS, strict=True))))
    head = DENSE.replace("UNITS", "4").replace("ACT", "sigmoid")
    message, line = located_error(spec(tmp_path, "{images: img, labels: labels.json}", head))
    assert "expected 3 output units (one per label)" in message and line == -2


# -- regression ----------------------------------------------------------------------------------
def test_regression_tables_and_npz(tmp_path):
    names = write_images(tmp_path / "img", 6)
    rows = ["file,width,height", *[f"{n},{i * 1.5},{-i}" for i, n in enumerate(names)]]
    (tmp_path / "values.csv").write_text("\n".join(rows))
    head = DENSE.replace("UNITS", "2").replace("ACT", "linear")
    regression = "training: {task: regression}\n"  # (a linear head is a classifier unless said)
    data = load(spec(tmp_path, "{images: img, values: values.csv}", head, "  test_split: 0.5\n" + regression))
    assert data.target == "regression" and data.class_names == ["width", "height"]
    x, y = (
        np.concatenate([data.x_train, data.x_val, data.x_test]),
        np.concatenate([data.y_train, data.y_val, data.y_test]),
    )
    index = x[:, 0, 0, 0].astype(int) // 20
    np.testing.assert_allclose(y, np.stack([index * 1.5, -index], axis=1))
    (tmp_path / "values.json").write_text(json.dumps({n: i / 2 for i, n in enumerate(names)}))
    head = DENSE.replace("UNITS", "1").replace("ACT", "linear")
    data = load(spec(tmp_path, "{images: img, values: values.json}", head, regression))
    assert data.y_train.shape[1:] == (1,) and data.y_train.dtype == np.float32
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (12, 8, 8, 3)).astype("uint8")
    np.savez(tmp_path / "r.npz", x_train=x, y_train=np.linspace(0, 1, 12), x_test=x[:4], y_test=np.zeros(4))
    data = load(spec(tmp_path, "{npz: r.npz, target: regression}", head, regression))
    assert data.target == "regression" and data.y_train.shape == (11, 1) and data.y_train.dtype == np.float32


def test_a_value_column_named_twice_is_named_as_a_column_of_the_file(tmp_path):
    """`file,age,height,age` was "expected each class name once …; received 'age' at
    column[2], the same name as 'age' at column[0]": no class names, and neither place the
    file's (the repeated `age` is its 4th column, the first its 2nd)."""
    names = write_images(tmp_path / "img", 3)
    (tmp_path / "v.csv").write_text("file,age,height,age\n" + "".join(f"{n},1,2,3\n" for n in names))
    head = DENSE.replace("UNITS", "3").replace("ACT", "linear")
    message, _ = located_error(
        spec(tmp_path, "{images: img, values: v.csv}", head, "training: {task: regression}\n")
    )
    assert message == (
        "expected each value column name once in the header of the values table; received 'age' at "
        "column 4, the same name as 'age' at column 2 (repeated: 'age')"
    )


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_non_numeric_regression_target_names_file_and_row(tmp_path, fmt):
    names = write_images(tmp_path / "img", 3)
    if fmt == "csv":
        (tmp_path / "values.csv").write_text(f"file,size\n{names[0]},1.0\n{names[1]},big\n{names[2]},2\n")
        where = "values.csv row 3 (p1.png), size"
    else:
        (tmp_path / "values.json").write_text(json.dumps({names[0]: 1, names[1]: "big", names[2]: 2}))
        where = "values.json (p1.png), value"
    head = DENSE.replace("UNITS", "1").replace("ACT", "linear")
    task = "training: {task: regression}\n"  # (a linear head is a classifier unless told)
    message, line = located_error(spec(tmp_path, f"{{images: img, values: values.{fmt}}}", head, task))
    assert message == f"expected a number in {where}; received 'big'" and line == 0


def test_npz_multilabel_and_multi_output(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (12, 8, 8, 3)).astype("uint8")
    hot = (rng.random((12, 3)) > 0.5).astype("uint8")
    np.savez(tmp_path / "m.npz", x_train=x, y_train=hot, x_test=x[:4], y_test=hot[:4])
    head = DENSE.replace("UNITS", "3").replace("ACT", "sigmoid")
    data = load(spec(tmp_path, "{npz: m.npz, target: multilabel}", head))
    assert data.target == "multilabel" and data.y_train.dtype == np.float32 and data.y_train.shape[1:] == (3,)
    two_heads = (
        "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n    id: seg\n"
        "  - global_avg_pool2d:\n    inputs: seg\n  - dense: {units: 4, activation: softmax}\n    id: kind\n"
        "outputs: [seg, kind]\n"
    )
    masks = rng.integers(0, 3, (12, 8, 8)).astype("uint8")
    kinds = np.arange(12) % 4  # integer (n,): class indices
    np.savez(
        tmp_path / "two.npz", x_train=x, x_test=x[:4], y_train_seg=masks, y_test_seg=masks[:4],
        y_train_kind=kinds, y_test_kind=kinds[:4],
    )  # fmt: skip
    data = load(spec(tmp_path, "{npz: two.npz}", two_heads))
    assert data.target == {"seg": "mask", "kind": "class"}
    assert data.y_train["seg"].shape == (11, 8, 8) and data.y_train["kind"].shape == (11,)
    assert data.target_names["seg"] == ["0", "1", "2"]
    # rows of both targets moved together: each image's mask is the one stored beside its class
    rows = [np.flatnonzero((x == image).all(axis=(1, 2, 3)))[0] for image in data.x_train]
    np.testing.assert_array_equal(data.y_train["seg"], masks[rows])
    np.testing.assert_array_equal(data.y_train["kind"], kinds[rows])
    # a file of the test arrays alone, as evaluate, visualize and calibrate --data read it (it
    # was refused for lacking x_train, y_train and y_test, which it is no file of)
    np.savez(tmp_path / "test.npz", x_test=x[:4], y_test_seg=masks[:4], y_test_kind=kinds[:4])
    compiled = compile_spec(spec(tmp_path, "{npz: test.npz}", two_heads))
    alone = load_dataset(compiled, train_settings(compiled), 0, test_only=True)
    np.testing.assert_array_equal(alone.x_test, x[:4])
    np.testing.assert_array_equal(alone.y_test["seg"], masks[:4])
    np.testing.assert_array_equal(alone.y_test["kind"], kinds[:4])
    with pytest.raises(SpecError) as caught:  # training needs the training arrays
        load_dataset(compiled, train_settings(compiled), 0)
    assert "missing x_train, y_train" in str(caught.value)
    # one output: a file short of y_test is told what the test arrays lack, not x_train too
    np.savez(tmp_path / "x.npz", x_test=x[:4])
    compiled = compile_spec(spec(tmp_path, "{npz: x.npz, target: multilabel}", head))
    with pytest.raises(SpecError) as caught:
        load_dataset(compiled, train_settings(compiled), 0, test_only=True)
    assert "expected arrays x_test and y_test in x.npz; missing y_test" in str(caught.value)


def _refusal(path: Path, overrides: tuple[str, ...] = (), test_only: bool = False) -> SpecError:
    """The one data error loading ``path`` (with ``--set`` ``overrides``) raises."""
    compiled = compile_spec(path, overrides)
    with pytest.raises(SpecError) as caught:
        load_dataset(compiled, train_settings(compiled), 0, test_only=test_only)
    (error,) = caught.value.errors
    return error


def test_single_layout_targets_of_another_shape_are_refused_as_the_models_targets(tmp_path):
    """Multi-hot rows (n, 3) for a segmentation model were refused as class labels of shape
    (n,) with a hint to store class indices; a model of several outputs read plain y_train as
    one output's. Each now says what the model needs; an npz given by --set is located there."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (12, 8, 8, 3)).astype("uint8")
    hot = (rng.random((12, 3)) > 0.5).astype("float32")
    np.savez(tmp_path / "hot.npz", x_train=x, y_train=hot, x_test=x[:4], y_test=hot[:4])
    masks = rng.integers(0, 3, (12, 8, 8)).astype("uint8")
    np.savez(tmp_path / "seg.npz", x_train=x, y_train=masks, x_test=x[:4], y_test=masks[:4])
    path = spec(tmp_path, "{npz: seg.npz}")
    error = _refusal(path, (f"data.source.npz={tmp_path / 'hot.npz'}",))
    assert error.message == "expected training masks of shape (n, 8, 8); received (12, 3)"
    assert error.hint == "store one class index per pixel"
    assert (error.loc.file, error.loc.line, error.loc.column) == ("<--set 1>", 1, 17)  # the file
    # evaluate's --data of test arrays alone: they are the test masks, not "training" ones
    np.savez(tmp_path / "hot_test.npz", x_test=x[:4], y_test=hot[:4])
    error = _refusal(spec(tmp_path, "{npz: hot_test.npz}"), test_only=True)
    assert error.message == "expected test masks of shape (n, 8, 8); received (4, 3)"
    two_heads = (
        "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n    id: seg\n"
        "  - global_avg_pool2d:\n    inputs: seg\n  - dense: {units: 4, activation: softmax}\n    id: kind\n"
        "outputs: [seg, kind]\n"
    )
    error = _refusal(spec(tmp_path, "{npz: seg.npz}", two_heads))
    assert error.message == (
        "expected y_train_<output> and y_test_<output> arrays for each of the model's 2 outputs (seg, "
        "kind); seg.npz has y_train and y_test, one target"
    )
    assert error.hint == (
        "a model of several outputs takes a target per output: store y_train_seg, y_test_seg, "
        "y_train_kind, y_test_kind"
    )
    error = _refusal(spec(tmp_path, "{npz: hot_test.npz}", two_heads), test_only=True)
    assert error.message.startswith("expected y_test_<output> arrays for each of the model's 2 outputs")
    assert error.message.endswith("hot_test.npz has y_test, one target")


def test_an_output_width_set_on_the_command_line_is_located_there(tmp_path):
    """`--set 'model[2].dense.units=4'` made the output 4 wide: the error quoted the file's
    line, which says 3."""
    names = write_images(tmp_path / "img", 6)
    (tmp_path / "labels.json").write_text(json.dumps(dict(zip(names, LABELS, strict=True))))
    head = DENSE.replace("UNITS", "3").replace("ACT", "sigmoid")
    path = spec(tmp_path, "{images: img, labels: labels.json}", head)
    error = _refusal(path, ("model[2].dense.activation=sigmoid", "model[2].dense.units=4"))
    assert error.message == "expected 3 output units (one per label); the model outputs 4"
    assert (error.loc.file, error.loc.line, error.loc.column) == ("<--set 2>", 1, 22)


# -- the CLI: the error, exit 1, and no run folder ----------------------------------------------
@pytest.mark.slow
def test_train_refuses_bad_task_data_before_writing(tmp_path, runner):
    names = write_images(tmp_path / "img", 3)
    (tmp_path / "values.csv").write_text(f"file,size\n{names[0]},1.0\n{names[1]},n/a\n{names[2]},2\n")
    head = DENSE.replace("UNITS", "1").replace("ACT", "linear")
    path = spec(
        tmp_path, "{images: img, values: values.csv}", head, "training: {epochs: 1, task: regression}\n"
    )
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(path), "--quiet", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "values.csv row 3 (p1.png), size" in result.output and "spec.yaml:9:" in result.output
    assert not out.exists() and "Traceback" not in result.output


#: A model with a 4-class mask output `seg` and a 3-class classifier `kind`.
TWO_HEADS = (
    "  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}\n    id: seg\n"
    "  - global_avg_pool2d:\n    inputs: seg\n  - dense: {units: 3, activation: softmax}\n    id: kind\n"
    "outputs: [seg, kind]\n"
)


def two_head_arrays() -> dict[str, np.ndarray]:
    """The arrays of a TWO_HEADS npz (every mask class and every class present)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (12, 8, 8, 3)).astype("uint8")
    masks = rng.integers(0, 4, (12, 8, 8)).astype("uint8")
    masks[0, 0, 0] = 3
    kinds = np.arange(12) % 3
    arrays = {"x_train": x, "x_test": x[:4], "y_train_seg": masks, "y_test_seg": masks[:4]}
    return arrays | {"y_train_kind": kinds, "y_test_kind": kinds[:4]}


def test_a_multi_output_npzs_class_names_name_the_classifier_and_its_own_names_each_output(tmp_path):
    """One flat `class_names` was given to the mask output too: a 3-class classifier's names
    refused the 4 mask classes ("expected class indices below 3"), or silently named them."""
    two_heads = TWO_HEADS
    arrays = two_head_arrays() | {"class_names": np.array(["a", "b", "c"])}
    np.savez(tmp_path / "two.npz", **arrays)
    data = load(spec(tmp_path, "{npz: two.npz}", two_heads))
    assert data.target_names == {"seg": ["0", "1", "2", "3"], "kind": ["a", "b", "c"]}
    np.savez(tmp_path / "two.npz", **arrays, class_names_seg=np.array(["sky", "sea", "sand", "rock"]))
    data = load(spec(tmp_path, "{npz: two.npz}", two_heads))
    assert data.target_names == {"seg": ["sky", "sea", "sand", "rock"], "kind": ["a", "b", "c"]}


def test_a_multi_output_npzs_names_are_checked_per_output(tmp_path):
    """Too few names for the classifier became numbers without a word; a misspelt
    class_names_<output> was left out without a word."""
    two_heads, arrays = TWO_HEADS, two_head_arrays()
    for extra, message in (
        (
            {"class_names": np.array(["a"])},
            "expected a name for each of the 3 classes (labels 0–2) in two.npz; its class_names has 1",
        ),
        ({"class_names_kind": np.array(["a"])}, "its class_names_kind has 1"),
        (
            {"class_names_sge": np.array(["sky"])},
            "two.npz has class_names_sge, and the model's outputs are seg, kind",
        ),
    ):
        np.savez(tmp_path / "two.npz", **arrays, **extra)
        error, _ = located_error(spec(tmp_path, "{npz: two.npz}", two_heads))
        assert message in error, error
