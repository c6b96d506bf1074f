"""What the commands print of the user's text: paths, run folders, weights files and the messages
that carry them are shown as written, never read as Rich markup (cnnspec.cli.render.safe).

A folder named ``[`` holding ``x]out`` gives the path ``[/x]out``: a closing tag that opens
nothing, which Rich refuses with MarkupError (an "internal error", exit 3) once the command's
work is done; ``[bold]`` in a name would silently vanish. Every path here holds both. The fast
tests stand in for the model where one is needed (the printing is what they test); the two
slow ones build and train a real 8×8 model.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from cnnspec.cli.app import app
from tests.conftest import FIXTURES, TINY_DIGITS_MODEL
from tests.test_runs import make_run

#: A closing tag that opens nothing (Rich: MarkupError), and a tag Rich would swallow.
CLOSING = "[/x]"
TAG = "[bold]"

SPEC = "cnnspec: 1\nname: tiny\n" + TINY_DIGITS_MODEL.replace("limit: 128", "limit: 96")
TRAINING = "training: {epochs: 1, batch_size: 32, seed: 1}\n"


def hostile_folder(tmp_path: Path) -> Path:
    """``tmp_path/[/x]out``: the folder ``[`` and, in it, ``x]out``."""
    folder = tmp_path / "[" / "x]out"
    folder.mkdir(parents=True)
    assert CLOSING in str(folder)
    return folder


def invoke(*args: object) -> Result:
    """The CLI with a wide terminal: a long path stays on one line."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})


def squeezed(text: str) -> str:
    """``text`` without its whitespace: Rich's line wrapping undone."""
    return "".join(text.split())


def spec_in(folder: Path, text: str = SPEC) -> Path:
    path = folder / f"a{TAG}b.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the fast commands (no TensorFlow): already safe, kept so ------------------------------------


def _validate(folder: Path) -> tuple[list[object], int, str]:
    spec = spec_in(folder)
    return ["validate", spec], 0, f"ok {spec}: tiny"


def _validate_error(folder: Path) -> tuple[list[object], int, str]:
    spec = spec_in(folder, SPEC.replace("filters: 4", "filters: -4"))
    return ["validate", spec], 1, str(spec)


def _inspect(folder: Path) -> tuple[list[object], int, str]:
    spec = spec_in(folder)
    return ["inspect", spec], 0, f"tiny ({spec})"


def _codegen(folder: Path) -> tuple[list[object], int, str]:
    out = folder / f"m{TAG}.py"
    return ["codegen", spec_in(folder), "-o", out], 0, f"wrote {out}: model module"


def _schema(folder: Path) -> tuple[list[object], int, str]:
    out = folder / f"s{TAG}.json"
    return ["schema", "-o", out], 0, f"wrote {out}"


def _import(folder: Path) -> tuple[list[object], int, str]:
    source = folder / f"r{TAG}.json"
    shutil.copy(FIXTURES / "import" / "tiny_resnet.json", source)
    out = folder / f"i{TAG}.yaml"
    return ["import", source, "-o", out], 0, f"imported {source} → {out}"


def _runs(folder: Path) -> tuple[list[object], int, str]:
    make_run(folder / f"r{TAG}", lr=0.01, accuracy=0.9, created="2026-01-01T10:00:00+0000")
    return ["runs", folder], 0, f"1 run(s) in {folder}"


def _runs_compare(folder: Path) -> tuple[list[object], int, str]:
    a = make_run(folder / f"a{TAG}", lr=0.01, accuracy=0.9, created="2026-01-01T10:00:00+0000")
    b = make_run(folder / "b", lr=0.001, accuracy=0.8, created="2026-01-02T10:00:00+0000")
    png = folder / f"c{TAG}.png"
    return ["runs", "compare", a, b, "--png", png], 0, f"learning curves: {png}"


@pytest.mark.parametrize(
    "case",
    [_validate, _validate_error, _inspect, _codegen, _schema, _import, _runs, _runs_compare],
    ids=lambda case: case.__name__.strip("_"),
)
def test_fast_commands_print_paths_as_written(tmp_path, case):
    args, code, expected = case(hostile_folder(tmp_path))
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert squeezed(expected) in squeezed(result.output)  # (a table's title wraps at its width)


# -- train's lines (Display) and its closing table ---------------------------------------------


