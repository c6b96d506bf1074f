"""`cnnspec import` on damaged, unusual and hand-edited sources: a clear error naming the source
file (exit 1; exit 2 for a usage error), never an internal error, and nothing written.

TensorFlow-free: every bad input is a JSON configuration or a small zip written here.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cnnspec.analysis.passes import compile_text
from cnnspec.errors import SpecError
from cnnspec.importer import import_source
from cnnspec.importer.source import Source
from tests.test_import import TINY_JSON, TINY_KERAS, run_cli, tiny_config


def _tensor(source: str, node: Any = 0, index: Any = 0) -> dict:
    return {"class_name": "__keras_tensor__", "config": {"keras_history": [source, node, index]}}


def _layer(class_name: str, name: str, calls: list[list[dict]] | None = None, **config: Any) -> dict:
    return {
        "module": "keras.layers",
        "class_name": class_name,
        "registered_name": None,
        "name": name,
        "config": {"name": name, **config},
        "inbound_nodes": [{"args": args, "kwargs": {}} for args in calls or []],
    }


def functional(*layers: dict, output: str | None = None) -> dict:
    """A Functional configuration: an 8-wide input, then ``layers``."""
    entries = [_layer("InputLayer", "in", batch_shape=[None, 8]), *layers]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "func",
            "layers": entries,
            "input_layers": [["in", 0, 0]],
            "output_layers": [[output or entries[-1]["name"], 0, 0]],
        },
    }


def sequential(*layers: dict) -> dict:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": list(layers)}}


def dense(name: str, reads: str = "in", node: Any = 0, index: Any = 0) -> dict:
    return _layer("Dense", name, [[_tensor(reads, node, index)]], units=4)


def _write(tmp_path: Path, config: dict, name: str = "model.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def refused(source: Path, *extra: str, code: int = 1) -> str:
    """Import ``source``: the exit code, no internal error, nothing written; the output."""
    out = source.parent / "out.yaml"
    result = run_cli("import", str(source), "-o", str(out), *extra)
    assert result.exit_code == code, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert not out.exists()
    assert not (source.parent / "out.weights.h5").exists()
    assert not [p for p in source.parent.iterdir() if ".tmp" in p.name or p.name.startswith(".")]
    return result.output


def test_the_helpers_make_an_importable_model(tmp_path):
    out = tmp_path / "ok.yaml"
    result = run_cli("import", str(_write(tmp_path, functional(dense("d")))), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "- dense: 4" in out.read_text()


# -- 1. damaged or unusual .keras zips ------------------------------------------------------------
def _stored_zip(members: dict[str, bytes]) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return bytearray(buffer.getvalue())


def _header(data: bytearray, signature: bytes, name_at: int, name: bytes) -> int:
    return next(
        i
        for i in range(len(data) - name_at)
        if data[i : i + 4] == signature and data[i + name_at : i + name_at + len(name)] == name
    )


def _damaged(members: dict[str, bytes], target: str, how: str) -> bytes:
    """A stored zip with member ``target`` damaged: a flipped byte (bad CRC), compression
    method 99, or the encrypted flag set."""
    data = _stored_zip(members)
    name = target.encode()
    local = _header(data, b"PK\x03\x04", 30, name)
    central = _header(data, b"PK\x01\x02", 46, name)
    if how == "crc":
        extra = struct.unpack("<H", data[local + 28 : local + 30])[0]
        data[local + 30 + len(name) + extra + 2] ^= 0xFF
    elif how == "method":
        data[local + 8 : local + 10] = struct.pack("<H", 99)
        data[central + 10 : central + 12] = struct.pack("<H", 99)
    elif how == "encrypted":
        data[local + 6 : local + 8] = struct.pack("<H", 1)
        data[central + 8 : central + 10] = struct.pack("<H", 1)
    return bytes(data)


DAMAGE = ["crc", "method", "encrypted"]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_config_json_is_a_corrupt_file_error(tmp_path, how):
    source = tmp_path / "model.keras"
    source.write_bytes(_damaged({"config.json": TINY_JSON.read_bytes()}, "config.json", how))
    output = refused(source)
    assert f"corrupt or unsupported .keras file: {source}: cannot read config.json" in output


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_weights_member_is_a_corrupt_file_error_and_writes_nothing(tmp_path, how):
    with zipfile.ZipFile(TINY_KERAS) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    source = tmp_path / "model.keras"
    source.write_bytes(_damaged(members, "model.weights.h5", how))
    output = refused(source, "--weights")
    assert f"corrupt or unsupported .keras file: {source}: cannot read model.weights.h5" in output


def test_a_weights_member_that_is_not_hdf5_is_a_corrupt_file_error(tmp_path):
    with zipfile.ZipFile(TINY_KERAS) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["model.weights.h5"] = b"not an HDF5 file"
    source = tmp_path / "model.keras"
    source.write_bytes(_stored_zip(members))
    output = refused(source, "--weights")
    assert "model.weights.h5 is not a readable weights file" in output


# -- 2. shared layers and calls that are not layer outputs: the refusal, not a broken graph -------
def test_a_shared_layer_is_refused_as_shared(tmp_path):
    config = functional(
        _layer("Dense", "shared", [[_tensor("in")], [_tensor("shared")]], units=8),
        dense("dense_2", "shared", node=1),
    )
    source = _write(tmp_path, config)
    output = refused(source)
    assert f"{source}: $.config.layers[1]: 2 layers cannot be imported" in output
    assert "layer 'shared' (Dense) is called 2 times (shared weights)" in output
    assert "reads output 0 of call 1 of 'shared'" in output
    assert "not a layer of the model" not in output and "truncated" not in output


def test_a_shared_layer_is_named_with_every_other_refused_layer(tmp_path):
    config = functional(
        _layer("Dense", "shared", [[_tensor("in")], [_tensor("in")]], units=8),
        _layer("Lambda", "lam", [[_tensor("shared")]]),
    )
    output = refused(_write(tmp_path, config))
    assert "2 layers cannot be imported" in output
    assert "'shared' (Dense) is called 2 times" in output and "'lam' (Lambda) cannot be imported" in output


@pytest.mark.parametrize("args", ["zz", {"a": 1}, 3], ids=["string", "object", "number"])
def test_call_arguments_that_are_not_layer_outputs_are_refused_as_such(tmp_path, args):
    layer = dense("d")
    layer["inbound_nodes"][0]["args"] = args
    output = refused(_write(tmp_path, functional(layer)))
    assert "layer 'd' (Dense) is called with a constant" in output
    assert "does not lead to the model output" not in output


# -- 3. keras_history of the wrong types ----------------------------------------------------------
@pytest.mark.parametrize("position", [1, 2])
@pytest.mark.parametrize("value", ["x", None, 0.5, True, -1, [0]], ids=repr)
def test_a_keras_history_index_of_the_wrong_type_is_located(tmp_path, position, value):
    layer = dense("d")
    layer["inbound_nodes"][0]["args"][0]["config"]["keras_history"][position] = value
    source = _write(tmp_path, functional(layer))
    output = refused(source)
    where = f"$.config.layers[1].inbound_nodes[0].args[0].config.keras_history[{position}]"
    assert f"{source}: {where}: expected keras_history" in output
    assert f"received {json.dumps(value)}" in output


def test_a_keras_tensor_whose_config_is_not_an_object_is_located(tmp_path):
    layer = dense("d")
    layer["inbound_nodes"][0]["args"][0]["config"] = ["in", 0, 0]
    output = refused(_write(tmp_path, functional(layer)))
    assert "args[0].config.keras_history: expected keras_history" in output


# -- 4. duplicate names in a Sequential configuration ---------------------------------------------
def test_a_sequential_layer_name_used_twice_is_refused(tmp_path):
    config = sequential(
        _layer("InputLayer", "in", batch_shape=[None, 8]),
        _layer("Dense", "d", units=4),
        _layer("Dense", "d", units=2),
    )
    source = _write(tmp_path, config)
    output = refused(source)
    where = f"{source}: $.config.layers[2].name"
    assert f"{where}: layer name 'd' is used twice (first at $.config.layers[1])" in output


def test_a_second_input_layer_in_a_sequential_config_is_refused(tmp_path):
    config = sequential(
        _layer("InputLayer", "in", batch_shape=[None, 8]),
        _layer("Dense", "d", units=4),
        _layer("InputLayer", "in2", batch_shape=[None, 8]),
        _layer("Dense", "e", units=2),
    )
    assert "$.config.layers[2].class_name: expected the InputLayer first" in refused(_write(tmp_path, config))


def test_a_sequential_layer_named_like_the_implied_input_still_imports():
    config = sequential(_layer("Dense", "input_layer", units=4), _layer("Dense", "d", units=2))
    config["config"]["build_input_shape"] = [None, 8]
    imported = import_source(Source("seq", config))
    assert imported.text.count("- dense:") == 2


# -- 5. errors of the compiled spec are said of the source ----------------------------------------
@pytest.mark.parametrize(
    "config",
    [
        sequential(_layer("InputLayer", "in", batch_shape=[None, 8])),
        functional(output="in"),
    ],
    ids=["sequential", "functional"],
)
def test_an_input_only_model_is_the_at_least_one_layer_error(tmp_path, config):
    source = _write(tmp_path, config)
    output = refused(source)
    assert f"{source}: $.config.layers: expected at least an input and one layer" in output
    assert ".yaml" not in output


def test_a_spec_that_does_not_compile_names_the_source_layer_not_a_yaml_file(tmp_path):
    config = functional(_layer("Conv2D", "conv", [[_tensor("in")]], filters=2, kernel_size=[3, 3]))
    source = _write(tmp_path, config)
    output = refused(source)
    where = f"{source}: $.config.layers[1]"
    assert f"{where}: layer 'conv' (Conv2D) does not import as a valid spec item" in output
    assert "expected a 3-D input" in output
    assert "func.yaml" not in output and "<imported spec>" not in output


def test_compile_errors_through_the_api_name_the_source_and_no_file():
    config = functional(_layer("Conv2D", "conv", [[_tensor("in")]], filters=2, kernel_size=[3, 3]))
    with pytest.raises(SpecError) as caught:
        import_source(Source("edited", config))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.loc is None and diagnostic.path == "edited: $.config.layers[1]"


# -- 6. import errors name their source file ------------------------------------------------------
@pytest.mark.parametrize("suffix", ["json", "keras"])
def test_an_import_error_names_the_source_file(tmp_path, suffix):
    config = tiny_config()
    config["config"]["layers"][1]["class_name"] = "Lambda"
    if suffix == "json":
        source = _write(tmp_path, config, "first.json")
    else:
        source = tmp_path / "first.keras"
        with zipfile.ZipFile(source, "w") as archive:
            archive.writestr("config.json", json.dumps(config))
    output = refused(source)
    assert f"error: {source}: $.config.layers[1]: layer" in output


# -- 7. the output is never the source ------------------------------------------------------------
@pytest.mark.parametrize("kind", ["json", "keras", "link", "weights"])
def test_an_output_that_is_the_source_is_refused_before_anything_is_written(tmp_path, kind):
    if kind == "keras":
        source = tmp_path / "model.keras"
        source.write_bytes(TINY_KERAS.read_bytes())
        args = ["-o", str(source)]
    elif kind == "weights":  # --weights would write NAME.weights.h5 over the source
        source = tmp_path / "model.weights.h5"
        source.write_bytes(TINY_KERAS.read_bytes())
        args = ["-o", str(tmp_path / "model.yaml"), "--weights"]
    else:
        source = tmp_path / "model.json"
        source.write_bytes(TINY_JSON.read_bytes())
        args = ["-o", str(source)]
    before = source.read_bytes()
    given = source
    if kind == "link":
        given = tmp_path / "link.json"
        given.symlink_to(source)
    result = run_cli("import", str(given), *args)
    assert result.exit_code == 2, result.output
    assert "import would overwrite the model it reads" in result.output
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({source.name, given.name})


def test_an_existing_spec_is_replaced_only_with_force(tmp_path):
    source = _write(tmp_path, functional(dense("d")))
    out = tmp_path / "mine.yaml"
    out.write_text("my own spec\n")
    result = run_cli("import", str(source), "-o", str(out))
    assert result.exit_code == 2 and "already exists" in result.output and "--force" in result.output
    assert out.read_text() == "my own spec\n"
    assert run_cli("import", str(source), "-o", str(out), "--force").exit_code == 0
    assert out.read_text().startswith("# ") or "cnnspec: 1" in out.read_text()


def test_a_folder_as_the_source_is_named_as_one(tmp_path):
    result = run_cli("import", str(tmp_path), "-o", str(tmp_path / "x.yaml"))
    assert result.exit_code == 2
    assert "expected a file, or a run folder with its model.keras; received a folder" in result.output


@pytest.mark.parametrize("locked", [True, False])
def test_a_run_folder_stands_for_its_model_as_for_the_other_readers(tmp_path, locked):
    """`import RUN` was "expected a file; received a folder", where evaluate, predict, export
    and benchmark take a run folder for its model.keras; and a folder holding a model.keras
    without lock.json, which export and evaluate read as a run, was still refused."""
    run = tmp_path / "run"
    run.mkdir()
    if locked:
        (run / "lock.json").write_text("{}")
    with zipfile.ZipFile(run / "model.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(functional(dense("d"))))
    result = run_cli("import", str(run), "-o", str(tmp_path / "x.yaml"))
    assert result.exit_code == 0, result.output
    assert f"imported {run / 'model.keras'} → {tmp_path / 'x.yaml'}" in " ".join(result.output.split())
    (run / "model.keras").unlink()
    (run / "lock.json").write_text("{}")
    unfinished = run_cli("import", str(run), "-o", str(tmp_path / "y.yaml"))
    assert unfinished.exit_code == 2 and "the run folder has no model.keras (the run has not finished)" in (
        " ".join(unfinished.output.split())
    )


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda tmp: "", "expected a model file; received an empty path"),
        (lambda tmp: "/dev/null", "/dev/null: expected a model file; received a character device"),
        (lambda tmp: str(_fifo(tmp / "pipe")), "expected a model file; received a FIFO (named pipe)"),
        (
            lambda tmp: str(_touch(tmp / "model.weights.h5", b"\x89HDF\r\n\x1a\n")),
            "a weights file (model.save_weights) holds no model configuration",
        ),
        (
            lambda tmp: str(_touch(tmp / "spec.yaml", b"cnnspec: 1\n")),
            "expected a Keras model; received a YAML file (a cnnspec spec is already a spec)",
        ),
    ],
    ids=["empty", "device", "fifo", "weights", "spec"],
)
def test_sources_passed_by_mistake_are_named_as_what_they_are(tmp_path, make, said):
    """They were "a folder", "no such file", "a legacy HDF5 model file" and "not valid JSON".
    A path that is no file is a usage error (2), a file that is no model a located one (1)."""
    source = make(tmp_path)
    result = run_cli("import", source, "-o", str(tmp_path / "x.yaml"))
    expected = 1 if Path(source).is_file() and source else 2
    assert result.exit_code == expected and said in result.output, result.output
    assert not (tmp_path / "x.yaml").exists()


def _touch(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- 8. --weights copies only the weights file the .keras holds -----------------------------------
def _keras_with_weights(tmp_path: Path, weights: bytes, name: str = "model.keras") -> Path:
    """A .keras zip: the 8 → 4 dense model's configuration and ``weights`` as model.weights.h5."""
    source = tmp_path / name
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps(functional(dense("d"))))
        archive.writestr("model.weights.h5", weights)
    return source


