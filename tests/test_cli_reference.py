"""docs/cli.md is generated from the Typer application (``make docs``) and committed: it must
equal what :func:`cnnspec.cli.reference.cli_markdown` writes now, name every command, argument
and option, and every argument and option must have a help text. No TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.core

from cnnspec.cli.app import COMMANDS
from cnnspec.cli.reference import (
    FILE,
    cli_markdown,
    inline,
    option_names,
    root_command,
    undocumented,
    visible_params,
    walk,
    write_reference,
)
from tests.conftest import ROOT

COMMITTED = ROOT / "docs" / FILE


@pytest.fixture(scope="module")
def generated() -> str:
    return cli_markdown()


def _section(text: str, name: str) -> str:
    """The part of the page under the heading ``## name``, up to the next heading."""
    assert f"\n## {name}\n" in text, f"no heading for command {name!r}"
    return text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]


def test_committed_cli_reference_is_fresh(generated):
    assert COMMITTED.read_text(encoding="utf-8") == generated, "docs/cli.md is stale: run `make docs`"


def test_every_command_has_a_heading_and_a_contents_entry(generated):
    names = [entry.name for entry in walk(root_command())][1:]
    assert names[: len(COMMANDS)] == list(COMMANDS)  # the order `cnnspec --help` lists them in
    contents = generated.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    for name in names:
        _section(generated, name)
        assert f"- [`{name}`](#" in contents, name


def test_every_argument_and_option_appears_in_its_section(generated):
    for entry in list(walk(root_command()))[1:]:
        section = _section(generated, entry.name)
        assert f"`{entry.context.command_path}" in section  # the usage line
        for param in visible_params(entry.command):
            if param.param_type_name == "argument":
                assert f"| `{param.name}" in section, f"{entry.name} {param.name}"
            else:
                for name in [*param.opts, *param.secondary_opts]:
                    assert f"`{name}`" in section, f"{entry.name} {name}"


def test_global_options_are_documented(generated):
    section = _section(generated, "Global options")
    assert "| `--version` | flag |" in section
    assert "`-h`, `--help`" in generated


def test_every_argument_and_option_has_help():
    missing = undocumented(root_command())
    assert not missing, "arguments and options without help=:\n" + "\n".join(missing)


def test_every_output_option_takes_both_out_and_output():
    """`-o` is `--out` in some commands and `--output` in others (for years of scripts): each
    takes both long names, so neither has to be remembered per command."""
    found = {}
    for entry in walk(root_command()):
        for param in visible_params(entry.command):
            if "-o" in getattr(param, "opts", []):
                found[entry.name] = set(param.opts)
    assert {"train", "build", "export", "codegen", "report", "visualize", "schema"} <= set(found)
    assert {name: opts for name, opts in found.items() if opts != {"-o", "--out", "--output"}} == {}


def test_the_help_check_names_the_command_and_option():
    root = root_command()
    zoo = root.commands["zoo"]
    zoo.params.append(typer.core.TyperOption(param_decls=["--bare"]))
    zoo.params.append(typer.core.TyperOption(param_decls=["--secret"], hidden=True))
    assert undocumented(root) == ["zoo --bare"]


def test_a_new_option_changes_the_page(generated):
    # the freshness test then fails until `make docs` runs again
    root = root_command()
    root.commands["train"].params.append(
        typer.core.TyperOption(
            param_decls=["--new-thing"], help="a | b", default=4, type=int, show_default=True
        )
    )
    root.commands["train"].params.append(
        typer.core.TyperOption(param_decls=["--hidden-thing"], help="never shown", hidden=True)
    )
    changed = cli_markdown(root)
    assert changed != generated
    assert "| `--new-thing` | `<int>` | `4` | a \\| b |" in _section(changed, "train")
    assert "--hidden-thing" not in changed


def test_options_show_short_forms_flag_pairs_and_defaults(generated):
    out = "| `-o`, `--out`, `--output` | `<path>` |  | the run folder (default runs/\\<name>-\\<timestamp>) |"
    assert out in _section(generated, "train")
    export = _section(generated, "export")
    assert "| `--verify` / `--no-verify` | flag | `--verify` |" in export
    assert "| `-f`, `--format` | `<savedmodel\\|tflite\\|onnx>` | required |" in export
    # a flag that is off by default and an option whose default is None show no default
    assert "| `--strict` | flag |  |" in _section(generated, "validate")
    assert "| `--epochs` | `<int range> [x>=1]` |  |" in _section(generated, "train")


def test_generated_text_is_plain_markdown():
    root = root_command()
    root.commands["zoo"].params[0].help = "[bold]text[/bold] or json, see `a|b` and <x> *y*"
    section = _section(cli_markdown(root), "zoo")
    assert "| text or json, see `a\\|b` and \\<x> \\*y\\* |" in section
    assert inline("multi_worker and _x_ `a_*b`") == "multi_worker and \\_x\\_ `a_*b`"
    (format_code,) = [p for p in root.commands["codegen"].params if p.name == "format_code"]
    assert option_names(format_code) == "`--format` / `--no-format`"


def test_generating_is_deterministic_and_has_no_local_paths(generated):
    assert cli_markdown() == generated
    assert str(ROOT) not in generated and "\x1b[" not in generated


def test_write_reference_writes_the_page(tmp_path, generated):
    path = write_reference(tmp_path / "docs")
    assert path == tmp_path / "docs" / FILE
    assert path.read_text(encoding="utf-8") == generated


def test_generating_does_not_import_tensorflow():
    probe = (
        "import sys; from cnnspec.cli.reference import cli_markdown; cli_markdown(); "
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_every_path_argument_and_option_refuses_an_empty_one():
    """Typer's ``Path`` reads ``""`` (an unset shell variable) as the working folder:
    ``validate ""`` checked "." and ``train -o ""`` would have written there. Every path goes
    through :data:`cnnspec.cli.common.given_path`, which refuses it."""
    from cnnspec.cli.common import given_output, given_path

    paths = []
    for entry in walk(root_command()):
        for param in entry.command.params:
            assert type(param.type).__name__ != "Path", f"{entry.name} {param.name}: parser=given_path"
            if getattr(param.type, "func", None) in (given_path, given_output):
                paths.append(f"{entry.name} {param.name}")
    assert {"validate files", "train out", "train resume", "evaluate target", "predict model"} <= set(paths)


@pytest.mark.parametrize(
    "words",
    [["validate", ""], ["inspect", ""], ["train", "spec.yaml", "-o", ""], ["export", "", "-f", "onnx"]],
)
def test_an_empty_path_is_a_usage_error(words):
    from typer.testing import CliRunner

    from cnnspec.cli.app import app

    result = CliRunner().invoke(app, words)
    assert result.exit_code == 2, result.output
    assert "is empty; expected a path" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "words",
    [
        ["train", "spec.yaml", "-o", "-"],
        ["evaluate", "run", "-o", "-"],
        ["visualize", "run", "history", "-o", "-"],
        ["export", "run", "-f", "onnx", "-o", "-"],
    ],
)
def test_an_output_of_dash_where_no_standard_output_is_written_is_a_usage_error(words, tmp_path, monkeypatch):
    """`-o -` made a folder named `-` (train, evaluate, visualize) where codegen and schema
    write to standard output and import refuses it."""
    from typer.testing import CliRunner

    from cnnspec.cli.app import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, words)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.replace("│", " ").split())  # (Rich's box around Click's error)
    assert "is - (standard output), which this command does not write to" in text
    assert list(tmp_path.iterdir()) == []
