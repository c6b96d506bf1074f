"""Edge cases of the splits and of ``data.classes``: a split that leaves fewer images than
classes, a class listed twice, splits that lose classes (notes), and a softmax wider than the
classes selected (a lint warning)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnspec.api import compile_text
from cnnspec.errors import SpecError
from cnnspec.training import subsets
from cnnspec.training.data_arrays import SplitTooLarge, _split_indices
from tests.test_data import load, spec_text, write_npz


def located(text: str, tmp_path: Path):
    with pytest.raises(SpecError) as info:
        load(text, tmp_path)
    (error,) = info.value.errors
    return error


# -- a split that holds out (nearly) everything ---------------------------------------------------
def test_a_huge_validation_split_is_a_located_error(tmp_path):
    error = located(spec_text(data="{source: digits, validation_split: 0.999}"), tmp_path)
    assert error.path == "data.validation_split" and error.code == "data"
    assert error.loc.line == 7 and error.loc.column == 42
    assert "leaves 1 training image for 10 classes" in error.message
    assert "0.999 of 1438 images holds out 1437" in error.message
    assert "smaller validation_split" in error.hint and "at most 0.99" in error.hint


def test_a_huge_test_split_is_a_located_error(tmp_path):
    error = located(spec_text(data="{source: digits, test_split: 0.999}"), tmp_path)
    assert error.path == "data.test_split" and error.loc.line == 7
    assert (
        "holds out 1795" in error.message
        and "leaves 2 training and validation images for 10" in error.message
    )
    assert "smaller test_split" in error.hint
    # all of it: round(1797 × 0.9999) = 1797 leaves nothing (scikit-learn's own error before)
    error = located(spec_text(data="{source: digits, test_split: 0.9999}"), tmp_path)
    assert error.path == "data.test_split" and "leaves 0 " in error.message


def test_split_indices_refuse_to_keep_nothing():
    with pytest.raises(SplitTooLarge) as info:  # targets that are no classes: at least one image
        _split_indices(10, None, 0.99, 0)
    assert (info.value.n, info.value.held, info.value.kept, info.value.classes) == (10, 10, 0, 1)
    with pytest.raises(SplitTooLarge) as info:  # classes: at least one image per class
        _split_indices(12, np.arange(12) % 4, 0.75, 0)
    assert (info.value.kept, info.value.classes) == (3, 4)
    kept, held = _split_indices(12, np.arange(12) % 4, 0.6, 0)
    assert (len(kept), len(held)) == (5, 7)


def test_a_huge_split_of_an_image_folder_is_located(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("circle", "square"):
        folder = tmp_path / "train" / name
        folder.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, size=(8, 8, 3)).astype("uint8")).save(folder / f"{i}.png")
    # 6 images: 1 for the test split, 5 left; 4 of those for validation leaves 1 for 2 classes
    text = spec_text("[8, 8, 1]", 2, "\n  source: {directory: train}\n  validation_split: 0.9")
    error = located(text, tmp_path)
    assert error.path == "data.validation_split" and error.loc.line == 9
    assert "leaves 1 training image for 2 classes" in error.message


# -- a class listed twice -------------------------------------------------------------------------
def test_a_class_listed_twice_is_a_located_error(tmp_path):
    error = located(spec_text(units=2, data="{source: digits, classes: [3, '3']}"), tmp_path)
    assert error.path == "data.classes[1]" and error.loc.line == 7 and error.loc.column == 37
    assert "'3'" in error.message and "as 3 at data.classes[0]" in error.message
    assert "remove one of 3 and '3'" in error.hint


def test_a_class_by_name_and_by_index_is_listed_twice(tmp_path):
    write_npz(tmp_path / "d.npz", classes=3, class_names=np.array(["a", "b", "c"]))
    text = spec_text("[6, 6, 1]", 2, "{source: {npz: d.npz}, classes: [c, a, '2']}")
    error = located(text, tmp_path)
    assert error.path == "data.classes[2]" and "('c')" in error.message and "'c'" in error.hint


def test_class_indices_and_select_refuse_duplicates():
    with pytest.raises(subsets.UnknownClass) as info:
        subsets.class_indices(["x", 1], ["w", "x"], 2)
    assert info.value.index == 1
    with pytest.raises(ValueError):
        subsets.select(np.arange(4), np.array([0, 1, 2, 1]), [1, 1])


# -- splits that lose classes ---------------------------------------------------------------------
def test_tiny_splits_note_the_classes_they_lack(tmp_path):
    _, _, data = load(spec_text(data="{source: digits, test_split: 0.99}"), tmp_path, seed=42)
    assert data.sizes() == {"train": 16, "validation": 2, "test": 1779}
    training, validation = data.notes
    assert training == "the training split (16 images) has no images of 1 of the data's 10 classes: 8"
    assert validation.startswith("the validation split (2 images) has no images of 8 of the data's 10")
    assert (
        data.content_hash()
        == load(spec_text(data="{source: digits, test_split: 0.99}"), tmp_path, 42)[2].content_hash()
    )


def test_a_small_limit_counts_the_datas_classes_by_its_class_list(tmp_path):
    """data.limit: 3 leaves 9 images of 7 digits; the data still has 10 classes, and a split
    lacks those no split has too (the notes said "of the data's 7 classes")."""
    _, _, data = load(spec_text(data="{source: digits, limit: 3}"), tmp_path, seed=42)
    assert data.sizes() == {"train": 3, "validation": 3, "test": 3}
    assert len(data.notes) == 3
    for note, split in zip(data.notes, ("training", "validation", "test"), strict=True):
        y = {"training": data.y_train, "validation": data.y_val, "test": data.y_test}[split]
        missing = sorted(set(range(10)) - set(y.tolist()))
        listed = ", ".join(map(str, missing))
        assert note == (
            f"the {split} split (3 images) has no images of {len(missing)} of the data's 10 classes: {listed}"
        )


def test_splits_with_every_class_have_no_notes(tmp_path):
    write_npz(tmp_path / "d.npz", n=60, classes=3)
    _, _, data = load(spec_text("[6, 6, 1]", 3, "{source: {npz: d.npz}}"), tmp_path)
    assert data.notes == []


# -- a softmax wider than data.classes ------------------------------------------------------------
@pytest.mark.parametrize("entry", ["²", "٣٣", "-²"])
def test_a_class_written_in_digits_int_does_not_read_is_a_located_error(entry):
    """`classes: [²]` (found by `make fuzz`): `str.isdigit` holds for a superscript two, which
    `int` refuses, and validate stopped with a ValueError traceback. An Arabic-Indic `٣٣` is a
    number `int` reads (33, beyond digits' classes)."""
    with pytest.raises(SpecError) as refused:
        compile_text(spec_text(data=f"{{source: digits, classes: ['{entry}', 1]}}"), "s.yaml")
    (error,) = refused.value.diagnostics
    assert (error.path, error.message) == (
        "data.classes[0]",
        f"expected a class of the data; received {entry!r}",
    )


def test_more_units_than_selected_classes_is_a_warning():
    compiled = compile_text(spec_text(data="{source: digits, classes: [7, 1, 3]}"), "s.yaml")
    (warning,) = [w for w in compiled.warnings if w.code == "class-count"]
    assert warning.severity == "warning" and warning.path == "model[1].dense"
    assert warning.loc.line == 6
    assert "the model has 10 outputs for 3 classes" in warning.message
    assert warning.hint == "set the last dense layer to units: 3"
    assert warning.notes[0].loc.line == 7
    for fits in (
        spec_text(units=3, data="{source: digits, classes: [7, 1, 3]}"),
        spec_text(units=10, data="{source: digits}"),  # no subset: as for any source
        spec_text(units=1, data="{source: digits, classes: [7, 1]}").replace("softmax", "sigmoid")
        + "training: {loss: binary_crossentropy}\n",
    ):
        assert not [w for w in compile_text(fits).warnings if w.code == "class-count"]


def test_fewer_units_than_selected_classes_is_an_error(tmp_path):
    error = located(spec_text(units=2, data="{source: digits, classes: [7, 1, 3]}"), tmp_path)
    assert "at most 2 classes" in error.message and "units: 3" in error.hint


# -- images that do not fit the input: one check for train and codegen --script -------------------
WIDE = (
    "cnnspec: 1\nname: wide\ninput: {shape: [16, 16, 3]}\n"
    "model: [flatten, {dense: {units: 4, activation: softmax}}]\n"
)


def test_without_a_data_section_a_misfit_is_said_at_the_input_with_the_default_named(tmp_path):
    error = located(WIDE, tmp_path)
    assert (error.path, error.loc.line) == ("input.shape", 3)
    assert "the digits images have shape [8, 8, 1]" in error.message
    assert "the spec has no data section, so the digits images are used" in error.hint


def test_codegen_script_refuses_the_labels_train_refuses_and_notes_what_it_resizes(runner, tmp_path):
    from cnnspec.cli.app import app

    named = tmp_path / "named.yaml"
    named.write_text(WIDE.replace("[16, 16, 3]", "[8, 8, 1]") + "data: {source: digits}\n")
    result = runner.invoke(app, ["codegen", str(named), "--script", "-o", str(tmp_path / "a.py")])
    assert result.exit_code == 1 and not (tmp_path / "a.py").exists()
    assert "expected at most 4 classes (the model's output units); the data has 10" in result.stderr
    default = tmp_path / "default.yaml"
    default.write_text(WIDE)  # no data section: a script to point at one's own images
    result = runner.invoke(app, ["codegen", str(default), "--script", "-o", str(tmp_path / "b.py")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "the spec has no data section, so the script reads the digits images (10 classes)" in said
    assert "the digits images are 8×8×1; the script resizes them" in said


@pytest.mark.parametrize(
    ("source", "shape", "stored"),
    [
        ("digits", "[16, 16, 3]", "[8, 8, 1]"),
        ("mnist", "[32, 32, 1]", "[28, 28, 1]"),
        ("fashion_mnist", "[28, 28, 3]", "[28, 28, 1]"),
        ("cifar10", "[28, 28, 3]", "[32, 32, 3]"),
        ("cifar100", "[32, 32, 1]", "[32, 32, 3]"),
    ],
)
def test_validate_refuses_a_named_dataset_that_does_not_fit_the_input(
    runner, tmp_path, source, shape, stored
):
    """train takes a named dataset's arrays as they are: validate says what train said once it
    had loaded them, where train says it (nothing is downloaded: the sizes are known)."""
    from cnnspec.cli.app import app

    named = tmp_path / "named.yaml"
    named.write_text(WIDE.replace("[16, 16, 3]", shape) + f"data: {{source: {source}}}\n")
    result = runner.invoke(app, ["validate", str(named)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[0] == (
        f"{named}:5:16: error: data.source: expected data of shape {shape} (input.shape); the "
        f"{source} images have shape {stored}"
    )
    named.write_text(WIDE.replace("[16, 16, 3]", stored) + f"data: {{source: {source}}}\n")
    result = runner.invoke(app, ["validate", str(named)])
    assert "images have shape" not in result.output  # (the class count may still be refused)


# -- damaged and forged .npz files: located errors, never an internal error ----------------------
def member_offset(path: Path, name: str) -> tuple[int, int]:
    """Where the (compressed) data of zip member ``name`` starts in ``path``, and its size."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def patch_member(path: Path, name: str, *, flags: int = 0, method: int | None = None) -> None:
    """Set flag bits (an encrypted member) or the compression method of member ``name`` in its
    local header and its central directory entry."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo(name).header_offset
    raw = bytearray(path.read_bytes())
    entries = [i for i in range(len(raw)) if raw[i : i + 4] == b"PK\x01\x02"]
    central = next(i for i in entries if raw[i + 46 : i + 46 + len(name)] == name.encode())
    for flag_at, method_at in ((local + 6, local + 8), (central + 8, central + 10)):
        (old,) = struct.unpack("<H", raw[flag_at : flag_at + 2])
        raw[flag_at : flag_at + 2] = struct.pack("<H", old | flags)
        if method is not None:
            raw[method_at : method_at + 2] = struct.pack("<H", method)
    path.write_bytes(bytes(raw))


def forged(path: Path, key: str, shape: tuple[int, ...], data: bytes = bytes(64), **arrays) -> Path:
    """An .npz whose member ``key`` has a header claiming ``shape`` (uint8) but holds ``data``."""
    import io
    import zipfile

    from numpy.lib import format as npy

    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{key}.npy", header.getvalue() + data)
        for name, array in arrays.items():
            member = io.BytesIO()
            np.save(member, array)
            archive.writestr(f"{name}.npy", member.getvalue())
    return path


def good_arrays(n: int = 40) -> dict[str, np.ndarray]:
    x = np.tile(np.arange(36, dtype="uint8").reshape(6, 6), (n, 1, 1))  # compressible
    y = np.arange(n) % 3
    return {"x_train": x, "y_train": y, "x_test": x[:9], "y_test": y[:9]}


NPZ_SPEC = spec_text("[6, 6, 1]", 3, "{source: {npz: d.npz}}")


def unreadable(tmp_path: Path, text: str = NPZ_SPEC):
    error = located(text, tmp_path)
    assert error.path == "data.source.npz" and error.code == "data" and error.loc.line == 7
    assert error.message.startswith("expected a readable .npz file; ")
    return error


def test_a_damaged_deflate_stream_is_a_located_error(tmp_path):
    path = tmp_path / "d.npz"
    np.savez_compressed(path, **good_arrays())
    start, _ = member_offset(path, "x_train.npy")
    raw = bytearray(path.read_bytes())
    raw[start] |= 0b110  # block type 3: reserved, so zlib refuses the stream
    path.write_bytes(bytes(raw))
    error = unreadable(tmp_path)
    assert "d.npz: cannot read x_train (zlib.error: Error -3 while decompressing data" in error.message


def test_bytes_flipped_inside_a_compressed_member_are_a_located_error(tmp_path):
    path = tmp_path / "d.npz"
    arrays = good_arrays(400)
    arrays["x_train"] = np.random.default_rng(0).integers(0, 4, (400, 6, 6)).astype("uint8")
    np.savez_compressed(path, **arrays)
    start, size = member_offset(path, "x_train.npy")
    raw = bytearray(path.read_bytes())
    middle = start + size // 2
    raw[middle : middle + 40] = bytes(b ^ 0x5A for b in raw[middle : middle + 40])  # as the audit did
    path.write_bytes(bytes(raw))
    assert "cannot read x_train (" in unreadable(tmp_path).message


@pytest.mark.parametrize(
    ("patch", "fault"),
    [({"flags": 0x1}, "RuntimeError"), ({"method": 99}, "NotImplementedError")],
    ids=["encrypted", "unknown-compression"],
)
def test_encrypted_or_oddly_compressed_members_are_located_errors(tmp_path, patch, fault):
    path = tmp_path / "d.npz"
    np.savez(path, **good_arrays())
    patch_member(path, "y_train.npy", **patch)
    assert f"cannot read y_train ({fault}: " in unreadable(tmp_path).message


def test_a_header_promising_more_than_its_member_holds_is_refused_before_allocating(tmp_path):
    arrays = good_arrays()
    del arrays["x_train"]
    forged(tmp_path / "d.npz", "x_train", (100_000_000_000, 6, 6, 1), **arrays)
    error = unreadable(tmp_path)
    assert error.message.endswith(
        "d.npz: the header of x_train promises 3.3 TiB (3600000000000 bytes), the member holds 64 bytes"
    )
    assert "save the arrays again" in error.hint


def test_a_header_promising_less_than_its_member_holds_is_refused(tmp_path):
    arrays = good_arrays()
    del arrays["y_test"]
    forged(tmp_path / "d.npz", "y_test", (9,), bytes(72), **arrays)  # 9 uint8 promised, 72 held
    assert (
        "the header of y_test promises 9 B (9 bytes), the member holds 72 bytes"
        in unreadable(tmp_path).message
    )


def test_an_array_too_large_for_memory_is_a_located_error(tmp_path, monkeypatch):
    np.savez(tmp_path / "d.npz", **good_arrays())

    def allocate(self, key):  # what NumPy raises for an honest header larger than the memory
        raise MemoryError("Unable to allocate 5.82 TiB for an array with shape (6400000000000,)")

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", allocate)
    error = unreadable(tmp_path)
    assert "d.npz: x_train does not fit in memory (Unable to allocate 5.82 TiB" in error.message
    assert "read batch by batch" in error.hint


def test_forged_class_names_are_refused_too(tmp_path):
    forged(tmp_path / "d.npz", "class_names", (10**12,), **good_arrays())
    assert "the header of class_names promises" in unreadable(tmp_path).message


def test_object_class_names_stay_refused(tmp_path):
    np.savez(tmp_path / "d.npz", class_names=np.array(["a", 1, None], dtype=object), **good_arrays())
    error = unreadable(tmp_path)
    assert "cannot read class_names (ValueError: Object arrays cannot be loaded" in error.message


def test_a_npy_file_named_npz_is_not_read_whole(tmp_path):
    import zipfile

    # np.load would read it whole (as large as its header claims) and return an array
    forged(tmp_path / "x.npz", "x", (10**12,))
    with zipfile.ZipFile(tmp_path / "x.npz") as archive:
        (tmp_path / "d.npz").write_bytes(archive.read("x.npy"))
    error = unreadable(tmp_path)
    assert error.message.endswith("d.npz: not a zip archive") and "numpy.savez" in error.hint


def test_a_0d_class_names_array_is_one_name(tmp_path):
    """A 0-d class_names array is read as one name, and one name for 3 classes is refused (it
    used to become '0', '1', '2' without a word)."""
    np.savez(tmp_path / "d.npz", class_names=np.array("only"), **good_arrays())
    error = located(NPZ_SPEC, tmp_path)
    assert error.path == "data.source.npz" and error.code == "data"
    assert "a name for each of the 3 classes (labels 0–2) in d.npz" in error.message
    assert "its class_names has 1 (only)" in error.message
    assert "one name per class" in error.hint and "leave class_names out" in error.hint


def test_a_forged_target_of_a_multi_output_npz_is_located(tmp_path):
    from tests.test_task_data import load as load_task
    from tests.test_task_data import spec as task_spec

    x = np.zeros((12, 8, 8, 3), "uint8")
    kinds = np.arange(12) % 4
    forged(
        tmp_path / "two.npz", "y_train_seg", (12, 8, 8, 10**9),
        x_train=x, x_test=x[:4], y_test_seg=np.zeros((4, 8, 8), "uint8"),
        y_train_kind=kinds, y_test_kind=kinds[:4],
    )  # fmt: skip
    two_heads = (
        "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n    id: seg\n"
        "  - global_avg_pool2d:\n    inputs: seg\n  - dense: {units: 4, activation: softmax}\n    id: kind\n"
        "outputs: [seg, kind]\n"
    )
    with pytest.raises(SpecError) as info:
        load_task(task_spec(tmp_path, "{npz: two.npz}", two_heads))
    (error,) = info.value.errors
    assert error.path == "data.source.npz"
    assert "two.npz: the header of y_train_seg promises" in error.message


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["deflate", "header"])
def test_train_refuses_a_damaged_npz_before_writing(tmp_path, runner, damage):
    from cnnspec.cli.app import app

    path = tmp_path / "d.npz"
    if damage == "deflate":
        np.savez_compressed(path, **good_arrays())
        start, _ = member_offset(path, "x_train.npy")
        raw = bytearray(path.read_bytes())
        raw[start] |= 0b110
        path.write_bytes(bytes(raw))
    else:
        arrays = good_arrays()
        del arrays["x_train"]
        forged(path, "x_train", (100_000_000_000, 6, 6, 1), **arrays)
    spec = tmp_path / "spec.yaml"
    spec.write_text(NPZ_SPEC + "training: {epochs: 1}\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(spec), "--quiet", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "spec.yaml:7:" in result.output and "expected a readable .npz file; d.npz: " in result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("units", [10, 1])
@pytest.mark.parametrize("source", ["digits", "{directory: pics}"])
def test_one_selected_class_is_refused_as_too_few_not_as_units(units, source, tmp_path):
    """data.classes of one class: the warning said "set the last dense layer to units: 1", and
    train then trained a classifier of one class to a test accuracy of 1.0. Then the warning
    said one class is too few, and train refused the data at data.classes; validate now
    refuses it with train's error, for any source (one class listed stays one)."""
    text = spec_text(units=units, data=f"{{source: {source}, classes: [3]}}")
    with pytest.raises(SpecError) as info:
        compile_text(text, "s.yaml")
    (error,) = info.value.errors
    assert error.path == "data.classes" and error.loc.line == 7
    assert error.message == "expected at least 2 classes for a classifier; the data has 1 ('3')"
    assert error.hint.startswith("list at least 2 classes in data.classes: a classifier learns")


@pytest.mark.parametrize(
    ("shape", "data", "units", "classes", "named"),
    [
        ("[8, 8, 1]", "{source: digits}", 3, 10, ""),
        ("[8, 8, 1]", "{source: digits, classes: [0, 1, 2, 3, 4]}", 3, 5, " ('0', '1', '2', '3', '4')"),
        (
            "[28, 28, 1]",
            "{source: fashion_mnist, classes: [1, 8, 4]}",
            2,
            3,
            " ('trouser', 'bag', 'coat')",
        ),
    ],
    ids=["digits", "digits-selected", "fashion-mnist-selected"],
)
def test_validate_refuses_a_named_dataset_of_more_classes_than_units(shape, data, units, classes, named):
    """A named dataset's classes are known without reading it: more than the output's units
    passed validate (a warning with data.classes, not a word without) and train refused it."""
    with pytest.raises(SpecError) as info:
        compile_text(spec_text(shape, units, data), "s.yaml")
    (error,) = info.value.errors
    assert error.message == (
        f"expected at most {units} classes (the model's output units); the data has {classes}{named}"
    )
    assert error.path == "model[1].dense" and error.hint == f"set the last dense layer to units: {classes}"


def test_more_units_than_a_named_datasets_classes_is_warned_of():
    (warning,) = [
        w
        for w in compile_text(spec_text(units=12, data="{source: digits}"), "s.yaml").warnings
        if w.code == "class-count"
    ]
    assert (
        warning.message
        == "expected 10 output units, one per class of the data; the model has 12 outputs for 10 classes"
    )
    assert warning.notes[0].message.startswith("the digits data has 10 classes")


def test_codegen_refuses_one_selected_class_of_a_named_dataset_with_trains_message(tmp_path):
    """codegen --script knows digits' classes without reading them: it refuses data.classes of
    one class as train does, names listed (the script would train a classifier of one class)."""
    from cnnspec.backends.python_emitter import generate_code

    text = spec_text(units=2, data="{source: digits, classes: [3]}")
    trained = located(text, tmp_path)
    with pytest.raises(SpecError) as info:
        generate_code(compile_text(text, str(tmp_path / "spec.yaml")), script=True)
    (error,) = info.value.errors
    assert (error.path, error.message, error.hint) == (trained.path, trained.message, trained.hint)
