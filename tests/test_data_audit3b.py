"""Two defects an audit found in evaluating other data and in reading image channels.

D1. ``cnnspec evaluate RUN --data FOLDER`` compared the folder's class names with the run's byte
    for byte, although class names are compared in Unicode NFC everywhere else (README: "``ému``
    in a spec or a test folder is the folder ``ému`` macOS wrote decomposed"): a test folder
    ``ému`` written decomposed (NFD) was refused as an unknown class of a run that trained on
    ``ému`` composed, with two names that look the same. ``remap_folder_labels`` (streamed folders) and
    ``check_source_classes`` (other sources) now compare by ``name_key``.
D2. A 4-channel input read from image files got a hint that could not be followed: "set
    data.source.color_mode", although no color_mode the schema allows (grayscale, rgb) gives 4
    channels; with ``color_mode: rgb`` validate said nothing, and train refused the loaded data
    with the same hint. The hint now says files are read with 1 or 3 channels and names the
    input.shape to set, and validate refuses a stated color_mode whose channels are not the
    input's (train refused it anyway, after loading the data).
D3. An npz ``--data`` whose ``class_names`` (``class_names_<output>``) named a multi-label,
    regression, segmentation or multi-output model's labels, values, mask classes or classes in
    another order than the run was scored by position under the run's names, silently. They are
    matched by name (``match_names``, the one matching ``remap_folder_labels`` uses too) and reordered, with a
    note; names that are not the run's are refused.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from cnnspec.analysis.datafit import check_sample_shape
from cnnspec.analysis.passes import compile_text
from cnnspec.analysis.settings import training_config
from cnnspec.cli.app import app
from cnnspec.errors import SpecError, UsageError
from cnnspec.reporting.class_match import (
    check_source_classes,
    match_names,
    match_outputs,
    remap_folder_labels,
)

NFC = unicodedata.normalize("NFC", "ému")
NFD = unicodedata.normalize("NFD", "ému")


def _invoke(*args: object) -> Result:
    """Run the CLI with a wide terminal (Rich wraps long lines at 80 columns otherwise)."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})


def _flat(result: Result) -> str:
    """The command's output with line breaks and runs of spaces collapsed."""
    return " ".join(result.output.split())


# -- D1. class names of --data compared in Unicode NFC ---------------------------------------------
def test_streamed_folder_classes_are_matched_to_the_runs_in_nfc():
    assert NFC != NFD  # (the two spellings differ byte for byte, as on a Mac and elsewhere)
    # sorted, the decomposed name comes first (``e`` < ``z`` < ``é``): the labels need mapping
    names, run_names = sorted([NFD, "zed"]), sorted([NFC, "zed"])
    assert names == [NFD, "zed"] and run_names == ["zed", NFC]
    y, mapped = remap_folder_labels(np.array([0, 1, 1, 0]), names, run_names)
    assert mapped == ["zed", NFC]  # the run's spelling
    assert y.tolist() == [1, 0, 0, 1]
    # the same names in the same order need no mapping, and keep the run's spelling
    y, mapped = remap_folder_labels(np.array([0, 1]), ["zed", NFD], ["zed", NFC])
    assert (y.tolist(), mapped) == ([0, 1], ["zed", NFC])
    with pytest.raises(UsageError, match="received emu"):  # another name is still refused
        remap_folder_labels(np.array([0, 1]), ["emu", "zed"], run_names)


def test_other_sources_classes_are_compared_to_the_runs_in_nfc():
    config = SimpleNamespace(
        binary=False, output_units=2, task_path=None, data=SimpleNamespace(kind="npz", streamed=False)
    )
    check_source_classes([NFD, "zed"], [NFC, "zed"], config)  # type: ignore[arg-type]
    check_source_classes(["zed", NFD], [NFC, "zed"], config)  # type: ignore[arg-type]  # (reordered)
    with pytest.raises(UsageError) as info:  # a class the run does not have is refused
        check_source_classes(["zed", "emu"], [NFC, "zed"], config)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"expected --data classes named as the run's, in any order: 2 ('{NFC}', 'zed'); the npz data "
        "has 2 ('zed', 'emu') ('emu' not the run's)"
    )


def test_a_single_classifiers_npz_classes_in_another_order_are_renumbered_to_the_runs():
    """D3 for a single classifier: an npz whose ``class_names`` are the run's classes (or some of
    them) in another order is renumbered by name, with a note, as the other tasks' are; the same
    order (a prefix of the run's too) and unnamed labels are read as they come."""
    from cnnspec.reporting.class_match import classes_by_name

    config = SimpleNamespace(data=SimpleNamespace(kind="npz", streamed=False))
    notes: list[str] = []
    y, names = classes_by_name(np.array([0, 1, 2, 0]), ["c", NFD, "a"], ["a", NFC, "c"], config, notes)
    assert (y.tolist(), names) == ([2, 1, 0, 2], ["a", NFC, "c"])
    assert notes == [
        f"--data names its classes in another order than the run (3 ('c', '{NFD}', 'a'); the run's: 3 "
        f"('a', '{NFC}', 'c')): they are matched to the run's by name"
    ]
    y, names = classes_by_name(np.array([1, 0]), ["c", "a"], ["a", "b", "c"], config, notes)
    assert (y.tolist(), names) == ([0, 2], ["a", "b", "c"])  # some of the run's classes
    for given in (["a", "b"], ["0", "1", "2"]):  # (a prefix in the run's order; numbered labels)
        y, names = classes_by_name(np.array([1, 0]), given, ["a", "b", "c"], config, notes)
        assert (y.tolist(), names) == ([1, 0], given)
    assert len(notes) == 2