def _weights_file(path: Path, hostile: str, victim: Path) -> bytes:
    """A Keras-style weights file with one hostile entry that reaches outside itself."""
    import h5py
    import numpy as np

    with h5py.File(path, "w") as handle:
        handle.create_group("layers/dense/vars").attrs["name"] = "d"
        handle["layers/dense/vars"].create_dataset("0", data=np.zeros((8, 4), "float32"))
        if hostile == "external":
            handle["layers/zzz"] = h5py.ExternalLink(str(victim), "/g")
        elif hostile == "soft":
            handle["layers/zzz"] = h5py.SoftLink("/layers/dense")
        if hostile == "external_storage":  # a dataset whose values are stored in another file
            handle["layers/dense/vars"].create_dataset("1", (4,), "float32", external=[(str(victim), 0, 16)])
        else:  # the bias: a file without it does not fit the model (import refuses it)
            handle["layers/dense/vars"].create_dataset("1", data=np.zeros(4, "float32"))
    return path.read_bytes()


@pytest.mark.parametrize("hostile", ["external", "soft", "external_storage"])
def test_a_weights_file_that_reaches_outside_itself_is_refused_and_the_victim_is_untouched(tmp_path, hostile):
    import h5py

    work = tmp_path / "work"
    work.mkdir()
    victim = tmp_path / "victim.h5"
    with h5py.File(victim, "w") as handle:
        handle.create_group("g/vars").attrs["name"] = "d"
    before = victim.read_bytes()
    weights = _weights_file(tmp_path / "built.weights.h5", hostile, victim)
    source = _keras_with_weights(work, weights)
    output = refused(source, "--weights")
    assert f"{source}: model.weights.h5" in output and "/layers/" in output
    assert "refers to" in output
    assert victim.read_bytes() == before
    assert sorted(p.name for p in work.iterdir()) == ["model.keras"]


