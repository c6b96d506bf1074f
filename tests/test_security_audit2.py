"""The second security audit's findings, each as its attacker would try it.

1. A backbone ``spec: link.yaml#v`` must not follow a symbolic link out of the spec's folder
   (the variant is split off before the file is resolved and checked), and its refusal prints
   nothing of the file outside.
2. A weights source (``weights:``, ``--weights``, a ``.keras`` archive, Keras 2's ``imagenet``
   file) is refused when it refers to data outside itself (HDF5 external storage, external or
   soft links), and a dataset that declares a huge shape is never read whole.
3. A run folder's own lock.json cannot lift the outside-the-folder rule for its spec: only the
   current command's ``--allow-outside`` does.

Every file is made here (tmp_path); nothing is downloaded. TensorFlow only in the slow tests.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnspec.analysis.passes import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError, UsageError
from cnnspec.spec.weights import WeightsSource

runner = CliRunner()

SECRET_TEXT = "db_password: hunter2_SECRET\napi_key: [oops\n"
FAMILY = """\
cnnspec: 1
name: secretfam
input: {shape: [8, 8, 1]}
variants:
  v: {}
model:
  - conv2d: {filters: 4, kernel_size: 3}
    id: secret_layer_from_outside
"""


def _spec(ref: str) -> str:
    return f"""\
cnnspec: 1
name: main
input: {{shape: [8, 8, 1]}}
model:
  - backbone: {{spec: "{ref}"}}
    id: body
  - global_avg_pool2d
  - dense: {{units: 2, activation: softmax}}
