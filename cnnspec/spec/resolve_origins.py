"""Where a value came from (:class:`OriginNotes`, a part of
:class:`cnnspec.spec.resolve.Resolver`): the notes under an error that name the var, block
argument, loop variable or default an expression read, and the call sites and iterations that
led to the item (one note per level), so a mistake inside a block is reported at the line that
caused it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cnnspec.errors import (
    COMMAND_LINE_PREFIX,
    Computed,
    Note,
    SpecPath,
    call_details,
    call_note,
    format_path,
    origin_note,
)
from cnnspec.spec.expr import (
    EMBEDDED_EXPRESSION,
    FULL_EXPRESSION,
    LAYER_NAMES,
    POISONED,
    ExpressionError,
    is_expression,
    names_in,
)
from cnnspec.spec.loader import SOURCE_TEXTS, SourceDoc, value_at
from cnnspec.spec.resolve_blocks import BlockParam, scalar_param

#: Origin notes under one error: an expression that reads many vars names the first few.
MAX_ORIGIN_NOTES = 6


def _merge(found: dict[Note, str | None], more: dict[Note, str | None], step: str | None) -> None:
    """Add the origin notes ``more`` to ``found``, each with how its value reaches the error: a
    note's access (``"[0]"``) followed by this step's (``step``: how the expression here reads
    the name, ``None`` when it computes from it). Read two ways, the one that passes the value
    on as it is stands."""
    for note, access in more.items():
        reached = access + step if access is not None and step is not None else None
        if found.get(note) is None:
            found[note] = reached


def _step(access: tuple[str, str] | None, name: str) -> str | None:
    """How an expression whose :func:`read_access` is ``access`` reads ``name``: the subscripts
    it takes of it, ``None`` when it computes from it (or reads another name)."""
    return access[1] if access is not None and access[0] == name else None


def _fold_keys(found: dict[Note, str | None]) -> tuple[Note, ...]:
    """The fold keys (:meth:`Diagnostics.add`'s ``origins``) of the origins ``found``: those
    whose value reaches the error as it is, each marked with its access, so that the same bad
    value met again folds (``${fs[0]}`` at two layers) and another element of the same var
    (``${fs[1]}``) is its own mistake."""
    keys = [replace(note, path=note.path + access) for note, access in found.items() if access is not None]
    return tuple(keys)[:MAX_ORIGIN_NOTES]


def _computed_key(text: str | None, found: dict[Note, str | None]) -> tuple[Note | Computed, ...]:
    """The fold key of a value the expression ``text`` computes from the origins ``found``
    (those it reads other than as they are): one key for all of them together, with the
    expression's text, so that the same expression of the same values (``${width * 2}`` at two
    layers, after ``--set vars.width=0``) folds into one error, while another expression of
    them (``${width - 2}``), or the same one of another origin, stays an error of its own (the
    fold also needs the same message, so the same received value). With it, a
    :class:`~cnnspec.errors.Computed` key per origin: an error with the same message on that
    origin's own value (``${width}``: 0 fails as ``${width * 2}`` does) is the one mistake, the
    origin's value. None when the expression
    reads every origin as it is (:func:`_fold_keys` has those) or reads none."""
    computed = [note for note, access in found.items() if access is None]
    if text is None or not computed:
        return ()
    body = re.sub(r"\s+", "", text)  # `${width*2}` and `${width * 2}` are one expression
    reads = "; ".join(f"{note.message} ({note.loc})" for note in found)
    # ... and each origin computed from, for the errors on its own value (``${width}``)
    return (Note(f"{body} of {reads}", None, "computed"), *(Computed(note) for note in computed))


#: A name with constant subscripts and nothing else: ``fs``, ``fs[0]``, ``cfg['w'][1]``.
_ACCESS = re.compile(r"\s*([A-Za-z_]\w*)((?:\s*\[\s*(?:-?\d+|'[^'\\]*'|\"[^\"\\]*\")\s*\])*)\s*")
_SUBSCRIPT = re.compile(r"\[\s*(-?\d+|'[^'\\]*'|\"[^\"\\]*\")\s*\]")


def read_access(text: str) -> tuple[str, str] | None:
    """``(name, subscripts)`` when ``text`` is ``${name}`` alone (``""``) or ``${name}`` with
    constant subscripts (``"[0]"``, spaces dropped): what it reads is the name's value as it
    is, or one element of it. ``None`` for any other expression (a value computed)."""
    found = FULL_EXPRESSION.match(text)
    read = _ACCESS.fullmatch(found.group(1)) if found is not None else None
    if read is None:
        return None
    return read.group(1), "".join(f"[{index}]" for index in _SUBSCRIPT.findall(read.group(2)))


def bare_name(text: str) -> str | None:
    """The name ``text`` reads when it is ``${name}`` and nothing else (its value as it is)."""
    found = FULL_EXPRESSION.match(text)
    body = found.group(1).strip() if found is not None else ""
    return body if body.isidentifier() else None


def var_origin(doc: SourceDoc, env: Mapping[str, Any], name: str) -> list[Note]:
    """``name is integer 0, set at …`` for the var ``name`` of ``env`` (the evaluated vars),
    or ``set by --set …``; none for a var that failed or that no ``vars:`` entry wrote."""
    loc = doc.locs.get(("vars", name))
    value = env.get(name, POISONED)
    if loc is None or value is POISONED:
        return []
    option = SOURCE_TEXTS.get(loc.file) if loc.file.startswith(COMMAND_LINE_PREFIX) else None
    return [origin_note(name, value, loc, format_path(("vars", name)), option)]


def section_origins(
    doc: SourceDoc, env: Mapping[str, Any], path: SpecPath
) -> tuple[tuple[Note, ...], tuple[Note | Computed, ...]]:
    """For an error of the data, training or runtime sections on the ``${…}`` written at
    ``path``: where each var it reads was set (those sections read only vars, ``env``), as
    model errors say it; and those of them to fold by (:meth:`Resolver.origin_notes`' second part: the
    var read bare, ``${n}``, its value as it is). None when the error is not about an
    expression, or a name it reads is no var (the error is then about the text)."""
    text = _expression_text(doc.data, path)
    names = _names_read(text) if text is not None else None
    if text is None or not names or any(name not in env for name in names):
        return (), ()
    notes = tuple(dict.fromkeys(note for name in names for note in var_origin(doc, env, name)))
    notes = notes[:MAX_ORIGIN_NOTES]
    access = read_access(text)
    found = dict.fromkeys(notes, access[1] if access is not None else None)
    return notes, (*_fold_keys(found), *_computed_key(text, found))


def _expression_text(data: Any, path: SpecPath) -> str | None:
    """The ``${…}`` text written at ``path``, if an expression is written there."""
    text = value_at(data, path)
    return text if is_expression(text) else None


def _names_read(text: str) -> list[str] | None:
    """The names the expressions in ``text`` read, in the order they are first written;
    ``None`` when one does not parse (its error is about the text)."""
    found: list[str] = []
    bodies = [m.group(1)] if (m := FULL_EXPRESSION.match(text)) and "${" not in m.group(1) else None
    for body in bodies if bodies is not None else EMBEDDED_EXPRESSION.findall(text):
        try:
            names = names_in(body)
        except ExpressionError:
            return None
        found.extend(sorted(names, key=lambda n, b=body: _first_use(b, n)))
    return list(dict.fromkeys(found))


def _first_use(body: str, name: str) -> int:
    """Where ``name`` is first written as a whole word in ``body`` (for the order of notes)."""
    match = re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", body)
    return match.start() if match else len(body)


class OriginNotes:
    """The resolver's origin and call notes. Its methods share the state
    :class:`cnnspec.spec.resolve.Resolver` sets up."""

    def origin_notes(self, path: SpecPath) -> tuple[tuple[Note, ...], tuple[Note | Computed, ...]]:
        """For an error on the ``${…}`` expression written at ``path``: one note per var it
        reads, saying the var's value and where it was set (``--set``, an extending file, the
        backbone item, or the ``vars:`` entry), since the error is located at the expression
        but the mistake is often in the value. A block parameter is followed to the argument
        of its call, and outwards through the callers' parameters that argument reads
        (:meth:`argument_origins`). Loop variables and ``in_channels``/``in_shape`` get none.
        Nothing is noted when the names read cannot all be bound here (an undefined name: the
        error is the text), or when the error is not about an expression.

        Second, those of the notes whose value reaches ``path`` as it is: read bare (``${f}``)
        at every step. The same error from such an origin at another place is the same bad
        value used again, folded into one error (:meth:`Diagnostics.add`); a value computed
        from it differently (``${n - 2}`` and ``${n // 4}``, both 0 of a right n = 2) is a
        mistake of its own, reported on its own, but the same expression of the same origins
        (``${width * 2}`` at two layers) computes the same value: it folds too
        (:func:`_computed_key`)."""
        found = self.origins(path)
        notes = tuple(found)[:MAX_ORIGIN_NOTES]
        return notes, (*_fold_keys(found), *_computed_key(_expression_text(self.data, path), found))

    def origins(self, path: SpecPath) -> dict[Note, str | None]:
        """The notes of :meth:`origin_notes`, each with how its value reaches ``path`` as it is
        (:func:`read_access`: ``""`` whole, ``"[0]"`` its first element), ``None`` computed."""
        text = _expression_text(self.data, path)
        if text is None:
            return {}
        depth = len(self.call_stack)
        block = path[1] if len(path) > 1 and path[0] == "blocks" else None
        if (block is None) != (depth == 0) or (block is not None and block != self.call_stack[-1]):
            return {}  # a declaration checked outside any call: what its names are bound to is unknown
        names = _names_read(text)
        if names is None:
            return {}
        params = self.block_params(block) if block is not None else {}
        access = read_access(text)
        found: dict[Note, str | None] = {}
        memo: dict[tuple[str, int], dict[Note, str | None]] = {}
        for name in names:
            if name in LAYER_NAMES or any(d == depth and v == name for d, v in self.loop_vars):
                continue
            step = _step(access, name)
            if name in params:
                _merge(found, self.argument_origins(name, depth, memo), step)
            elif name in self.vars_env:
                _merge(found, dict.fromkeys(self.var_origin(name), ""), step)
            else:
                return {}  # an undefined name: the error is about the text, not a value
        return found

    def argument_origins(
        self, param: str, depth: int, memo: dict[tuple[str, int], dict[Note, str | None]]
    ) -> dict[Note, str | None]:
        """The origin notes of the vars the argument of ``param`` at the call ``depth`` (1: the
        outermost) reads, or of the argument itself where it is written out (``f is integer
        0, set at …``), each with whether its value is the argument's as it is (a literal, or
        a bare ``${name}`` of such a value); for an argument left to its default, the default's
        (written out, or what it reads: vars and the call's other parameters). An
        argument that reads the caller's own parameter (``g: ${f}``) is followed to the
        caller's call, and so on outwards: the value was written there. ``memo`` holds each
        (parameter, depth) once: arguments that read two of the caller's parameters at every
        level would otherwise walk 2**depth chains."""
        if (param, depth) in memo:
            return memo[param, depth]
        memo[param, depth] = {}  # (a cycle, which the call stack rules out, would end here)
        site, block = self.call_sites[depth - 1], self.call_stack[depth - 1]
        body = value_at(self.data, (*site, block))
        if isinstance(body, dict) and param in body:
            argument, where = body[param], (*site, block, param)
        elif (
            body is not None
            and not isinstance(body, dict)
            and scalar_param(self.block_params(block)) == param
        ):
            argument, where = body, (*site, block)
        else:  # left to its default: the default is the value (it reads the vars, or the
            # call's other parameters, not the caller's)
            declared = ((self.blocks[block] or {}).get("params") or {}).get(param)
            if not isinstance(declared, dict) or "default" not in declared:
                return {}
            argument, where = declared["default"], ("blocks", block, "params", param, "default")
            found = self.written_origins(param, argument, where, self.block_params(block), depth, memo)
            memo[param, depth] = found
            return found
        caller = self.block_params(self.call_stack[depth - 2]) if depth > 1 else {}
        found = self.written_origins(param, argument, where, caller, depth - 1, memo, loops=True)
        memo[param, depth] = found
        return found

    def written_origins(
        self,
        param: str,
        argument: Any,
        where: SpecPath,
        params: dict[str, BlockParam],
        depth: int,
        memo: dict[tuple[str, int], dict[Note, str | None]],
        *,
        loops: bool = False,
    ) -> dict[Note, str | None]:
        """The origins of ``param``'s value ``argument``, written at ``where``: itself when
        written out, else those of the names its expression reads, where ``params`` (those of
        the call at ``depth``; 0: none) and, with ``loops``, that call's loop variables are
        bound."""
        found: dict[Note, str | None] = {}
        if not is_expression(argument):
            loc = self.doc.locs.get(where)
            if loc is not None:
                found[origin_note(param, argument, loc, format_path(where))] = ""
        elif (names := _names_read(argument)) is not None:
            access = read_access(argument)
            for name in names:
                looped = loops and any(d == depth and v == name for d, v in self.loop_vars)
                if name in LAYER_NAMES or looped:
                    continue  # (a loop variable's value is its iteration's: no place wrote it)
                if name in params:
                    _merge(found, self.argument_origins(name, depth, memo), _step(access, name))
                else:
                    _merge(found, dict.fromkeys(self.var_origin(name), ""), _step(access, name))
        return found

    def var_origin(self, name: str) -> list[Note]:
        """``name is integer 0, set at …`` for the var ``name`` (none for a var that failed)."""
        return var_origin(self.doc, self.vars_env, name)

    def loop_notes(self, path: SpecPath, every: bool = False) -> list[Note]:
        """For an error on the ``${…}`` written at ``path`` that reads the variable of a repeat
        it is in (in the same block body, or outside any block), the iteration it failed in,
        innermost repeat first: ``in the repeat at model[0] (r.yaml:5:5), in iteration i = 2``.
        A block call's note says the iterations it is made in (:meth:`call_notes`); an error in
        a repeat's own body said nothing of which iteration computed the bad value.

        ``every``: each repeat the error is in, whatever it reads (a shape error: the shape a
        layer receives changes from one iteration to the next); one without ``as:`` is counted
        from 0, as a loop variable would be (``in iteration 3 of 0–4``)."""
        text = _expression_text(self.data, path)
        reads = set(_names_read(text) or ()) if text is not None else set()
        depth = len(self.call_stack)
        notes: list[Note] = []
        loops = zip(self.loop_vars, self.loop_values, self.loop_paths, self.loop_times, strict=True)
        for (level, var), value, where, times in loops:
            if level == depth and ((var and var in reads) or every):
                loc = self.doc.key_loc(where)
                shown = f" ({loc})" if loc else ""
                unnamed = f", in iteration {value} of 0–{times - 1}"
                details = call_details([(var, value)], []) if var else unnamed
                text = f"in the repeat at {format_path(where[:-1])}{shown}{details}"
                notes.append(Note(text, loc, format_path(where)))
        return notes[::-1]

    def call_notes(self, path: SpecPath | None = None) -> list[Note]:
        """One note per block call being walked, innermost first. Each says the iteration of
        the repeats the call is made in (``i = 2``) and, for an error on the value at
        ``path``, the arguments of the call that the value reads, outwards through the
        arguments that read the caller's, where they are computed from an iteration
        (``k = 23`` of ``k: ${1 + i * 11}``): no place in a file wrote such a value, which the
        origin notes say of the others (:meth:`origin_notes`); or computed under the name of a
        var (``k: ${k * 3}``), whose own value the origin note gives."""
        written = [self.written_args(depth) for depth in range(1, len(self.call_stack) + 1)]
        looped: list[set[str]] = []  # per call, outermost first: its arguments that an iteration computes
        for depth, arguments in enumerate(written, start=1):
            loops, _ = self.call_frames[depth - 1]
            outer = {name for name, _ in loops} | (looped[-1] if looped else set())
            looped.append({p for p, names in arguments.items() if names & outer})
        reads = self.names_at(path) if path is not None else set()
        notes: list[Note] = []
        for depth in range(len(self.call_stack), 0, -1):
            name, site = self.call_stack[depth - 1], self.call_sites[depth - 1]
            loops, args = self.call_frames[depth - 1]
            # and those computed (`k: ${k * 3}`) under the name of a var, whose value the origin
            # note gives (k is 3, set at …): the value read is the argument's (k = 9)
            shadowing = {p for p in written[depth - 1] if p in self.vars_env}
            shown = [
                p
                for p in self.block_params(name)
                if p in reads and (p in looped[depth - 1] or p in shadowing)
            ]
            values = [(p, args[p]) for p in shown if p in args and args[p] is not POISONED]
            notes.append(call_note(name, site, self.loc(site), call_details(loops, values)))
            reads = {n for p in reads for n in written[depth - 1].get(p, ())}
        return notes + self.outer_notes

    def written_args(self, depth: int) -> dict[str, set[str]]:
        """The names each argument written at the call ``depth`` (1: the outermost) reads."""
        name, site = self.call_stack[depth - 1], self.call_sites[depth - 1]
        body = value_at(self.data, (*site, name))
        if not isinstance(body, dict):  # (a scalar argument: the block's one parameter)
            single = scalar_param(self.block_params(name)) if body is not None else None
            body = {single: body} if single is not None else {}
        return {
            p: set(_names_read(text) or ())
            for p, text in body.items()
            if isinstance(p, str) and is_expression(text)
        }

    def names_at(self, path: SpecPath) -> set[str]:
        """The names the ``${…}`` written at ``path`` reads, when ``path`` is in the body of the
        innermost block being called (what its arguments are bound to)."""
        if not self.call_stack or len(path) < 2 or path[:2] != ("blocks", self.call_stack[-1]):
            return set()
        text = _expression_text(self.data, path)
        return set(_names_read(text) or ()) if text is not None else set()