def test_display_shows_messages_as_written_and_the_name_bold(tmp_path, capsys):
    from cnnspec.training.progress import Display

    run = tmp_path / "[" / f"x]run{TAG}"
    buffer = io.StringIO()
    display = Display("plain", Console(file=buffer, width=400))
    display.message(f"training tiny: 96 images → {run}")
    display.message(f"loaded 4 of 4 weight tensors from {run}/m.keras")
    display.message("[bold]tiny[/bold]: loading data (digits) ...")
    assert buffer.getvalue().splitlines() == [
        f"training tiny: 96 images → {run}",
        f"loaded 4 of 4 weight tensors from {run}/m.keras",
        "tiny: loading data (digits) ...",  # the spec's name: bold on a terminal, no tags in a log
    ]
    display.warn(f"a damaged snapshot in {run}/state was skipped")
    assert capsys.readouterr().err == f"note: a damaged snapshot in {run}/state was skipped\n"

    terminal = io.StringIO()
    styled = Display("rich", Console(file=terminal, force_terminal=True, color_system="standard"))
    styled.message("[bold]tiny[/bold]: loading data ...")
    assert "\x1b[1mtiny\x1b[0m: loading data ..." in terminal.getvalue()


def _result(run: Path) -> SimpleNamespace:
    metrics = {
        "test_accuracy": 0.5,
        "test_loss": 1.25,
        "epochs_run": 1,
        "epochs_planned": 1,
        "train_seconds": 0.5,
        "images_per_second": 192.0,
    }
    files = {"model": run / "model.keras", "history_png": run / "history.png", "extra_png": run / "x.png"}
    return SimpleNamespace(run_dir=run, metrics=metrics, files=files, worker=None, completed=None)


def test_train_result_table_shows_the_run_folder_as_written(tmp_path):
    from cnnspec.cli.train import print_result
    from cnnspec.training.progress import Display

    run = tmp_path / "[" / f"x]run{TAG}"
    buffer = io.StringIO()
    print_result(Display("plain", Console(file=buffer, width=400)), _result(run), quiet=False)
    text = buffer.getvalue()
    assert f"trained → {run}" in text
    for name in ("model.keras", "history.png", "x.png"):
        assert f"{run}/{name}" in text


def test_train_shows_a_folder_name_that_is_not_utf8_alike_in_its_first_and_last_lines(tmp_path, capsys):
    # The byte 0xE9 alone is no UTF-8 (Python holds it as \udce9): the header line showed the
    # surrogate ("→ runs/t\udce9"), the closing table the byte ("trained → runs/t\xe9").
    from cnnspec.cli.train import print_result
    from cnnspec.training.progress import Display

    run = tmp_path / "t\udce9"
    shown = f"{tmp_path}/t\\xe9"
    buffer = io.StringIO()
    display = Display("plain", Console(file=buffer, width=400))
    display.message(f"training tiny: 96 images → {run}")
    print_result(display, _result(run), quiet=False)
    text = buffer.getvalue()
    assert f"training tiny: 96 images → {shown}\n" in text and f"trained → {shown}" in text
    assert "udce9" not in text
    print_result(display, _result(run), quiet=True)  # (--quiet's one line)
    assert capsys.readouterr().out.endswith(f"→ {shown}\n")


def test_train_cluster_error_shows_addresses_as_written(tmp_path, monkeypatch):
    from cnnspec.training import trainer
    from cnnspec.training.distribute import ClusterError

    def lost(*args, **kwargs):
        raise ClusterError(f"lost worker {CLOSING}host:1", f"restart it with --resume {TAG}run")

    monkeypatch.setattr(trainer, "train", lost)
    result = invoke("train", spec_in(hostile_folder(tmp_path), SPEC + TRAINING), "-q")
    assert result.exit_code == 75, result.output
    assert f"error: lost worker {CLOSING}host:1" in result.output
    assert f"hint: restart it with --resume {TAG}run" in result.output


# -- the real thing: build and train (TensorFlow) ----------------------------------------------


@pytest.mark.slow
def test_build_prints_its_output_and_weights_paths_as_written(tmp_path):
    folder = hostile_folder(tmp_path)
    spec = spec_in(folder)
    first = folder / f"m{TAG}.keras"
    result = invoke("build", spec, "-o", first)
    assert result.exit_code == 0, result.output
    assert f"built tiny: 90 parameters → {first}" in result.output
    second = folder / "n.keras"
    result = invoke("build", spec, "--weights", first, "-o", second)
    assert result.exit_code == 0, result.output
    assert f"loaded 4 of 4 weight tensors from {first}" in result.output
    assert f"built tiny: 90 parameters → {second}" in result.output


@pytest.mark.slow
def test_train_prints_its_run_folder_as_written(tmp_path):
    folder = hostile_folder(tmp_path)
    run = folder / f"run{TAG}"
    result = invoke("train", spec_in(folder, SPEC + TRAINING), "--out", run)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "tiny: loading data (digits) ..." in lines
    assert any(line.startswith("training tiny: ") and line.endswith(f"→ {run}") for line in lines)
    assert f"trained → {run}" in lines
    assert f"{run}/model.keras" in result.output
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 1
