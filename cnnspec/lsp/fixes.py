"""Quick fixes (``textDocument/codeAction``): the edits cnnspec's own hints spell out.

A hint that names the text to write in place of the token a diagnostic is located at becomes an
edit of that token:

- "did you mean `relu`?" (a misspelt kind, parameter, value, id, block or var; also "did you
  mean `learning_rate`? cnnspec spells `lr` as …"): the word is replaced, its quotes kept;
- "add a colon: `- dropout: 0.3`" and "add a space after the colon: …": the item is written
  as the hint shows it.

``cnnspec validate --fix`` makes the same fixes in files (:mod:`cnnspec.cli.fixing`).

A fix is offered only while the token still reads as the mistake (the text may have changed
since it was checked), and only for a single word: inside a ``${…}`` expression or a flow
mapping the token is more than the word the hint corrects, and nothing is offered. In a dotted
key (a ``search.space`` key such as ``head_dropot.rate``) a hint names one part: only that
part is replaced, and only where the diagnostic is located at it and its message names it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import yaml

from cnnspec.errors import Diagnostic
from cnnspec.lsp.text import BOM, Lines
from cnnspec.spec.linebreaks import LINE_BREAK

#: "did you mean `X`?" at the start of a hint (what follows it may explain an alias).
_MEANT = re.compile(r"did you mean `([^`]+)`\?")
#: "add a colon: `- KIND: VALUE`", "add a space after the colon: `- KIND: VALUE`".
_WRITE = re.compile(r"add (?:a colon|a space after the colon): `- ([^`]+)`")
#: A word a fix may replace or write: a name as specs spell kinds, keys, ids and values, in any
#: script's letters (``[^\W\d]``: a letter or ``_``), for a typo of one (``dénse``, ``softmäx``) has
#: the same hint as an ASCII one and was left unfixed.
_WORD = re.compile(r"[^\W\d][\w.\-]*")
#: One part of a dotted name (``widht`` of ``vars.widht``), which a hint may correct alone.
_SEGMENT = re.compile(r"[^\W\d][\w\-]*")
#: The rest of a line after a plain scalar: a comment (a blank, then ``#``) ends it.
_COMMENT = re.compile(r"(?<!\s)\s+#.*$")  # (from a run's first blank only: each blank retried the run)


@dataclass(frozen=True)
class Fix:
    """An edit of one line: code points ``start``–``end`` (0-based) of ``line`` (0-based)
    become ``text``; ``title`` is what the editor's menu shows."""

    title: str
    line: int
    start: int
    end: int
    text: str


def fix_for(diagnostic: Diagnostic, file: str, text: str, lines: Lines | None = None) -> Fix | None:
    """The quick fix of ``diagnostic`` in ``file`` (whose current text is ``text``), or
    ``None`` when its hint names no replacement of the token it is located at. ``lines``:
    ``text`` split already, in any position encoding (only its lines are read): the many
    diagnostics of one document then split its text once, not once each."""
    loc = diagnostic.loc
    if loc is None or loc.file != file or not diagnostic.hint:
        return None
    lines = lines if lines is not None else Lines(text)
    row, column = loc.line - 1, loc.column - 1
    line = lines.line(row)
    if not 0 <= column < len(line):
        return None
    if (meant := _MEANT.match(diagnostic.hint)) is not None:
        end = lines.token_end(row, column)
        fix = _replace_word(line, row, column, end, meant.group(1), diagnostic.message)
        return fix if fix is None or _keys_stay_unique(text, line, fix) else None
    if (written := _WRITE.match(diagnostic.hint)) is not None:
        return _write_item(line, row, column, written.group(1))
    return None


def _replace_word(line: str, row: int, start: int, end: int, meant: str, message: str) -> Fix | None:
    """The token ``line[start:end]``, a word alone or in quotes, replaced by ``meant``.

    A dotted token (``head_dropot.rate``, a search space key) is replaced whole only by a
    dotted name of as many parts (a freeze pattern's ``stage3.block2``); a plain name replaces
    only its first part, and only when the diagnostic's message names that part (``'head_dropot'``):
    the hint corrects one part of the key, and a key located at its start while another part
    is wrong (``training.callbacks[0].…``) gets no fix rather than the wrong part replaced."""
    token = line[start:end]
    quoted = len(token) >= 2 and token[0] in "\"'" and token[-1] == token[0]
    word = token[1:-1] if quoted else token
    if not _WORD.fullmatch(word) or not _WORD.fullmatch(meant) or word == meant:
        return None
    if quoted:
        start, end = start + 1, end - 1
    if word.count(".") != meant.count("."):
        part = _SEGMENT.match(word)
        if "." in meant or part is None or word[part.end() : part.end() + 1] != ".":
            return None
        word, end = part.group(), start + part.end()
        if word == meant or repr(word) not in message:
            return None
    return Fix(f"Replace `{word}` with `{meant}`", row, start, end, meant)


