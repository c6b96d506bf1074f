"""``cnnspec train`` refuses a training that cannot fit in memory before allocating it: an
input of 60000×60000 pixels was killed by the kernel's OOM killer (exit 137, no message, an empty
run folder). The estimate is a floor (training/memory.py): the data source's arrays (an npz's by
its headers, never loaded) and one batch's activations. Nothing here allocates more than a
few kilobytes: the refusals come before the data is read."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.training import memory
from tests.conftest import SPECS_DIR

HUGE = (
    "cnnspec: 1\nname: huge\ninput: {shape: [60000, 60000, 3]}\nmodel:\n"
    "  - conv2d: {filters: 64, kernel_size: 3}\n  - global_avg_pool2d\n"
    "  - dense: {units: 3, activation: softmax}\ndata: {source: {shapes: {images: 4}}}\n"
    "training: {epochs: 1, seed: 0}\n"
)


def test_a_huge_input_is_refused_out_of_memory_before_the_run_folder(tmp_path, runner):
    path = tmp_path / "huge.yaml"
    path.write_text(HUGE)
    result = runner.invoke(app, ["train", str(path), "-o", str(tmp_path / "run")], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert not (tmp_path / "run").exists()
    assert f"{path}:3:16: error: input.shape: out of memory: the training needs at least " in result.output
    assert "for the 4 generated shapes images and their masks" in result.output
    assert " is available (" in result.output and "hint: " in result.output
    assert "Traceback" not in result.output


def _header_only_npz(path: Path, arrays: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """An npz whose arrays declare ``arrays``' shapes and dtypes in their headers, with no data
    (a file of a few hundred bytes that says it holds hundreds of gigabytes)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, (shape, dtype) in arrays.items():
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
            )
            archive.writestr(f"{name}.npy", header.getvalue())  # (the magic string, then the header)


def test_an_npz_declaring_arrays_too_large_is_refused_from_its_headers(tmp_path):
    _header_only_npz(
        tmp_path / "d.npz",
        {
            "x_train": ((200_000, 1000, 1000, 3), "uint8"),
            "y_train": ((200_000,), "int64"),
            "x_test": ((10, 1000, 1000, 3), "uint8"),
            "y_test": ((10,), "int64"),
        },
    )
    size, images = memory.npz_declared_size(tmp_path / "d.npz")
    assert images == 200_000 and size == 200_010 * 3_000_000 + 200_010 * 8
    path = tmp_path / "spec.yaml"
    path.write_text(
        HUGE.replace("[60000, 60000, 3]", "[1000, 1000, 3]").replace("{shapes: {images: 4}}", "{npz: d.npz}")
    )
    compiled = compile_spec(path)
    with pytest.raises(SpecError) as info:
        memory.check_memory(compiled, training_config(compiled), (64 << 30, "a test's figure"))
    (error,) = info.value.errors
    assert error.path == "data.source" and error.loc.line == 8 and error.code == "memory"
    assert error.message.startswith("out of memory: the training needs at least ")
    assert "for the arrays of d.npz (the sizes their headers declare)" in error.message
    assert error.message.endswith("; 64.0 GiB is available (a test's figure)")
    assert "an npz is loaded whole" in error.hint


def test_the_activations_of_a_batch_are_refused_on_a_machine_without_a_gpu(tmp_path, monkeypatch):
    """digits_cnn's activations for a batch of 32 (a megabyte or so) against 100 kB free."""
    monkeypatch.setattr(memory, "gpu_present", lambda: False)
    compiled = compile_spec(SPECS_DIR / "digits_cnn.yaml")
    config = training_config(compiled)
    with pytest.raises(SpecError) as info:
        memory.check_memory(compiled, config, (100_000, "a test's figure"))
    (error,) = info.value.errors
    assert error.path == "input.shape"
    assert "for the activations of one training batch of 32 (float32" in error.message
    assert "smaller training.batch_size (--batch-size; now 32)" in error.hint
    memory.check_memory(compiled, config, (64 << 20, "a test's figure"))  # 64 MiB: room enough


def test_frozen_layers_keep_no_activations_for_the_backward_pass():
    compiled = compile_spec(SPECS_DIR.parent / "examples" / "backbone" / "resnet50_features.yaml")
    config = training_config(compiled)
    need = memory.activation_need(compiled, config)
    assert need is not None and need.size < 256 << 20  # the frozen body's outputs are not kept
    for node in compiled.ir.nodes:
        node.trainable = True
    assert memory.activation_need(compiled, config).size > 1 << 30


@pytest.mark.parametrize("spec", sorted(SPECS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_no_spec_of_the_project_needs_more_than_a_few_gigabytes(spec, monkeypatch):
    """The floor stays a floor: the largest of specs/ (densenet121 at 224×224, batch 32) under
    4 GiB, the small ones under 256 MiB."""
    monkeypatch.setattr(memory, "gpu_present", lambda: False)
    try:
        compiled = compile_spec(spec)
        config = training_config(compiled)
    except SpecError:
        pytest.skip("not a training spec")
    small = compiled.ir.input_shape[0] <= 64
    memory.check_memory(compiled, config, ((256 << 20) if small else (4 << 30), "a test's figure"))


def test_the_available_memory_is_read_from_this_machine():
    found = memory.available_memory()
    assert found is not None and found[0] > 0 and found[1]