"""


# -- 1. a backbone's `FILE#variant` through a symbolic link -----------------------------------------
@pytest.fixture
def linked(tmp_path: Path) -> Path:
    """spec/ with links to ../secret/fam.yaml and ../secret/creds.yaml; returns spec/."""
    secret, spec = tmp_path / "secret", tmp_path / "spec"
    secret.mkdir()
    spec.mkdir()
    (secret / "fam.yaml").write_text(FAMILY)
    (secret / "creds.yaml").write_text(SECRET_TEXT)
    os.symlink("../secret/fam.yaml", spec / "link.yaml")
    os.symlink("../secret/creds.yaml", spec / "creds_link.yaml")
    return spec


@pytest.mark.parametrize("ref", ["link.yaml", "link.yaml#v", "creds_link.yaml#v"])
def test_a_backbone_variant_through_a_link_out_is_refused(linked: Path, ref: str) -> None:
    main = linked / "main.yaml"
    main.write_text(_spec(ref))
    with pytest.raises(SpecError) as caught:
        compile_spec(main)
    text = str(caught.value)
    assert [d.code for d in caught.value.diagnostics] == ["outside"], text
    assert "outside the spec's folder" in text
    assert "hunter2" not in text and "oops" not in text  # no line of the file outside is shown
    # the CLI too: a usage of the rule (exit 1), not an internal error
    result = runner.invoke(app, ["validate", str(main)])
    assert result.exit_code == 1, result.output
    assert "hunter2" not in result.output


def test_a_backbone_variant_through_a_link_loads_with_allow_outside(linked: Path) -> None:
    main = linked / "main.yaml"
    main.write_text(_spec("link.yaml#v"))
    compiled = compile_spec(main, allow_outside=True)
    assert any("secret_layer_from_outside" in node.name for node in compiled.ir.nodes)


def test_a_backbone_variant_inside_the_folder_still_loads(tmp_path: Path) -> None:
    (tmp_path / "fam.yaml").write_text(FAMILY)
    os.symlink("fam.yaml", tmp_path / "alias.yaml")  # a link that stays inside is fine
    for ref in ("fam.yaml#v", "alias.yaml#v"):
        main = tmp_path / "main.yaml"
        main.write_text(_spec(ref))
        compiled = compile_spec(main)
        assert any("secret_layer_from_outside" in node.name for node in compiled.ir.nodes)


# -- 2. weights sources that reach out or declare huge datasets ------------------------------------
def _keras3_file(path: Path, fill: object = None) -> Path:
    """A Keras 3 ``.weights.h5`` with one layer ``d``; ``fill(group)`` writes its ``vars``."""
    import h5py

    with h5py.File(path, "w") as handle:
        variables = handle.create_group("layers/dense/vars")
        variables.attrs["name"] = "d"
        if fill is None:
            variables.create_dataset("0", data=np.ones((4, 2), "float32"))
        else:
            fill(variables)  # type: ignore[operator]
    return path


def _source(path: Path, kind: str = "weights_h5") -> WeightsSource:
    return WeightsSource(kind, path.name, path, False)


@pytest.fixture
def secret_bytes(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"TOPSECRET" * 8)  # 72 bytes
    return victim


def test_a_weights_file_with_external_storage_is_refused(tmp_path: Path, secret_bytes: Path) -> None:
    from cnnspec.training.transfer_read import read_source

    path = _keras3_file(
        tmp_path / "evil.weights.h5",
        lambda g: g.create_dataset("0", shape=(16,), dtype="float32", external=[(str(secret_bytes), 0, 64)]),
    )
    with pytest.raises(UsageError) as caught:
        read_source(_source(path))
    message = str(caught.value)
    assert str(path) in message and "/layers/dense/vars/0" in message
    assert "through links or to other files" in message and "TOPSECRET" not in message


@pytest.mark.parametrize("how", ["soft", "external"])
def test_a_weights_file_with_links_is_refused(tmp_path: Path, secret_bytes: Path, how: str) -> None:
    import h5py

    from cnnspec.training.transfer_read import read_source

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle.create_dataset("g", data=np.zeros((4, 2), "float32"))

    def fill(group: h5py.Group) -> None:
        group.create_dataset("0", data=np.ones((4, 2), "float32"))
        if how == "soft":
            group["1"] = h5py.SoftLink("/layers/dense/vars/0")
        else:
            group["1"] = h5py.ExternalLink(str(other), "/g")

    path = _keras3_file(tmp_path / "links.weights.h5", fill)
    with pytest.raises(UsageError, match="refer to data through links or to other files") as caught:
        read_source(_source(path))
    assert "/layers/dense/vars/1" in str(caught.value)


def test_a_weights_file_in_a_keras_archive_with_external_storage_is_refused(
    tmp_path: Path, secret_bytes: Path
) -> None:
    from cnnspec.training.transfer_read import read_source

    inner = _keras3_file(
        tmp_path / "inner.weights.h5",
        lambda g: g.create_dataset("0", shape=(16,), dtype="float32", external=[(str(secret_bytes), 0, 64)]),
    )
    archive = tmp_path / "m.keras"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.write(inner, "model.weights.h5")
    with pytest.raises(UsageError, match="refer to data through links or to other files") as caught:
        read_source(_source(archive, "keras"))
    assert "/layers/dense/vars/0" in str(caught.value) and "TOPSECRET" not in str(caught.value)


def test_a_huge_declared_dataset_is_never_read(tmp_path: Path) -> None:
    from cnnspec.training.transfer_read import Unread, read_source

    path = _keras3_file(
        tmp_path / "huge.weights.h5",
        lambda g: g.create_dataset("0", shape=(200000, 200000), dtype="float32"),  # no data written
    )
    assert path.stat().st_size < 100_000
    for limit in (None, 16):  # the fixed cap, and a model's largest weight
        found = read_source(_source(path), max_elements=limit)
        [(name, [(_, tensor)])] = found.layers
        assert name == "d" and isinstance(tensor, Unread) and tensor.shape == (200000, 200000)
    # what fits is read as before
    small = read_source(_source(_keras3_file(tmp_path / "ok.weights.h5")), max_elements=8)
    assert np.array_equal(small.layers[0][1][0][1], np.ones((4, 2), "float32"))


def test_a_weight_that_is_not_numbers_is_refused(tmp_path: Path) -> None:
    import h5py

    from cnnspec.training.transfer_read import read_source

    path = _keras3_file(
        tmp_path / "strings.weights.h5",
        lambda g: g.create_dataset("0", data=np.array([b"a" * 1000] * 4), dtype=h5py.string_dtype()),
    )
    with pytest.raises(UsageError, match="not numbers") as caught:
        read_source(_source(path))
    assert str(path) in str(caught.value) and "/layers/dense/vars/0" in str(caught.value)


def test_a_weights_source_in_a_spec_is_refused_where_the_spec_names_it(
    tmp_path: Path, secret_bytes: Path
) -> None:
    from cnnspec.errors import Loc
    from cnnspec.training.transfer_read import read_source

    path = _keras3_file(
        tmp_path / "evil.weights.h5",
        lambda g: g.create_dataset("0", shape=(16,), dtype="float32", external=[(str(secret_bytes), 0, 64)]),
    )
    source = WeightsSource("weights_h5", path.name, path, False, loc=Loc(str(tmp_path / "s.yaml"), 7, 10))
    with pytest.raises(SpecError) as caught:
        read_source(source)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.loc is not None and diagnostic.loc.line == 7
    assert "/layers/dense/vars/0" in diagnostic.message


def _keras2_file(path: Path, fill: object = None) -> Path:
    """Keras 2's layout (keras.applications' files): ``layer_names``, ``weight_names``."""
    import h5py

    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [b"dense"]
        group = handle.create_group("dense")
        group.attrs["weight_names"] = [b"kernel:0"]
        if fill is None:
            group.create_dataset("kernel:0", data=np.ones((4, 2), "float32"))
        else:
            fill(group)  # type: ignore[operator]
    return path


def test_a_keras2_file_with_external_storage_or_a_huge_dataset_is_refused(
    tmp_path: Path, secret_bytes: Path
) -> None:
    from cnnspec.training.transfer_read import read_source

    imagenet = WeightsSource("imagenet", "imagenet")
    evil = _keras2_file(
        tmp_path / "evil.h5",
        lambda g: g.create_dataset(
            "kernel:0", shape=(16,), dtype="float32", external=[(str(secret_bytes), 0, 64)]
        ),
    )
    with pytest.raises(UsageError, match="refer to data through links or to other files") as caught:
        read_source(imagenet, imagenet_file=evil)
    assert "/dense/kernel:0" in str(caught.value)
    huge = _keras2_file(
        tmp_path / "huge.h5", lambda g: g.create_dataset("kernel:0", shape=(200000, 200000), dtype="float32")
    )
    with pytest.raises(UsageError, match="declares more than") as caught:
        read_source(imagenet, imagenet_file=huge)
    assert str(huge) in str(caught.value) and "/dense/kernel:0" in str(caught.value)
    # a well-formed Keras 2 file still reads
    found = read_source(imagenet, imagenet_file=_keras2_file(tmp_path / "ok.h5"))
    assert not found.by_name and found.layers[0][0] == "dense"


def test_the_importer_and_the_loader_share_one_check() -> None:
    from cnnspec.importer import output
    from cnnspec.training import h5checks

    assert output.reaching_out is h5checks.reaching_out


WEIGHTS_SPEC = """\
cnnspec: 1
name: wtest
input: {shape: [4, 4, 1]}
model:
  - flatten
  - dense: {units: 2, use_bias: false}
    id: d
  - dense: {units: 2, activation: softmax}
    id: head
