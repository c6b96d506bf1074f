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


def test_a_misspelt_word_with_a_letter_beyond_ascii_is_fixed_as_its_hint_says(tmp_path):
    """`dénse` and `softmäx` had the hints an ASCII typo has, but --fix read only ASCII words
    and changed nothing."""
    spec = tmp_path / "accents.yaml"
    spec.write_text(
        "cnnspec: 1\nname: accents\ninput: {shape: [8, 8, 1]}\nmodel:\n  - flatten\n"
        "  - dénse: {units: 10, activation: softmax}\n  - dense: {units: 10, activation: 'softmäx'}\n",
        encoding="utf-8",
    )
    fixed = run(spec, "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert fixed.stdout.splitlines()[:2] == [
        f"fixed {spec}:6:5: Replace `dénse` with `dense`",
        f"fixed {spec}:7:37: Replace `softmäx` with `softmax`",
    ]
    assert spec.read_text(encoding="utf-8").endswith(
        "  - dense: {units: 10, activation: softmax}\n  - dense: {units: 10, activation: 'softmax'}\n"
    )


def test_diff_reports_the_errors_the_fixes_leave_and_fails_for_them(tmp_path):
    """--diff printed nothing and ended 0 for a spec plain validate refuses, when nothing in it
    was fixable (a CI step `validate --diff` passed broken specs); a missing file too."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(FIXED.replace("filters: 4", "filters: 0").replace("\r\n", "\n"), "utf-8")
    shown = run(bad, "--diff")
    assert shown.exit_code == 1 and shown.stdout == ""  # no fix: no patch
    assert f"{bad}:5:23: error: model[0].conv2d.filters: expected a positive integer" in shown.stderr
    both = tmp_path / "both.yaml"  # a fix, and an error the fix leaves: the patch, then the error
    both.write_text(TYPOS.replace("units: 10", "units: -1"), "utf-8")
    shown = run(both, "--diff")
    assert shown.exit_code == 1 and "+  - conv2d: {filters: 4" in shown.stdout
    assert "model[2].dense.units" in shown.stderr and "conv2dd" not in shown.stderr  # (fixed: not said)
    missing = run(tmp_path / "missing.yaml", "--diff")
    assert missing.exit_code == 1 and f"no such file: {tmp_path / 'missing.yaml'}" in missing.stderr
    for fmt in ("json", "github"):  # (it printed the patch where JSON was asked for)
        refused = run(both, "--diff", "--format", fmt)
        assert refused.exit_code == 2 and refused.stdout == ""
        assert f"expected --diff without --format {fmt}: it prints a unified diff" in refused.stderr


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
    assert isinstance(fixed, Fixed) and len(fixed.made) == MAX_ROUNDS
    # a check a round, and one of the text as left: the fixes it still offers are said
    assert len(rounds) == MAX_ROUNDS + 1 and fixed.unmade == 1
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


LIBRARY = """\
cnnspec: 1
blocks:
  convbn:
    params: {filters: int, k: {type: int, default: 3}}
    layers:
      - conv2D: {fliters: "${filters}", kernel_size: "${k}"}  # the kind, then its parameter
      - conv2d: {filters: "${filters}", kernel_size: "${k}", paddin: same}
      - batch_nrm
      - activation: relu
"""


def test_a_block_library_is_fixed_as_validate_checks_it(tmp_path):
    """A library was compiled as a spec (which it is not): --diff printed nothing, --fix wrote
    nothing and failed, though validate's hints said "did you mean"."""
    lib = tmp_path / "lib.yaml"
    lib.write_text(LIBRARY, "utf-8")
    shown = run(lib, "--diff")
    assert shown.exit_code == 1 and lib.read_text("utf-8") == LIBRARY
    assert shown.stdout == (
        f"--- {lib}\n+++ {lib}\n@@ -3,7 +3,7 @@\n"
        "   convbn:\n"
        "     params: {filters: int, k: {type: int, default: 3}}\n"
        "     layers:\n"
        '-      - conv2D: {fliters: "${filters}", kernel_size: "${k}"}  # the kind, then its parameter\n'
        '-      - conv2d: {filters: "${filters}", kernel_size: "${k}", paddin: same}\n'
        "-      - batch_nrm\n"
        '+      - conv2d: {filters: "${filters}", kernel_size: "${k}"}  # the kind, then its parameter\n'
        '+      - conv2d: {filters: "${filters}", kernel_size: "${k}", padding: same}\n'
        "+      - batch_norm\n"
        "       - activation: relu\n"
    )
    fixed = run(lib, "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert fixed.stdout.splitlines() == [
        f"fixed {lib}:6:9: Replace `conv2D` with `conv2d`",
        f"fixed {lib}:7:62: Replace `paddin` with `padding`",
        f"fixed {lib}:8:9: Replace `batch_nrm` with `batch_norm`",
        f"fixed {lib}:6:18: Replace `fliters` with `filters`",  # (found once the kind was right)
        f"ok {lib}: block library — 1 block",
    ]
    assert lib.read_text("utf-8") == (
        LIBRARY.replace("conv2D: {fliters", "conv2d: {filters")
        .replace("paddin:", "padding:")
        .replace("batch_nrm", "batch_norm")
    )


