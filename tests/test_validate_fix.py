"""`cnnspec validate --fix` and `--diff` (cnnspec/cli/fixing.py): the language server's quick
fixes made in the named files, token by token, atomically, round after round."""

from __future__ import annotations

import stat

from typer.testing import CliRunner

from cnnspec.cli.app import app
from cnnspec.cli.fixing import Fixed, fix_file
from cnnspec.errors import Diagnostic, Loc
from cnnspec.lsp.fixes import MAX_ROUNDS, Fix, apply_fixes, fixes_of

TYPOS = (
    "cnnspec: 1\r\n"
    "name: typos   # a comment that stays\r\n"
    "input: {shape: [8, 8, 1]}\r\n"
    "model:\r\n"
    "  - conv2dd: {filters: 4, kernel_size: 3, activaton: relu}\r\n"
    "  - flatten\r\n"
    "  - dense: {units: 10, activation: 'softmaxx'}  # quoted\r\n"
    "  - dropout 0.3\r\n"
)
FIXED = (
    "cnnspec: 1\r\n"
    "name: typos   # a comment that stays\r\n"
    "input: {shape: [8, 8, 1]}\r\n"
    "model:\r\n"
    "  - conv2d: {filters: 4, kernel_size: 3, activation: relu}\r\n"
    "  - flatten\r\n"
    "  - dense: {units: 10, activation: 'softmax'}  # quoted\r\n"
    "  - dropout: 0.3\r\n"
)


def run(*args: object):
    return CliRunner().invoke(app, ["validate", *map(str, args)], env={"COLUMNS": "200"})


