"""The located YAML loader: locations, YAML 1.2 typing, and every refusal of issue 2."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cnnspec.api import compile_text
from cnnspec.errors import SpecError
from cnnspec.spec.loader import MAX_BYTES, decode_source, load_file, load_text


def first_error(text: str):
    with pytest.raises(SpecError) as caught:
        load_text(text, "t.yaml")
    return caught.value.errors[0]


def test_locations_of_keys_values_and_items():
    doc = load_text("a:\n  b: [1, 2]\n  c:\n    - x: 3\n", "t.yaml")
    assert doc.data == {"a": {"b": [1, 2], "c": [{"x": 3}]}}
    assert (doc.loc(("a", "b", 1)).line, doc.loc(("a", "b", 1)).column) == (2, 10)
    assert (doc.loc(("a", "c", 0, "x")).line, doc.loc(("a", "c", 0, "x")).column) == (4, 10)
    assert (doc.key_loc(("a", "c")).line, doc.key_loc(("a", "c")).column) == (3, 3)
    # a path below a scalar falls back to its nearest located ancestor
    assert doc.loc(("a", "b", 1, "deeper")) == doc.loc(("a", "b", 1))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("v: 12", 12),
        ("v: -3", -3),
        ("v: 0x1F", 31),
        ("v: 0o17", 15),
        ("v: 1.5", 1.5),
        ("v: 1e-3", 0.001),
        ("v: true", True),
        ("v: False", False),
        ("v: null", None),
        ("v: ~", None),
        ("v:", None),
        ("v: '010'", "010"),
        ('v: "yes"', "yes"),
        ("v: relu", "relu"),
        ("v: ${w * 2}", "${w * 2}"),
        ("v: !!str 12", "12"),
    ],
)
def test_yaml_12_core_typing(text, value):
    assert load_text(text).data["v"] == value


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("v: yes", "YAML 1.1 reads as a boolean"),
        ("v: Off", "YAML 1.1 reads as a boolean"),
        ("v: 010", "YAML 1.1 reads as octal"),
        ("v: 1:20", "base 60"),
        ("v: 1_000", "digit separators"),
        ("v: 1e309", "finite number"),
        ("v: .nan", "finite number"),
        ("v: .inf", "finite number"),
    ],
)
def test_yaml_11_surprises_are_located_errors(text, fragment):
    error = first_error(text)
    assert fragment in error.message
    assert (error.loc.line, error.loc.column) == (1, 4)
    assert error.hint


YN = """cnnspec: 1
name: yn
input: {shape: [16, 16, 3]}
vars: {flag: y}
model:
  - conv2d: {filters: 4, kernel_size: 1, use_bias: n}
    id: y
  - repeat:
      times: 2
      as: n
      carry: {x: Y}
      layers:
        - conv2d: {filters: 4, kernel_size: 1}
          id: h
      next: {x: N}
  - add:
    inputs: [y, "yes"]
    id: sum
