"""Transfer learning, part 1 (issue 16): weights sources (``weights:``, ``--weights``), partial
loading with a report (``transfer.json``) and backbone items (``- backbone: {spec, until, …}``).

The TF-free tests check the front end (``validate``/``inspect``); the slow ones save a tiny
model's weights themselves, change the head and load them. Nothing is downloaded: the ImageNet
test puts its own file in a temporary ``KERAS_HOME`` and replaces the download."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from tests.conftest import ROOT

BASE = """\
cnnspec: 1
name: tinybase
input: {shape: [8, 8, 1]}
vars: {width: 4}
model:
  - conv2d: {filters: "${width}", kernel_size: 3, padding: same}
    id: stem
  - batch_norm
  - activation: relu
    id: feat
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
"""

# The same body with a 10-class head, trained on the embedded digits.
TARGET = """\
cnnspec: 1
name: target
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: stem
  - batch_norm
  - activation: relu
    id: feat
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 96}
training: {epochs: 1, batch_size: 32}
"""

BACKBONE = """\
cnnspec: 1
name: top
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 1, kernel_size: 1}
    id: stem
  - backbone: {spec: base.yaml, until: feat%s}
    id: body
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
"""


def _errors(spec: Path) -> list:
    with pytest.raises(SpecError) as caught:
        compile_spec(spec)
    return caught.value.errors


# -- the weights section, TF-free --------------------------------------------------------------
@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ("imagenet", "exist only for zoo models"),
        ("old_model.h5", "legacy HDF5"),
        ("{from: run.weights.h5, strict: maybe}", "expected true or false"),  # the schema's
        # validate passed it and codegen --script stopped with an internal error
        ('"w\\0.weights.h5"', "a file path cannot contain a NUL character"),
        # read as a run folder, it passed validate and was refused only at training
        ("imagenett", "received 'imagenett', which names nothing"),
    ],
)
def test_bad_weights_sections_are_located_errors(write_spec, weights, message):
    spec = write_spec(TARGET + f"weights: {weights}\n")
    (error,) = _errors(spec)
    assert message in error.message
    assert error.loc is not None and error.loc.line == TARGET.count("\n") + 1
    assert error.path.startswith("weights")


@pytest.mark.parametrize(
    ("layout", "message", "hint"),
    [
        ("keras3", "is a Keras 3 weights file under a .h5 name", "rename it to pre.weights.h5"),
        ("keras2", "is a Keras 2 weights file; cnnspec reads only native Keras files", "save_weights"),
        ("model", "is a legacy HDF5 (.h5) file; cnnspec reads only native Keras files", "model.save"),
    ],
)
def test_a_h5_file_is_named_for_what_it_holds(write_spec, tmp_path, layout, message, hint):
    """A `.weights.h5` renamed `.h5` was called a legacy HDF5 model: what to do was to rename it."""
    _write_h5(tmp_path / "pre.h5", layout)
    (error,) = _errors(write_spec(TARGET + "weights: pre.h5\n"))
    assert message in error.message and hint in (error.hint or ""), (error.message, error.hint)
    assert error.path == "weights"


@pytest.mark.parametrize(
    ("content", "message", "hint"),
    [
        ("zip", "is a Keras model file (a zip archive, as model.save('x.keras') writes) under a .h5 name; "
         "cnnspec, as Keras, knows one by its .keras ending", "rename it to pre.keras"),
        (b"junk\n", "is no HDF5 file (it does not begin as one): a truncated or corrupted file?", "again"),
        (b"", "is no HDF5 file (it does not begin as one): a truncated or corrupted file?", "again"),
    ],
    ids=["keras-archive", "junk", "empty"],
)  # fmt: skip
def test_a_h5_name_of_no_hdf5_file_is_said_for_what_it_is(write_spec, tmp_path, content, message, hint):
    """A .keras archive copied as model_backup.h5, a broken or an empty download were all "a
    legacy HDF5 (.h5) file", to be loaded in Keras "if you trust it"."""
    import zipfile

    if content == "zip":
        with zipfile.ZipFile(tmp_path / "pre.h5", "w") as archive:
            archive.writestr("config.json", "{}")
    else:
        (tmp_path / "pre.h5").write_bytes(content)
    (error,) = _errors(write_spec(TARGET + "weights: pre.h5\n"))
    assert error.message == f"{tmp_path / 'pre.h5'} {message}" and hint in (error.hint or "")
    assert error.path == "weights"


def _write_h5(path: Path, layout: str) -> None:
    """An HDF5 file laid out as Keras 3's save_weights, Keras 2's or a legacy model writes it."""
    import h5py

    with h5py.File(path, "w") as handle:
        if layout == "keras3":  # what Keras 3's save_weights writes
            variables = handle.create_group("layers/dense/vars")
            variables.attrs["name"] = "dense"
            variables["0"] = np.zeros((4, 2), "float32")
            handle.create_group("vars")
        elif layout == "keras2":
            handle.attrs["layer_names"] = [b"dense"]
            handle.create_group("dense")
        else:
            handle.attrs["model_config"] = "{}"
            handle.create_group("model_weights")


