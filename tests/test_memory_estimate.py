"""``cnnspec train`` refuses a training that cannot fit in memory before allocating it: an
input of 60000×60000 pixels was killed by the kernel's OOM killer (exit 137, no message, an empty
run folder). The estimate is a floor (training/memory.py): the data source's arrays (an npz's by
its headers, never loaded) and one batch's activations. Nothing here allocates more than a
few kilobytes: the refusals come before the data is read."""

from __future__ import annotations

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
    assert " is available (" in result.output and "hint: a smaller input.shape" in result.output
    assert "(--batch-size; a batch holds 4 images now)" in result.output  # (the data's 4, not 32)
    assert "Traceback" not in result.output


def test_an_npz_too_large_is_refused_from_its_headers_before_it_is_loaded(tmp_path, monkeypatch):
    """The arrays' sizes come from their headers (a file's members are never read whole)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 64, 64, 3), dtype="uint8")
    np.savez_compressed(
        tmp_path / "d.npz", x_train=x, y_train=np.arange(40) % 3, x_test=x[:8], y_test=np.arange(8) % 3
    )
    size, images = memory.npz_declared_size(tmp_path / "d.npz")
    assert (size, images) == (48 * 64 * 64 * 3 + 48 * 8, 40)
    path = tmp_path / "spec.yaml"
    path.write_text(
        HUGE.replace("[60000, 60000, 3]", "[64, 64, 3]").replace("{shapes: {images: 4}}", "{npz: d.npz}")
    )
    compiled = compile_spec(path)

    def no_load(*args, **kwargs):
        raise AssertionError("the npz was loaded")

    monkeypatch.setattr(np, "load", no_load)
    monkeypatch.setattr(memory, "gpu_present", lambda: True)  # the data's size alone
    with pytest.raises(SpecError) as info:
        memory.check_memory(compiled, training_config(compiled), (256 << 10, "a test's figure"))
    (error,) = info.value.errors
    assert error.path == "data.source" and error.loc.line == 8 and error.code == "memory"
    assert error.message == (
        "out of memory: the training needs at least 576.4 KiB (576.4 KiB for the arrays of d.npz (the sizes "
        "their headers declare)); 256.0 KiB is available (a test's figure)"
    )
    assert "an npz is loaded whole" in error.hint


def test_a_forged_npz_header_is_left_to_the_loaders_message(tmp_path):
    """A header promising more than its member holds is a damaged file, not a large one."""
    from tests.test_data_edges import forged

    forged(tmp_path / "d.npz", "x_train", (100_000_000_000, 6, 6, 1), y_train=np.arange(3))
    assert memory.npz_declared_size(tmp_path / "d.npz") is None
    (tmp_path / "e.npz").write_bytes(b"not a zip")
    assert memory.npz_declared_size(tmp_path / "e.npz") is None


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
    assert "smaller training.batch_size (--batch-size; a batch holds 32 images now)" in error.hint
    memory.check_memory(compiled, config, (64 << 20, "a test's figure"))  # 64 MiB: room enough


def test_frozen_layers_keep_no_activations_for_the_backward_pass():
    compiled = compile_spec(SPECS_DIR.parent / "examples" / "backbone" / "resnet50_features.yaml")
    config = training_config(compiled)
    need = memory.activation_need(compiled, config)
    assert need is not None and need.size < 256 << 20  # the frozen body's outputs are not kept
    for node in compiled.ir.nodes:
        node.trainable = True
    assert memory.activation_need(compiled, config).size > 1 << 30


#: The specs of specs/ that train as they are (unet.yaml is the architecture alone, with no
#: segmentation data: unet_shapes.yaml trains it).
TRAINED = [path for path in sorted(SPECS_DIR.glob("*.yaml")) if path.stem != "unet"]


def test_the_one_spec_left_out_is_no_training_spec():
    with pytest.raises(SpecError, match="expected a data source with segmentation targets"):
        training_config(compile_spec(SPECS_DIR / "unet.yaml"))


@pytest.mark.parametrize("spec", TRAINED, ids=lambda p: p.stem)
def test_no_spec_of_the_project_needs_more_than_a_few_gigabytes(spec, monkeypatch):
    """The floor stays a floor: the largest of specs/ (densenet121 at 224×224, batch 32) under
    4 GiB, the small ones under 256 MiB."""
    monkeypatch.setattr(memory, "gpu_present", lambda: False)
    compiled = compile_spec(spec)
    config = training_config(compiled)
    small = compiled.ir.input_shape[0] <= 64
    memory.check_memory(compiled, config, ((256 << 20) if small else (4 << 30), "a test's figure"))


def test_the_available_memory_is_read_from_this_machine():
    found = memory.available_memory()
    assert found is not None and found[0] > 0 and found[1]


@pytest.mark.parametrize("kind", ["directory", "csv"])
def test_images_a_memory_cache_keeps_are_counted(tmp_path, monkeypatch, kind):
    """data.cache: memory keeps every decoded image (uint8, at image_size) after the first epoch:
    counted from the folder's files or the CSV's rows, nothing decoded."""
    from tests.test_listing_edges import make_images

    files = make_images(tmp_path / "pics", {"a": 3, "b": 4})
    rows = "".join(f"{p.parent.name}/{p.name},{p.parent.name}\n" for p in files)
    (tmp_path / "pics" / "labels.csv").write_text(f"file,label\n{rows}")
    source = "{directory: pics, image_size: [8, 8]}" if kind == "directory" else "{csv: pics/labels.csv}"
    path = tmp_path / "spec.yaml"
    text = HUGE.replace("[60000, 60000, 3]", "[8, 8, 3]").replace("{shapes: {images: 4}}", source)
    path.write_text(text.replace("data: {", "data: {cache: memory, "))
    compiled = compile_spec(path)
    monkeypatch.setattr(memory, "gpu_present", lambda: True)
    with pytest.raises(SpecError) as info:
        memory.check_memory(compiled, training_config(compiled), (1000, "a test's figure"))
    (error,) = info.value.errors
    assert error.path == "data.cache" and error.loc.line == 8
    assert (
        "(1.3 MiB for" not in error.message
        and "7 decoded images data.cache: memory keeps (uint8)" in error.message
    )
    assert error.hint.startswith("data.cache: disk")
    memory.check_memory(compiled, training_config(compiled), (7 * 192, "a test's figure"))  # just fits


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_a_cgroups_page_cache_counts_as_room(tmp_path, version):
    """A container's usage counts the page cache (files read lately), which the kernel gives
    back under the limit: counted as used, 7.5 GiB of cache under an 8 GiB limit left "0.5 GiB
    available" to a training that fits."""
    gib = 1 << 30
    limit, usage, cache = 8 * gib, 7 * gib + gib // 2, 7 * gib
    if version == "v2":
        files = {"memory.max": limit, "memory.current": usage, "memory.stat": f"anon 1\nfile {cache}\n"}
    else:
        files = {
            "memory/memory.limit_in_bytes": limit,
            "memory/memory.usage_in_bytes": usage,
            "memory/memory.stat": f"cache {cache}\ntotal_cache {cache}\n",
        }
    for name, value in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"{value}\n")
    assert memory._cgroup_room(tmp_path) == limit - (usage - cache)
    (tmp_path / ("memory.stat" if version == "v2" else "memory/memory.stat")).unlink()
    assert memory._cgroup_room(tmp_path) == limit - usage  # (no statistics: the usage as it is)
    (tmp_path / ("memory.max" if version == "v2" else "memory/memory.limit_in_bytes")).write_text("max\n")
    assert memory._cgroup_room(tmp_path) is None