outputs: no
"""


def test_a_bare_yaml_11_boolean_where_an_id_is_expected_is_told_to_be_quoted(tmp_path):
    from typer.testing import CliRunner

    from cnnspec.cli.app import app

    spec = tmp_path / "yn.yaml"
    spec.write_text(YN)
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    lines = [line.replace(str(spec), "yn.yaml") for line in result.output.splitlines()]
    boolean = ", which YAML 1.1 reads as a boolean"
    ident = "expected an identifier; received a bare"
    assert [line for line in lines if ": error: " in line] == [
        f"yn.yaml:4:14: error: vars.flag: expected true, false or a quoted string; received 'y'{boolean}",
        "yn.yaml:6:52: error: model[0].conv2d.use_bias: expected true, false or a quoted string; "
        f"received 'n'{boolean}",
        f"yn.yaml:7:9: error: model[0].id: {ident} 'y'{boolean}",
        f"yn.yaml:10:11: error: model[1].repeat.as: {ident} 'n'{boolean}",
        f"yn.yaml:11:18: error: model[1].repeat.carry.x: {ident} 'Y'{boolean}",
        f"yn.yaml:15:17: error: model[1].repeat.next.x: {ident} 'N'{boolean}",
        f"yn.yaml:17:14: error: model[2].inputs[0]: {ident} 'y'{boolean}",
        f"yn.yaml:19:10: error: outputs: {ident} 'no'{boolean}",
    ]
    hints = [line for line in lines if line.startswith("  hint: ")]
    assert hints[0] == '  hint: write true/false, or quote it ("y") if you mean the string'
    assert (
        hints[2] == '  hint: quote it ("y"): an id is never a boolean, but unquoted YAML 1.1 reads it as one'
    )


@pytest.mark.parametrize(
    ("text", "where", "expected", "which"),
    [
        ("name: n\n", "name", "a name", "a spec's name"),
        ("description: off\n", "description", "a text", "a description"),
        ("data: {classes: [no, yes]}\n", "data.classes[0]", "a class label", "a class label"),
    ],
)
def test_a_bare_yaml_11_boolean_where_only_text_fits_is_told_to_be_quoted(text, where, expected, which):
    """`name: n` was "expected true, false or a quoted string", with the hint to write
    true/false, which a name, a description or a class label can never be."""
    error = first_error(text)
    bare = text.split("[")[-1].split(",")[0] if "[" in text else text.split(": ")[1].strip()
    assert (error.path, error.message) == (
        where,
        f"expected {expected}; received a bare {bare!r}, which YAML 1.1 reads as a boolean",
    )
    said = f'quote it ("{bare}"): {which} is never a boolean, but unquoted YAML 1.1 reads it as one'
    assert error.hint == said


def test_duplicate_key_names_both_lines():
    error = first_error("model: 1\nname: x\nmodel: 2\n")
    assert error.message == "duplicate key 'model' (first defined on line 1)"
    assert error.loc.line == 3


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system ['true']",
        "a: !!python/name:os.system",
        "a: !custom 3",
        "!!map {a: 1}\n---\n",
    ],
)
def test_tags_are_refused(text):
    error = first_error(text)
    assert "tag" in error.message or "document" in error.message


def test_alias_bomb_fails_fast():
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        levels.append(f"l{i}: &l{i} [" + ", ".join([f"*{'a' if i == 1 else f'l{i - 1}'}"] * 9) + "]")
    start = time.perf_counter()
    error = first_error("\n".join(levels))
    # a hang guard (expanding 9**10 nodes would not finish), not a timing: the target, well
    # under 1 s, is measured by benchmarks/bench_hostile.py (tests/fixtures/hostile/alias_bomb.yaml)
    assert time.perf_counter() - start < 20.0
    assert "alias" in error.message


def test_small_aliases_expand_with_locations():
    doc = load_text("base: &b {filters: 8}\nother: *b\n")
    assert doc.data["other"] == {"filters": 8}
    doc.data["other"]["filters"] = 9  # copies, not shared objects
    assert doc.data["base"]["filters"] == 8
    assert doc.loc(("other", "filters")) is not None


def test_recursive_alias_is_refused():
    assert "undefined or refers to itself" in first_error("a: &a [1, *a]").message


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_an_error_not_a_recursion_error(style):
    depth = 10_000
    text = "[" * depth + "]" * depth if style == "flow" else "".join(f"{'  ' * i}k:\n" for i in range(depth))
    error = first_error(text)
    assert "nesting" in error.message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty document"),
        ("# only a comment\n", "empty document"),
        ("- 1\n- 2\n", "received a list"),
        ("42\n", "received a single value"),
        ("a: 1\n---\nb: 2\n", "second one"),
        ("a: [1, 2\n", "invalid YAML"),
        ("a:\n\tb: 1\n", "invalid YAML"),
        ("<<: {a: 1}\n", "merge key"),
        ("? [a, b]\n: 1\n", "complex key"),
    ],
)
def test_structural_refusals(text, fragment):
    assert fragment in first_error(text).message


def test_encoding_checks():
    assert decode_source(b"\xef\xbb\xbfa: 1", "t") == "a: 1"
    with pytest.raises(SpecError, match="UTF-16"):
        decode_source("a: 1".encode("utf-16"), "t")
    with pytest.raises(SpecError) as caught:
        decode_source(b"a: 1\nb: \xff\n", "t")
    error = caught.value.errors[0]
    assert (error.loc.line, error.loc.column) == (2, 4)
    assert "0xff" in error.message


def test_size_limit(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    with pytest.raises(SpecError, match="at most 1024 KiB"):
        load_file(big)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_file(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="directory"):
        load_file(tmp_path)


# -- the same errors with or without libyaml, whatever its version ------------------------------
def _outcome(path):
    """What the loader makes of a file: its values and locations, or its located errors."""
    from cnnspec.spec.loader import decode_source

    try:
        doc = load_text(decode_source(path.read_bytes(), path.name), path.name)
    except SpecError as exc:
        return [d.to_json() for d in exc.errors]
    return (doc.data, sorted(map(repr, doc.locs.items())))


def _corpus():
    from tests.conftest import FIXTURES, ROOT

    files = sorted((FIXTURES / "hostile").glob("*.yaml")) + sorted((FIXTURES / "invalid").glob("*.yaml"))
    return files + sorted((ROOT / "specs").glob("*.yaml"))


@pytest.mark.skipif(not hasattr(__import__("yaml"), "CSafeLoader"), reason="PyYAML was built without libyaml")
def test_libyaml_and_the_pure_python_parser_give_the_same_outcome(monkeypatch):
    """Every corpus file, valid or not, loads to the same values or the same located errors
    whether libyaml parses it or PyYAML's pure-Python parser does (what a PyYAML without libyaml
    uses, and what the loader falls back to on any YAML error)."""
    import yaml

    from cnnspec.spec import loader

    with_libyaml = {path.name: _outcome(path) for path in _corpus()}
    monkeypatch.setattr(loader, "_SafeLoader", yaml.SafeLoader)
    # parsed again, not taken from the process's parse cache (which keeps texts and their errors)
    monkeypatch.setattr(loader, "_PARSED", type(loader._PARSED)())
    pure_python = {path.name: _outcome(path) for path in _corpus()}
    assert len(with_libyaml) > 100
    assert with_libyaml == pure_python


@pytest.mark.skipif(not hasattr(__import__("yaml"), "CSafeLoader"), reason="PyYAML was built without libyaml")
def test_an_escape_beyond_unicode_is_a_located_error_with_either_parser(monkeypatch):
    """`"\\U12000100"`: PyYAML's pure-Python scanner raised ValueError from chr() (a traceback,
    found by `make fuzz`); libyaml's error says where. Without libyaml it is still an error."""
    import yaml

    from cnnspec.spec import loader

    text = 'cnnspec: 1\nname: x\n"\\U12000100": 1\n'
    with pytest.raises(SpecError) as caught:
        load_text(text, "e.yaml")
    (error,) = caught.value.diagnostics
    assert (error.loc.line, error.loc.column) == (3, 4)
    assert error.message == "invalid YAML: found invalid Unicode character escape code"
    monkeypatch.setattr(loader, "_SafeLoader", yaml.SafeLoader)
    monkeypatch.setattr(loader, "_PARSED", type(loader._PARSED)())
    with pytest.raises(SpecError) as caught:
        load_text(text, "e.yaml")
    assert caught.value.diagnostics[0].message.startswith(
        "invalid YAML: an escape code beyond Unicode's range"
    )


