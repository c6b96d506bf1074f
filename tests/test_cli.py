"""The CLI from the outside (Typer's CliRunner): validate, inspect, schema, build."""

from __future__ import annotations

import importlib
import itertools
import json
import subprocess

import pytest

from cnnspec.cli.app import COMMANDS, app, flowed
from tests.conftest import FIXTURES, ROOT, SPEC_FILES, SPECS_DIR, run_script
from tests.test_search import CNNSPEC

RESNET = str(SPECS_DIR / "resnet.yaml")
BASIC = str(SPECS_DIR / "basic_cnn.yaml")


def test_version_and_help(runner):
    assert runner.invoke(app, ["--version"]).output.startswith("cnnspec ")
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("validate", "inspect", "schema", "build"):
        assert command in result.output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_commands_help_is_flowed_to_the_terminals_width(runner, command):
    """Docstrings are wrapped at the source's width; the help rewraps them to the terminal's
    (Rich keeps a help text's own line breaks), so an 80-column terminal shows no ragged lines."""
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    lines = result.output.splitlines()
    usage = next(i for i, line in enumerate(lines) if "Usage:" in line)
    start = next(i for i in range(usage, len(lines)) if not lines[i].strip())  # after the usage
    end = next(i for i, line in enumerate(lines) if "╭" in line)
    prose = [line.rstrip() for line in lines[start:end]]
    assert any(prose), result.output
    # a line broken early although the next line's first word would have fit on it
    for line, following in itertools.pairwise(prose):
        if line.strip() and following.strip():
            assert len(line) + 1 + len(following.split()[0]) > 79, (line, following)
    # the command list shows the first paragraph whole, on one line where the terminal allows
    module, function = COMMANDS[command]
    first = flowed(getattr(importlib.import_module(module), function).__doc__).split("\n\n")[0]
    listed = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert any(
        line.split("│")[1].split(None, 1)[1].rstrip() == first
        for line in listed.splitlines()
        if line.startswith(f"│ {command} ")
    )


def test_flowed_joins_a_paragraphs_lines_and_keeps_lists():
    doc = """First line
    goes on.

    Second paragraph,
    two lines.

    - a list
    - stays
    """
    assert flowed(doc) == "First line goes on.\n\nSecond paragraph, two lines.\n\n- a list\n- stays"
    assert flowed(None) is None


def test_zoo_offers_only_the_formats_it_has(runner):
    result = runner.invoke(app, ["zoo", "--format", "github"])
    assert result.exit_code == 2 and "github" in result.output


def test_inspect_github_format_gives_warnings_as_annotations(runner, write_spec):
    spec = write_spec(
        "cnnspec: 1\nname: t\ninput: {shape: [4]}\nblocks:\n  b: {layers: [flatten]}\nmodel: [flatten]\n"
    )
    result = runner.invoke(app, ["inspect", str(spec), "--format", "github"])
    assert result.exit_code == 0
    assert result.stdout.startswith("::warning file=") and "never used" in result.stdout
    assert "warning:" not in result.stderr
    as_json = runner.invoke(app, ["inspect", str(spec), "--format", "json"])
    document = json.loads(as_json.stdout)  # the summary, with its warnings (a tool lost them)
    (warning,) = document["warnings"]
    assert warning["severity"] == "warning" and "never used" in warning["message"] and warning["line"] == 5


def test_validate_many_files(runner):
    result = runner.invoke(app, ["validate", RESNET, BASIC])
    assert result.exit_code == 0
    assert "resnet — 36 layers, 687,242 parameters" in result.stdout
    assert "basic_cnn — 13 layers, 74,058 parameters" in result.stdout


def test_validate_mixed_good_and_bad(runner):
    bad = FIXTURES / "invalid" / "zero_filters.yaml"
    result = runner.invoke(app, ["validate", RESNET, str(bad)])
    assert result.exit_code == 1
    assert "ok" in result.stdout and "1 of 2 files failed" in result.stdout
    assert "zero_filters.yaml:6:23: error: model[0].conv2d.filters" in result.stderr
    assert " 6 |   - conv2d: {filters: 0, kernel_size: 3}" in result.stderr
    assert "^" in result.stderr


def test_validate_github_format(runner):
    bad = FIXTURES / "invalid" / "unknown_kind.yaml"
    result = runner.invoke(app, ["validate", "--format", "github", str(bad)])
    assert result.exit_code == 1
    line = result.stdout.strip().splitlines()[0]
    assert line.startswith("::error file=")
    assert (
        ",line=7,col=5::model[1].conv2D: unknown layer kind 'conv2D' (hint: did you mean `conv2d`?)" in line
    )


def test_validate_github_format_shows_control_characters_escaped(runner, tmp_path):
    """A key or a file name with ESC and BEL reached the terminal raw in the github format (the
    title and colours of whoever read the CI log in one); text and JSON showed them escaped."""
    spec = tmp_path / "e\x1b[31m.yaml"
    spec.write_text(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel: [flatten, dense: 10]\n"
        '"bo\\e]0;PWNED\\a\\e[31mgus": 1\n'
    )
    result = runner.invoke(app, ["validate", "--format", "github", str(spec)])
    assert result.exit_code == 1
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "e\\x1b[31m.yaml,line=5,col=1::bo\\x1b]0;PWNED\\x07\\x1b[31mgus: unknown key" in result.stdout


