"""The console script in the environments users start it in: an output encoding that is not
UTF-8, a ``COLUMNS`` of no width, a working folder removed under it, stdin closed. Each is a
fresh ``cnnspec`` process (the encoding and the working folder are the process's own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_search import CNNSPEC

BAD = "cnnspec: 1\nname: b\ninput: {shape: [8, 8, 1]}\nmodel:\n  - conv2D: {filters: 8}\n"
GOOD = (
    "cnnspec: 1\nname: good\ninput: {shape: [8, 8, 1]}\nmodel:\n  - flatten\n"
    "  - dense: {units: 10, activation: softmax}\n"
)


def cnnspec(
    *args: str, cwd: Path, env: dict[str, str] | None = None, shell: str = ""
) -> subprocess.CompletedProcess:
    """``cnnspec ARGS`` started cold in ``cwd`` with ``env`` added (``shell``: redirections)."""
    return subprocess.run(
        ["sh", "-c", f'exec "$@" {shell}', "sh", CNNSPEC, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.mark.parametrize("encoding", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "PYTHONUTF8": "0"}])
def test_an_output_encoding_without_unicode_gets_escapes_not_an_internal_error(encoding, tmp_path):
    """Every command ended "internal error (UnicodeEncodeError …)" at the first `—` or `→` of
    its own messages (validate of a spec that is all ASCII), and `--help` with a traceback."""
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    done = cnnspec("validate", "good.yaml", cwd=tmp_path, env=encoding)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok good.yaml: good \\u2014 2 layers, 650 parameters"
    done = cnnspec("inspect", "good.yaml", cwd=tmp_path, env=encoding)
    assert done.returncode == 0 and "dense" in done.stdout, done.stderr
    done = cnnspec("validate", "bad.yaml", cwd=tmp_path, env=encoding)
    assert done.returncode == 1, done.stderr
    assert "bad.yaml:5:5: error: model[0].conv2D: unknown layer kind 'conv2D'" in done.stderr
    done = cnnspec("validate", "--help", cwd=tmp_path, env=encoding)
    assert done.returncode == 0 and "Usage:" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize("columns", ["0", "-3", "wide"])
def test_a_columns_of_no_width_is_ignored_not_a_silent_failure(columns, tmp_path):
    """`COLUMNS=0` (`export COLUMNS=$(tput cols)` without a terminal) made Rich print nothing:
    validate of a bad spec exited 1 with no error at all, and the help was one empty line."""
    (tmp_path / "bad.yaml").write_text(BAD)
    done = cnnspec("validate", "bad.yaml", cwd=tmp_path, env={"COLUMNS": columns, "LINES": columns})
    assert done.returncode == 1
    assert "bad.yaml:5:5: error: model[0].conv2D: unknown layer kind 'conv2D'" in done.stderr
    assert "hint: did you mean `conv2d`?" in done.stderr
    done = cnnspec("validate", "--help", cwd=tmp_path, env={"COLUMNS": columns})
    assert done.returncode == 0 and "Usage:" in done.stdout


def test_a_removed_working_folder_is_said_not_an_internal_error(tmp_path):
    """In a folder removed after the shell entered it, `validate /abs/spec.yaml` was "internal
    error (FileNotFoundError …)" and `validate ../spec.yaml` said the path loops through links."""
    (tmp_path / "good.yaml").write_text(GOOD)
    gone = tmp_path / "gone"
    # the shell enters the folder, which is then removed: the command starts in no folder
    enter = f'mkdir {gone} && cd {gone} && rmdir {gone} && exec "$@"'
    runs = [
        subprocess.run(
            ["sh", "-c", enter, "sh", CNNSPEC, "validate", spec],
            capture_output=True,
            text=True,
            timeout=120,
        )
        for spec in (str(tmp_path / "good.yaml"), "../good.yaml")
    ]
    by_path, relative = runs
    assert by_path.returncode == 2, by_path.stderr
    assert " ".join(by_path.stderr.split()) == (
        "error: the working folder no longer exists (it was removed or renamed after this command's "
        "shell entered it), and this command needs it to find its files "
        "hint: cd to a folder that exists and run the command again"
    )
    assert relative.returncode == 1, relative.stderr
    assert (
        "cannot read '../good.yaml': the working folder no longer exists (removed or renamed after this "
        "command's shell entered it), so no relative path can be followed"
    ) in " ".join(relative.stderr.split())


def test_the_language_server_with_stdin_closed_is_a_usage_error(tmp_path):
    """`cnnspec lsp <&-` was "internal error (AttributeError: 'NoneType' object has no attribute
    'buffer')": it now says what it reads from, exit 2."""
    done = cnnspec("lsp", cwd=ROOT, shell="<&-")
    assert done.returncode == 2, done.stderr
    assert "expected standard input to be open" in done.stderr and "internal error" not in done.stderr


def test_a_file_whose_name_the_locale_cannot_write_is_not_said_to_be_missing(tmp_path):
    """Under `LC_ALL=C PYTHONUTF8=0` (file names in ASCII), `npz: dígitos.npz` beside the spec was
    "does not exist": Python's `Path.exists` answers False for a name it cannot encode."""
    (tmp_path / "dígitos.npz").write_bytes(b"")
    code = (
        "import sys; from pathlib import Path; from cnnspec.training.filelist import not_found; "
        "from cnnspec.paths import unreadable; p = Path(sys.argv[1]) / 'd\\u00edgitos.npz'; "
        "print(ascii(not_found(p, folder=False))); print(ascii(unreadable(p)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    missing, unreadable = done.stdout.splitlines()
    why = (
        "its name has characters that the file-name encoding here (ascii) cannot write; run with a "
        "UTF-8 locale (LANG=C.UTF-8) or Python's UTF-8 mode (PYTHONUTF8=1)"
    )
    assert missing == ascii(f"{tmp_path}/d\u00edgitos.npz cannot be looked for: {why}")
    assert unreadable == ascii(why)  # (was "the name holds a NUL character")