"""


@pytest.mark.slow
def test_build_with_hostile_weights_files(tmp_path: Path, secret_bytes: Path) -> None:
    """``cnnspec build --weights``: external storage refused (a usage error, exit 2, naming the
    dataset); a huge declared dataset skipped as a shape mismatch, not a MemoryError (exit 3)."""
    spec = tmp_path / "s.yaml"
    spec.write_text(WEIGHTS_SPEC)
    evil = _keras3_file(
        tmp_path / "evil.weights.h5",
        lambda g: g.create_dataset(
            "0", shape=(16, 2), dtype="float32", external=[(str(secret_bytes), 0, 128)]
        ),
    )
    result = runner.invoke(app, ["build", str(spec), "--weights", str(evil), "-o", str(tmp_path / "a.keras")])
    assert result.exit_code == 2, result.output  # (a --weights source: a usage error)
    assert "/layers/dense/vars/0" in result.output and "through links or to other files" in result.output
    assert not (tmp_path / "a.keras").exists()

    import h5py

    huge = tmp_path / "huge.weights.h5"
    with h5py.File(huge, "w") as handle:
        big = handle.create_group("layers/dense/vars")
        big.attrs["name"] = "d"
        big.create_dataset("0", shape=(200000, 200000), dtype="float32")
        head = handle.create_group("layers/dense_1/vars")
        head.attrs["name"] = "head"
        head.create_dataset("0", data=np.full((2, 2), 0.5, "float32"))
        head.create_dataset("1", data=np.zeros((2,), "float32"))
    out = tmp_path / "b.keras"
    result = runner.invoke(app, ["build", str(spec), "--weights", str(huge), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "shape mismatch: source [200000, 200000]" in result.output
    assert out.is_file()
    # integers or booleans where the layer keeps float32 weights are no weights of it: skipped
    # and said, as a shape mismatch is (Keras' assign would turn them into floats silently)
    with h5py.File(huge, "r+") as handle:
        del handle["layers/dense/vars/0"]
        handle["layers/dense/vars"].create_dataset("0", data=np.ones((16, 2), "int32"))
        del handle["layers/dense_1/vars/1"]
        handle["layers/dense_1/vars"].create_dataset("1", data=np.zeros((2,), "bool"))
    result = runner.invoke(app, ["build", str(spec), "--weights", str(huge), "-o", str(tmp_path / "c.keras")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "loaded 1 of 3 weight tensors" in said, said
    assert "skipped d/kernel: dtype mismatch: source int32, model float32" in said, said
    assert "skipped head/bias: dtype mismatch: source bool, model float32" in said, said


# -- 3. a run folder's lock.json cannot lift the rule -----------------------------------------------
def _run_folder(tmp_path: Path, command: list[str]) -> Path:
    """A run folder (as `train` leaves it, minus TensorFlow's files) whose resolved.yaml names a
    backbone outside the folder, and whose lock.json records ``command``."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "fam.yaml").write_text(FAMILY)
    run = tmp_path / "run"
    run.mkdir()
    (run / "resolved.yaml").write_text(_spec("../elsewhere/fam.yaml#v"))
    with zipfile.ZipFile(run / "model.keras", "w") as archive:  # passes check_model_file; never loaded
        archive.writestr("config.json", "{}")
    (run / "lock.json").write_text(json.dumps({"command": command}))
    return run


def test_a_lock_json_cannot_allow_outside_files(tmp_path: Path) -> None:
    from cnnspec.reporting.run import locate, outside_allowed

    run = _run_folder(tmp_path, ["cnnspec", "train", "s.yaml", "--allow-outside"])
    with pytest.raises(SpecError) as caught:
        locate(run)
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "outside"
    assert "pass --allow-outside to this command too" in (diagnostic.hint or "")
    # the current command's --allow-outside, given or in effect, does allow it
    assert locate(run, allow_outside=True).compiled is not None
    with outside_allowed(True):
        assert locate(run).compiled is not None
    with pytest.raises(SpecError):  # and not after the block
        locate(run)


@pytest.mark.parametrize("command", ["evaluate", "visualize", "report", "export", "predict", "benchmark"])
def test_run_commands_refuse_outside_files_without_the_flag(tmp_path: Path, command: str) -> None:
    run = _run_folder(tmp_path, ["cnnspec", "train", "s.yaml", "--allow-outside"])
    extra = {
        "visualize": ["history"],
        "export": ["--format", "onnx"],
        "predict": [str(tmp_path / "x.npy")],
    }.get(command, [])
    if command == "predict":
        np.save(tmp_path / "x.npy", np.zeros((8, 8, 1), "float32"))
    result = runner.invoke(app, [command, str(run), *extra])
    assert result.exit_code == 1, result.output
    assert "outside the spec's folder" in result.output
    assert "pass --allow-outside to this command too" in result.output
    # the flag exists on every command that opens a run's spec
    assert "--allow-outside" in runner.invoke(app, [command, "--help"]).output