def test_diff_shows_the_fixes_and_fix_makes_them_keeping_comments_line_breaks_and_permissions(tmp_path):
    spec = tmp_path / "typos.yaml"
    spec.write_bytes(TYPOS.encode())
    spec.chmod(0o640)
    shown = run(spec, "--diff")
    assert shown.exit_code == 1, shown.output
    assert (
        shown.stdout.startswith(f"--- {spec}\n+++ {spec}\n") and "-  - conv2dd: {filters: 4" in shown.stdout
    )
    assert (
        b"+  - dropout: 0.3\r\n" in shown.stdout_bytes and spec.read_bytes() == TYPOS.encode()
    )  # nothing written
    fixed = run(spec, "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert spec.read_bytes() == FIXED.encode()
    assert stat.S_IMODE(spec.stat().st_mode) == 0o640
    # the kind first; its parameters are checked (and `activaton` found) only in the next round
    assert fixed.stdout.splitlines() == [
        f"fixed {spec}:5:5: Replace `conv2dd` with `conv2d`",
        f"fixed {spec}:7:37: Replace `softmaxx` with `softmax`",
        f"fixed {spec}:8:5: Write `dropout: 0.3`",
        f"fixed {spec}:5:42: Replace `activaton` with `activation`",
        f"ok {spec}: typos — 4 layers, 1,490 parameters",
    ]
    again = run(spec, "--diff")
    assert again.exit_code == 0 and again.stdout == ""


def test_what_has_no_fix_is_reported_after_the_others_are_made(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(TYPOS.replace("units: 10", "units: -1"), "utf-8")
    result = run(spec, "--fix", "-f", "json")
    assert result.exit_code == 1
    assert "activation: relu" in spec.read_text("utf-8") and "units: -1" in spec.read_text("utf-8")
    assert '"path": "model[2].dense.units"' in result.stdout and "fixed " not in result.stdout
    assert f"fixed {spec}:5:5: Replace `conv2dd` with `conv2d`" in result.stderr  # stdout is the JSON's


def test_a_link_is_fixed_in_its_target_and_an_included_file_only_when_named(tmp_path):
    (tmp_path / "base.yaml").write_text(TYPOS.replace("flatten", "flaten"), "utf-8")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\ntraining: {epochs: 2, batch_sise: 4}\n", "utf-8")
    link = tmp_path / "link.yaml"
    link.symlink_to("child.yaml")
    result = run(link, "--fix")
    assert result.exit_code == 1  # the base's typos are the base's to fix
    assert link.is_symlink() and "batch_size: 4" in child.read_text("utf-8")
    assert "flaten" in (tmp_path / "base.yaml").read_text("utf-8")
    both = run(tmp_path / "base.yaml", link, "--fix")
    assert both.exit_code == 0, both.output
    assert "flatten" in (tmp_path / "base.yaml").read_text("utf-8")


def test_a_hard_linked_file_is_not_replaced_and_its_fixes_are_still_shown(tmp_path):
    """The atomic write puts a new file in its place: the other link would keep the old text.
    The file is left alone (both links the same), said, and --diff still shows the fixes."""
    spec = tmp_path / "typos.yaml"
    spec.write_bytes(TYPOS.encode())
    other = tmp_path / "other.yaml"
    other.hardlink_to(spec)
    result = run(spec, "--fix")
    assert result.exit_code == 1, result.output  # (the typos are still there)
    text = " ".join(result.stderr.split())
    assert f"not fixed: {spec} has 1 other hard link(s)" in text and "--diff" in text
    assert spec.read_bytes() == other.read_bytes() == TYPOS.encode()
    assert spec.stat().st_ino == other.stat().st_ino and "fixed " not in result.stdout
    assert "+  - dropout: 0.3" in run(spec, "--diff").stdout
    other.unlink()  # one link again: fixed as any file
    assert run(spec, "--fix").exit_code == 0 and spec.read_bytes() == FIXED.encode()


def test_refusals_and_files_that_cannot_be_read(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_bytes(TYPOS.encode())
    both = run(spec, "--fix", "--diff")
    assert both.exit_code == 2 and "expected --fix or --diff, not both" in " ".join(both.output.split())
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    missing = run(tmp_path / "missing.yaml", tmp_path / "latin1.yaml", spec, "--fix")
    assert missing.exit_code == 1 and spec.read_bytes() == FIXED.encode()  # the others are still fixed
    assert "missing.yaml" in missing.output and "latin1.yaml" in missing.output


def test_overlapping_fixes_keep_the_first_and_line_breaks_are_kept():
    def meant(column: int, word: str) -> Diagnostic:
        return Diagnostic("bad", Loc("f.yaml", 2, column), hint=f"did you mean `{word}`?")

    text = "a: 1\r\nkind: reluu\rnext\n"
    fixes = fixes_of([meant(7, "relu"), meant(7, "elu"), meant(1, "kinds")], "f.yaml", text)
    assert fixes == [
        Fix("Replace `kind` with `kinds`", 1, 0, 4, "kinds"),
        Fix("Replace `reluu` with `relu`", 1, 6, 11, "relu"),
    ]
    assert apply_fixes(text, fixes) == "a: 1\r\nkinds: relu\rnext\n"


def test_fixes_that_never_settle_stop_after_a_bounded_number_of_rounds(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("a: x\n", "utf-8")
    rounds = []

    def flipping(reader):  # offers to write the other letter, forever
        rounds.append(1)
        word = reader(spec).split()[1]
        other = "y" if word == "x" else "x"
        return [Diagnostic("bad", Loc(str(spec), 1, 4), hint=f"did you mean `{other}`?")]

    fixed = fix_file(spec, flipping)
    assert isinstance(fixed, Fixed) and len(rounds) == MAX_ROUNDS and len(fixed.made) == MAX_ROUNDS
    assert spec.read_text("utf-8") == "a: x\n"  # fix_file writes nothing itself


def test_a_disk_that_refuses_the_write_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    import errno

    import cnnspec.cli.fixing as fixing

    spec = tmp_path / "typos.yaml"
    spec.write_bytes(TYPOS.encode())

    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fixing.os, "fsync", full)
    result = run(spec, "--fix")
    assert result.exit_code == 1 and "No space left on device" in " ".join(result.output.split())
    assert spec.read_bytes() == TYPOS.encode() and sorted(p.name for p in tmp_path.iterdir()) == [
        "typos.yaml"
    ]


def test_a_file_starting_with_a_byte_order_mark_is_fixed_in_place(tmp_path):
    # YAML's columns start after the mark: the fix landed one character early and wrote
    # `model: max_pool2dd: 2, …` (invalid YAML)
    spec = tmp_path / "bom.yaml"
    spec.write_text(
        "\ufeffmodel: [maxpool2d: 2, flatten, dense: 2]\ncnnspec: 1\nname: x\ninput: {shape: [8, 8, 1]}\n"
    )
    result = CliRunner().invoke(app, ["validate", "--fix", str(spec)])
    assert result.exit_code == 0, result.output
    assert spec.read_text().startswith("\ufeffmodel: [max_pool2d: 2, flatten, dense: 2]\n")