@pytest.mark.parametrize(
    ("layout", "message", "hint"),
    [
        ("keras3", "is a Keras 3 weights file under a .keras name", "rename it to pre.weights.h5"),
        ("keras2", "is a Keras 2 weights file; cnnspec reads only native Keras files", "save_weights"),
        ("model", "is a legacy HDF5 (.h5) file; cnnspec reads only native Keras files", "model.save"),
    ],
)
def test_a_h5_file_under_a_keras_name_is_named_for_what_it_holds(
    runner, write_spec, tmp_path, layout, message, hint
):
    """A `.weights.h5` renamed `.keras` passed validate, and train called it a legacy HDF5 model
    (to be saved again in Keras): validate now says what it holds, as for a `.h5` name, and a
    command that wants a model says a weights file holds none."""
    _write_h5(tmp_path / "pre.keras", layout)
    result = runner.invoke(
        app, ["validate", str(write_spec(TARGET + "weights: pre.keras\n")), "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    ((found),) = json.loads(result.output)
    assert (found["path"], found["line"]) == ("weights", 14)
    assert message in found["message"] and hint in found["hint"], found
    evaluated = runner.invoke(app, ["evaluate", str(tmp_path / "pre.keras")])
    assert evaluated.exit_code == 2
    said = {"keras3": "is a Keras 3 weights file (model.save_weights), which holds no model"}
    assert said.get(layout, "is a legacy HDF5 (.h5) file") in " ".join(evaluated.output.split())


def test_a_renamed_weights_file_gets_its_own_name_back_and_a_fifo_is_not_waited_on(write_spec, tmp_path):
    """`pre.weights.hdf5` is told `pre.weights.h5` (not `pre.weights.weights.h5`); a FIFO named
    `x.h5` is the general message at once (h5py waited on it until something wrote to it)."""
    import os

    import h5py

    with h5py.File(tmp_path / "pre.weights.hdf5", "w") as handle:
        handle.create_group("layers/dense/vars").attrs["name"] = "dense"
        handle.create_group("vars")
    (error,) = _errors(write_spec(TARGET + "weights: pre.weights.hdf5\n"))
    assert "is a Keras 3 weights file under a .hdf5 name" in error.message
    assert error.hint == "rename it to pre.weights.h5"
    os.mkfifo(tmp_path / "x.h5")
    (error,) = _errors(write_spec(TARGET + "weights: x.h5\n"))
    assert "is a legacy HDF5 (.h5) file" in error.message


def test_a_model_file_under_a_weights_name_is_told_to_take_the_keras_name(runner, write_spec, tmp_path):
    """A `.keras` archive renamed `.weights.h5` was "a truncated or corrupted file?" to be saved
    again: it is a model file, whose name is what to change."""
    import zipfile

    with zipfile.ZipFile(tmp_path / "pre.weights.h5", "w") as archive:
        archive.writestr("config.json", "{}")
    spec = write_spec(TARGET + "weights: pre.weights.h5\n")
    result = runner.invoke(app, ["validate", str(spec), "--format", "json"])
    assert result.exit_code == 1, result.output
    ((found),) = json.loads(result.output)
    assert (found["path"], found["line"], found["hint"]) == ("weights", 14, "rename it to pre.keras")
    assert found["message"] == (
        f"{tmp_path / 'pre.weights.h5'} is a Keras model file (a zip archive, as model.save('x.keras') "
        "writes) under a .weights.h5 name; cnnspec, as Keras, knows one by its .keras ending"
    )


def test_a_folder_that_is_no_run_or_whose_model_is_a_folder_says_so(write_spec, tmp_path):
    """A folder named like a weights file (or any folder without lock.json) was called "the run
    folder … has no model.keras (the run has not finished)", with a hint to --resume it."""
    (tmp_path / "dir.weights.h5").mkdir()
    (error,) = _errors(write_spec(TARGET + "weights: dir.weights.h5\n"))
    assert "is a folder, and no run folder of cnnspec train (it has no lock.json)" in error.message
    assert "--resume" not in (error.hint or "")
    run = tmp_path / "run"
    (run / "model.keras").mkdir(parents=True)
    (run / "lock.json").write_text("{}")
    spec = write_spec(TARGET, "target.yaml")
    result = CliRunner().invoke(
        app, ["build", str(spec), "--weights", str(run), "-o", str(tmp_path / "x.keras")]
    )
    assert result.exit_code != 0
    assert "holds a folder named model.keras where its model file belongs" in " ".join(result.output.split())


def test_a_finished_run_whose_model_file_is_gone_is_not_sent_to_resume(write_spec, tmp_path):
    """Its hint was `--resume` it, which answers "the run has finished; nothing to resume"."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "lock.json").write_text("{}")
    (run / "metrics.json").write_text("{}")
    spec = write_spec(TARGET, "target.yaml")
    result = CliRunner().invoke(
        app, ["build", str(spec), "--weights", str(run), "-o", str(tmp_path / "x.keras")]
    )
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "has no model.keras: the run finished, and its model file is gone" in text
    assert "--resume" not in text and not (tmp_path / "x.keras").exists()


def test_a_weights_run_still_being_trained_names_its_process_and_is_waited_for(write_spec, runner, tmp_path):
    """A run folder whose training holds its lock now (no model.keras yet) was sent to `train
    --resume`, which is refused while that process holds it (the CLI's `evaluate RUN` already
    named it): the spec's source and a backbone's say which process trains it and to wait for
    it, and so does `--weights RUN`. The lock is taken as `cnnspec train` takes it, a flock on
    .cnnspec.lock holding its record, but not through a RunLock, which would make it this
    process's own; let go, the run is sent to --resume again."""
    import fcntl
    import os

    run = tmp_path / "pre"
    run.mkdir()
    (run / "lock.json").write_text("{}")
    write_spec(BASE, "base.yaml")
    top = write_spec(BACKBONE % ", weights: pre" + "weights: pre\n", "top.yaml")
    fd = os.open(run / ".cnnspec.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, json.dumps({"pid": os.getpid(), "command": ["cnnspec", "train", "p.yaml"]}).encode())
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = runner.invoke(app, ["validate", str(top), "--format", "json"])
        assert result.exit_code == 1, result.output
        found = [
            (d["path"], d["line"], d["column"], d["message"], d["hint"]) for d in json.loads(result.output)
        ]
        message = (
            f"the run folder {run} has no model.keras yet: the run is still being trained by "
            f"process {os.getpid()} (cnnspec train p.yaml)"
        )
        hint = "wait for that process to end, or name a .keras or .weights.h5 file"
        assert found == [
            ("model[1].backbone.weights", 7, 55, message, hint),
            ("weights", 11, 10, message, hint),
        ]
        spec = write_spec(TARGET, "target.yaml")
        built = runner.invoke(
            app, ["build", str(spec), "--weights", str(run), "-o", str(tmp_path / "x.keras")]
        )
        assert built.exit_code == 2, built.output
        assert " ".join(built.output.split()) == f"error: {message} hint: {hint}"
    finally:
        os.close(fd)  # (lets the lock go)
    result = runner.invoke(app, ["validate", str(top), "--format", "json"])
    assert [d["hint"] for d in json.loads(result.output)] == [
        f"finish it with `cnnspec train SPEC --resume {run}`, or name a .keras or .weights.h5 file"
    ] * 2


def test_validate_refuses_weights_that_are_not_there_as_train_does(write_spec, runner, tmp_path):
    """`weights: nonexist.keras` (or a backbone's) passed validate and failed only when training
    started. validate checks the disk as training does, located, naming the file near it that
    was probably meant; train gives the same error. Compiling alone still does not (inspect, and
    reports that compile a run's resolved.yaml where its sources may be gone since)."""
    (tmp_path / "pre.keras").write_bytes(b"")
    write_spec(BASE, "base.yaml")
    top = write_spec(BACKBONE % ", weights: pre.kears" + "weights: runs/pretrain\n", "top.yaml")
    assert compile_spec(top).name == "top"
    result = runner.invoke(app, ["validate", str(top), "--format", "json"])
    assert result.exit_code == 1, result.output
    found = [(d["path"], d["line"], d["message"], d["hint"]) for d in json.loads(result.output)]
    assert found == [
        (
            "model[1].backbone.weights",
            7,
            f"no such run folder or weights file: {tmp_path / 'pre.kears'}",
            "did you mean `pre.keras`?",
        ),
        (
            "weights",
            11,
            f"no such run folder: {tmp_path / 'runs' / 'pretrain'}",
            "check the path (relative paths start at the spec file's folder)",
        ),
    ]
    spec = write_spec(TARGET + "weights: sub/pretrained.weights.h5\n", "target.yaml")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pretrained.weight.h5").write_bytes(b"")
    checked = runner.invoke(app, ["validate", str(spec)])
    trained = runner.invoke(app, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert checked.exit_code == trained.exit_code == 1, (checked.output, trained.output)
    said = checked.output.splitlines()[:4]
    assert said[0].endswith(
        f"error: weights: no such weights file: {tmp_path / 'sub' / 'pretrained.weights.h5'}"
    )
    assert said[-1].strip() == "hint: did you mean `sub/pretrained.weight.h5`?"
    assert trained.output.splitlines()[:4] == said and not (tmp_path / "run").exists()
    # a backbone's source is checked on the disk by the same function, at its own path (training
    # printed it as `m.o.d.e….g.h.t.s`: its formatted path was formatted again, letter by letter)
    top = write_spec(BACKBONE % ", weights: pre.kears" + TARGET[TARGET.index("data:") :], "top.yaml")
    trained = runner.invoke(app, ["train", str(top), "--out", str(tmp_path / "run")])
    assert trained.exit_code == 1 and not (tmp_path / "run").exists()
    assert "error: model[1].backbone.weights: no such run folder or weights file" in trained.output


def test_a_backbone_specs_own_weights_are_said_not_to_load(write_spec, runner):
    """A backbone spec's own top-level `weights:` is not loaded into the backbone item (the item
    takes its model alone), and nothing said so: its layers started from scratch, and a path
    there that does not exist passed. A warning at the item's `spec`, with a note at the line;
    none where the item gives its own source (that one loads)."""
    write_spec(BASE + "weights: nothere.weights.h5\n", "base.yaml")
    top = write_spec(BACKBONE % "", "top.yaml")
    result = runner.invoke(app, ["validate", str(top), "--format", "json"])
    assert result.exit_code == 0, result.output
    (warning,) = json.loads(result.output)
    assert (warning["severity"], warning["path"], warning["line"], warning["code"]) == (
        "warning",
        "model[1].backbone.spec",
        7,
        "backbone-weights",
    )
    assert "sets weights: 'nothere.weights.h5', which a backbone item does not load" in warning["message"]
    assert "give the source to the backbone item" in warning["hint"]
    assert [(t["file"], t["line"], t["path"]) for t in warning["trace"]] == [
        (str(top.with_name("base.yaml")), BASE.count("\n") + 1, "weights")
    ]
    (top.parent / "own.weights.h5").write_bytes(b"")
    given = write_spec(BACKBONE % ", weights: own.weights.h5", "top.yaml")
    assert "backbone item does not load" not in runner.invoke(app, ["validate", str(given)]).output


@pytest.mark.parametrize(
    ("weights", "message"),
    [("nothere.weights.h5", "no such weights file"), ("imagenet", "exist only for zoo models")],
)
def test_a_nested_backbones_weights_error_says_which_backbone_it_is_in(write_spec, runner, weights, message):
    """An error in the weights of a backbone inside another backbone lacked the `in backbone …`
    note every other error there carries: it named a line of mid.yaml alone, not which item of
    the spec being checked brought that file in."""
    write_spec(BASE, "base.yaml")
    middle = BACKBONE.replace("until: feat%s", f"until: feat, weights: {weights}")
    write_spec(middle.replace("name: top", "name: mid"), "mid.yaml")
    top = write_spec(TARGET.replace("model:\n", "model:\n  - backbone: {spec: mid.yaml, until: body}\n", 1))
    result = runner.invoke(app, ["validate", str(top), "--format", "json"])
    assert result.exit_code == 1, result.output
    (error,) = json.loads(result.output)
    assert message in error["message"] and error["path"] == "model[1].backbone.weights", error
    line = TARGET[: TARGET.index("model:")].count("\n") + 2  # (the item added under `model:`)
    assert error["notes"] == [f"in backbone 'mid.yaml' at model[0] ({top}:{line}:15)"]


def test_a_missing_source_is_never_hinted_to_be_a_spec_file(write_spec, runner, tmp_path):
    """`weights: pretrain` beside pretrain.yaml was hinted "did you mean `pretrain.yaml`?", and
    `weights: base.yaml` "did you mean `a1.yaml`?": following either is another error (a spec
    is no weights). The name of a spec there says that its run folder is meant; a near name is
    taken among what can be a source (folders, .keras and .h5 files) only."""
    write_spec(BASE, "pretrain.yaml")
    write_spec(BASE, "a1.yaml")
    (tmp_path / "runs" / "pretrain-1").mkdir(parents=True)

    def hint(source: str) -> str:
        spec = write_spec(TARGET + f"weights: {source}\n", "target.yaml")
        result = runner.invoke(app, ["validate", str(spec), "--format", "json"])
        assert result.exit_code == 1, result.output
        (diagnostic,) = json.loads(result.output)
        return diagnostic["hint"]

    said = hint("pretrain")
    assert said == (
        "`pretrain.yaml` is a spec, not weights: train it (`cnnspec train pretrain.yaml`) and name "
        "the run folder it writes"
    )
    assert hint("base.yaml") == "check the path (relative paths start at the spec file's folder)"
    assert hint("runs/pretrian-1") == "did you mean `runs/pretrain-1`?"


def test_a_weights_path_given_by_set_starts_at_the_working_directory_everywhere(
    write_spec, runner, tmp_path, monkeypatch
):
    """`--set weights=pre.weights.h5`: validate looked for it in the working directory while
    train, build and codegen read it beside the spec, so validate refused a command that
    trained and passed one that failed. Every command now reads it where `--weights` and a
    backbone's `--set` read theirs: the working directory, as the hint says."""
    spec = write_spec(TARGET)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "w.weights.h5").write_bytes(b"")
    (tmp_path / "pretrained.weights.h5").write_bytes(b"")
    assert runner.invoke(app, ["validate", str(spec), "--set", "weights=w.weights.h5"]).exit_code == 0
    script = runner.invoke(
        app, ["codegen", str(spec), "--script", "--set", "weights=w.weights.h5", "-o", "train.py"]
    )
    assert script.exit_code == 0, script.output
    loads = [
        node
        for node in ast.walk(ast.parse((work / "train.py").read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_by_name"
    ]
    # written relative to the script's folder (here the working directory), as its data paths are
    (where,) = [call.args[2] for call in loads]
    assert isinstance(where, ast.Call) and getattr(where.func, "id", None) == "beside_script"
    assert (work / ast.literal_eval(where.args[0])).resolve() == work / "w.weights.h5"
    refused = runner.invoke(app, ["validate", str(spec), "--set", "weights=pretrained.weights.h5"])
    assert refused.exit_code == 1
    lines = [line.strip() for line in refused.output.splitlines()]
    assert lines[0] == (
        f"<--set 1>:1:9: error: weights: no such weights file: {work / 'pretrained.weights.h5'} "
        "(in a --set option on the command line)"
    )
    assert lines[-1] == "hint: check the path (relative paths start at the working directory)"


def test_a_runs_resolved_yaml_is_validated_without_the_disk_check_and_the_editor_checks_it(
    write_spec, runner, tmp_path
):
    """A run's resolved.yaml keeps `weights: pretrain_run` as the spec wrote it (relative to the
    spec's folder): validate of it refused a run folder inside the run, where none was ever
    meant to be. And the editor, which shows validate's errors, did not check the disk at all."""
    from cnnspec.lsp.documents import Documents

    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "lock.json").write_text("{}", encoding="utf-8")
    text = TARGET + "weights: pretrain_run\n"
    (run / "resolved.yaml").write_text(text, encoding="utf-8")
    checked = runner.invoke(app, ["validate", str(run / "resolved.yaml")])
    assert checked.exit_code == 0, checked.output
    spec = write_spec(text, "spec.yaml")  # (a spec of the user's: checked)
    assert runner.invoke(app, ["validate", str(spec)]).exit_code == 1
    documents = Documents()
    documents.set(spec, text, 1)
    found = [(d.path, d.message) for d in documents.analyze(spec).diagnostics]
    assert found == [("weights", f"no such run folder: {tmp_path / 'pretrain_run'}")]


def test_imagenet_is_accepted_for_a_zoo_model(write_spec):
    spec = write_spec("cnnspec: 1\nname: mine\nextends: zoo:mobilenet_v3_small\nweights: imagenet\n")
    assert compile_spec(spec).doc.zoo_variant == "mobilenet_v3_small"


# -- backbone items, TF-free -------------------------------------------------------------------
def test_backbone_resolves_into_a_scope_up_to_the_cut(write_spec):
    write_spec(BASE, "base.yaml")
    ir = compile_spec(write_spec(BACKBONE % ", vars: {width: 6}")).ir
    names = [node.name for node in ir.nodes]
    assert names == ["stem", "body_stem", "body_batch_norm_1", "body_feat", "global_avg_pool2d_1", "dense_1"]
    assert ir.node("body_stem").params["filters"] == 6  # the item's vars over the backbone's
    assert ir.node("body_stem").inputs == ("stem",)  # its input is the tensor the item receives
    assert ir.node("global_avg_pool2d_1").inputs == ("body_feat",)  # cut at `until`


def test_the_resnet50_example_is_the_zoo_model_without_top_plus_a_head():
    example = ROOT / "examples" / "backbone" / "resnet50_features.yaml"
    assert len(example.read_text().splitlines()) <= 15
    ir = compile_spec(example).ir
    zoo = compile_spec("zoo:resnet50", ["vars.include_top=false"]).ir
    backbone = [node for node in ir.nodes if node.name.startswith("body_")]
    assert [n.params for n in backbone] == [n.params for n in zoo.nodes]
    assert [n.name for n in backbone] == ["body_" + n.name for n in zoo.nodes]
    head = ir.totals.params - zoo.totals.params
    assert head == 2048 * 10 + 10  # pooling, dropout and the dense head


@pytest.mark.parametrize(
    ("item", "where", "message", "hint"),
    [
        ("until: fet", "until", "no layer 'fet' to cut at", "`feat`"),
        ("until: feat, vars: {widht: 6}", "vars.widht", "declares no var 'widht'", "`width`"),
        ("until: feat, spec: nope.yaml", "spec", "no such backbone spec", "zoo"),
        ("until: feat, spec: 'zoo:resnet5'", "spec", "no model 'zoo:resnet5'", "zoo:resnet50"),
        # the hint sent a backbone item to "use a backbone item": its spec is what to change
        (
            "until: feat, weights: imagenet",
            "weights",
            "this backbone's spec is not a zoo variant",
            "names a zoo model as its spec (- backbone: {spec: zoo:resnet50, weights: imagenet})",
        ),
    ],
)
def test_backbone_mistakes_are_located_at_the_item(write_spec, item, where, message, hint):
    write_spec(BASE, "base.yaml")
    text = BACKBONE.replace("{spec: base.yaml, until: feat%s}", "{spec: base.yaml, " + item + "}")
    text = text.replace("spec: base.yaml, until: feat, spec:", "spec:")
    (error,) = _errors(write_spec(text))
    assert message in error.message
    assert error.path == f"model[1].backbone.{where}"
    assert error.loc is not None and error.loc.line == 7
    assert hint in (error.hint or "")


def test_an_error_inside_the_backbone_is_located_in_its_file_with_a_note(write_spec):
    write_spec(BASE.replace("padding: same", "padding: sam"), "base.yaml")
    (error,) = _errors(write_spec(BACKBONE % ""))
    assert error.loc is not None and error.loc.file.endswith("base.yaml")
    assert any("in backbone 'base.yaml' at model[1]" in note.message for note in error.notes)


def test_what_a_cut_leaves_out_is_not_walked_so_its_mistakes_do_not_count(write_spec):
    # VGG16 cut at block2 on 8×8 images was refused for the pools of blocks 3–5 it leaves out
    spec = write_spec(
        "cnnspec: 1\nname: m\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - backbone: {spec: zoo:vgg16, until: block2, vars: {include_top: false}}\n"
        "  - global_avg_pool2d\n  - dense: 2\n"
    )
    assert compile_spec(spec).ir.nodes[-1].name == "dense_1"
    # with ImageNet weights, loaded by position, all of it is walked (a later layer that takes a
    # kept one would reorder them): the mistake there still counts
    imagenet = spec.read_text().replace("include_top: false}", "include_top: false}, weights: imagenet")
    assert _errors(write_spec(imagenet, "imagenet.yaml"))


def test_a_name_taken_in_another_file_is_named_with_its_file(write_spec):
    # the hint said "the other is at line 5", a line of the spec, under an error in the backbone's file
    spec = write_spec(
        "cnnspec: 1\nname: m\ninput: {shape: [32, 32, 3]}\nmodel:\n"
        # (the backbone's stem, its block `conv1`, names its convolution body_conv1_conv2d_1)
        "  - conv2d: {filters: 3, kernel_size: 1}\n    id: body_conv1_conv2d_1\n"
        "  - backbone: {spec: zoo:resnet50, until: conv2, vars: {include_top: false}}\n    id: body\n"
    )
    (error,) = _errors(spec)
    assert error.loc is not None and not error.loc.file.endswith("spec.yaml")
    assert error.hint is not None and f"(the other is at {spec}:5)" in error.hint


# -- loading, with TensorFlow ------------------------------------------------------------------
def _save_weights(write_spec, text: str, name: str) -> Path:
    """Build the model of ``text`` (its spec saved beside) and save its weights as ``name``."""
    from cnnspec.api import build_model

    spec = write_spec(text, name.replace(".weights.h5", ".yaml"))
    target = spec.with_name(name)
    build_model(compile_spec(spec)).save_weights(str(target))
    return target


@pytest.mark.slow
def test_train_loads_what_fits_and_reports_the_new_head(write_spec, runner, tmp_path):
    source = _save_weights(write_spec, BASE, "base.weights.h5")
    spec = write_spec(TARGET + "weights: base.weights.h5\n")
    out = tmp_path / "run"
    # (without its page: nothing here reads it)
    result = runner.invoke(app, ["train", str(spec), "--no-report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "loaded 6 of 8 weight tensors" in result.output
    assert "skipped dense_1/kernel: shape mismatch: source [4, 3], model [4, 10]" in result.output
    report = json.loads((out / "transfer.json").read_text())
    assert (report["loaded"], report["total"], report["source"]) == (6, 8, str(source))
    assert report["skipped"] == [
        {"layer": "dense_1", "weight": "kernel", "reason": "shape mismatch: source [4, 3], model [4, 10]"},
        {"layer": "dense_1", "weight": "bias", "reason": "shape mismatch: source [3], model [10]"},
    ]
    # a finished run is a source too: all of its weights fit the same spec (as --weights RUN)
    from cnnspec.training.transfer_loads import plan_for_spec

    (plan,) = plan_for_spec(compile_spec(spec), str(out))
    assert (plan.loaded, plan.total, plan.source) == (8, 8, str(out / "model.keras"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("weights", "damage", "message"),
    [
        ("{from: base.weights.h5, strict: true}", None, "strict weights: loaded 6 of 8"),
        ("base.weights.h5", "truncate", "truncated or corrupted"),
        ("base.weights.h5", "other", "none of the model's 8 weight tensors could be loaded"),
        ("missing.weights.h5", None, "no such weights file"),
        # an older Keras 3's file: its class paths (conv2d, conv2d_1) matched as layer names
        # loaded each automatically named layer with the next one's weights, said as loaded
        ("base.weights.h5", "unnamed", "does not name its layers"),
    ],
)
def test_bad_sources_fail_before_anything_is_written(write_spec, runner, tmp_path, weights, damage, message):
    if damage == "other":  # another architecture: a dense-only model
        body = BASE.split("model:\n")[0] + "model:\n  - flatten\n  - dense: {units: 3}\n"
        _save_weights(write_spec, body, "base.weights.h5")
    else:
        source = _save_weights(write_spec, BASE, "base.weights.h5")
        if damage == "truncate":
            source.write_bytes(source.read_bytes()[:1500])
        if damage == "unnamed":
            import h5py

            with h5py.File(source, "r+") as handle:
                groups: list = []
                handle.visititems(
                    lambda _, item: groups.append(item) if isinstance(item, h5py.Group) else None
                )
                for group in groups:
                    if "name" in group.attrs:
                        del group.attrs["name"]
    spec = write_spec(TARGET + f"weights: {weights}\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(spec), "--out", str(out)])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert f"{spec.name}:{TARGET.count(chr(10)) + 1}:" in result.output  # located at `weights:`
    assert not out.exists()


@pytest.mark.slow
def test_backbone_weights_load_into_its_scope_only(write_spec):
    from cnnspec.api import build_model
    from cnnspec.training.transfer import apply_plan
    from cnnspec.training.transfer_loads import plan_for_spec

    source = _save_weights(write_spec, BASE, "base.weights.h5")
    write_spec(BASE, "base.yaml")
    compiled = compile_spec(write_spec(BACKBONE % ", weights: base.weights.h5"))
    (plan,) = plan_for_spec(compiled)
    assert (plan.scope, plan.loaded, plan.total, plan.skipped) == ("body", 6, 6, [])
    model = build_model(compiled)
    stem_before = model.get_layer("stem").get_weights()[0].copy()
    apply_plan(model, plan)
    reference = build_model(compile_spec(source.with_name("base.yaml")))
    reference.load_weights(str(source))
    for ours, theirs in (("body_stem", "stem"), ("body_batch_norm_1", "batch_norm_1")):
        for a, b in zip(
            model.get_layer(ours).get_weights(), reference.get_layer(theirs).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.get_layer("stem").get_weights()[0], stem_before)  # outside the scope


@pytest.mark.slow
def test_imagenet_comes_from_keras_cache_and_offline_names_the_file(write_spec, tmp_path, monkeypatch):
    from cnnspec.training import transfer_imagenet, transfer_loads

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(found):
        raise Exception("URL fetch failure")  # what Keras raises without network

    monkeypatch.setattr(transfer_imagenet, "download", offline)
    spec = write_spec(
        "cnnspec: 1\nname: mine\nextends: zoo:mobilenet_v3_small\nvars: {classes: 10}\nweights: imagenet\n"
    )
    compiled = compile_spec(spec)
    with pytest.raises(SpecError) as caught:
        transfer_loads.plan_for_spec(compiled)
    (error,) = caught.value.errors
    name = "weights_mobilenet_v3_small_224_1.0_float.h5"
    assert name in error.message and "download failed: URL fetch failure" in error.message
    assert str(tmp_path / "keras" / "models" / name) in error.hint
    # a file of that name in the cache is read, not downloaded (here a damaged one, which keeps
    # the test quick; benchmarks/check_backbone_imagenet.py loads a whole ResNet50 file)
    (tmp_path / "keras" / "models").mkdir(parents=True)
    (tmp_path / "keras" / "models" / name).write_bytes(b"not HDF5")
    with pytest.raises(SpecError) as caught:
        transfer_loads.plan_for_spec(compiled)
    (error,) = caught.value.errors
    assert str(tmp_path / "keras" / "models" / name) in error.message
    assert "download" not in error.message


@pytest.mark.slow
def test_build_with_weights_saves_a_model_that_starts_from_them(write_spec, runner, tmp_path):
    import keras

    source = _save_weights(write_spec, BASE, "base.weights.h5")
    spec = write_spec(TARGET)
    target = tmp_path / "built.keras"
    result = runner.invoke(app, ["build", str(spec), "--weights", str(source), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "loaded 6 of 8 weight tensors" in result.output
    built = keras.saving.load_model(str(target))
    from cnnspec.api import build_model

    original = build_model(compile_spec(source.with_name("base.yaml")))
    original.load_weights(str(source))
    np.testing.assert_array_equal(
        built.get_layer("stem").get_weights()[0], original.get_layer("stem").get_weights()[0]
    )
    missing = runner.invoke(
        app, ["build", str(spec), "--weights", "nope.keras", "-o", str(tmp_path / "x.keras")]
    )
    assert missing.exit_code != 0 and "no such weights file" in missing.output
    assert not (tmp_path / "x.keras").exists()


BN_SPEC = """cnnspec: 1
name: bn%s
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: c
  - batch_norm: {%s}
    id: bn
  - global_avg_pool2d
  - dense: {units: 5, activation: softmax}
    id: head
"""


@pytest.mark.slow
def test_a_layer_of_another_configuration_is_skipped_whole_not_shifted(write_spec, runner, tmp_path):
    """A batch norm saved without `scale` (beta, moving_mean, moving_variance) loaded into one
    with it: by position, gamma took beta, beta moving_mean, moving_mean moving_variance, and
    the report said one tensor was skipped. The layer is now skipped whole, and said so; the
    generated script does the same."""
    import keras

    from cnnspec.api import build_model
    from cnnspec.backends.python_emitter import generate_code

    source_spec = write_spec(BN_SPEC % ("src", "scale: false"), "src.yaml")
    source = build_model(compile_spec(source_spec))
    for i, variable in enumerate(source.get_layer("bn").weights):
        variable.assign(np.full(variable.shape, 10.0 * (i + 1), "float32"))
    source.save_weights(str(tmp_path / "src.weights.h5"))
    spec = write_spec(BN_SPEC % ("dst", "") + "weights: src.weights.h5\n", "dst.yaml")
    result = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "dst.keras")])
    assert result.exit_code == 0, result.output
    assert "loaded 4 of 8 weight tensors" in " ".join(result.output.split())
    assert "the source layer holds 3 weight tensor(s), this one 4" in " ".join(result.output.split())
    built = keras.saving.load_model(str(tmp_path / "dst.keras")).get_layer("bn")
    assert [float(np.asarray(v)[0]) for v in built.weights] == [1.0, 0.0, 0.0, 1.0]  # as initialized
    # the generated script's loader skips the layer the same way
    compiled = compile_spec(spec)
    script = tmp_path / "train.py"
    script.write_text(generate_code(compiled, script=True, output=script).text, encoding="utf-8")
    import importlib.util

    loader = importlib.util.spec_from_file_location("generated_bn", script)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    model = module.build_model()
    module.load_starting_weights(model)
    assert [float(np.asarray(v)[0]) for v in model.get_layer("bn").weights] == [1.0, 0.0, 0.0, 1.0]
    np.testing.assert_array_equal(
        model.get_layer("c").weights[0].numpy(), source.get_layer("c").weights[0].numpy()
    )
    _same_count_other_variables(write_spec, runner, tmp_path, source)


def _same_count_other_variables(write_spec: Any, runner: CliRunner, tmp_path: Path, source: Any) -> None:
    """The source batch norm without `scale` (beta, moving_mean, moving_variance) saved as a
    .keras file, loaded into one without `center` (gamma, moving_mean, moving_variance): as
    many tensors of the same shapes, so by position gamma took beta's values ("loaded 7 of 7").
    Matched by variable name (the source layer rebuilt from its config.json), the moving
    statistics load and gamma is skipped, said why; the generated script does the same. A bare
    weights file keeps the layers' classes in its group names, as the planner reads them."""
    import importlib.util

    import keras

    from cnnspec.backends.python_emitter import generate_code
    from cnnspec.spec.weights import WeightsSource
    from cnnspec.training.transfer_read import read_source

    found = read_source(WeightsSource("weights_h5", "src.weights.h5", tmp_path / "src.weights.h5"))
    assert found.groups == {"c": "conv2d", "bn": "batch_normalization", "head": "dense"}
    source.save(str(tmp_path / "src.keras"))
    spec = write_spec(BN_SPEC % ("cen", "center: false") + "weights: src.keras\n", "cen.yaml")
    result = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "cen.keras")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "loaded 6 of 7 weight tensors" in said
    assert (
        "skipped bn/gamma: the source layer has no gamma (another configuration of the layer; the "
        "source has center: true, scale: false)" in said
    )
    built = keras.saving.load_model(str(tmp_path / "cen.keras")).get_layer("bn")
    assert [float(np.asarray(v)[0]) for v in built.weights] == [1.0, 20.0, 30.0]  # gamma as initialized
    script = tmp_path / "train_cen.py"
    script.write_text(generate_code(compile_spec(spec), script=True, output=script).text, encoding="utf-8")
    loader = importlib.util.spec_from_file_location("generated_cen", script)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    model = module.build_model()
    module.load_starting_weights(model)
    assert [float(np.asarray(v)[0]) for v in model.get_layer("bn").weights] == [1.0, 20.0, 30.0]


def test_weights_and_resume_together_are_refused(write_spec, runner, tmp_path):
    spec = write_spec(TARGET)
    result = runner.invoke(app, ["train", str(spec), "--weights", "x.weights.h5", "--resume", str(tmp_path)])
    assert result.exit_code != 0
    assert "expected --weights or --resume, not both" in result.output


def test_codegen_writes_a_backbone_as_a_function_and_a_cut_inside_a_call(write_spec, runner):
    write_spec(BASE, "base.yaml")
    result = runner.invoke(app, ["codegen", str(write_spec(BACKBONE % ", vars: {width: 6}"))])
    assert result.exit_code == 0, result.output
    assert "BODY_WIDTH = 6" in result.stdout
    assert 'body = tinybase(stem, name="body")' in result.stdout
    blocks = (
        "blocks:\n  unit:\n    layers:\n      - conv2d: {filters: 2, kernel_size: 1}\n        id: inner\n"
    )
    library = BASE.replace("model:\n", blocks + "model:\n  - unit:\n    id: u\n")
    write_spec(library, "base.yaml")
    cut = write_spec(BACKBONE.replace("until: feat%s", "until: u.inner"))
    assert compile_spec(cut).ir.node("body_u_inner") is not None  # the IR takes the cut …
    written = runner.invoke(app, ["codegen", str(cut)])
    assert written.exit_code == 0, written.output  # … and so does codegen (the cut is the call's end)
    assert '"""The backbone base.yaml up to u.inner."""' in written.stdout
    assert 'u = unit(x, name=f"{name}_u")\n    return u\n' in written.stdout


@pytest.mark.slow
def test_generated_script_loads_the_same_weights_as_cnnspec(write_spec, tmp_path):
    """A backbone's source, then the whole model's (a run of the same model), in that order."""
    import importlib.util

    from cnnspec.backends.python_emitter import generate_code
    from cnnspec.training.transfer_loads import plan_for_spec

    _save_weights(write_spec, BASE, "base.weights.h5")
    write_spec(BASE, "base.yaml")
    _save_weights(write_spec, BACKBONE % "", "top.weights.h5")
    text = BACKBONE % ", weights: base.weights.h5" + "weights: top.weights.h5\n"
    compiled = compile_spec(write_spec(text + "data: {source: digits}\ntraining: {epochs: 1}\n"))
    script = tmp_path / "train.py"
    script.write_text(generate_code(compiled, script=True, output=script).text, encoding="utf-8")
    loader = importlib.util.spec_from_file_location("generated_train", script)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)  # defines functions only: main() is behind the __main__ guard
    model = module.build_model()
    module.load_starting_weights(model)  # (a strict misfit would raise SystemExit)
    plans = plan_for_spec(compiled)
    assert [(p.scope, p.loaded, p.total) for p in plans] == [("body", 6, 6), ("", 10, 10)]
    expected = {(layer, index): array for plan in plans for layer, index, array in plan.assign}
    for (layer, index), array in expected.items():  # the later source wins, in both
        np.testing.assert_array_equal(model.get_layer(layer).weights[index].numpy(), array)


@pytest.mark.slow
def test_generated_script_exits_non_zero_when_a_strict_source_does_not_fit(
    write_spec, runner, tmp_path, monkeypatch, capsys
):
    """`codegen --script` of `weights: {from: X, strict: true}` where the head does not fit: the
    script's main() stops before training with SystemExit(message), which Python turns into
    exit status 1 with the message on stderr (run in-process: no second TensorFlow start)."""
    import importlib.util
    import sys

    _save_weights(write_spec, BASE, "base.weights.h5")
    spec = write_spec(TARGET + "weights: {from: base.weights.h5, strict: true}\n")
    script = tmp_path / "train.py"
    assert runner.invoke(app, ["codegen", str(spec), "--script", "-o", str(script)]).exit_code == 0
    loader = importlib.util.spec_from_file_location("generated_strict_train", script)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    out = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", [str(script), "--out", str(out)])
    with pytest.raises(SystemExit) as stopped:
        module.main()
    message = stopped.value.code
    assert isinstance(message, str)  # a message, not 0 or None: the process exits with status 1
    assert message.startswith("strict weights: not loaded from ")
    assert "dense_1/kernel" in message and "dense_1/bias" in message
    assert "loaded 6 of 8 weight tensors" in capsys.readouterr().out
    assert not (out / "model.keras").exists() and not (out / "metrics.json").exists()


NORMALIZED = """\
cnnspec: 1
name: normalized
input: {shape: [8, 8, 1]}
model:
  - normalization: {axis: -1}
  - conv2d: {filters: 2, kernel_size: 1}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
"""


def _adapted_source(write_spec) -> tuple[Path, Any]:
    """A model whose adapted normalization holds a mean and variance other than the 0 and 1 it
    is built with, and its weights file."""
    from cnnspec.api import build_model

    spec = write_spec(NORMALIZED, "normalized.yaml")
    model = build_model(compile_spec(spec))
    model.layers[1].adapt(np.random.default_rng(0).normal(3.0, 2.0, (32, 8, 8, 1)).astype("float32"))
    target = spec.with_name("normalized.weights.h5")
    model.save_weights(str(target))
    return target, model


@pytest.mark.slow
def test_loaded_weights_of_an_adapted_normalization_take_effect(write_spec, tmp_path):
    """An adapted normalization computes its mean and variance tensors from its variables when
    it is built or adapted: the loader lets it finalize them, as Keras' loaders do, so the loaded
    model gives the source's outputs (before, it went on normalising with 0 and 1)."""
    from cnnspec.api import build_model
    from cnnspec.training.transfer import apply_plan
    from cnnspec.training.transfer_loads import plan_for_spec

    source, reference = _adapted_source(write_spec)
    compiled = compile_spec(write_spec(NORMALIZED + "weights: normalized.weights.h5\n"))
    (plan,) = plan_for_spec(compiled)
    assert (plan.loaded, plan.total) == (7, 7)
    model = build_model(compiled)
    apply_plan(model, plan)
    batch = np.random.default_rng(1).normal(3.0, 2.0, (2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(model(batch), reference(batch), rtol=1e-5, atol=1e-5)
    assert source.is_file()


@pytest.mark.slow
def test_the_generated_scripts_loader_lets_an_adapted_normalization_finalize(write_spec, tmp_path):
    """The same for the generated script's ``assign_what_fits`` (run in this process on the
    model cnnspec builds, its TensorFlow-free functions taken from the script)."""
    from cnnspec.api import build_model
    from tests.test_listing_edges import script_functions

    source, reference = _adapted_source(write_spec)
    spec = write_spec(NORMALIZED + "weights: normalized.weights.h5\n")
    functions = script_functions(spec)
    model = build_model(compile_spec(spec))
    targets = functions["layers_with_weights"](model)
    arrays = [[v.numpy() for v in layer.weights] for layer in reference.layers if layer.weights]
    functions["assign_what_fits"](targets, arrays, str(source), True, "", "no weight fits")
    batch = np.random.default_rng(1).normal(3.0, 2.0, (2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(model(batch), reference(batch), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_a_whole_models_file_given_to_its_backbone_item_says_to_load_it_whole(write_spec):
    """A file saved from a model that holds the backbone spec as its item `body` names the
    backbone's layers `body_stem` …: given to a backbone item, nothing matched its `stem` …, and
    the error listed the model's names without the prefix with the hint to give the items the ids
    they had (they had them). It says the file holds them under `body_` and to load it as the
    whole model's weights; followed, everything loads."""
    from cnnspec.training.transfer_loads import plan_for_spec

    write_spec(BASE, "base.yaml")
    _save_weights(write_spec, BACKBONE % "", "whole.weights.h5")
    for item, renamed in (("body", ""), ("trunk", ", with this backbone item's id `body`")):
        spec = write_spec((BACKBONE % ", weights: whole.weights.h5").replace("id: body", f"id: {item}"))
        with pytest.raises(SpecError) as caught:
            plan_for_spec(compile_spec(spec))
        (error,) = caught.value.errors
        assert "it holds the backbone's layers under the prefix body_ (body_stem, body_batch_norm_1)" in (
            error.message
        )
        assert error.hint == (
            "load it as the whole model's weights (a top-level `weights:`, or --weights), which match the "
            f"layers by their full names{renamed}"
        )
    whole = write_spec(BACKBONE % "" + "weights: whole.weights.h5\n")
    (plan,) = plan_for_spec(compile_spec(whole))
    assert (plan.loaded, plan.total, plan.skipped) == (10, 10, [])


@pytest.mark.slow
def test_a_source_whose_ids_were_renamed_says_so_and_unused_source_layers_are_named(write_spec):
    """Matched by name: a source saved under other ids loads nothing, and the error names both
    sides' layers and that every layer has its shapes there (not "another architecture"); a
    source with a layer more says which of its layers nothing took."""
    from cnnspec.errors import SpecError, UsageError
    from cnnspec.training.transfer_loads import plan_for_spec

    renamed = BASE.replace("id: stem", "id: trunk").replace("id: feat", "id: act")
    renamed = renamed.replace("  - batch_norm\n", "  - batch_norm:\n    id: norm\n")
    renamed = renamed.replace("activation: softmax}\n", "activation: softmax}\n    id: head\n")
    source = _save_weights(write_spec, renamed, "renamed.weights.h5")
    spec = write_spec(BASE)
    with pytest.raises((SpecError, UsageError)) as caught:
        plan_for_spec(compile_spec(spec), str(source))
    text = str(caught.value)
    assert "no layer name matched (the source's: " in text and "the model's: " in text
    assert "3 of the model's 3 layers have a layer of the same shapes there" in text
    assert "another architecture" not in text
    extra = BASE.replace(
        "  - global_avg_pool2d\n",
        "  - conv2d: {filters: 4, kernel_size: 1}\n    id: more\n  - global_avg_pool2d\n",
    )
    source = _save_weights(write_spec, extra, "extra.weights.h5")
    (plan,) = plan_for_spec(compile_spec(spec), str(source))
    assert plan.unused_layers == ["more"] and plan.as_json()["unused_source_layers"] == ["more"]
    assert "(2 tensors of the source unused: more)" in plan.lines()[0]


# -- an output layer loaded from a run that named its classes otherwise ---------------------------
def test_class_order_notes_compare_each_loaded_output_with_the_source_runs_names(tmp_path):
    from cnnspec.training.transfer_records import TransferPlan
    from cnnspec.training.transfer_report import class_order_notes

    run = tmp_path / "run"
    run.mkdir()
    tasks = [{"name": "head", "names": ["0", "1"]}, {"name": "size", "names": ["w", "h"]}]
    (run / "lock.json").write_text(json.dumps({"tasks": tasks}))
    plan = TransferPlan(source="run", file=str(run / "model.keras"), assign=[("head", 0, None)])
    outputs = [("head", ["1", "0"]), ("size", ["h", "w"])]  # size was not loaded: no note
    assert class_order_notes([plan], outputs) == [
        "the output layer 'head' was loaded from run, whose run names its outputs ['0', '1']; this "
        "run names them ['1', '0'] (give the layer another id to train it from scratch, or list "
        "data.classes in the source's order)"
    ]
    assert class_order_notes([plan], [("head", ["0", "1"])]) == []  # the same order
    bare = TransferPlan(source="m.keras", file=str(tmp_path / "m.keras"), assign=[("head", 0, None)])
    assert class_order_notes([bare], outputs) == []  # a bare file records no names
    (run / "lock.json").write_text("{")  # unreadable: nothing to compare, no crash
    assert class_order_notes([plan], outputs) == []


@pytest.mark.slow
def test_train_warns_when_the_loaded_head_names_its_classes_in_another_order(write_spec, runner, tmp_path):
    # the head of a [0, 1] run loaded into a [1, 0] run loaded "2 of 2" and scored 0.0 without a word
    spec = (
        "cnnspec: 1\nname: two\ninput: {shape: [8, 8, 1]}\n"
        "model: [flatten, dense: {units: 2, activation: softmax}]\n"
    )
    data = "data: {source: digits, classes: %s}\ntraining: {epochs: 1, batch_size: 32}\n"
    first = write_spec(spec + data % "[0, 1]", name="a.yaml")
    # the source run, by the trainer `cnnspec train` calls, without the report.html it adds
    # (a fifth of a training's time): --weights reads its model.keras and lock.json
    from tests.test_report_support import train_without_page

    train_without_page(first, tmp_path / "a")
    second = write_spec(spec + data % "[1, 0]", name="b.yaml")
    args = ["train", str(second), "--weights", str(tmp_path / "a"), "--out", str(tmp_path / "b")]
    result = runner.invoke(app, [*args, "--no-report"])  # (its page unread)
    assert result.exit_code == 0, result.output
    assert "names its outputs ['0', '1']; this run names them ['1', '0']" in " ".join(result.output.split())


# -- a backbone's source and the whole model's together -------------------------------------------
# The stem and the head of BACKBONE's model, without the backbone: what a whole-model source
# holds when the backbone's own source is to fill the rest (its dense is BACKBONE's dense_1).
STEM_AND_HEAD = """\
cnnspec: 1
name: stemhead
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 1, kernel_size: 1}
    id: stem
  - conv2d: {filters: 4, kernel_size: 1}
    id: widen  # (the backbone's 4 channels for the head; not in BACKBONE's model)
  - global_avg_pool2d
  - dense: {units: %d, activation: softmax}
"""


def _backbone_and_whole(write_spec, whole: str, units: int = 10) -> Path:
    """BACKBONE's spec loading base.weights.h5 into its backbone and ``whole`` (``weights:``)
    into the whole model, whose source (stemhead.weights.h5) holds the stem and a head of
    ``units`` classes only."""
    _save_weights(write_spec, BASE, "base.weights.h5")
    write_spec(BASE, "base.yaml")
    _save_weights(write_spec, STEM_AND_HEAD % units, "stemhead.weights.h5")
    text = BACKBONE % ", weights: base.weights.h5" + f"weights: {whole}\n"
    return write_spec(text + "data: {source: digits, limit: 64}\ntraining: {epochs: 1, batch_size: 32}\n")


@pytest.mark.slow
def test_a_tensor_the_backbones_source_loaded_is_not_skipped_by_the_whole_models(
    write_spec, runner, tmp_path
):
    """The backbone's 6 tensors come from base.weights.h5, the stem's and the head's 4 from the
    whole model's source, which lacks the backbone's: the report said "loaded 4 of 10" and
    skipped the 6 as missing, and transfer.json added the parts up to 10 of 16 for a model of
    10 tensors, all loaded."""
    spec = _backbone_and_whole(write_spec, "stemhead.weights.h5")
    out = tmp_path / "run"
    # (without its page: nothing here reads it)
    result = runner.invoke(app, ["train", str(spec), "--no-report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "loaded 6 of 6 weight tensors into body from" in text
    assert (
        "loaded 4 of 4 weight tensors from" in text
        and "(6 more were loaded from the backbones' sources)" in text
    )
    assert "skipped" not in text
    report = json.loads((out / "transfer.json").read_text())
    assert (report["loaded"], report["total"], report["skipped"]) == (10, 10, [])
    body, whole = report["parts"]
    assert (body["scope"], body["loaded"], body["total"]) == ("body", 6, 6)
    assert (whole["loaded"], whole["total"], whole["skipped"]) == (4, 4, [])
    assert whole["loaded_from_other_sources"] == 6
    # runs compare reads the same counts
    compared = runner.invoke(app, ["runs", "compare", str(out), str(out), "--format", "json",
                                   "--png", str(tmp_path / "c.png")])  # fmt: skip
    assert compared.exit_code == 0, compared.output
    assert "(loaded 10 of 10, sha256 " in json.loads(compared.stdout)["starting_weights"]["a"]


@pytest.mark.slow
def test_a_whole_model_source_that_holds_the_backbone_too_counts_each_tensor_once(write_spec):
    """`--weights RUN` of the same model after the backbone's own source: it loads all 10 again
    (it is assigned last), and the top level says 10 of 10, not the parts' 16 of 16."""
    from cnnspec.training.transfer_loads import plan_for_spec
    from cnnspec.training.transfer_report import report_json

    _save_weights(write_spec, BASE, "base.weights.h5")
    write_spec(BASE, "base.yaml")
    whole = _save_weights(write_spec, BACKBONE % "", "top.weights.h5")
    plans = plan_for_spec(compile_spec(write_spec(BACKBONE % ", weights: base.weights.h5")), str(whole))
    assert [(p.scope, p.loaded, p.total, p.covered) for p in plans] == [("body", 6, 6, 0), ("", 10, 10, 0)]
    report = report_json(plans)
    assert (report["loaded"], report["total"], report["skipped"]) == (10, 10, [])


@pytest.mark.slow
def test_strict_on_the_whole_models_source_judges_only_what_is_left_to_it(write_spec, runner, tmp_path):
    """`strict: true` refused the source above as "loaded 4 of 10 … 6 skipped" (the backbone's,
    which its own source loads) with a hint to train them from scratch; a head that does not fit
    is still refused, counted among the tensors left to it."""
    spec = _backbone_and_whole(write_spec, "{from: stemhead.weights.h5, strict: true}")
    result = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "m.keras")])
    assert result.exit_code == 0, result.output
    assert "loaded 4 of 4 weight tensors from" in " ".join(result.output.split())
    spec = _backbone_and_whole(write_spec, "{from: stemhead.weights.h5, strict: true}", units=3)
    result = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "n.keras")])
    text = " ".join(result.output.split())
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "strict weights: loaded 2 of 4 weight tensors from" in text
    assert (
        "(6 more were loaded from the backbones' sources); 2 skipped, first dense_1/kernel: shape mismatch"
        in text
    )
    assert f"{spec.name}:{(BACKBONE % '').count(chr(10)) + 1}:" in result.output  # at `weights:`
    assert not (tmp_path / "n.keras").exists()


@pytest.mark.slow
def test_source_tensors_nothing_took_are_unused_whatever_the_reason(write_spec):
    """A source layer whose name matched but that gave nothing (its shapes or its tensor count
    differ) is unused, and so is each tensor of it: a shape mismatch left them uncounted (2
    unused said for 13), and a layer of another configuration was counted but not named."""
    from cnnspec.training.transfer_loads import plan_for_spec

    source = _save_weights(write_spec, BASE, "base.weights.h5")
    (plan,) = plan_for_spec(compile_spec(write_spec(TARGET)), str(source))  # a 3-class head, 10 here
    assert (plan.loaded, plan.total, plan.unused, plan.unused_layers) == (6, 8, 2, ["dense_1"])
    assert plan.as_json()["unused_source_tensors"] == 2
    assert "(2 tensors of the source unused: dense_1)" in plan.lines()[0]
    # the stem's kernel fits, its bias not: the layer gave something, so it is not named
    mixed = BASE.replace("kernel_size: 3, padding: same}", "kernel_size: 3, padding: same, use_bias: false}")
    source = _save_weights(write_spec, mixed, "nobias.weights.h5")
    (plan,) = plan_for_spec(compile_spec(write_spec(BASE)), str(source))
    assert plan.loaded == 6 and [(s.layer, s.weight) for s in plan.skipped] == [
        ("stem", "kernel"),
        ("stem", "bias"),
    ]
    assert (plan.unused, plan.unused_layers) == (1, ["stem"])  # the source's stem: 1 tensor, 2 here
    source_spec = write_spec(BN_SPEC % ("src", "scale: false"), "src.yaml")
    from cnnspec.api import build_model

    build_model(compile_spec(source_spec)).save_weights(str(source_spec.with_name("src.weights.h5")))
    (plan,) = plan_for_spec(
        compile_spec(write_spec(BN_SPEC % ("dst", ""), "dst.yaml")),
        str(source_spec.with_name("src.weights.h5")),
    )
    assert (plan.loaded, plan.total, plan.unused, plan.unused_layers) == (4, 8, 3, ["bn"])


@pytest.mark.slow
def test_a_source_layer_partly_taken_is_named_among_the_unused(write_spec):
    """A wider hidden layer: the source's dense_1 gives nothing, its dense_2 its bias (of the
    same shape) but not its kernel. "3 tensors of the source unused: dense_1" named one layer
    for three tensors; the partly taken layer is named too, with how many of its tensors."""
    from cnnspec.training.transfer_loads import plan_for_spec

    text = (
        "cnnspec: 1\nname: w\ninput: {shape: [8, 8, 1]}\nmodel:\n  - conv2d: {filters: 4, kernel_size: 3}\n"
    )
    text += "  - flatten\n  - dense: UNITS\n  - dense: 2\n"
    source = _save_weights(write_spec, text.replace("UNITS", "6"), "six.weights.h5")
    (plan,) = plan_for_spec(compile_spec(write_spec(text.replace("UNITS", "7"), "seven.yaml")), str(source))
    assert (plan.loaded, plan.unused, plan.unused_layers) == (3, 3, ["dense_1"])
    assert plan.partly_unused == [("dense_2", 1, 2)]
    assert "(3 tensors of the source unused: dense_1, dense_2 (1 of its 2))" in plan.lines()[0]
    assert plan.as_json()["partly_unused_source_layers"] == [{"layer": "dense_2", "unused": 1, "tensors": 2}]


@pytest.mark.slow
def test_imagenet_for_an_input_too_small_gives_keras_reason_at_the_source(
    write_spec, runner, tmp_path, monkeypatch
):
    """keras.applications refuses MobileNetV2's ImageNet weights below 32×32: that reason was
    swallowed, and `build` said "has no ImageNet weights to download", unlocated. Nothing is
    downloaded: Keras refuses before it would fetch a file."""
    from cnnspec.training import transfer_imagenet

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(transfer_imagenet, "download", lambda found: pytest.fail(f"downloads {found.name}"))
    spec = write_spec(
        "cnnspec: 1\nname: small\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - backbone: {spec: zoo:mobilenet_v2, until: stage3, vars: {include_top: false}, "
        "weights: imagenet}\n"
        "    id: body\n  - global_avg_pool2d\n  - dense: {units: 3, activation: softmax}\n"
    )
    result = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "m.keras")])
    text = " ".join(result.output.split())
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"{spec.name}:5:92: error: model[0].backbone.weights:" in text
    assert "MobileNetV2 has no ImageNet weights for this model: Input size must be at least 32x32" in text
    assert "hint: give the model an input keras.applications takes with ImageNet weights" in text
    assert not (tmp_path / "m.keras").exists()


def test_a_failed_imagenet_download_keeps_its_reason_whole_words(tmp_path, monkeypatch):
    """The reason was cut at 200 characters, mid-word; now at a word boundary, with an ellipsis."""
    from cnnspec.spec.weights import WeightsSource
    from cnnspec.training import transfer_imagenet, transfer_read

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    found = transfer_imagenet.ApplicationFile("w.h5", "https://example.org/w.h5", None)
    monkeypatch.setattr(transfer_imagenet, "application_file", lambda *args: found)
    reason = "URL fetch failure on https://example.org/w.h5: " + " ".join(["unreachable"] * 40)

    def offline(_found):
        raise Exception(reason + "\nsecond line")

    source = WeightsSource("imagenet", "imagenet", path="weights")
    with pytest.raises(SpecError) as caught:
        transfer_imagenet.imagenet_weights_file(source, "MobileNetV2", False, (32, 32, 3), offline)
    (error,) = caught.value.errors
    said = error.message.split("the download failed: ")[1]
    assert said.endswith("unreachable…") and reason.startswith(said[:-1]) and len(said) <= 300
    assert "second line" not in error.message
    # a short reason is kept whole, without an ellipsis
    assert transfer_read.first_line(Exception("URL fetch failure")) == "URL fetch failure"
    assert transfer_read.first_line(Exception("")) == "Exception"


@pytest.mark.slow
def test_the_generated_script_leaves_the_backbones_tensors_to_its_source_as_cnnspec_does(
    write_spec, tmp_path, capsys
):
    """The script's loader stopped at a strict whole-model source lacking the backbone's
    tensors (its own source loads them); it now counts, and loads, as cnnspec does."""
    import importlib.util

    from cnnspec.backends.python_emitter import generate_code
    from cnnspec.training.transfer_loads import plan_for_spec

    spec = _backbone_and_whole(write_spec, "{from: stemhead.weights.h5, strict: true}")
    compiled = compile_spec(spec)
    script = tmp_path / "train.py"
    script.write_text(generate_code(compiled, script=True, output=script).text, encoding="utf-8")
    loader = importlib.util.spec_from_file_location("generated_shared", script)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    model = module.build_model()
    module.load_starting_weights(model)  # (a strict misfit would raise SystemExit)
    printed = capsys.readouterr().out
    assert "loaded 6 of 6 weight tensors from" in printed
    assert (
        "loaded 4 of 4 weight tensors from" in printed
        and "(6 more were loaded from the backbones' sources)" in printed
    )
    plans = plan_for_spec(compiled)
    expected = {(layer, index): array for plan in plans for layer, index, array in plan.assign}
    assert len(expected) == 10  # every tensor of the model, from one source or the other
    for (layer, index), array in expected.items():
        np.testing.assert_array_equal(model.get_layer(layer).weights[index].numpy(), array)


def test_the_script_skips_integers_for_float_weights_as_train_does(tmp_path, capsys):
    """The generated script's loader (TF-free here, with stand-in layers) loads a tensor only
    of the shape and the kind of number its variable keeps, as train's planner does (a dtype
    mismatch is skipped and counted; `strict` stops on it)."""
    import h5py

    from tests.test_listing_edges import script_functions

    with h5py.File(tmp_path / "w.weights.h5", "w") as handle:
        handle.create_group("layers/dense/vars").create_dataset("0", data=np.zeros((4, 3), "float32"))
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "cnnspec: 1\nname: s\ninput: {shape: [8, 8, 1]}\nweights: w.weights.h5\n"
        "model:\n  - flatten\n  - dense: {units: 3, activation: softmax}\n",
        encoding="utf-8",
    )
    functions = script_functions(spec)

    class Variable:
        def __init__(self, name: str, shape: tuple[int, ...], dtype: str) -> None:
            self.name, self.shape, self.dtype, self.value = name, shape, dtype, None

        def assign(self, value: Any) -> None:
            self.value = value

    class Layer:
        def __init__(self, name: str, *weights: Variable) -> None:
            self.name, self.weights = name, list(weights)

    counter = Variable("count", (), "int64")
    layers = [
        Layer("d", Variable("kernel", (2, 2), "float32"), Variable("bias", (2,), "float32")),
        Layer("n", Variable("mean", (2,), "float32"), counter),
    ]
    arrays = [[np.ones((2, 2), "int32"), np.zeros(2, "float64")], [np.ones(2, "float16"), np.array(5)]]
    functions["assign_what_fits"](layers, arrays, "w.weights.h5", False, "", "why")
    assert capsys.readouterr().out == "loaded 3 of 4 weight tensors from w.weights.h5\n"
    assert layers[0].weights[0].value is None and counter.value == 5  # (an integer counter: loaded)
    arrays[1][1] = np.array(5.0)
    stopped = r"^strict weights: not loaded from w.weights.h5: d/kernel, n/count$"
    with pytest.raises(SystemExit, match=stopped):
        functions["assign_what_fits"](layers, arrays, "w.weights.h5", True, "", "why")
    _script_skips_a_layer_of_another_class(functions, tmp_path, capsys)


class _Variable:
    """A stand-in Keras variable (TF-free tests of the matching)."""

    def __init__(self, name: str, shape: tuple[int, ...], dtype: str = "float32") -> None:
        self.name, self.path, self.shape, self.dtype, self.value = name, name, shape, dtype, None

    def assign(self, value: Any) -> None:
        self.value = value


class _Layer:
    """A stand-in layer: what the planner and the script's loader read of one (its class's name
    is the Keras class's, set by :func:`_layer`)."""

    def __init__(self, name: str, *weights: _Variable) -> None:
        self.name, self.weights = name, list(weights)
        self._trainable_variables, self._non_trainable_variables = list(weights), []


def _layer(class_name: str, name: str, *weights: _Variable) -> _Layer:
    return type(class_name, (_Layer,), {})(name, *weights)


def _convolutions() -> list[_Layer]:
    """A transposed convolution `x` (4 to 4 channels: its kernel has a convolution's shape) and
    a dense head `out`."""
    return [
        _layer("Conv2DTranspose", "x", _Variable("kernel", (3, 3, 4, 4)), _Variable("bias", (4,))),
        _layer("Dense", "out", _Variable("kernel", (4, 3)), _Variable("bias", (3,))),
    ]


def test_the_twin_that_tells_a_source_layers_variables_apart_keeps_the_models_sizes():
    """The source's switches and words decide which variables the twin has; its numbers, lists
    and objects stay the model layer's, so a config.json cannot make it allocate (units 10**10)."""
    from cnnspec.training.transfer import twin_settings

    ours = {"name": "d", "units": 3, "use_bias": True, "activation": "relu", "kernel_initializer": {"a": 1}}
    theirs = {
        "name": "other", "units": 10**10, "use_bias": False, "activation": "tanh", "trainable": False,
        "kernel_initializer": {"module": "os"}, "lora_rank": 4, "center": "yes",
    }  # fmt: skip
    assert twin_settings(ours, theirs) == {**ours, "use_bias": False, "activation": "tanh"}
    assert twin_settings({"scale": True}, {"scale": 1}) == {"scale": True}  # (a number is no switch)


@pytest.mark.parametrize(
    ("groups", "configs", "reason"),
    [
        # a bare .weights.h5: Keras names each layer's group after its class
        ({"x": "conv2d", "out": "dense"}, {}, "another kind of layer: the source's is a conv2d (its "
         "weights are saved as layers/conv2d), this one a conv2d_transpose"),
        # a .keras archive: its config.json names the class
        ({"x": "conv2d_transpose", "out": "dense"}, {"x": {"class_name": "Conv2D", "config": {}}},
         "another kind of layer: the source's is a Conv2D, this one a Conv2DTranspose"),
    ],
)  # fmt: skip
def test_a_source_layer_of_another_class_is_skipped_not_loaded(groups, configs, reason):
    """A convolution's kernel loaded into a transposed convolution of the same shape ("loaded 4
    of 4"): its values landed in the wrong places, without a word. A layer of another class is
    skipped whole (TF-free: stand-in layers), and `strict` refuses it."""
    from types import SimpleNamespace

    from cnnspec.errors import UsageError
    from cnnspec.spec.weights import WeightsSource
    from cnnspec.training.transfer import plan_transfer
    from cnnspec.training.transfer_records import SourceLayers

    def arrays(*shapes: tuple[int, ...]) -> list[tuple[str, Any]]:
        return [(str(i), np.ones(shape, "float32")) for i, shape in enumerate(shapes)]

    model = SimpleNamespace(layers=_convolutions())
    found = SourceLayers(
        [("x", arrays((3, 3, 4, 4), (4,))), ("out", arrays((4, 3), (3,)))], True, groups, configs
    )
    plan = plan_transfer(model, WeightsSource("keras", "pre.keras", Path("pre.keras")), found)
    assert [(layer, index) for layer, index, _ in plan.assign] == [("out", 0), ("out", 1)]
    assert [s.as_json() for s in plan.skipped] == [
        {"layer": "x", "weight": "kernel", "reason": reason},
        {"layer": "x", "weight": "bias", "reason": reason},
    ]
    assert (plan.loaded, plan.total, plan.unused, plan.unused_layers) == (2, 4, 2, ["x"])
    with pytest.raises(UsageError, match=r"^strict weights: loaded 2 of 4 weight tensors from pre\.keras"):
        plan_transfer(model, WeightsSource("keras", "pre.keras", Path("pre.keras"), strict=True), found)
    alone = SourceLayers(found.layers[:1], True, groups, configs)  # nothing else fits: an error
    with pytest.raises(UsageError, match=r"none with the same shapes \(1 of them another kind of layer\)$"):
        plan_transfer(model, WeightsSource("keras", "pre.keras", Path("pre.keras")), alone)
    # a second layer of the class is saved as conv2d_transpose_1: the same class
    renamed = SourceLayers(found.layers, True, {"x": "conv2d_transpose_1", "out": "dense_2"})
    assert plan_transfer(model, WeightsSource("keras", "pre.keras", Path("pre.keras")), renamed).loaded == 4


def _script_skips_a_layer_of_another_class(functions: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    """The generated script's load_by_name (stand-in layers, and Keras' serializer standing in
    for what it says of a layer: its class's name) reads the layers' classes from the weights
    file's group names, and loads nothing of a layer of another class: a convolution's kernel
    went into a transposed convolution's of the same shape ("loaded 4 of 4")."""
    import re
    import zipfile
    from types import SimpleNamespace

    import h5py

    with h5py.File(tmp_path / "c.weights.h5", "w") as handle:
        for group, name, shapes in [("conv2d", "x", [(3, 3, 4, 4), (4,)]), ("dense", "out", [(4, 3), (3,)])]:
            variables = handle.create_group(f"layers/{group}/vars")
            variables.attrs["name"] = name
            for i, shape in enumerate(shapes):
                variables.create_dataset(str(i), data=np.ones(shape, "float32"))
    serialize = {"serialize_keras_object": lambda layer: {"class_name": type(layer).__name__, "config": {}}}
    functions.update(
        h5py=h5py, zipfile=zipfile, re=re, keras=SimpleNamespace(saving=SimpleNamespace(**serialize))
    )
    model = SimpleNamespace(layers=_convolutions())
    capsys.readouterr()  # (what the caller's loads printed)
    functions["load_by_name"](model, "", tmp_path / "c.weights.h5")
    assert capsys.readouterr().out == f"loaded 2 of 4 weight tensors from {tmp_path / 'c.weights.h5'}\n"
    assert [v.value is None for layer in model.layers for v in layer.weights] == [True, True, False, False]
    # a file of the convolution alone: nothing fits, and the stop counts the layer of another
    # class, as cnnspec train's error does
    with h5py.File(tmp_path / "x.weights.h5", "w") as handle:
        variables = handle.create_group("layers/conv2d/vars")
        variables.attrs["name"] = "x"
        for i, shape in enumerate([(3, 3, 4, 4), (4,)]):
            variables.create_dataset(str(i), data=np.ones(shape, "float32"))
    with pytest.raises(SystemExit) as stopped:
        functions["load_by_name"](SimpleNamespace(layers=_convolutions()), "", tmp_path / "x.weights.h5")
    assert str(stopped.value) == (
        f"weights: none of the model's 4 weight tensors could be loaded from {tmp_path / 'x.weights.h5'}: "
        "it holds 2 tensors in 1 layers, 1 of which share a name with the model's 2 layers with weights, "
        "none with the same shapes (1 of them another kind of layer)"
    )


@pytest.mark.parametrize("size, refused", [(16, True), (32, False)])
def test_validate_refuses_imagenet_for_an_input_keras_applications_refuses(write_spec, runner, size, refused):
    """`imagenet` on MobileNetV2 without its top at 16×16 (a zoo model's own, or a backbone's)
    passed validate; training then refused it, as keras.applications has no file for such an
    input. validate says it now, TensorFlow-free, as training does; 32×32 is taken."""
    whole = write_spec(
        "cnnspec: 1\nextends: zoo:mobilenet_v2\nname: zx\n"
        f"vars: {{classes: 3, include_top: false, pooling: avg, input_shape: [{size}, {size}, 3]}}\n"
        "weights: imagenet\n",
        "whole.yaml",
    )
    part = write_spec(
        f"cnnspec: 1\nname: zb\ninput: {{shape: [{size}, {size}, 3]}}\nmodel:\n"
        '  - backbone: {spec: "zoo:mobilenet_v2", until: stage2, vars: {include_top: false}, '
        "weights: imagenet}\n    id: body\n  - global_avg_pool2d\n"
        "  - dense: {units: 3, activation: softmax}\n",
        "part.yaml",
    )
    for spec, where in ((whole, "5:10: error: weights:"), (part, "5:94: error: model[0].backbone.weights:")):
        result = runner.invoke(app, ["validate", str(spec)])
        assert result.exit_code == (1 if refused else 0), result.output
        if refused:
            text = " ".join(result.output.split())
            assert f"{spec.name}:{where} keras.applications.MobileNetV2 has no ImageNet weights" in text
            assert "Input size must be at least 32x32 (input [16, 16, 3])" in text


@pytest.mark.parametrize("layout", ["keras2", "model"])
def test_a_keras2_file_named_weights_h5_is_said_as_under_a_h5_name(tmp_path, layout):
    """The same Keras 2 file was "a Keras 2 weights file" named `k2.h5`, and "holds no layer
    weights in Keras 3's layout" (a hint naming neither Keras 2 nor what to do) named
    `k2.weights.h5`."""
    from cnnspec.errors import UsageError
    from cnnspec.spec.weights import WeightsSource
    from cnnspec.training.transfer_read import read_source

    path = tmp_path / "k2.weights.h5"
    _write_h5(path, layout)
    with pytest.raises(UsageError) as refused:
        read_source(WeightsSource("weights_h5", str(path), path))
    what = "a Keras 2 weights file" if layout == "keras2" else "a legacy HDF5 (.h5) file"
    assert str(refused.value) == f"{path} is {what}; cnnspec reads only native Keras files"