def test_validate_parses_a_file_with_a_yaml_error_once(tmp_path, monkeypatch, runner):
    """`cnnspec validate` reads a file twice (a block library? then the spec): a text that
    failed to parse keeps its errors in the parse cache, as a parsed text keeps its document,
    and the pure-Python parser that explains a YAML error took seconds on some texts (a flow
    sequence nested 1,000 deep) each time. The errors are the same ones, in their order."""
    from cnnspec.cli.app import app
    from cnnspec.spec import loader

    parsed: list[str] = []
    real = loader._load_text
    monkeypatch.setattr(loader, "_load_text", lambda text, file: parsed.append(file) or real(text, file))
    spec = tmp_path / "broken.yaml"
    spec.write_text("cnnspec: 1\nname: parsed_once\nmodel: [flatten\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate", "broken.yaml"])
    assert result.exit_code == 1
    assert result.stderr.startswith("broken.yaml:4:1: error: invalid YAML: "), result.stderr
    assert parsed == ["broken.yaml"]
    again = [[d.to_json() for d in caught.errors] for caught in (_raised(spec), _raised(spec))]
    assert parsed == ["broken.yaml"] and again[0] == again[1]
    assert again[0][0]["message"] == result.stderr.splitlines()[0].split(" error: ", 1)[1]


def _raised(spec) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_file(spec.name)
    return caught.value