# -- D3. an npz's names of other tasks' targets matched to the run's by name ----------------------
def _matched(kind: object, y: object, names: list[str], run_names: dict[str, list[str]], target_names=None):
    """``match_outputs`` on a test split of ``kind`` targets (a dict by output: several outputs)
    for a run that recorded ``run_names``: the targets, the names and the notes."""
    several = isinstance(kind, dict)
    run = SimpleNamespace(output_names=lambda name: list(run_names.get(name, [])))
    outputs = list(kind) if several else ["out"]
    config = SimpleNamespace(
        tasks=[SimpleNamespace(name=name) for name in outputs], data=SimpleNamespace(kind="npz")
    )
    dataset = SimpleNamespace(target=kind, target_names=dict(target_names or {}))
    notes: list[str] = []
    y, names = match_outputs(run, dataset, config, y, names, notes)  # type: ignore[arg-type]
    return y, names, notes, dataset.target_names


RUN = ["a", "b", "c"]


@pytest.mark.parametrize("kind", ["multilabel", "regression"])
def test_npz_columns_named_in_another_order_are_put_in_the_runs_order(kind):
    columns = np.array([[1, 0, 0], [0, 1, 1]], dtype="float32")  # c, a, b
    y, names, notes, _ = _matched(kind, columns, ["c", "a", "b"], {"out": RUN})
    assert y.tolist() == [[0, 0, 1], [1, 1, 0]] and names == RUN
    what = "labels" if kind == "multilabel" else "values"
    assert notes == [
        f"--data names its {what} in another order than the run (3 ('c', 'a', 'b'); the run's: 3 ('a', "
        "'b', 'c')): they are matched to the run's by name"
    ]


def test_npz_mask_classes_and_a_multi_output_models_classes_are_renumbered_by_name():
    masks = np.array([[[0, 1], [2, 0]]], dtype="uint8")  # names p, q, bg
    y, names, notes, _ = _matched("mask", masks, ["p", "q", "bg"], {"out": ["bg", "p", "q"]})
    assert y.tolist() == [[[1, 2], [0, 1]]] and y.dtype == np.uint8 and names == ["bg", "p", "q"]
    assert len(notes) == 1 and notes[0].startswith("--data names its mask classes in another order")
    kinds = {"kind": "class", "seg": "mask"}
    targets = {"kind": np.array([0, 1, 2]), "seg": masks}
    given = {"kind": ["k1", "k2", "k0"], "seg": ["bg", "p", "q"]}
    recorded = {"kind": ["k0", "k1", "k2"], "seg": ["bg", "p", "q"]}
    y, _, notes, renamed = _matched(kinds, targets, [], recorded, given)
    assert y["kind"].tolist() == [1, 2, 0] and y["seg"] is masks  # (the seg output's names fit)
    assert renamed == recorded and targets["kind"].tolist() == [0, 1, 2]  # (the split left as it was)
    assert notes == [
        "--data names its classes of the output kind in another order than the run (3 ('k1', 'k2', "
        "'k0'); the run's: 3 ('k0', 'k1', 'k2')): they are matched to the run's by name"
    ]


def test_npz_names_that_are_not_the_runs_are_refused_and_unnamed_ones_read_by_position():
    columns = np.zeros((2, 3), dtype="float32")
    with pytest.raises(UsageError) as info:
        _matched("multilabel", columns, ["c", "a", "z"], {"out": RUN})
    assert str(info.value) == (
        "expected --data labels named as the run's, in any order: 3 ('a', 'b', 'c'); the npz data has 3 "
        "('c', 'a', 'z') ('b' missing; 'z' not the run's)"
    )
    assert info.value.hint == (
        "pass --data whose names are the run's (they are matched by name), or leave --data out for the "
        "run's own test split"
    )
    for names, recorded in ((["0", "1", "2"], RUN), (["c", "a", "b"], [])):  # unnamed data, or run
        y, got, notes, _ = _matched("multilabel", columns, names, {"out": recorded})
        assert (y is columns, got, notes) == (True, names, [])
    # (compared in Unicode NFC, as class folders are)
    match = match_names([NFD, "zed"], ["zed", NFC])
    assert (match.table, match.unknown, match.missing) == ([1, 0], [], [])


