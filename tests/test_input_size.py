"""A shape error inside a file the user did not write names the smallest input that fits."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cnnspec.analysis.input_size import smallest_square_side
from cnnspec.analysis.zoo import catalog
from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.spec.compose import load_spec
from tests.conftest import SPECS_DIR

NOTE = "the smallest square input this model accepts is"


def errors_of(path, overrides=()) -> list:
    with pytest.raises(SpecError) as caught:
        compile_spec(path, overrides)
    return [d for d in caught.value.diagnostics if d.severity == "error"]


def test_a_zoo_model_too_small_for_its_input_names_the_smallest_input_and_where_it_was_set(tmp_path):
    spec = tmp_path / "small.yaml"
    spec.write_text("extends: zoo:inception_v3\nvars: {classes: 10}\ninput: {shape: [32, 32, 3]}\n")
    errors = errors_of(spec)
    assert errors and all(e.loc.file != str(spec) for e in errors)  # inside the packaged files
    for error in errors:
        first = error.notes[0]
        expected = f"{NOTE} 75×75×3; the input is [32, 32, 3] (input.shape, {spec}:3:16)"
        assert first.message.startswith(expected)
        assert (first.loc.file, first.loc.line, first.path) == (str(spec), 3, "input.shape")
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1 and f"{NOTE} 75×75×3" in result.output


def test_the_note_points_at_the_var_the_input_reads_when_set_on_the_command_line():
    (error, *_) = errors_of("zoo:inception_v3", ["vars.input_shape=[40, 40, 3]"])
    note = error.notes[0]
    assert note.message.startswith(f"{NOTE} 75×75×3; the input is [40, 40, 3] (vars.input_shape, <--set 1>")
    assert note.path == "vars.input_shape"


@pytest.mark.parametrize(("model", "given", "side"), [("vgg16", 31, 32), ("mobilenet", 30, 31)])
def test_a_zoo_model_validated_by_name_gets_the_note_for_an_error_in_its_own_file(model, given, side):
    """`validate zoo:vgg16 --set vars.input_shape=…`: the error is in the family's own file,
    which is packaged too (before, only errors in another file got the note)."""
    (error, *_) = errors_of(f"zoo:{model}", [f"vars.input_shape=[{given}, {given}, 3]"])
    assert error.loc.file.endswith(".yaml") and "cnnspec/zoo/" in error.loc.file
    assert error.notes[0].message.startswith(f"{NOTE} {side}×{side}×3; the input is [{given}, {given}, 3]")


def test_a_backbone_cut_from_the_zoo_gets_the_note_too(tmp_path):
    spec = tmp_path / "bb.yaml"
    spec.write_text(
        "cnnspec: 1\nname: m\ninput: {shape: [24, 24, 1]}\nmodel:\n"
        "  - backbone: {spec: zoo:inception_v3, until: mixed7}\n  - flatten\n"
    )
    (error, *_) = errors_of(spec)
    # the cut model's smallest input: the layers after mixed7 (which need 75×75) are left out
    assert error.notes[0].message.startswith(f"{NOTE} 43×43×1; the input is [24, 24, 1]")


def test_an_error_in_the_users_own_file_or_one_no_size_fixes_gets_no_note(tmp_path):
    own = tmp_path / "own.yaml"
    own.write_text(
        "cnnspec: 1\nname: m\ninput: {shape: [4, 4, 1]}\nmodel:\n  - conv2d: {filters: 2, kernel_size: 5}\n"
    )
    (error,) = errors_of(own)
    assert error.code == "shape" and not any(NOTE in n.message for n in error.notes)
    # In a block library, a reshape that no input size can satisfy: the search gives up.
    (tmp_path / "lib.yaml").write_text(
        "cnnspec: 1\nblocks:\n  odd:\n    layers:\n      - flatten\n      - reshape: {target_shape: [7, 5]}\n"
    )
    used = tmp_path / "used.yaml"
    used.write_text("cnnspec: 1\nname: m\nuse: [lib.yaml]\ninput: {shape: [4, 4, 1]}\nmodel: [odd]\n")
    (error,) = errors_of(used)
    assert error.code == "shape" and error.loc.file.endswith("lib.yaml")
    assert not any(NOTE in n.message for n in error.notes)


@pytest.mark.parametrize(("model", "side"), [("inception_v3", 75), ("vgg16", 32), ("densenet121", 29)])
def test_the_smallest_side_is_the_first_that_every_shape_check_passes(model, side):
    doc = load_spec(f"zoo:{model}", ())
    assert smallest_square_side(doc, 3, 1, allow_outside=False) == side
    assert smallest_square_side(doc, 3, side, allow_outside=False) == side + 1  # above the refused side
    # What the note claims, checked by compiling at the side and one below.
    compile_spec(f"zoo:{model}", [f"vars.input_shape=[{side}, {side}, 3]"])
    with pytest.raises(SpecError):
        compile_spec(f"zoo:{model}", [f"vars.input_shape=[{side - 1}, {side - 1}, 3]"])


@pytest.mark.parametrize("entry", catalog(), ids=lambda e: e.name)
def test_the_zoo_catalogue_names_each_models_smallest_input(entry):
    """`cnnspec zoo` and docs/zoo.md show it: the model compiles at it and not one below."""
    shape = entry.min_input_shape()
    assert shape is not None and shape[-1] == entry.input_shape[-1]
    compile_spec(f"zoo:{entry.name}", [f"vars.input_shape={shape}"])
    if shape[0] > 1:
        below = [shape[0] - 1, shape[0] - 1, shape[2]]
        with pytest.raises(SpecError):
            compile_spec(f"zoo:{entry.name}", [f"vars.input_shape={below}"])


def test_the_zoo_command_shows_the_smallest_input():
    result = CliRunner().invoke(app, ["zoo", "--format", "json"])
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["inception_v3"]["min_input_shape"] == [75, 75, 3]
    assert rows["vgg16"]["min_input_shape"] == [32, 32, 3]


def test_an_error_no_size_fixes_costs_one_more_resolution(tmp_path, monkeypatch):
    """The search first resolves at the largest side it would look at: when that does not fit
    either, it stops there instead of doubling up to it."""
    from cnnspec.analysis import input_size

    calls = []
    real = input_size._fits
    monkeypatch.setattr(input_size, "_fits", lambda *a: calls.append(a[1][0]) or real(*a))
    (tmp_path / "lib.yaml").write_text(
        "cnnspec: 1\nblocks:\n  odd:\n    layers:\n      - flatten\n      - reshape: {target_shape: [7, 5]}\n"
    )
    used = tmp_path / "used.yaml"
    used.write_text("cnnspec: 1\nname: m\nuse: [lib.yaml]\ninput: {shape: [4, 4, 1]}\nmodel: [odd]\n")
    errors_of(used)
    assert calls == [4 * input_size.MAX_GROWTH]


def test_a_spec_too_large_to_resolve_again_gets_no_note(tmp_path, monkeypatch):
    from cnnspec.analysis import input_size

    spec = tmp_path / "small.yaml"
    spec.write_text("extends: zoo:inception_v3\ninput: {shape: [32, 32, 3]}\n")
    monkeypatch.setattr(input_size, "MAX_STEPS", 100)  # inception_v3 walks a few hundred
    assert not any(NOTE in n.message for e in errors_of(spec) for n in e.notes)


def test_a_non_square_input_is_searched_from_its_shorter_side(tmp_path):
    spec = tmp_path / "wide.yaml"
    spec.write_text("extends: zoo:inception_v3\nvars: {classes: 10}\ninput: {shape: [32, 300, 3]}\n")
    (error, *_) = errors_of(spec)
    assert error.notes[0].message.startswith(f"{NOTE} 75×75×3; the input is [32, 300, 3]")


def test_a_model_whose_fitting_sizes_have_gaps_gets_no_note(tmp_path):
    """The U-Net's concatenations want a side divisible by 8: 36 fails, 40 and 32 fit, so no
    side is "the smallest" (the search found 72 before)."""
    (tmp_path / "unet.yaml").write_text((SPECS_DIR / "unet.yaml").read_text())
    spec = tmp_path / "odd.yaml"
    spec.write_text("extends: unet.yaml\ninput: {shape: [36, 36, 1]}\n")
    errors = errors_of(spec)
    assert errors and all(e.loc.file.endswith("unet.yaml") for e in errors)
    assert not any(NOTE in n.message for e in errors for n in e.notes)
    compile_spec(spec, ["input.shape=[40, 40, 1]"])  # what made the note wrong: a gap, not a floor


def test_search_candidates_are_checked_without_the_note(tmp_path, monkeypatch):
    """Each failing combination of a search space would cost resolutions: validate and the
    language server compile them without it."""
    from cnnspec.analysis import input_size

    calls = []
    monkeypatch.setattr(input_size, "_fits", lambda *a: calls.append(a) or True)
    spec = tmp_path / "search.yaml"
    spec.write_text(
        "cnnspec: 1\nname: s\ninput: {shape: [150, 150, 3]}\nvars: {p: 1}\nmodel:\n"
        "  - max_pool2d: {pool_size: '${p}', padding: same}\n"
        "  - backbone: {spec: zoo:inception_v3, vars: {include_top: false}}\n"
        "  - global_avg_pool2d\n  - dense: {units: 10, activation: softmax}\n"
        "data: {source: digits}\ntraining: {epochs: 1}\n"
        "search:\n  objective: {metric: val_loss, direction: minimize}\n  trials: 2\n"
        "  space:\n    vars.p: {choice: [1, 4]}\n"
    )
    with pytest.raises(SpecError):
        compile_spec(spec)  # p = 4 leaves inception 38×38: a shape error in the zoo's files
    assert calls == []


def test_the_probe_sets_the_var_the_input_shape_reads(tmp_path):
    """When `input.shape` is `${input_shape}`, the probe sets that var, which other layers may
    read too: here a crop of half the side leaves at most one row whatever the side, so no
    side fits (probing `input.shape` alone, the crop stayed 4 and "9×9" was claimed)."""
    (tmp_path / "lib.yaml").write_text(
        "cnnspec: 1\nblocks:\n  crop:\n    layers:\n"
        "      - cropping2d: '${input_shape[0] // 2 - 1}'\n"
        "      - conv2d: {filters: 2, kernel_size: 3}\n"
    )
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "cnnspec: 1\nname: s\nuse: [lib.yaml]\nvars: {input_shape: [10, 10, 1]}\n"
        "input: {shape: '${input_shape}'}\nmodel: [crop]\n"
    )
    (error,) = errors_of(spec)
    assert error.loc.file.endswith("lib.yaml")
    assert not any(NOTE in n.message for n in error.notes)