@pytest.mark.parametrize("bad", [False, True])
def test_validate_prints_the_same_with_or_without_rich(runner, write_spec, bad):
    # A pipe gets the plain lines without Rich (a cold validate's imports); TTY_COMPATIBLE=0
    # sends them through Rich, which must print the same text: markup-like and emoji-like file
    # names as written, the failure count.
    good = write_spec(
        "cnnspec: 1\nname: tiny\ninput: {shape: [8, 8, 1]}\nmodel: [flatten, {dense: 3}]\n",
        "a[b]:smile:.yaml",
    )
    files = [str(good), str(FIXTURES / "invalid" / "zero_filters.yaml")] if bad else [str(good)]
    plain = runner.invoke(app, ["validate", *files])
    rich = runner.invoke(app, ["validate", *files], env={"TTY_COMPATIBLE": "0"})
    assert plain.exit_code == rich.exit_code == (1 if bad else 0)
    assert plain.stdout == rich.stdout
    assert f"ok {good}: tiny — 2 layers, 195 parameters\n" in plain.stdout
    assert ("1 of 2 files failed" in plain.stdout) is bad


def test_validate_set_override(runner):
    # (3 of cifar10's classes: all ten are more than 3 units take, which validate refuses)
    result = runner.invoke(
        app, ["validate", BASIC, "--set", "vars.classes=3", "--set", "data.classes=[0, 1, 2]"]
    )
    assert result.exit_code == 0, result.output
    assert "73,603 parameters" in result.stdout
    result = runner.invoke(app, ["validate", BASIC, "--set", "model[0]=oops"])
    assert result.exit_code == 1
    assert "<--set 1>" in result.stderr


def test_usage_errors_exit_2(runner):
    assert runner.invoke(app, ["validate", BASIC, "--set", "nonsense"]).exit_code == 2
    assert runner.invoke(app, ["validate"]).exit_code == 2
    assert runner.invoke(app, ["frobnicate"]).exit_code == 2


def test_missing_file_is_a_clean_error(runner, tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "no such file" in result.stderr
    assert "Traceback" not in result.output


def test_strict_turns_warnings_into_failure(runner, write_spec):
    spec = write_spec(
        "cnnspec: 1\nname: t\ninput: {shape: [4]}\nblocks:\n  b: {layers: [flatten]}\nmodel: [flatten]\n"
    )
    assert runner.invoke(app, ["validate", str(spec)]).exit_code == 0
    result = runner.invoke(app, ["validate", "--strict", str(spec)])
    assert result.exit_code == 1
    assert "warning:" in result.stderr and "never used" in result.stderr
    # the file fails: no "ok" line for it, but one that says why
    assert "ok" not in result.stdout.split()
    assert "1 warning, which --strict treats as errors" in result.stdout
    both = runner.invoke(app, ["validate", "--strict", str(spec), BASIC])
    assert both.exit_code == 1
    assert [line.split()[0] for line in both.stdout.splitlines()] == ["failed", "ok", "1"]


def test_user_text_is_printed_as_written_not_as_emoji_codes(runner, write_spec):
    """Rich reads ``:x:`` as an emoji code; a spec's names and a file's name are shown as written."""
    spec = write_spec(
        'cnnspec: 1\nname: "net:x:1"\ninput: {shape: [4]}\nmodel: [flatten]\n', name=":smile:.yaml"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    assert "'net:x:1'" in result.stderr and 'name: "net:x:1"' in result.stderr
    assert ":smile:.yaml:2:7" in result.stderr
    assert "❌" not in result.output and "😄" not in result.output


@pytest.mark.parametrize("fmt", ["json", "github"])
def test_a_file_that_cannot_be_read_is_named_in_every_format(runner, tmp_path, fmt):
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(app, ["validate", "-f", fmt, str(folder), str(missing)])
    assert result.exit_code == 1
    if fmt == "json":
        found = json.loads(result.stdout)
        assert [(d["file"], d["line"], d["code"]) for d in found] == [
            (str(folder), 1, "io"),
            (str(missing), 1, "io"),
        ]
    else:
        assert result.stdout.splitlines() == [
            f"::error file={folder},line=1,col=1::expected a file; received the directory {folder}",
            f"::error file={missing},line=1,col=1::no such file: {missing}",
        ]


def test_inspect_json_document(runner):
    result = runner.invoke(app, ["inspect", RESNET, "--format", "json"])
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert set(summary) == {
        "name",
        "input_shape",
        "output_shape",
        "total_params",
        "trainable_params",
        "non_trainable_params",
        "frozen_params",
        "macs",
        "layers",
        "warnings",
    }
    assert summary["warnings"] == []
    assert summary["input_shape"] == [None, 32, 32, 3]
    assert summary["output_shape"] == [None, 10]
    assert summary["total_params"] == 687_242
    assert summary["trainable_params"] + summary["non_trainable_params"] == 687_242
    assert summary["frozen_params"] == 0  # nothing is frozen
    assert sum(layer["params"] for layer in summary["layers"]) == 687_242
    first = summary["layers"][0]
    assert {"name", "kind", "output_shape", "params", "macs"} <= set(first)
    assert first["output_shape"] == [None, 16, 16, 64]
    assert first["macs"] == 7 * 7 * 3 * 64 * 16 * 16


def test_inspect_table(runner):
    result = runner.invoke(app, ["inspect", RESNET])
    assert result.exit_code == 0
    assert "residual_block_3" in result.stdout  # block group header
    assert "687,242" in result.stdout


def test_internal_errors_exit_3_without_traceback(runner, monkeypatch):
    import cnnspec.analysis.passes

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(cnnspec.analysis.passes, "compile_spec", boom)
    result = runner.invoke(app, ["inspect", RESNET])
    assert result.exit_code == 3
    assert "internal error" in result.stderr and "RuntimeError" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["validate", *map(str, SPEC_FILES)], ["inspect", "zoo:resnet50"]])