def _keys_stay_unique(text: str, line: str, fix: Fix) -> bool:
    """Whether ``fix`` (an edit of ``line``, row ``fix.line`` of ``text``) leaves every mapping
    of the document with keys of its own: a key renamed to one set beside it already
    (``unit`` → ``units`` beside ``units: 10``) would be a duplicate key, which is refused. A
    text that does not parse as YAML has no mappings to check."""
    keys = _mapping_keys(text)
    if keys is None:  # (no mapping to check: the text's YAML error is reported on its own)
        return True
    for (row, start, end, key), siblings in keys.items():
        if row != fix.line or not start <= fix.start <= fix.end <= end:
            continue
        written = line[start:end]
        renamed = written[: fix.start - start] + fix.text + written[fix.end - start :]
        if written == key:
            return renamed not in siblings
        if len(written) >= 2 and written[0] in "\"'" and written[-1] == written[0] and written[1:-1] == key:
            return renamed[1:-1] not in siblings
        return False  # (a key written with escapes or over lines: what it would read as is unclear)
    return True


@functools.lru_cache(maxsize=4)
def _mapping_keys(text: str) -> dict[tuple[int, int, int, str], frozenset[str]] | None:
    """Each mapping key of ``text`` that is a scalar on one line, by (row, start, end, key)
    (0-based, code points), with the other keys of its mapping; ``None`` when ``text`` is no
    single YAML document."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, ValueError, RecursionError):
        return None
    found: dict[tuple[int, int, int, str], frozenset[str]] = {}
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            names = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
            for key, value in node.value:
                stack.append(value)
                start, end = key.start_mark, key.end_mark
                if isinstance(key, yaml.ScalarNode) and start.line == end.line:
                    others = list(names)
                    others.remove(key.value)
                    found[(start.line, start.column, end.column, key.value)] = frozenset(others)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return found


def _write_item(line: str, row: int, start: int, wanted: str) -> Fix | None:
    """The item's text from ``start`` to the end of its line (a comment left out) written as
    ``wanted``, when the two differ only in the colon and blanks between kind and value."""
    rest = _COMMENT.sub("", line[start:]).rstrip()
    squeezed = re.sub(r"[\s:]+", " ", rest)
    if not rest or squeezed != re.sub(r"[\s:]+", " ", wanted) or rest == wanted:
        return None
    return Fix(f"Write `{wanted}`", row, start, start + len(rest), wanted)


def fixes_of(diagnostics: Iterable[Diagnostic], file: str, text: str) -> list[Fix]:
    """The quick fixes of ``diagnostics`` that edit ``file`` (whose text is ``text``), in the
    order of the text; of two that touch the same characters only the first is kept (the next
    check offers the other again if it still applies)."""
    lines = Lines(text)
    found = [fix for d in diagnostics if (fix := fix_for(d, file, text, lines)) is not None]
    kept: list[Fix] = []
    for fix in sorted(found, key=lambda f: (f.line, f.start, f.end)):
        last = kept[-1] if kept else None
        if last is not None and last.line == fix.line and fix.start < last.end:
            continue
        if last is None or (last.line, last.start, last.end, last.text) != (
            fix.line,
            fix.start,
            fix.end,
            fix.text,
        ):
            kept.append(fix)
    return kept


def apply_fixes(text: str, fixes: Sequence[Fix]) -> str:
    """``text`` with ``fixes`` made (:func:`fixes_of`: none overlap); its line breaks, ``\n``,
    ``\r\n`` or ``\r``, are kept as they are."""
    parts = LINE_BREAK.split(text)
    breaks = LINE_BREAK.findall(text)
    for fix in sorted(fixes, key=lambda f: (f.line, f.start), reverse=True):
        line = parts[fix.line]
        # a fix's columns are YAML's, which start after a byte-order mark (:class:`Lines`)
        shift = 1 if fix.line == 0 and line.startswith(BOM) else 0
        parts[fix.line] = line[: fix.start + shift] + fix.text + line[fix.end + shift :]
    return "".join(part + brk for part, brk in zip(parts, [*breaks, ""], strict=True))


#: Checks of one text at most: each round makes every fix its check offers.
MAX_ROUNDS = 10

#: How a text is checked in :func:`fix_rounds`: its diagnostics and the name they give the file
#: (``None``: none names it alone, so nothing is fixed).
Diagnose = Callable[[str], tuple[list[Diagnostic], str | None]]


def fix_rounds(text: str, diagnose: Diagnose) -> tuple[str, list[Fix]]:
    """``text`` with every fix made and the fixes, round after round: each check of the text
    as fixed so far may offer more (a kind spelt right only then has its parameters checked),
    until none is left or :data:`MAX_ROUNDS` have run (``cnnspec validate --fix`` and the
    editor's "fix all")."""
    made: list[Fix] = []
    for _ in range(MAX_ROUNDS):
        found, name = diagnose(text)
        fixes = fixes_of(found, name, text) if name is not None else []
        if not fixes:
            break
        text = apply_fixes(text, fixes)
        made += fixes
    return text, made