def test_a_self_contained_weights_file_is_copied_and_relabelled(tmp_path):
    import h5py

    weights = _weights_file(tmp_path / "built.weights.h5", "none", tmp_path / "unused")
    source = _keras_with_weights(tmp_path, weights)
    out = tmp_path / "out.yaml"
    result = run_cli("import", str(source), "-o", str(out), "--weights")
    assert result.exit_code == 0, result.output
    spec = compile_text(out.read_text().replace("weights: out.weights.h5\n", ""))
    with h5py.File(tmp_path / "out.weights.h5") as handle:  # relabelled to the spec's layer
        assert handle["layers/dense/vars"].attrs["name"] in {node.name for node in spec.ir.nodes} - {"d"}


def test_a_weights_member_larger_than_the_model_can_store_is_refused_before_a_byte_is_written(tmp_path):
    # 3 MiB of zeros (a few KB deflated) for a model of 36 parameters: a decompression bomb
    source = _keras_with_weights(tmp_path, bytes(3 * 1024 * 1024))
    output = refused(source, "--weights")
    assert f"{source}: model.weights.h5 is 3,145,728 bytes" in output
    assert "36 parameters" in output


def test_weights_that_do_not_fit_on_the_disk_are_a_write_error_before_a_byte_is_written(
    tmp_path, monkeypatch
):
    from cnnspec import write_faults

    source = tmp_path / "model.keras"
    source.write_bytes(TINY_KERAS.read_bytes())
    monkeypatch.setattr(write_faults, "free_space", lambda folder: 100_000)  # the spec fits, the weights not
    output = refused(source, "--weights")
    assert "not enough free space" in output and "out.weights.h5" in output