def _png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.mark.slow
def test_evaluate_a_decomposed_test_folder_of_a_composed_run(tmp_path):
    from tests.test_report_support import train_without_page

    rng = np.random.default_rng(0)
    for split, name in (("train", NFC), ("train", "zed"), ("testd", NFD), ("testd", "zed")):
        for i in range(4):
            _png(tmp_path / split / name / f"{i}.png", rng.integers(0, 255, (8, 8, 3), dtype="uint8"))
    spec = tmp_path / "nfc.yaml"
    spec.write_text(
        "cnnspec: 1\nname: tiny\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - conv2d: {filters: 2, kernel_size: 3}\n  - global_avg_pool2d\n"
        "  - dense: {units: 2, activation: softmax}\n"
        "data: {source: {directory: train}, validation_split: 0.25}\n"
        "training: {epochs: 1, batch_size: 8, seed: 1}\n",
        encoding="utf-8",
    )
    run = tmp_path / "run"
    train_without_page(spec, run)  # (evaluate reads the model and lock.json, not the page)
    result = _invoke("evaluate", run, "--data", tmp_path / "testd", "--out", tmp_path / "ev", "-f", "json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ev" / "evaluation.json").read_text(encoding="utf-8"))
    assert NFC in json.dumps(report, ensure_ascii=False)  # named as the run names its class


# -- D2. a hint for the channels image files can be read with --------------------------------------
def _spec(shape: str, source: str) -> str:
    return (
        f"cnnspec: 1\nname: t\ninput: {{shape: {shape}}}\nmodel:\n  - global_avg_pool2d\n"
        f"  - dense: {{units: 2, activation: softmax}}\ndata: {{source: {source}}}\n"
    )


def _error(text: str) -> tuple[str, str, str]:
    """The one error of compiling ``text``: its path, message and hint."""
    with pytest.raises(SpecError) as caught:
        compile_text(text, "t.yaml")
    errors = caught.value.errors
    assert len(errors) == 1, errors
    return errors[0].path, errors[0].message, errors[0].hint or ""


def test_four_input_channels_hint_names_the_shape_to_set():
    path, message, hint = _error(_spec("[16, 16, 4]", "{directory: imgs}"))
    assert (path, message) == (
        "data.source",
        "expected 1 or 3 input channels for an image folder; input.shape is [16, 16, 4]",
    )
    assert "color_mode: grayscale" in hint and "color_mode: rgb" in hint
    assert "set input.shape to [16, 16, 3] or [16, 16, 1]" in hint
    assert "set data.source.color_mode" not in hint  # (no color_mode gives 4 channels)


@pytest.mark.parametrize(
    ("shape", "mode", "read", "hint"),
    [
        ("[16, 16, 4]", "rgb", 3, "set input.shape to [16, 16, 3] or [16, 16, 1]"),
        ("[16, 16, 1]", "rgb", 3, "set data.source.color_mode to grayscale"),
        ("[16, 16, 3]", "grayscale", 1, "set data.source.color_mode to rgb"),
    ],
)
def test_validate_refuses_a_color_mode_without_the_inputs_channels(shape, mode, read, hint):
    for source in (f"{{directory: imgs, color_mode: {mode}}}", f"{{csv: t.csv, color_mode: {mode}}}"):
        path, message, got = _error(_spec(shape, source))
        assert path == "data.source.color_mode"
        assert message.endswith(f"color_mode {mode} reads {read}"), message
        assert hint in got


def test_validate_cli_refuses_rgb_for_four_channels(tmp_path):
    spec = tmp_path / "c4.yaml"
    spec.write_text(_spec("[16, 16, 4]", "{directory: imgs, color_mode: rgb}"), encoding="utf-8")
    result = _invoke("validate", spec)
    assert result.exit_code == 1, result.output
    assert "data.source.color_mode" in _flat(result) and "Traceback" not in result.output


def test_loaded_images_hint_for_four_channels_is_one_that_can_be_followed():
    # the check train makes after loading (a color_mode stated right, the input changed since)
    compiled = compile_text(_spec("[16, 16, 3]", "{directory: imgs}"), "t.yaml")
    config = training_config(compiled)
    with pytest.raises(SpecError) as caught:
        check_sample_shape((16, 16, 3), _four_channel_model(), config)
    hint = caught.value.errors[0].hint or ""
    assert "set input.shape to [16, 16, 3]" in hint and "set source.color_mode" not in hint
    with pytest.raises(SpecError) as caught:  # a model of 1 channel: the mode that gives it
        check_sample_shape(
            (16, 16, 3), compile_text(_spec("[16, 16, 1]", "{directory: imgs}"), "t.yaml"), config
        )
    hint = caught.value.errors[0].hint or ""
    assert "set data.source.color_mode to grayscale (or leave it out), or input.shape to [16, 16, 3]" in hint


def _four_channel_model():
    """A compiled spec whose input has 4 channels (its data section is not read here)."""
    return compile_text(
        "cnnspec: 1\nname: t\ninput: {shape: [16, 16, 4]}\nmodel:\n  - global_avg_pool2d\n"
        "  - dense: {units: 2, activation: softmax}\n",
        "t.yaml",
    )