def test_a_reader_that_stops_reading_ends_the_command_quietly(command):
    """`cnnspec validate specs/*.yaml | head -1`: the pipe closes before the command writes;
    it stops with 141 (128 + SIGPIPE, what the shell shows for a program the signal ended), not
    an internal error. Plain text (validate) and Rich (inspect's table) alike."""
    proc = subprocess.Popen([CNNSPEC, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the command's first line: it must start Python first
    error = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, error
    assert error == ""


@pytest.mark.parametrize("command", [["schema"], ["inspect", "zoo:efficientnet_v2_l", "-f", "json"]])
def test_a_reader_that_stops_in_the_middle_of_a_large_output_ends_the_command_quietly(command):
    """`cnnspec schema | head -1` (750 KB in one write): the write into the pipe came back
    partly done, Python took it as done, and the command ended 0 with its output cut off."""
    proc = subprocess.Popen([CNNSPEC, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10)  # the output began
    proc.stdout.close()
    error = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, error
    assert error == ""


CLOSED_STDOUT = "error: standard output is closed"


def _closed(command: list[str], redirect: str = ">&-") -> subprocess.CompletedProcess[str]:
    """``cnnspec COMMAND >&-`` as a shell runs it: the command starts with fd 1 closed (Python
    then sets ``sys.stdout`` to ``None``), not pointed at the null device."""
    script = f'exec "$@" {redirect}'
    return subprocess.run(
        ["sh", "-c", script, "sh", CNNSPEC, *command],
        stdin=subprocess.DEVNULL,  # (lsp would wait on the test's stdin)
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.parametrize(
    "command",
    [
        ["validate", BASIC],
        ["validate", "-f", "json", BASIC],
        ["validate", "nope.yaml"],
        ["zoo"],
        ["inspect", "-f", "json", BASIC],
        ["codegen", BASIC],
        ["runs", "."],
        ["lsp"],
        ["--version"],
        ["--help"],
        ["inspect", "--help"],
    ],
    ids=[
        "validate", "validate-json", "validate-missing", "zoo", "inspect-json", "codegen", "runs", "lsp",
        "version", "help", "command-help",
    ],
)  # fmt: skip
def test_a_closed_stdout_is_a_usage_error(command):
    """`cnnspec validate x.yaml >&-` was an internal error (exit 3: 'NoneType' object has no
    attribute 'isatty'); zoo, inspect, codegen and runs exited 0 having written nothing. Every
    command now stops before doing anything: exit 2, one error line and a hint on stderr."""
    out = _closed(command)
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [
        CLOSED_STDOUT,
        "  hint: redirect it to a file or to /dev/null instead of closing it (>&-)",
    ]


def test_a_closed_stdout_and_stderr_end_the_command_with_2_silently():
    out = _closed(["validate", BASIC], ">&- 2>&-")
    assert out.returncode == 2 and out.stderr == ""


def test_schema_command(runner, tmp_path):
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0 and json.loads(result.stdout)["title"] == "cnnspec model specification"
    assert runner.invoke(app, ["schema", "--check"]).exit_code == 0
    target = tmp_path / "out.json"
    assert runner.invoke(app, ["schema", "-o", str(target)]).exit_code == 0
    assert json.loads(target.read_text()) == json.loads(result.stdout)
    kinds = runner.invoke(app, ["schema", "--kinds"])
    assert "conv2d" in kinds.stdout and "Conv2D" in kinds.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kinds", "-o", "k.json"], "--kinds cannot be combined with -o"),
        (["--kinds", "--check"], "--kinds cannot be combined with --check"),
        (["--kinds", "--library"], "--kinds cannot be combined with --library"),
        (["--check", "-o", "c.json"], "--check cannot be combined with -o"),
        (["-o", "."], "expected -o to name a file that can be written; . is a folder"),
    ],
)
def test_schema_refuses_options_it_would_ignore(runner, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["schema", *args])
    assert result.exit_code == 2 and message in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_error_in_the_name_does_not_hide_the_models(runner, write_spec):
    spec = write_spec(
        'cnnspec: 1\nname: "bad name"\ninput: {shape: [8, 8, 1]}\n'
        "model:\n  - conv2d: {filters: -1, kernel_size: 3}\n  - dense: {units: 0}\n"
    )
    result = runner.invoke(app, ["validate", "-f", "json", str(spec)])
    assert result.exit_code == 1
    assert [d["path"] for d in json.loads(result.stdout)] == [
        "name",
        "model[0].conv2d.filters",
        "model[1].dense.units",
    ]


@pytest.mark.slow
def test_build_summary_says_its_trainable_counts_are_not_those_training_starts_with(runner, tmp_path):
    """`training.freeze: [body]`: inspect counts body frozen (as training starts), the built
    model has it trainable (its item's own flag): the two tables' totals differed unsaid."""
    spec = tmp_path / "fz.yaml"
    text = (
        "cnnspec: 1\nname: fz\ninput: {shape: [8, 8, 1]}\nmodel:\n  - conv2d: {filters: 8, kernel_size: 3}\n"
        "    id: body\n  - flatten\n  - dense: {units: 5, activation: softmax}\nTRAINING"
    )
    for training, noted in (("training: {freeze: [body]}\n", True), ("", False)):
        spec.write_text(text.replace("TRAINING", training))
        result = runner.invoke(
            app, ["build", str(spec), "-o", str(tmp_path / "fz.keras"), "--summary", "--force"]
        )
        assert result.exit_code == 0, result.output
        assert ("training.freeze, unfreeze and phases freeze layers when training" in result.stderr) is noted


@pytest.mark.slow
def test_build_saves_a_model_that_loads_without_cnnspec(runner, tmp_path):
    target = tmp_path / "out" / "resnet.keras"
    result = runner.invoke(
        app, ["build", RESNET, "-o", str(target), "--summary", "--plot", str(tmp_path / "g.png")]
    )
    assert result.exit_code == 0, result.output
    assert "687,242" in result.stdout
    assert (tmp_path / "g.dot").read_text().startswith('digraph "resnet"')
    assert "flowchart TD" in (tmp_path / "g.mmd").read_text()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temp files left
    code = (
        "import sys, keras\n"
        f"m = keras.saving.load_model({str(target)!r}, safe_mode=True)\n"
        "assert 'cnnspec' not in sys.modules\n"
        "print(m.count_params())\n"
    )
    (tmp_path / "load.py").write_text(code, encoding="utf-8")
    out = run_script(tmp_path / "load.py")  # a Python of its own, without cnnspec
    assert out.stdout.strip().endswith("687242")


@pytest.mark.slow
def test_build_refuses_wrong_suffix_and_keeps_old_file_on_failure(runner, tmp_path, monkeypatch):
    assert runner.invoke(app, ["build", BASIC, "-o", str(tmp_path / "m.h5")]).exit_code == 2
    target = tmp_path / "m.keras"
    target.write_bytes(b"previous")
    import keras

    def failing_save(self, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", failing_save)
    result = runner.invoke(app, ["build", BASIC, "-o", str(target), "--force"])  # (not build's file)
    assert result.exit_code == 3
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_validate_runs_the_training_checks_without_tensorflow(runner, write_spec):
    spec = write_spec(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
        "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
        "training:\n  callbacks: [{early_stopping: {monitor: val_acc}}]\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    assert "spec.yaml:6:42: error: training.callbacks[0].early_stopping.monitor" in result.stderr
    assert "did you mean `val_accuracy`?" in result.stderr


RESNET_LIKE = """\
cnnspec: 1
name: resnet_like
input: {shape: [16, 16, 3]}
blocks:
  bottleneck:
    params: {filters: int}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: 1}
      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same, dilation: 2}
      - conv2d: {filters: "${filters * 4}", kernel_size: 1}
model:
  - conv2d: {filters: 8, kernel_size: 3, padding: same}
  - batch_norm
  - activation: relu
  - max_pool2d
  - bottleneck: {filters: 4}
"""


def test_block_call_notes_in_every_format(runner, write_spec):
    spec = write_spec(RESNET_LIKE, "resnet.yaml")
    note = f"in block 'bottleneck' called from model[4] ({spec}:16:5)"

    text = runner.invoke(app, ["validate", str(spec)])
    assert text.exit_code == 1 and "Traceback" not in text.output
    lines = text.stderr.splitlines()
    assert (
        lines[0] == f"{spec}:9:72: error: blocks.bottleneck.layers[1].conv2d.dilation: "
        "unknown parameter 'dilation' for `conv2d`"
    )
    assert f"  note: {note}" in lines

    result = runner.invoke(app, ["validate", "--format", "json", str(spec)])
    assert result.exit_code == 1
    (item,) = json.loads(result.stdout)
    assert item["notes"] == [note]
    assert item["trace"] == [
        {"file": str(spec), "line": 16, "column": 5, "path": "model[4]", "message": note}
    ]

    result = runner.invoke(app, ["validate", "--format", "github", str(spec)])
    assert result.exit_code == 1
    (line,) = result.stdout.strip().splitlines()
    assert line.startswith("::error file=") and ",line=9,col=72::" in line
    assert line.endswith("%0Anote: " + note)


def test_include_notes_in_every_format(runner, write_spec):
    base = write_spec(
        RESNET_LIKE.replace("dilation: 2", "dilation_rate: 2").replace(
            "kernel_size: 1}\n", "kernel_size: 0}\n", 1
        ),
        "base.yaml",
    )
    child = write_spec("cnnspec: 1\nextends: base.yaml\nname: child\n", "child.yaml")
    note = f"included from {child}:2:10"
    text = runner.invoke(app, ["validate", str(child)])
    assert text.exit_code == 1
    assert text.stderr.startswith(f"{base}:8:54: error: blocks.bottleneck.layers[0].conv2d.kernel_size:")
    assert f"  note: {note}\n" in text.stderr
    (item,) = json.loads(runner.invoke(app, ["validate", "-f", "json", str(child)]).stdout)
    assert item["trace"][0] == {
        "file": str(child),
        "line": 2,
        "column": 10,
        "path": "extends",
        "message": note,
    }
    github = runner.invoke(app, ["validate", "-f", "github", str(child)]).stdout
    assert f"%0Anote: {note}%0Anote: in block 'bottleneck' called from model[4]" in github


def test_set_of_an_undeclared_var_fails_on_the_command_line(runner):
    result = runner.invoke(app, ["validate", BASIC, "--set", "vars.clases=10"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(
        "<--set 1>:1:6: error: vars.clases: unknown var 'clases': --set can only change a var the spec "
        "declares (in a --set option on the command line)"
    )
    assert " 1 | vars.clases=10" in result.stderr and "hint: did you mean `classes`?" in result.stderr
    result = runner.invoke(app, ["validate", BASIC, "--set", "trainig.epochs=3", "-f", "json"])
    assert result.exit_code == 1
    (item,) = json.loads(result.stdout)
    assert (item["file"], item["column"], item["hint"]) == ("<--set 1>", 1, "did you mean `training`?")


def test_set_of_the_whole_var_table_is_checked_and_merged_as_each_var_set(runner, write_spec):
    """``--set 'vars={…}'`` refuses a var the spec does not declare as ``--set vars.NAME=…``
    does (it was a warning that the var is never read), and keeps the declared vars it leaves
    out (``classes`` was dropped: "undefined name 'classes'")."""
    spec = write_spec(
        "cnnspec: 1\nname: net\ninput: {shape: [8, 8, 1]}\nvars: {width: 8, classes: 3}\nmodel:\n"
        '  - conv2d: {filters: "${width}", kernel_size: 3}\n  - flatten\n'
        '  - dense: {units: "${classes}", activation: softmax}\n'
    )
    result = runner.invoke(app, ["validate", str(spec), "--set", "vars={width: 4, classes: 3, widht: 9}"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr == (
        "<--set 1>:1:29: error: vars.widht: unknown var 'widht': --set can only change a var the spec "
        "declares (in a --set option on the command line)\n"
        " 1 | vars={width: 4, classes: 3, widht: 9}\n"
        "                                 ^\n"
        "  hint: did you mean `width`?\n"
    )
    whole = runner.invoke(app, ["validate", str(spec), "--set", "vars={width: 4}"])
    one = runner.invoke(app, ["validate", str(spec), "--set", "vars.width=4"])
    assert whole.exit_code == one.exit_code == 0
    assert whole.stdout == one.stdout == f"ok {spec}: net — 3 layers, 475 parameters\n"


SMALL = (
    "cnnspec: 1\nname: net\ninput: {shape: [8, 8, 1]}\nmodel:\n  - conv2d: {filters: 4, kernel_size: 3}\n"
    "  - flatten\n  - dense: {units: 3, activation: softmax}\ntraining: {epochs: 1}\n"
)


def test_an_error_inside_a_set_mapping_is_located_at_its_key_or_value(runner, write_spec):
    """An error inside a ``{…}`` given to --set points at the value or key it is about, in the
    option's text, not at the ``{`` (it was column 17 for both of these)."""
    spec = write_spec(SMALL)
    result = runner.invoke(
        app, ["validate", str(spec), "--set", "model[0].conv2d={filters: 8, kernel_size: 0}"]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr == (
        "<--set 1>:1:43: error: model[0].conv2d.kernel_size: expected a positive integer or a list of 2; "
        "received integer 0 (in a --set option on the command line)\n"
        " 1 | model[0].conv2d={filters: 8, kernel_size: 0}\n"
        "                                               ^\n"
    )
    # an unknown key is located at the key, under a layer item given whole
    result = runner.invoke(
        app, ["validate", str(spec), "--set", "model[0]={conv2d: {filters: 8, kernel_sise: 3}}"]
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "<--set 1>:1:32: error: model[0].conv2d.kernel_sise: unknown parameter 'kernel_sise' for `conv2d` "
        "(in a --set option on the command line)\n"
        " 1 | model[0]={conv2d: {filters: 8, kernel_sise: 3}}\n"
        "                                    ^\n"
        "  hint: did you mean `kernel_size`?\n"
    )


@pytest.mark.parametrize(
    ("option", "first_line"),
    [
        (
            "training.metrics=[accuracy, acuracy]",
            "<--set 1>:1:29: error: training.metrics[1]: expected one of accuracy, top_k_accuracy, "
            "precision, recall, auc, f1, mae, mse, rmse, r2, mean_iou; received string 'acuracy'",
        ),
        (  # the second item's, not the first's
            "training.callbacks=[{early_stopping: {patience: 1}}, {early_stopping: {patience: -1}}]",
            "<--set 1>:1:82: error: training.callbacks[1].early_stopping.patience: expected an integer ≥ 0; "
            "received integer -1",
        ),
    ],
    ids=["list-item", "item-in-list-item"],
)
def test_an_error_inside_a_set_list_is_located_at_its_item(runner, write_spec, option, first_line):
    result = runner.invoke(app, ["validate", str(write_spec(SMALL)), "--set", option])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{first_line} (in a --set option on the command line)\n 1 | {option}\n")


def test_an_error_deep_inside_a_set_value_is_located_there_on_its_line(runner, write_spec):
    """A value two mappings down is located at itself in inspect's JSON too, and a value written
    over several lines on the line that holds it (the option's line 2, not line 1's ``{``)."""
    spec = str(write_spec(SMALL))
    option = "training={optimizer: {adam: {learning_rate: -1}}}"
    result = runner.invoke(app, ["inspect", "-f", "json", spec, "--set", option])
    assert result.exit_code == 1
    (item,) = json.loads(result.stdout)
    assert (item["file"], item["line"], item["column"], item["path"]) == (
        "<--set 1>",
        1,
        45,
        "training.optimizer.adam.learning_rate",
    )
    result = runner.invoke(app, ["validate", spec, "--set", "training={epochs: 2,\n  batch_size: 0}"])
    assert result.exit_code == 1
    assert result.stderr.startswith("<--set 1>:2:15: error: training.batch_size: ")
    assert " 2 |   batch_size: 0}\n                   ^\n" in result.stderr


@pytest.mark.parametrize(
    ("option", "report"),
    [
        (  # over two lines: at the end of line 2, the hint naming the `{` in the option's columns
            "data={source: digits,\n  limit: 1",
            "<--set 2>:2:11: error: invalid YAML: expected ',' or '}', but got '<stream end>'{on}\n"
            " 2 |   limit: 1\n"
            "               ^\n"
            "  hint: the `{` opened at 1:6 is never closed; close it with `}`\n",
        ),
        (
            "data={source: digits, source: mnist}",
            "<--set 2>:1:23: error: data.source: duplicate key 'source' (first defined on line 1){on}\n"
            " 1 | data={source: digits, source: mnist}\n"
            "                           ^\n"
            "  hint: each key may appear once in a mapping; remove one of them\n",
        ),
        (
            "data={source: digits, shuffle: yes}",
            "<--set 2>:1:32: error: data.shuffle: expected true, false or a quoted string; received 'yes', "
            "which YAML 1.1 reads as a boolean{on}\n"
            " 1 | data={source: digits, shuffle: yes}\n"
            "                                    ^\n"
            '  hint: write true/false, or quote it ("yes") if you mean the string\n',
        ),
        (
            "training=\n\tepochs: 2",
            "<--set 2>:2:1: error: invalid YAML: found character '\\t' that cannot start any token{on}\n"
            " 2 |  epochs: 2\n"
            "     ^\n"
            "  hint: YAML does not allow tabs for indentation; use spaces\n",
        ),
        (
            'name="\\q"',
            "<--set 2>:1:8: error: invalid YAML: found unknown escape character 'q'{on}\n"
            ' 1 | name="\\q"\n'
            "            ^\n"
            "  hint: check indentation and quoting\n",
        ),
        (  # the hint quotes the option's own key, not the one the value is parsed under
            "data.source=a: b",
            "<--set 2>:1:14: error: invalid YAML: mapping values are not allowed here{on}\n"
            " 1 | data.source=a: b\n"
            "                  ^\n"
            '  hint: write `source: {a: b}` to nest a mapping, or quote the text: `source: "a: b"`\n',
        ),
        (  # an id's key too (the value was parsed under `value:`, and the hint quoted that)
            "model[0].id=a: b",
            "<--set 2>:1:14: error: invalid YAML: mapping values are not allowed here{on}\n"
            " 1 | model[0].id=a: b\n"
            "                  ^\n"
            '  hint: write `id: {a: b}` to nest a mapping, or quote the text: `id: "a: b"`\n',
        ),
    ],
    ids=["unclosed-over-lines", "duplicate-key", "yaml11-boolean", "tab", "bad-escape", "colon", "id-colon"],
)
def test_a_set_value_that_is_not_yaml_is_a_usage_error_located_in_its_option(
    runner, write_spec, option, report
):
    """A --set value YAML cannot read is still a usage error (exit 2), now located in the option
    that holds it (the second here) with the loader's message and hint for the same mistake in
    a file; it was `error: cannot parse the value of --set '…': …`, with no place and no hint."""
    spec = str(write_spec(SMALL))
    result = runner.invoke(app, ["validate", spec, "--set", "training.epochs=2", "--set", option])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr == report.replace("{on}", " (in a --set option on the command line)")


def test_a_set_value_that_is_not_yaml_is_located_in_json_too(runner, write_spec):
    result = runner.invoke(app, ["inspect", "-f", "json", str(write_spec(SMALL)), "--set", "data={limit: 1"])
    assert result.exit_code == 2
    (item,) = json.loads(result.stdout)
    assert (item["file"], item["line"], item["column"], item["code"], item["hint"]) == (
        "<--set 1>",
        1,
        15,
        "yaml",
        "the `{` opened at 1:6 is never closed; close it with `}`",
    )


@pytest.mark.parametrize(
    ("path", "column", "hint"),
    [
        (
            "training.learning_rate_scale.conv*",
            30,
            "a key that is no name ('conv*') is set with its mapping given whole: "
            "--set 'training.learning_rate_scale={\"conv*\": …}'",
        ),
        (
            "model[x].dense.units",
            6,
            "an index is a whole number in brackets: [0] for the first item, [-1] for the last",
        ),
        ("training..epochs", 10, "separate the names of a path with one dot: training.epochs"),
        ("training.epochs ", 16, "write the option without spaces around the path: --set PATH=VALUE"),
        ("[0]", 1, "a path starts with the name of a section: training, model, vars, …"),
        (
            "training.",
            10,
            "name a setting: names separated by dots, items by their index: model[0].conv2d.filters",
        ),
    ],
    ids=["key-no-name", "index-no-number", "two-dots", "space", "no-section", "dot-last"],
)
def test_a_set_path_that_is_none_is_located_in_its_option_with_a_hint(runner, write_spec, path, column, hint):
    """It was `error: expected a spec path like training.epochs; received '…'`, with no place and
    no word of what was wrong, nor of how to set a key such as a name pattern (`conv*`)."""
    result = runner.invoke(app, ["validate", str(write_spec(SMALL)), "--set", "name=a", "--set", f"{path}=1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"<--set 2>:1:{column}: error: expected a spec path like training.epochs; received {path!r} "
        "(in a --set option on the command line)"
    )
    assert lines[1:] == [f" 1 | {path}=1", " " * (4 + column) + "^", f"  hint: {hint}"]


ID_HINT = 'quote it ("{0}"): an id is never a boolean, but unquoted YAML 1.1 reads it as one'


@pytest.mark.parametrize(
    ("option", "column", "path", "word"),
    [
        ("model[0].id=yes", 13, "model[0].id", "yes"),
        ("model[0]={conv2d: 3, id: on}", 26, "model[0].id", "on"),
        ("model[1].inputs=[x, n]", 21, "model[1].inputs[1]", "n"),
        ("model[1].inputs[0]=off", 20, "model[1].inputs[0]", "off"),
    ],
    ids=["id", "id-in-item", "inputs-list", "inputs-item"],
)
def test_a_yaml11_boolean_where_a_set_puts_an_id_gets_the_id_hint_a_file_gets(
    runner, write_spec, option, column, path, word
):
    """`--set model[0].id=yes` was told to write true/false (the value was typed as `value:`
    alone); an id is never a boolean, as the same word in the file is told (exit 2 still: a
    value YAML 1.1 misreads is a usage error when it is an option's)."""
    spec = str(write_spec(SMALL.replace("  - flatten", "  - flatten:\n    inputs: [x]")))
    result = runner.invoke(app, ["validate", spec, "--set", option])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.splitlines()[0] == (
        f"<--set 1>:1:{column}: error: {path}: expected an identifier; received a bare {word!r}, "
        "which YAML 1.1 reads as a boolean (in a --set option on the command line)"
    )
    assert result.stderr.splitlines()[-1] == "  hint: " + ID_HINT.format(word)


def test_a_yaml11_boolean_id_is_told_alike_in_a_file_and_a_set_in_json_and_github(runner, write_spec):
    in_file = write_spec(SMALL.replace("  - flatten", "  - flatten:\n    id: yes"), "file.yaml")
    spec = str(write_spec(SMALL))
    items = {}
    for name, args in (("file", [str(in_file)]), ("set", [spec, "--set", "model[1].id=yes"])):
        result = runner.invoke(app, ["validate", "-f", "json", *args])
        (items[name],) = json.loads(result.stdout)
    assert {k: items["file"][k] for k in ("line", "column")} == {"line": 7, "column": 9}
    assert {k: items["set"][k] for k in ("file", "line", "column")} == {
        "file": "<--set 1>",
        "line": 1,
        "column": 13,
    }
    for key in ("path", "code", "hint"):
        assert items["file"][key] == items["set"][key], key
    assert items["set"]["hint"] == ID_HINT.format("yes")
    assert items["set"]["message"] == (items["file"]["message"] + " (in a --set option on the command line)")
    result = runner.invoke(app, ["validate", "-f", "github", spec, "--set", "model[1].id=yes"])
    assert result.exit_code == 2
    assert result.stdout.strip() == (
        "::error file=<--set 1>,line=1,col=13::model[1].id: expected an identifier; received a bare "
        "'yes', which YAML 1.1 reads as a boolean (in a --set option on the command line) (hint: "
        + ID_HINT.format("yes")
        + ")"
    )


def test_a_set_of_a_var_named_like_an_id_key_is_no_id(runner, write_spec):
    """The id hint follows where the value goes, not its last key: a var named `id` may be a
    boolean, and a value YAML 1.1 misreads there is told to write true/false."""
    spec = str(write_spec(SMALL.replace("model:", "vars: {id: true}\nmodel:")))
    result = runner.invoke(app, ["validate", spec, "--set", "vars.id=no"])
    assert result.exit_code == 2
    assert (
        result.stderr.splitlines()[-1]
        == '  hint: write true/false, or quote it ("no") if you mean the string'
    )


def test_inspect_json_keeps_stdout_for_the_summary_and_warnings_on_stderr(runner, write_spec):
    spec = write_spec(
        "cnnspec: 1\nname: t\ninput: {shape: [4]}\nblocks:\n  b: {layers: [flatten]}\nmodel: [flatten]\n"
    )
    result = runner.invoke(app, ["inspect", str(spec), "--format", "json"])
    assert result.exit_code == 0
    json.loads(result.stdout)
    assert "warning:" in result.stderr and "never used" in result.stderr


def test_codegen_output_names_are_shown_safely_and_a_too_long_one_is_a_clean_error(runner, tmp_path):
    odd = tmp_path / "esc\x1b[31m.py"
    result = runner.invoke(app, ["codegen", BASIC, "-o", str(odd)])
    assert result.exit_code == 0 and "\x1b[31m" not in result.output and "esc\\x1b[31m.py" in result.stdout
    long = tmp_path / ("a" * 400 + ".py")
    result = runner.invoke(app, ["codegen", BASIC, "-o", str(long)])
    assert result.exit_code == 2 and "expected -o to name a file of at most" in result.stderr
    assert "internal error" not in result.output


@pytest.mark.parametrize(
    ("command", "example"),
    [
        (["codegen", str(ROOT / "specs" / "digits_cnn.yaml")], "model.py"),
        (["import", str(FIXTURES / "import" / "tiny_ops.json")], "model.yaml"),
        (["schema"], "cnnspec.schema.json"),
    ],
    ids=["codegen", "import", "schema"],
)
def test_a_new_folder_given_to_o_with_a_trailing_slash_is_refused(
    runner, tmp_path, monkeypatch, command, example
):
    """`-o new/` wrote a file named new (Typer's Path drops the slash): it names a folder."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*command, "-o", "new/"])
    assert result.exit_code == 2, result.output
    assert f"new/ names a folder; expected a file path such as new/{example}" in result.output
    assert list(tmp_path.iterdir()) == []
    result = runner.invoke(app, [*command, "-o", f"new/{example}"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / example).is_file()


@pytest.mark.parametrize(
    ("command", "printed"),
    [
        (["codegen", str(ROOT / "specs" / "digits_cnn.yaml")], "def build_model():"),
        (["schema"], '"$schema"'),
    ],
    ids=["codegen", "schema"],
)
def test_o_dash_prints_where_the_command_prints_without_o(runner, tmp_path, monkeypatch, command, printed):
    """`-o -` wrote a file named '-'; it is standard output, as without -o."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*command, "-o", "-"])
    assert result.exit_code == 0, result.output
    assert printed in result.stdout and list(tmp_path.iterdir()) == []


def test_a_home_folder_tilde_in_a_path_argument_or_option_is_expanded(runner, tmp_path, monkeypatch):
    """`--out=~/x` (one word: the shell leaves its `~` alone) made a folder named `~` in the
    working folder, where `--weights ~/x` and `--data ~/x` read the home folder's. Every path
    taken on the command line expands it, a spec argument too."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    (home / "tiny.yaml").write_text((SPECS_DIR / "digits_cnn.yaml").read_text())
    for args, written in (
        (["codegen", "~/tiny.yaml", "--output=~/model.py"], home / "model.py"),
        (["schema", "-o", "~/s.json"], home / "s.json"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert written.is_file()
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "option", "example"),
    [
        (["import", str(FIXTURES / "import" / "tiny_ops.json")], "-o", "model.yaml"),
        (["build", str(ROOT / "specs" / "digits_cnn.yaml")], "-o", "model.keras"),
        (["build", str(ROOT / "specs" / "digits_cnn.yaml")], "--plot", "model.png"),
        (["report", "RUN"], "--out", "report.html"),
        (["runs", "compare", "a", "b"], "--png", "compare.png"),
    ],
    ids=["import", "build", "build-plot", "report", "runs-compare"],
)
def test_a_command_that_writes_files_only_refuses_o_dash_in_one_wording(
    runner, tmp_path, monkeypatch, command, option, example
):
    """`-o -` where a command writes files only was refused in three wordings ("is not supported
    here", "expected an output path ending in .keras; received -", "expected --out to end in
    .html"): in the words of the options Typer parses (train, evaluate, export …), with a file
    name to give instead."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*command, option, "-"])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"error: {option} is - (standard output), which this command does not write to; expected a path",
        f"  hint: name a file such as {example}",
    ]
    assert list(tmp_path.iterdir()) == []
