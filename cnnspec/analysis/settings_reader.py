"""Reading a section's values for the typed settings: :class:`SectionReader` evaluates ``${…}``
expressions against the spec's ``vars`` (:func:`section_env`), reports each problem as a located
error, and gives back :data:`POISONED` for a value that failed, so what depends on it stays
silent while the rest of the section is still checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.errors import Diagnostics, Note, SpecPath, format_path
from cnnspec.fileio import user_path
from cnnspec.spec.expr import ExpressionError, is_expression, substitute

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec


class _Poisoned:
    """The type of :data:`POISONED`."""

    def __repr__(self) -> str:
        return "<poisoned>"

    def __bool__(self) -> bool:
        # falsy, so that ``value or []``-style defaults treat it as absent: a reader that
        # forgets to test for it falls back to the default, never to a spurious error
        return False


#: The value of a ``${…}`` expression that failed to evaluate (its error is reported once,
#: where it was written). Distinct from ``None``, which a user may write (``${None}``): every
#: reader of a settings value stays silent for it, as rustc stays silent for a poisoned value.
POISONED: Any = _Poisoned()


class SectionReader:
    """Reads one section with expression substitution and located errors.

    An expression that fails is reported once and becomes :data:`POISONED`; the reader
    remembers its path, and :meth:`error` drops any later error at or inside that path (the
    checks of a value that does not exist would only repeat the first error)."""

    def __init__(self, compiled: CompiledSpec, env: dict[str, Any], diags: Diagnostics) -> None:
        self.compiled = compiled
        self.doc = compiled.doc
        self.env = env
        self.diags = diags
        # an error in an `extends` base says where it is included, as the schema's and the
        # resolver's do (the file the user ran names no line of the base)
        diags.includes.update(compiled.doc.includes)
        #: the paths of the expressions that failed
        self.failed: set[SpecPath] = set()

    def poisoned(self, path: SpecPath) -> bool:
        """The value at ``path`` is unknown: its expression, or that of a value holding it, failed."""
        return any(path[: len(bad)] == bad for bad in self.failed)

    def poisoned_within(self, path: SpecPath) -> bool:
        """Part of the value at ``path`` is unknown (:meth:`poisoned`, or an item inside it
        failed): a check that compares its items with each other stays silent."""
        return self.poisoned(path) or any(bad[: len(path)] == path for bad in self.failed)

    def error(
        self,
        message: str,
        path: SpecPath,
        hint: str | None = None,
        *,
        key: bool = False,
        code: str = "training",
        notes: tuple[Note, ...] = (),
    ) -> None:
        """Report a located error at ``path``; silent where the value there was poisoned. An
        error on a ``${…}`` value notes where the vars it read were set, as a model error does
        (after ``notes``, the caller's)."""
        if self.poisoned(path):
            return
        from cnnspec.spec.resolve_origins import section_origins

        loc = self.doc.key_loc(path) if key else self.doc.loc(path)
        origins, fold = ((), ()) if key else section_origins(self.doc, self.env, path)
        self.diags.error(
            message, loc, format_path(path), code=code, hint=hint, notes=(*notes, *origins), origins=fold
        )

    def warning(self, message: str, path: SpecPath, hint: str, *, code: str, key: bool = False) -> None:
        """Report a located warning at ``path`` (``key``: at its key)."""
        loc = self.doc.key_loc(path) if key else self.doc.loc(path)
        self.diags.warning(message, loc, format_path(path), code=code, hint=hint)

    def value(self, path: SpecPath, default: Any = None) -> Any:
        """The value at ``path`` with every ``${…}`` substituted (``default`` when absent;
        :data:`POISONED` for an expression that failed, itself or as an item of the value)."""
        node: Any = self.doc.data
        for part in path:
            in_dict = isinstance(node, dict) and part in node
            if in_dict or (isinstance(node, list) and isinstance(part, int) and part < len(node)):
                node = node[part]
            else:
                return default
        return self.substitute(node, path)

    def known(self, path: SpecPath, default: Any = None) -> Any:
        """:meth:`value`, with ``default`` for a value whose expression failed (a setting that
        is read as it is, with no check of its own to silence: a flag, a name)."""
        value = self.value(path, default)
        return default if value is POISONED else value

    def substitute(self, value: Any, path: SpecPath) -> Any:
        """``value`` (at ``path``) with every ``${…}`` in it evaluated; one that fails is
        reported here, once, and is :data:`POISONED` (the reader may meet it again, when a
        section is read twice or a value is read by several checks: reported only once)."""
        if isinstance(value, dict):
            return {k: self.substitute(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, (*path, i)) for i, v in enumerate(value)]
        if is_expression(value):
            if path in self.failed:
                return POISONED
            try:
                return substitute(value, self.env)
            except ExpressionError as exc:
                self.error(f"in {value!r}: {exc.message}", path, exc.hint)
                self.failed.add(path)
                return POISONED
        return value

    def check_substituted(self, sections: tuple[str, ...] = ("data", "training", "runtime")) -> None:
        """Every ``${…}`` value of ``sections``, evaluated, against the schema the expression
        itself passed (:func:`~cnnspec.spec.schema.substituted_errors`): ``epochs: "${e}"`` with
        ``e: 1000000000`` was accepted, as the readers check a number's lower bound and type
        but the schema alone its upper one. Each error is said at the expression, with where
        its vars were set, unless a reader said one there already (or the expression failed)."""
        from cnnspec.spec.schema import substituted_errors

        values: dict[SpecPath, Any] = {}
        pending: list[tuple[SpecPath, Any]] = [((name,), self.doc.data.get(name)) for name in sections]
        while pending:
            path, node = pending.pop()
            if isinstance(node, dict):
                pending.extend(((*path, key), value) for key, value in node.items())
            elif isinstance(node, list):
                pending.extend(((*path, index), value) for index, value in enumerate(node))
            elif is_expression(node) and (value := self.value(path)) is not POISONED:
                values[path] = value
        said = self.diags.error_paths()  # (a use folded into another error's note is said)
        for path, found in substituted_errors(self.doc, values):
            where = format_path(path)
            if not any(where == p or p.startswith((f"{where}.", f"{where}[")) for p in said):
                self.error(found.message, path, found.hint, code=found.code)
                said.add(where)

    def number(
        self,
        path: SpecPath,
        default: Any,
        *,
        integer: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
        below: float | None = None,
        above: float | None = None,
    ) -> Any:
        """The number at ``path`` within the bounds (``above``/``below``: exclusive), or
        ``default`` after a located error."""
        value = self.value(path, default)
        if value is None or value is default or value is POISONED:
            # absent, or an expression that failed (reported once; errors raise at the end)
            return default
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if integer:
            ok = ok and float(value).is_integer()
        if ok and minimum is not None and value < minimum:
            ok = False
        if ok and maximum is not None and value > maximum:
            ok = False
        if ok and below is not None and value >= below:
            ok = False
        if ok and above is not None and value <= above:
            ok = False
        if not ok:
            want = "an integer" if integer else "a number"
            bounds = [f"> {above}"] if above is not None else []
            bounds += [f"≥ {minimum}"] if minimum is not None else []
            bounds += [f"≤ {maximum}"] if maximum is not None else []
            bounds += [f"< {below}"] if below is not None else []
            self.error(f"expected {want} {' and '.join(bounds)}; received {value!r}".strip(), path)
            return default
        return int(value) if integer else float(value)


def section_env(compiled: CompiledSpec) -> dict[str, Any]:
    """The spec's evaluated ``vars`` (the names ``${…}`` in data/training/runtime may use)."""
    from cnnspec.spec.resolve import Resolver

    return Resolver(compiled.doc, Diagnostics()).resolve_vars()


def _relative(reader: SectionReader, path_text: str, compiled: CompiledSpec, at: SpecPath) -> Path:
    """A data path: relative paths are read from the folder of the file that wrote them."""
    from cnnspec.spec.compose import path_refusal

    refused = path_refusal(path_text)
    if refused is not None:  # the OS calls would raise ValueError on it
        reader.error(refused, at)
        path_text = path_text.replace("\0", "")
    path = user_path(path_text)
    if path.is_absolute():
        return path
    loc = compiled.doc.loc(at)
    if loc is not None and not loc.file.startswith("<"):
        return Path(loc.file).resolve().parent / path
    return Path.cwd() / path


def _source_path(
    reader: SectionReader, source: dict[str, Any], key: str, compiled: CompiledSpec
) -> Path | None:
    """The path ``data.source.KEY`` names, read from the folder of the file that wrote it;
    ``None`` where its expression failed (reported: no path to resolve)."""
    if source[key] is POISONED:
        return None
    return _relative(reader, str(source[key]), compiled, ("data", "source", key))