FAMILY = """\
cnnspec: 1
family: fam
input: {shape: [16, 16, 1]}
vars: {width: 8, depth: 1}
variants:
  small: {vars: {width: 4}}
  huge: {vars: {widht: 16}}
  deep: {vars: {dpeth: 2}}
model:
  - conv2d: {filters: "${width}", kernel_size: 3, padding: same}
    id: stem
  - conv2d: {filters: "${width}", kernel_size: 3, padding: same}
    id: body
  - add: {}
    inputs: [stme, body]  # read where depth > 1 only: in deep, once its depth is spelt right
    when: "${depth > 1}"
  - flaten
  - dense: 2
"""


def test_a_family_is_fixed_in_every_variant(tmp_path):
    """Only the first (default) variant was compiled: a var misspelt in another variant's
    `vars:` was reported with "did you mean" but never fixed, nor what that variant reads once
    it is; a mistake every variant has is fixed once."""
    fam = tmp_path / "fam.yaml"
    fam.write_text(FAMILY, "utf-8")
    shown = run(fam, "--diff")
    assert shown.exit_code == 1 and fam.read_text("utf-8") == FAMILY
    fixed_text = (
        FAMILY.replace("widht", "width")
        .replace("dpeth", "depth")
        .replace("stme", "stem")
        .replace("flaten", "flatten")
    )
    assert shown.stdout.startswith(f"--- {fam}\n+++ {fam}\n@@ -4,15 +4,15 @@\n")
    assert [line for line in shown.stdout.splitlines()[3:] if line[0] in "+-"] == [
        "-  huge: {vars: {widht: 16}}",
        "-  deep: {vars: {dpeth: 2}}",
        "+  huge: {vars: {width: 16}}",
        "+  deep: {vars: {depth: 2}}",
        "-    inputs: [stme, body]  # read where depth > 1 only: in deep, once its depth is spelt right",
        "+    inputs: [stem, body]  # read where depth > 1 only: in deep, once its depth is spelt right",
        "-  - flaten",
        "+  - flatten",
    ]
    fixed = run(fam, "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert fixed.stdout.splitlines() == [
        f"fixed {fam}:7:17: Replace `widht` with `width`",
        f"fixed {fam}:8:17: Replace `dpeth` with `depth`",
        f"fixed {fam}:17:5: Replace `flaten` with `flatten`",  # (each variant had it: fixed once)
        f"fixed {fam}:15:14: Replace `stme` with `stem`",  # (the next round: deep compiled)
        f"ok {fam}#small: small — 4 layers, 2,238 parameters",
        f"ok {fam}#huge: huge — 4 layers, 10,674 parameters",
        f"ok {fam}#deep: deep — 5 layers, 4,762 parameters",
    ]
    assert fam.read_text("utf-8") == fixed_text


def test_fixes_left_when_the_rounds_run_out_are_said(tmp_path, monkeypatch):
    """--fix makes MAX_ROUNDS rounds of fixes (10 × 200 diagnostics: 2,000 fixes); a file of
    2,200 typos kept 200 of them, each still hinting its fix, and nothing said that --fix had
    stopped. It now says how many it made, how many are left, and to run it again."""
    import cnnspec.lsp.fixes

    monkeypatch.setattr(cnnspec.lsp.fixes, "MAX_ROUNDS", 1)  # (the kind's fix uncovers the key's)
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "cnnspec: 1\nname: s\ninput: {shape: [8, 8, 1]}\nmodel:\n"
        "  - conv2dd: {filtrs: 4, kernel_size: 3}\n  - flatten\n  - dense: {units: 2}\n"
    )
    result = run(spec, "--fix")
    text = " ".join(result.output.split())
    assert (
        f"note: {spec}: 1 fixes made in 1 rounds of checks, where it stops; 1 more are offered: run it again"
        in text
    )
    assert "conv2d: {filtrs: 4" in spec.read_text()
    monkeypatch.setattr(cnnspec.lsp.fixes, "MAX_ROUNDS", 10)
    result = run(spec, "--fix")
    assert "more are offered" not in result.output and "conv2d: {filters: 4" in spec.read_text()