@pytest.mark.parametrize("depth", [101, 999, 1_001, 5_000])
@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ("{a: ", "}")])
def test_deep_flow_nesting_is_our_own_located_error(depth, opening, closing):
    """libyaml 0.2.5+ (PyYAML 6.0.4) refuses a flow depth of 1,000 while scanning ahead, before
    any event reaches the loader; the loader's own 100-level limit is still what the user sees,
    at the place where level 101 opens."""
    text = "cnnspec: 1\nvars: {x: " + opening * depth + "1" + closing * depth + "}\n"
    error = first_error(text)
    assert "expected nesting of at most 100 levels" in error.message
    assert error.code == "yaml" and error.hint is None  # (no repeats' hint: a var's nesting)
    # the top-level mapping is level 1 and `vars` level 2, so the 99th opening is level 101
    assert (error.loc.line, error.loc.column) == (2, len("vars: {x: ") + len(opening) * 98 + 1)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # a LINE SEPARATOR, PARAGRAPH SEPARATOR or NEL pasted into a quoted string: YAML counts
        # a line break there, editors and the LSP do not
        ('cnnspec: 1\nname: t\ndescription: "pasted\u2028text"\n', 6),
        ('cnnspec: 1\nname: t\ndescription: "a\u2029b\x85c"\n', 6),
        # old Mac line ends: a line break for YAML, the LSP and editors alike
        ("cnnspec: 1\rname: t\r", 5),
        ("cnnspec: 1\r\nname: t\r\n", 5),
    ],
)
def test_lines_are_counted_as_editors_count_them(text, line):
    """An error's line and column, its source line in the terminal, and its range in an
    editor (LSP, UTF-16) all name the same place."""
    from cnnspec.cli.render import source_line
    from cnnspec.lsp.diagnostics import convert

    newline = "\r" if "\r" in text and "\r\n" not in text else "\r\n" if "\r\n" in text else "\n"
    layer = "  - conv2d: {filters: 8, kernel_size: 3, use_bias: maybe}"
    body = ["input: {shape: [8, 8, 1]}", "model:", layer]
    spec = text + newline.join([*body, ""])
    with pytest.raises(SpecError) as caught:
        compile_text(spec, "lines.yaml")
    (error,) = caught.value.errors
    column = spec.split(newline)[line - 1].index("maybe") + 1
    assert (error.loc.line, error.loc.column) == (line, column)
    assert "use_bias: maybe" in source_line("lines.yaml", line)
    where = convert(error, "lines.yaml", spec).range
    assert (where.start.line, where.start.character, where.end.character) == (
        line - 1,
        column - 1,
        column + 4,
    )


@pytest.mark.parametrize(
    "text",
    ["n", "N", "y", "Y", "yes", "off", "1e3", "-2E-5", "0o7", "0x1F", "010", "1:30", "1_000", "~", "null",
     "", "true", "False", ".inf", "-.inf", ".nan", "12", "+1", "1.", ".5", "plain", "n y", "conv-1",
     "a\x85b", "f\\N.npz\x85\x85", "x\u2028y", "p\u2029"],
)  # fmt: skip
def test_the_yaml_cnnspec_writes_reads_back_as_written(text: str) -> None:
    """PyYAML quotes what YAML 1.1 types, not all this loader types or refuses: written plain,
    ``n`` was refused (a YAML 1.1 boolean) and ``1e3`` read as a float. A model file ``n.keras``
    made a stand-in spec cnnspec could not read; a class ``n`` a resolved.yaml."""
    from cnnspec.spec.dumping import dump_yaml

    data = {"name": text, "names": [text], text: {"nested": text}}
    # (allow_unicode, as every writer passes it: PyYAML then wrote NEL as it is, which YAML
    # folds to a space inside single quotes)
    for options in ({"sort_keys": False}, {"default_flow_style": True}, {"allow_unicode": True}):
        doc = load_text(dump_yaml(data, **options))
        assert doc.data == data


@pytest.mark.parametrize(("levels", "refused"), [(31, False), (32, True)])
def test_combinators_written_in_place_meet_the_yaml_depth_first_and_its_hint_says_so(levels, refused):
    """Each repeat written inside another nests 3 YAML levels: 32 of them, which the resolver's
    own limit allows, met the file's 100-level limit first, with no hint of why; docs/graphs.md
    said 32 were allowed."""
    import yaml

    from cnnspec.api import compile_text

    node: list = [{"conv2d": {"filters": 4, "kernel_size": 1}}]
    for _ in range(levels):
        node = [{"repeat": {"times": 1, "layers": node}}]
    text = yaml.safe_dump({"cnnspec": 1, "name": "t", "input": {"shape": [8, 8, 4]}, "model": node})
    if not refused:
        compile_text(text)
        return
    error = first_error(text)
    assert "expected nesting of at most 100 levels" in error.message
    assert error.hint is not None and "nests 3 levels" in error.hint and "about 31 fit" in error.hint


def test_a_readme_spec_missing_outside_the_repository_points_at_the_zoo(tmp_path, monkeypatch):
    """A user who installed the package runs the README's `cnnspec train specs/digits_cnn.yaml`
    in a folder of their own: "no such file" alone left them guessing; the hint says where those
    files come from and what the package has. Another missing file gets no such hint."""
    from cnnspec.spec.loader import MISSING_SPEC_HINT, load_file

    monkeypatch.chdir(tmp_path)
    for name, hint in (("specs/digits_cnn.yaml", MISSING_SPEC_HINT), ("mine.yaml", None)):
        with pytest.raises(SpecError) as caught:
            load_file(Path(name))
        (error,) = caught.value.errors
        assert (error.message, error.hint) == (f"no such file: {name}", hint)
    assert "`cnnspec zoo` lists the models it has" in MISSING_SPEC_HINT