def test_the_spec_and_its_weights_must_fit_together_before_either_is_written(tmp_path, monkeypatch):
    from cnnspec import write_faults

    source = tmp_path / "model.keras"
    source.write_bytes(TINY_KERAS.read_bytes())
    sizes = tmp_path / "sizes"
    assert run_cli("import", str(source), "-o", str(sizes / "out.yaml"), "--weights").exit_code == 0
    with zipfile.ZipFile(source) as archive:
        weights = archive.getinfo("model.weights.h5").file_size
    both = (sizes / "out.yaml").stat().st_size + weights
    shutil.rmtree(sizes)
    # room for the spec, and for the weights, but not for both
    monkeypatch.setattr(write_faults, "free_space", lambda folder: both - 1)
    output = refused(source, "--weights")
    assert "not enough free space; nothing was written" in output and "out.weights.h5" in output


def test_a_spec_that_cannot_be_written_leaves_no_weights_and_the_same_command_then_works(
    tmp_path, monkeypatch
):
    """The weights were written first and left behind when the spec's write failed (a full
    disk); the same command was then refused: "out.weights.h5 already exists … pass --force"."""
    from cnnspec import fileio
    from cnnspec.errors import WriteError
    from cnnspec.importer import output as importer_output

    source = tmp_path / "model.keras"
    source.write_bytes(TINY_KERAS.read_bytes())
    real = fileio.atomic_path

    def full_for_the_spec(target, *args, **kwargs):
        if str(target).endswith(".yaml"):
            raise WriteError(target, os.strerror(errno.ENOSPC), errno=errno.ENOSPC)
        return real(target, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(fileio, "atomic_path", full_for_the_spec)  # (write_atomic's)
        patched.setattr(importer_output, "atomic_path", full_for_the_spec)
        output = refused(source, "--weights")
    assert "cannot write" in output and "out.yaml: No space left on device" in " ".join(output.split())
    result = run_cli("import", str(source), "-o", str(tmp_path / "out.yaml"), "--weights")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.yaml").is_file() and (tmp_path / "out.weights.h5").is_file()


# -- 9. the source's name is text in a comment, never YAML -----------------------------------------
@pytest.mark.parametrize("name", ["m\ndescription: injected\n#.json", "m\rdescription: x\u2028y: z.json"])
def test_a_source_file_name_with_line_breaks_stays_in_the_header_comment(tmp_path, name):
    import yaml

    source = _write(tmp_path, functional(dense("d")), name)
    out = tmp_path / "out.yaml"
    result = run_cli("import", str(source), "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert set(yaml.safe_load(text)) == {"cnnspec", "name", "input", "model"}
    escaped = name.encode("unicode_escape").decode("ascii")
    assert text.splitlines()[0] == f"# Imported by `cnnspec import` from {escaped}: 2 Keras layers."


# -- 10. --max-params ------------------------------------------------------------------------------
def test_import_max_params_refuses_smaller_models_and_admits_larger_ones(tmp_path):
    small = _write(tmp_path, functional(dense("d")))  # 36 parameters
    output = refused(small, "--max-params", "10")
    assert "expected at most 10 parameters; this model has 36" in output
    wide = functional(_layer("Dense", "d", [[_tensor("in")]], units=100_000))
    wide["config"]["layers"][0]["config"]["batch_shape"] = [None, 10_000]  # 1,000,100,000 parameters
    large = _write(tmp_path, wide, "large.json")
    output = refused(large)
    assert "expected at most 500,000,000 parameters" in output and "--max-params" in output
    out = tmp_path / "large.yaml"
    result = run_cli("import", str(large), "-o", str(out), "--max-params", "2000000000")
    assert result.exit_code == 0, result.output
    assert "- dense: 100000" in out.read_text()


def test_relabel_never_writes_through_a_link(tmp_path):
    import h5py

    from cnnspec.importer.output import reaching_out, relabel

    victim = tmp_path / "victim.h5"
    with h5py.File(victim, "w") as handle:
        handle.create_group("g/vars").attrs["name"] = "d"
    before = victim.read_bytes()
    path = tmp_path / "w.weights.h5"
    _weights_file(path, "external", victim)
    assert reaching_out(path) == [f"/layers/zzz: an external link to {victim}:/g"]
    assert relabel(path, {"d": "dense"}).renamed == 1  # its own layer only
    assert victim.read_bytes() == before


# -- 11. a model without parameters has no weights to carry ---------------------------------------
def test_a_model_without_parameters_gets_neither_a_weights_file_nor_a_weights_key(tmp_path):
    """``--weights`` wrote a weights file of no layer and ``weights:`` naming it, which ``build``
    then refused ("holds no layer weights in Keras 3's layout")."""
    import h5py

    built = tmp_path / "built.weights.h5"
    with h5py.File(built, "w") as handle:  # as Keras saves a model of no weights
        handle.create_group("layers/dropout/vars").attrs["name"] = "drop"
    config = functional(_layer("Dropout", "drop", [[_tensor("in")]], rate=0.5))
    source = tmp_path / "model.keras"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", built.read_bytes())
    out = tmp_path / "out.yaml"
    result = run_cli("import", str(source), "-o", str(out), "--weights")
    assert result.exit_code == 0, result.output
    assert "the model has no parameters, so there are no weights to carry" in result.output
    assert "no weights file was written" in result.output
    assert not (tmp_path / "out.weights.h5").exists()
    assert "weights:" not in out.read_text()
    assert run_cli("validate", str(out)).exit_code == 0


# -- 12. dtype policies: float32 imports, any other is refused by name ----------------------------
def _policy(name: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


@pytest.mark.parametrize(
    "dtype",
    [_policy("float32"), "float32", None, _policy("mixed_float16"), _policy("mixed_bfloat16")],
    ids=["policy", "string", "null", "mixed_float16", "mixed_bfloat16"],
)
def test_a_float32_or_mixed_dtype_policy_imports(dtype):
    """Mixed precision keeps float32 variables: a training setting (the spec's runtime), not the
    layer's; the layer imports as the float32 one."""
    config = functional(_layer("Dense", "d", [[_tensor("in")]], units=4, dtype=dtype))
    assert "- dense: 4" in import_source(Source("m", config)).text


@pytest.mark.parametrize(
    ("dtype", "policy"),
    [
        ("float16", "float16"),
        (_policy("bfloat16"), "bfloat16"),
        (_policy("int8_from_float32"), "int8_from_float32"),
    ],
    ids=["float16", "bfloat16", "int8"],
)
def test_any_other_dtype_policy_is_refused_naming_the_layer_and_the_policy(tmp_path, dtype, policy):
    config = functional(_layer("Dense", "d", [[_tensor("in")]], units=4, dtype=dtype))
    output = refused(_write(tmp_path, config))
    assert f"layer 'd' (Dense) cannot be imported: dtype policy '{policy}'" in output
    assert "float32" in output and "mixed_precision" in output


# -- 13. names that are no spec id as they are ----------------------------------------------------
def _two_branches(first: str, second: str, model: str = "func") -> dict:
    """``first`` and ``second`` read the input; a subtract reads both: each is read by an id.
    (Subtract, not a combinator's merge: a multiply of the two folds into a residual whose
    shortcut list needs no ids.)"""
    config = functional(
        _layer("Dense", first, [[_tensor("in")]], units=4),
        _layer("Dense", second, [[_tensor("in")]], units=4),
        _layer("Subtract", "subtract", [[[_tensor(first), _tensor(second)]]]),
    )
    config["config"]["name"] = model
    return config


def _imported_ids(tmp_path: Path, config: dict) -> tuple[list[str], str]:
    """Import ``config`` by the CLI (it must succeed and validate): the ids and the spec text."""
    import yaml

    out = tmp_path / "out.yaml"
    result = run_cli("import", str(_write(tmp_path, config)), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert run_cli("validate", str(out)).exit_code == 0
    text = out.read_text(encoding="utf-8")
    return [item["id"] for item in yaml.safe_load(text)["model"] if "id" in item], text


@pytest.mark.parametrize(
    ("first", "second", "model"),
    [("é", "b", "модель"), ("٣٣", "b", "é"), ("a", "x\u00a0y", "٣٣")],
    ids=["latin", "arabic-digits", "nbsp"],
)
def test_non_ascii_layer_and_model_names_become_ascii_ids(tmp_path, first, second, model):
    ids, text = _imported_ids(tmp_path, _two_branches(first, second, model))
    assert len(ids) == 2 and all(i.isascii() and i.isidentifier() for i in ids)
    assert "\nname: imported\n" in text  # no ASCII letter or digit to keep: an unnamed model's


@pytest.mark.parametrize(
    ("first", "second"),
    [("x y", "x_y"), ("x-1", "x_1"), ("1a", "l_1a"), ("input", "b"), ("b", "input")],
)
def test_names_that_clean_up_alike_or_are_reserved_get_unique_ids(tmp_path, first, second):
    """Two names made the same id ("duplicate id"); a layer named `input` took the model
    input's id, and the merge then read the input (a misleading shape error besides)."""
    ids, text = _imported_ids(tmp_path, _two_branches(first, second))
    assert len(set(ids)) == 2 and "input" not in ids
    assert f"inputs: [{ids[0]}, {ids[1]}]" in text


# -- 14. a legacy HDF5 model file --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("model.h5", b"\x89HDF\r\n\x1a\n" + bytes(100)),
        ("model.json", b"\x89HDF\r\n\x1a\n" + bytes(100)),  # the signature, whatever the name
        ("model.keras", b"\x89HDF\r\n\x1a\n" + bytes(100)),
        ("model.hdf5", b"not json"),  # the suffix, whatever the bytes
    ],
    ids=["h5", "signature", "signature-keras", "suffix"],
)
def test_a_legacy_hdf5_model_file_is_refused_as_one(tmp_path, name, data):
    source = tmp_path / name
    source.write_bytes(data)
    output = refused(source)
    assert f"{source}: a legacy HDF5 (.h5) model file is not supported" in output
    assert "save it as .keras" in output and "Keras 3" in output
    assert "not valid JSON" not in output


# -- 15. a long value is shown clipped -------------------------------------------------------------
@pytest.mark.parametrize("where", ["value", "key", "name", "class"])
def test_a_long_value_from_the_source_is_clipped_in_the_message(tmp_path, where):
    long = "A" * 1_000_000
    layer = dense("d")
    if where == "value":
        layer["config"]["weird_key"] = long
    elif where == "key":
        layer["config"][long] = 1
    elif where == "name":
        layer["name"] = layer["config"]["name"] = long
        layer["class_name"] = "Lambda"
    else:
        layer["class_name"] = long
    output = refused(_write(tmp_path, functional(layer)))
    assert "cannot be imported" in output
    assert len(output) < 2_000 and "characters)" in output


def test_shown_clips_to_about_two_hundred_characters_and_survives_deep_values():
    from cnnspec.layers.reverse import shown

    assert shown("short") == "'short'"
    assert shown("A" * 10_000).endswith("… (10,002 characters)") and len(shown("A" * 10_000)) < 240
    deep: Any = 0
    for _ in range(100_000):
        deep = [deep]
    assert len(shown(deep)) < 240


# -- 16. a nested model -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("class_name", "module"),
    [
        ("Functional", "keras.src.models.functional"),
        ("Sequential", "keras"),
        ("Model", "keras.src.models.model"),
    ],
)
def test_a_nested_keras_model_is_read_as_a_model_of_its_own(tmp_path, class_name, module):
    """A Functional or Sequential inside is written in line (tests/test_import_nested.py), so
    its configuration is checked as a model's, located inside it; a Model (a subclass, whose
    layers no configuration lists) is refused as a nested model, not as a custom class."""
    layer = _layer(class_name, "inner", [[_tensor("in")]], layers=[])
    layer["module"], layer["registered_name"] = module, class_name
    output = refused(_write(tmp_path, functional(layer)))
    if class_name == "Model":
        assert f"layer 'inner' ({class_name}) cannot be imported: a nested model" in output
    else:
        assert ": $.config.layers[1].config." in output and ": nested model 'inner': expected " in output
    assert "custom class" not in output


def test_a_custom_model_class_is_still_a_custom_class(tmp_path):
    layer = _layer("Functional", "inner", [[_tensor("in")]])
    layer["module"], layer["registered_name"] = "my_project.models", "MyProject>Functional"
    output = refused(_write(tmp_path, functional(layer)))
    assert "'inner' (Functional) cannot be imported: a custom class" in output


@pytest.mark.parametrize(
    ("model", "module", "registered", "where", "origin"),
    [
        ("functional", "mypkg", "My>Functional", "$.module", "mypkg.Functional"),
        ("sequential", "mypkg", "My>Sequential", "$.module", "mypkg.Sequential"),
        ("sequential", "keras", "My>Sequential", "$.registered_name", "keras.Sequential"),
        ("functional", 5, None, "$.module", "5.Functional"),
        ("sequential", None, "My>Sequential", "$.registered_name", "My>Sequential"),
    ],
    ids=["functional", "sequential", "registered-only", "module-not-text", "no-module"],
)
def test_a_custom_model_class_at_the_top_is_refused_as_a_nested_one_is(
    tmp_path, model, module, registered, where, origin
):
    """Before, a custom class of Keras' model name at the top of the file imported silently
    (only class_name was read there), while the same class nested was refused."""
    config = (
        functional(dense("d"))
        if model == "functional"
        else sequential(_layer("InputLayer", "in", batch_shape=[None, 8]), dense("d"))
    )
    config["module"], config["registered_name"] = module, registered
    output = refused(_write(tmp_path, config, "custom.json"))
    class_name = config["class_name"]
    assert output == (
        f"error: {tmp_path / 'custom.json'}: {where}: the model {config['config']['name']!r} ({class_name}) "
        f"cannot be imported: a custom class ({origin}), not Keras' own {class_name} "
        "hint: import reads models of Keras' own classes (keras.Model(inputs, outputs), "
        "keras.Sequential) and never runs a class of the file's; build the model with one of them and "
        "save it again"
    )


@pytest.mark.parametrize(
    ("module", "registered"),
    [("keras.src.models.functional", "Functional"), ("keras", None), (None, None)],
)
def test_keras_own_model_classes_at_the_top_still_import(tmp_path, module, registered):
    config = functional(dense("d"))
    config["module"], config["registered_name"] = module, registered
    out = tmp_path / "out.yaml"
    result = run_cli("import", str(_write(tmp_path, config)), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "- dense: 4" in out.read_text()


def test_an_output_that_is_no_spec_file_is_refused_even_with_force(tmp_path):
    """`import … -o run/model.keras --force` replaced a trained model with YAML."""
    model = tmp_path / "model.keras"
    model.write_bytes(b"a trained model")
    result = run_cli("import", str(TINY_JSON), "-o", str(model), "--force")
    assert result.exit_code == 2, result.output
    assert "expected -o to name a spec file ending in .yaml" in result.output
    assert model.read_bytes() == b"a trained model"


def test_a_layer_registered_under_another_name_says_that_name():
    """A `keras.layers` Dense registered as `Custom>Dense` was refused as "a custom class or raw
    operation (keras.layers.Dense), not a built-in Keras layer", which reads as a contradiction:
    the registered name, the reason, is said."""
    layer = dense("d")
    layer["registered_name"] = "Custom>Dense"
    with pytest.raises(SpecError) as caught:
        import_source(Source("model.json", functional(layer)))
    (error,) = caught.value.errors
    assert "(keras.layers.Dense, registered as Custom>Dense), not a built-in Keras layer" in error.message


def test_a_model_longer_than_a_spec_may_be_written_says_so_to_the_importer(tmp_path, monkeypatch):
    """A model of 19,000 layers (within import's 20,000) ran into the spec's YAML node budget
    with the hint for a spec's author, "use blocks and repeat instead of long lists": the
    importer wrote the list. It now says what import writes and how many layers the model has."""
    import cnnspec.spec.loader

    # (the budget lowered: the chain below needs more nodes, as 19,000 layers need more than 50,000)
    monkeypatch.setattr(cnnspec.spec.loader, "NODE_BUDGET", 60)
    monkeypatch.setattr("cnnspec.importer.NODE_BUDGET", 60)
    chain = [dense("d0")] + [dense(f"d{i}", f"d{i - 1}") for i in range(1, 30)]
    output = " ".join(refused(_write(tmp_path, functional(*chain))).split())
    assert "expected at most 60 YAML nodes; received more" in output
    assert (
        "hint: import writes one spec item per layer (a few YAML nodes each), and a spec holds at most "
        "60 YAML nodes; this model has 31 layers" in output
    )
    assert "use blocks and repeat" not in output
