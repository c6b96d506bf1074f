"""The Python back end: a compiled spec → standalone, readable Python source.

``generate_code(spec)`` writes a module with ``build_model()`` (and ``build_augmentation()``
when the spec has augmentation); with ``script=True`` a whole training program around it.
The code never imports cnnspec. The pipeline:

1. :class:`~cnnspec.backends.codegen_printer.TreePrinter` prints the resolver's structured
   tree as functions of statements (blocks → functions, ``repeat`` → loops, ``vars`` →
   constants), deciding once, from what every call and iteration produced, which blocks to
   inline and which loops to unroll;
2. the Jinja templates in ``templates/`` lay the statements out as Python;
3. ``ruff format`` tidies it when ruff is installed (the templates already write clean code);
4. :func:`~cnnspec.backends.codegen_check.check_source` refuses any construct the templates do
   not write, and :func:`~cnnspec.backends.codegen_check.verify_model` runs ``build_model()``
   against a fake Keras and compares every layer with the IR.

Before the last rendering, :func:`~cnnspec.backends.codegen_probe.fitted_constants` replays the
code the same way for a few other values of the vars that count loops or decide, against the
resolver's model for each: a constant the code fits only as it is (layer names numbered for its
value) says so in its comment and a note; the code itself stays as printed. So does a constant
whose var reaches a setting outside the model's layers that the code writes as its value, not
as the constant's expression (:mod:`~cnnspec.backends.codegen_vars`).

Step 4 is a safety net: when it finds a difference, that is an internal error
(:class:`CodegenError`), never a reason to try other code; nothing is tried twice. Nothing
here imports TensorFlow.
"""

from __future__ import annotations

import ast
import functools
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.backends.codegen_check import CheckError, check_source, top_level_names, verify_model
from cnnspec.backends.codegen_lines import LINE_LENGTH, fold_long_lines
from cnnspec.backends.codegen_model import CodegenError, CodeWriter, Function, ModelModule, Stmt, _where
from cnnspec.backends.codegen_printer import TreePrinter
from cnnspec.backends.codegen_probe import FITTED_NOTE, ProbeCache, fitted_constants, probe_key
from cnnspec.backends.codegen_recursion import longest_chain, recursion_limit
from cnnspec.backends.codegen_values import (
    _escape_double_quoted,
    comment_text,
    py_string,
    unparse,
)
from cnnspec.backends.codegen_vars import MODULE_SECTIONS, SCRIPT_SECTIONS, literal_note, literal_places

if TYPE_CHECKING:
    import jinja2

    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.errors import SpecPath

INDENT = "    "


@dataclass
class GeneratedCode:
    """Generated source and how it was made."""

    text: str
    script: bool
    structured: bool
    notes: list[str] = field(default_factory=list)
    formatted: bool = False

    @property
    def lines(self) -> int:
        return self.text.count("\n")


# -- entry point ------------------------------------------------------------------------------
def generate_code(
    spec: CompiledSpec,
    *,
    script: bool = False,
    source_name: str | None = None,
    output: Path | None = None,
    format_code: bool = True,
) -> GeneratedCode:
    """The Python source of a compiled spec: a model module, or with ``script=True`` a
    training program. Raises :class:`~cnnspec.errors.SpecError` (located) for spec names that
    cannot be Python names; the result has passed the whitelist and the IR comparison."""
    from cnnspec.backends.codegen_model import MAIN_SPEC

    named = MAIN_SPEC.set(spec.doc.file)  # (the files its comments name, beside this one)
    try:
        return _generate_code(
            spec, script=script, source_name=source_name, output=output, format_code=format_code
        )
    finally:
        MAIN_SPEC.reset(named)


def source_label(spec: CompiledSpec) -> str:
    """What generated code's header says it is made from: the spec file, with the ``--set``
    overrides it was compiled with (``resnet.yaml --set 'model[0].conv2d.filters=32'``), a
    command line that makes it again. ``generate_code(spec)`` of a spec compiled with overrides
    said the plain file, whose code it is not."""
    import shlex

    file = str(spec.path or "<string>")
    if not spec.overrides:
        return file
    return shlex.join([file, *(word for item in spec.overrides for word in ("--set", item))])


def _generate_code(
    spec: CompiledSpec,
    *,
    script: bool,
    source_name: str | None,
    output: Path | None,
    format_code: bool,
) -> GeneratedCode:
    module = build_module(spec, script=script)
    context = module_context(spec, module, source_name=source_name or source_label(spec))
    if script:
        from cnnspec.backends.codegen_script import script_context

        extra = script_context(spec, output=output)
        extra["class_names"] = list_source(extra["class_names"], INDENT, "class_names = ")
        extra["callbacks"] = list_source(extra["callbacks"], INDENT, "return ")
        if not extra["task_script"]:
            extra["metrics"] = list_source(extra["metrics"], INDENT * 2, "metrics=", ",")
        context.update(extra)
        context["notes"] = note_lines([*module.notes, *extra["runtime_notes"]])
        from cnnspec.version import __version__

        program = output.name if output is not None else "train.py"
        description = spec.ir.description.strip()
        paragraphs = [f"Train {spec.ir.name}: a training program generated by cnnspec {__version__}."]
        if description:
            paragraphs.append(description)
        files = (
            "metrics.json (the test metrics of every output, as `cnnspec train` writes them) and history.png"
            if extra["task_script"]
            else "metrics.json, classification_report.txt, history.png and confusion_matrix.png"
        )
        run = f"Run `python {program} [--epochs N] [--batch-size N] [--out DIR [--force]]`."
        from cnnspec.backends.notebook import is_notebook

        if output is not None and is_notebook(output):
            run = (
                "Run the cells in order: the last calls main() with those options as a list, such as "
                'main(["--epochs", "5", "--out", "runs/x"]).'
            )
        paragraphs.append(
            f"{run} It writes "
            f"model.keras, {files} to a new folder runs/<name>-<YYYYmmdd-HHMMSS>, or to --out (new or "
            "empty; --force replaces the files of a used one)."
        )
        context["script_doc"] = docstring_block(paragraphs, "")
    template = "model.py.j2"
    if script:
        template = "train_task.py.j2" if context["task_script"] else "train.py.j2"
    text = render(template, context)
    # (one parse for both: the code of a large spec takes tens of milliseconds)
    parsed = ast.parse(text) if module.constants else None
    unused = unread_constants(text, module, parsed)
    # settings written as their values that a var reaches: its constant is not live either
    literal, places = literal_var_constants(
        spec,
        module,
        unused,
        sections=SCRIPT_SECTIONS if script else MODULE_SECTIONS,
        expressed=module.expressed | context.get("expressed", frozenset()),
        fixed=context.get("fixed_vars", set()),
    )
    fitted = fitted_var_constants(spec, text, module, unused | set(literal), parsed)
    if fitted:  # said at the top and on the console too: the file invites editing constants
        module.notes.append(fitted_note(fitted))
    if literal:
        module.notes.append(literal_note(places, literal))
    if fitted or literal:
        context["notes"] = note_lines([*module.notes, *context.get("runtime_notes", [])])
    fitted = {**fitted, **literal}
    if unused or fitted:  # rendered again with them marked (a constant's text is laid out first)
        why = {**unread_var_notes(spec), **dict.fromkeys(fitted, FITTED_NOTE)}
        marked = [
            replace(c, comment=f"{c.comment}; {note}" if c.comment else note)
            if (c.name in unused or c.name in fitted) and (note := why.get(c.name, UNREAD_NOTE))
            else c
            for c in module.constants
        ]
        context["constants"] = [constant_lines(c) for c in marked]
        text = render(template, context)
    formatted = False
    if format_code:
        result = ruff_format(text)
        if result is not None:
            text, formatted = result, True
    text = fold_long_lines(text)  # strings and comments from the spec are of any length
    tree = check_source(text, script=script)
    refuse_name_clashes(spec, module, tree, script=script)
    try:
        verify_model(without_float32_dtypes(tree) if float32_outputs(spec) else tree, spec.ir)
    except CheckError as exc:
        raise CodegenError(f"generated code differs from the model: {exc.message}") from None
    notes = [*module.notes, *context.get("runtime_notes", []), *context.get("data_notes", [])]
    return GeneratedCode(text, script, True, notes, formatted)


#: The comment of a var's constant that no code reads.
UNREAD_NOTE = "not read below: decided when this code was generated"


def unread_var_notes(spec: CompiledSpec) -> dict[str, str]:
    """The comment of the constant of each var the spec itself never reads (the resolver's
    ``unused-var`` warning, by the constant's name): no ``${…}`` names it, or every one that
    does reads a block parameter or a loop variable of its name. Not a choice made while
    generating (:data:`UNREAD_NOTE`): the spec's own code never read it."""
    from cnnspec.spec.varrefs import unread_vars

    notes: dict[str, str] = {}
    for name, shadows in unread_vars(spec.doc.data).items():
        if shadows:
            what = " and ".join(shadow.what for shadow in shadows)
            notes[name.upper()] = f"not read below: every ${{{name}}} of the spec reads {what}"
        else:
            notes[name.upper()] = "not read below: the spec reads it nowhere"
    return notes


def unread_constants(text: str, module: ModelModule, tree: ast.Module | None = None) -> set[str]:
    """The module's constants (its vars) that no code of ``text`` reads: a var the resolver
    used up while generating (a `when:` decided, a zoo head's `include_top`, a backbone's
    `input_shape` that its input tensor overrides). They stay, as every var does, but say so
    (:data:`UNREAD_NOTE`): editing `INCLUDE_TOP = False` in the file changes nothing. ``tree``:
    ``text`` parsed already."""
    names = {constant.name for constant in module.constants}
    if not names:  # (no vars: the module is not parsed for them, a script's tenth of a second)
        return set()
    read = {
        node.id
        for node in ast.walk(ast.parse(text) if tree is None else tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    return names - read


def fitted_var_constants(
    spec: CompiledSpec, text: str, module: ModelModule, unused: set[str], parsed: ast.Module | None = None
) -> dict[str, str]:
    """The constants of the spec's vars (each with its var) that the code ``text`` reads and
    fits only as they are (:func:`~cnnspec.backends.codegen_probe.fitted_constants`): layer
    names or ``when:``s decided from their values. A backbone's constants are its spec's, not
    tried. ``parsed``: ``text`` parsed already (the probes only read it)."""
    if spec.ir.tree is None:
        return {}
    names = {constant.name for constant in module.constants}
    constants = {
        var.name: var.name.upper()
        for var in spec.ir.tree.vars
        if var.name.upper() in names and var.name.upper() not in unused
    }
    if not constants:
        return {}
    spec_key = probe_key(spec)
    key = None if spec_key is None else (*spec_key, spec.options, text, tuple(constants.items()))

    def probed() -> dict[str, str]:
        tree = ast.parse(text) if parsed is None else parsed
        if float32_outputs(spec):
            tree = without_float32_dtypes(tree)
        return {constants[name]: name for name in fitted_constants(spec, tree, constants)}

    return dict(_FITTED.get_or_make(key, probed))  # (a copy: the kept verdict stays as it was)


#: The verdicts of :func:`fitted_var_constants` by the spec's
#: :func:`~cnnspec.backends.codegen_probe.probe_key`, its options, the code and its constants,
#: most recent last: the same spec generated again (another command, or the tests' many
#: generations of each library spec) probes nothing again. The verdict depends on nothing else:
#: the probes resolve the spec's document and replay this code. Small values; the keys hold
#: the code, tens of kilobytes at most.
FITTED_CACHE_SIZE = 128
_FITTED = ProbeCache(FITTED_CACHE_SIZE)


def literal_var_constants(
    spec: CompiledSpec,
    module: ModelModule,
    unused: set[str],
    *,
    sections: tuple[str, ...],
    expressed: frozenset[SpecPath] | set[SpecPath],
    fixed: set[str],
) -> tuple[dict[str, str], dict[str, list[SpecPath]]]:
    """The constants (each with its var) that code written with the var's value reads too: a
    setting of ``sections`` not written as the constant's expression
    (:func:`~cnnspec.backends.codegen_vars.literal_places`), or a value the script derives from
    the model (``fixed``: the output units, by var); and the places, by var, for the note."""
    names = {constant.name for constant in module.constants} - unused
    places = literal_places(spec.doc.data, sections, set(expressed))
    for var in fixed:
        places.setdefault(var, []).append(("the model's output units",))
    found = {var.upper(): var for var in places if var.upper() in names}
    return found, places


def fitted_note(fitted: dict[str, str]) -> str:
    """The module's note on the constants it fits only as they are (``fitted``: each
    constant's var)."""
    constants = ", ".join(fitted)
    variables = ", ".join(f"vars.{var}" for var in fitted.values())
    one = len(fitted) == 1
    return (
        f"the code fits {'the constant' if one else 'the constants'} {constants} only as "
        f"{'it is' if one else 'they are'}: layer names or `when:`s were decided from "
        f"{'its value' if one else 'their values'}; for other values change {variables} in the spec "
        "and generate again"
    )


def refuse_name_clashes(spec: CompiledSpec, module: ModelModule, tree: ast.Module, *, script: bool) -> None:
    """Refuse a module in which a name the model code defines (a var's constant, a block's
    function, a ``defaults`` partial) is bound again by the templates' code: the later binding
    would replace it, and the replay check would report the result as an internal error.

    The model module's own names are refused before printing (:meth:`CodeWriter.check_names`
    against :data:`~cnnspec.backends.codegen_model.MODULE_NAMES`); a script's depend on the
    spec's data and training settings, so a var or block is checked against the names this
    script binds, here, before the code is verified or written: the same located error,
    naming it and asking for another name. The printer's own names avoid every name of any
    script (:func:`~cnnspec.backends.codegen_model.script_names`), so a clash of one of those
    is an internal error."""
    bound = Counter(top_level_names(tree))
    own = {constant.name for constant in module.constants} | {function.name for function in module.functions}
    clashes = sorted(name for name in own if bound[name] > 1)
    if not clashes:
        return
    writer = CodeWriter(spec, script=script)
    writer.reserved |= set(clashes)
    writer.check_names()  # raises the located error when a var or block takes the name
    raise CodegenError(f"the generated module binds {', '.join(map(repr, clashes))} more than once")


def build_module(spec: CompiledSpec, *, script: bool = False) -> ModelModule:
    """The model module printed from the resolver's structured tree (blocks and loops that
    cannot share one text are inlined or unrolled, and the module's notes say so). Under
    ``runtime.mixed_precision`` its output layers are written with ``dtype="float32"``, as
    :func:`~cnnspec.backends.keras_builder.build_model` makes them under the mixed policy
    that ``cnnspec train`` (and the generated script) sets."""
    return TreePrinter(spec, script=script, float32_outputs=float32_outputs(spec)).build()


def float32_outputs(spec: CompiledSpec) -> frozenset[str]:
    """The layers written with ``dtype="float32"``: the model's outputs under
    ``runtime.mixed_precision``, else none."""
    return frozenset(spec.ir.outputs) if mixed_precision(spec) else frozenset()


def mixed_precision(spec: CompiledSpec) -> bool:
    """``runtime.mixed_precision`` (the schema allows true or false only), as ``cnnspec train``
    reads it."""
    runtime = spec.doc.data.get("runtime")
    return isinstance(runtime, dict) and runtime.get("mixed_precision") is True


def without_float32_dtypes(tree: ast.Module) -> ast.Module:
    """A copy of ``tree`` without the ``dtype="float32"`` arguments of its calls: the output
    layers' compute dtype under ``runtime.mixed_precision``, which is not part of the IR that
    :func:`~cnnspec.backends.codegen_check.verify_model` compares (the printer writes it on
    exactly the output layers and checks that it missed none)."""
    import copy

    stripped = copy.deepcopy(tree)
    for node in ast.walk(stripped):
        if isinstance(node, ast.Call):
            node.keywords = [
                kw
                for kw in node.keywords
                if not (
                    kw.arg == "dtype" and isinstance(kw.value, ast.Constant) and kw.value.value == "float32"
                )
            ]
    return stripped


# -- templates --------------------------------------------------------------------------------
TEMPLATES = (
    "model.py.j2",
    "train.py.j2",
    "train_task.py.j2",
    "_model_code.j2",
    "_macros.j2",
    "_weights_code.j2",
    "_task_files.j2",
    "_training_code.j2",
)


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2

    from cnnspec.resources import templates_dir

    folder = templates_dir()

    def load(name: str) -> str:
        if name not in TEMPLATES:
            raise jinja2.TemplateNotFound(name)
        return folder.joinpath(name).read_text(encoding="utf-8")

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = py_string
    return env


def render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(**context)


# -- formatting -------------------------------------------------------------------------------
def ruff_binary() -> str | None:
    """The ruff executable, when installed (it is a development dependency)."""
    try:
        from ruff.__main__ import find_ruff_bin  # type: ignore[import-not-found]

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    return found


def ruff_format(text: str) -> str | None:
    """``text`` formatted by ``ruff format`` (line length 110), or ``None`` without ruff."""
    binary = ruff_binary()
    if binary is None:
        return None
    try:
        return _formatted(binary, text)
    except _NotFormatted:
        return None


class _NotFormatted(Exception):
    """ruff could not be run, or refused the text."""


@functools.lru_cache(maxsize=64)
def _formatted(binary: str, text: str) -> str:
    """``ruff format``'s output for ``text``, kept for the texts formatted last: a process that
    generates one spec's code again (a session's codegen and check, the language server, the
    tests: a third of their calls) starts no second ruff for the same text. A failure raises,
    so it is never kept and the next call tries again."""
    try:
        done = subprocess.run(
            [binary, "format", "--isolated", f"--line-length={LINE_LENGTH}", "--target-version=py311", "-"],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise _NotFormatted from exc
    if done.returncode != 0:
        raise _NotFormatted
    return done.stdout.decode("utf-8")


# -- the template context ---------------------------------------------------------------------
def module_context(spec: CompiledSpec, module: ModelModule, *, source_name: str) -> dict[str, Any]:
    from cnnspec.version import __version__

    description = module.description.strip()
    intro = f"{module.name}: a Keras 3 model generated by cnnspec {__version__}."
    limit = recursion_limit(spec.ir)
    return {
        "version": __version__,
        "source": comment_text(source_name or "<spec>", 160),
        "spec_hash": spec.spec_hash()[:12],
        "module_doc": docstring_block([intro, description] if description else [intro], ""),
        "name_literal": py_string(module.name),
        "constants": [constant_lines(c) for c in module.constants],
        "functions": [render_function(fn) for fn in module.functions],
        "augmentation": [render_aug_layer(stmt) for stmt in module.augmentation],
        "augmentation_name": py_string(f"{module.name}_augmentation"),
        "augmentation_comment": augmentation_comment(spec),
        "uses_projection": module.uses_projection,
        "uses_gate_test": module.uses_gate_test,
        "uses_partial": module.uses_partial,
        "notes": note_lines(module.notes),
        # a model deep enough for Keras to meet Python's recursion limit raises it first
        "recursion_limit": limit,
        "deep_chain": f"{longest_chain(spec.ir):,}" if limit else "",
    }


def constant_lines(constant: Any) -> dict[str, str]:
    """A module constant as ruff lays it out: the comment beside it, or above it when the line
    would be too long; a call (a kind's ``functools.partial``) split over lines if need be."""
    value = unparse(constant.value)
    comment = comment_text(constant.comment)
    above = ""
    line = f"{constant.name} = {value}"
    if comment and len(line) + 4 + len(comment) > LINE_LENGTH:
        above, comment = comment, ""
    if len(line) > LINE_LENGTH and isinstance(constant.value, ast.Call):
        call = constant.value
        args = [unparse(a) for a in call.args] + [f"{k.arg}={unparse(k.value)}" for k in call.keywords]
        if len(INDENT) + len(", ".join(args)) <= LINE_LENGTH:
            value = f"{unparse(call.func)}(\n{INDENT}{', '.join(args)}\n)"
        else:
            value = f"{unparse(call.func)}(\n" + "".join(f"{INDENT}{a},\n" for a in args) + ")"
    if len(line) > LINE_LENGTH and isinstance(constant.value, ast.List):  # FROZEN_LAYERS
        value = list_source([unparse(item) for item in constant.value.elts], "", f"{constant.name} = ")
    return {"name": constant.name, "value": value, "comment": comment, "above": above}


def note_lines(notes: list[str]) -> list[str]:
    """The emitter's notes as comment text, wrapped to the line length."""
    lines = []
    for note in notes:
        wrapped = textwrap.wrap(comment_text(note, 400), LINE_LENGTH - len("# Note: "))
        lines.extend(f"Note: {line}" if i == 0 else f"      {line}" for i, line in enumerate(wrapped))
    return lines


def docstring_block(paragraphs: list[str], indent: str) -> str:
    """A docstring of wrapped paragraphs; every character escaped as needed (see
    :func:`~cnnspec.backends.codegen_values.docstring`)."""
    width = LINE_LENGTH - len(indent) - 4
    lines: list[str] = []
    for index, paragraph in enumerate(paragraphs):
        words = [_escape_double_quoted(word) for word in paragraph.split()]
        wrapped = textwrap.wrap(" ".join(words), width, break_long_words=False, break_on_hyphens=False)
        if index:
            lines.append("")
        lines.extend(wrapped or [""])
    if lines and lines[-1].endswith("\\") and not lines[-1].endswith("\\\\"):
        lines[-1] += " "
    if len(lines) == 1 and len(indent) + len(lines[0]) + 6 <= LINE_LENGTH:
        body = lines[0]
        if body.endswith('"'):
            body += " "
        return f'"""{body}"""'
    if len(lines) == 1:  # two lines of text: ruff format joins one line and its closing quotes
        lines = textwrap.wrap(lines[0], width - 10, break_long_words=False, break_on_hyphens=False)
    inner = "\n".join(f"{indent}{line}" if line else "" for line in lines[1:])
    return f'"""{lines[0]}\n{inner}\n{indent}"""' if inner else f'"""{lines[0]}\n{indent}"""'


def render_function(fn: Function) -> dict[str, Any]:
    params = []
    for p in fn.params:
        text = p.name
        if p.annotation:
            text += f": {p.annotation}"
        if p.default is not None:
            text += f" = {unparse(p.default)}" if p.annotation else f"={unparse(p.default)}"
        params.append(text)
    if fn.tensor is not None:
        args = fn.tensor.split(", ")  # a block's input(s)
        if params or fn.prefix_param:
            args.append("*")
        args.extend(params)
        if fn.prefix_param:
            args.append(f"{fn.prefix_param}: str")
    else:
        args = []
    head = f"def {fn.name}("
    fills = [
        {"name": p.name, "value": unparse(p.fill), "unset": unparse(p.unset or ast.Constant(None))}
        for p in fn.params
        if p.fill is not None
    ]
    lines = statements(fn.body, 1)
    return {
        "name": fn.name,
        "head": head,
        "args": args,
        "form": call_form("", head, args, "):"),
        "doc": docstring_block([fn.doc], INDENT),
        "comment": comment_text(f"block `{fn.block}` ({fn.comment})") if fn.block else "",
        "fills": fills,
        "lines": lines,
    }


def list_source(items: list[str], indent: str, prefix: str = "", suffix: str = "") -> str:
    """A list display: on one line when ``indent + prefix + [...] + suffix`` fits, else one
    item per line (with a trailing comma, as ruff writes it)."""
    inline = "[" + ", ".join(items) + "]"
    if not items or len(indent) + len(prefix) + len(inline) + len(suffix) <= LINE_LENGTH:
        return inline
    inner = "".join(f"{indent}{INDENT}{item},\n" for item in items)
    return f"[\n{inner}{indent}]"


def call_form(indent: str, head: str, args: list[str], tail: str, inputs: str | None = None) -> str:
    """How a call is laid out, as ruff formats it: on one line; for ``layer(...)(inputs)``
    with only ``inputs`` moved to the next line; with its arguments on one indented line; or
    one argument per line."""
    joined = ", ".join(args)
    if len(indent) + len(head) + len(joined) + len(tail) <= LINE_LENGTH:
        return "inline"
    if inputs is not None and len(indent) + len(head) + len(joined) + 2 <= LINE_LENGTH:
        return "tailsplit"
    if len(indent) + 4 + len(joined) <= LINE_LENGTH:
        return "hug"
    return "explode"


def statements(body: list[Stmt], depth: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    indent = INDENT * depth
    for stmt in body:
        line: dict[str, Any] = {"kind": stmt.kind, "indent": indent}
        if stmt.kind == "comment":
            room = LINE_LENGTH - len(indent) - 2
            line["text"] = comment_text(stmt.text, max(room, 20))
        elif stmt.kind == "layer":
            assert stmt.name is not None
            args = [f"{k}={unparse(v)}" for k, v in stmt.kwargs]
            args.append(f"name={unparse(stmt.name.node())}")
            inputs = f"[{', '.join(stmt.inputs)}]" if stmt.many else stmt.inputs[0]
            head = f"{stmt.target} = {stmt.func or f'layers.{stmt.cls}'}("  # func: a partial
            tail = f")({inputs})"
            form = call_form(indent, head, args, tail, inputs)
            line.update(head=head, args=args, tail=tail, inputs=inputs, form=form)
        elif stmt.kind == "call":
            assert stmt.name is not None
            args = [*stmt.inputs, *[f"{k}={unparse(v)}" for k, v in stmt.kwargs]]
            args.append(f"{stmt.text or 'name'}={unparse(stmt.name.node())}")
            head = f"{stmt.target} = {stmt.func}("
            line.update(head=head, args=args, tail=")", form=call_form(indent, head, args, ")"))
        elif stmt.kind == "assign":
            assert stmt.value is not None
            line.update(target=stmt.target, value=_bare(stmt.value))
        elif stmt.kind == "return":
            assert stmt.value is not None
            line["value"] = _bare(stmt.value)
        elif stmt.kind == "expr":  # a call for its effect: skips.append(skip)
            assert stmt.value is not None
            line["value"] = unparse(stmt.value)
        elif stmt.kind == "for":
            assert stmt.frame is not None and stmt.value is not None
            # text "in": a loop over the value itself (a list of names), else over range(value)
            over = unparse(stmt.value) if stmt.text == "in" else f"range({unparse(stmt.value)})"
            line.update(var=stmt.frame.var, iter=over)
        elif stmt.kind == "if":
            assert stmt.value is not None
            line["test"] = unparse(stmt.value)
        out.append(line)
        if stmt.kind in ("for", "if"):
            inner = statements(stmt.body, depth + 1)
            out.extend(inner or [{"kind": "pass", "indent": INDENT * (depth + 1)}])
    return out


def _bare(value: ast.expr) -> str:
    """An expression as ruff writes it on the right of ``=`` or ``return``: a tuple unparenthesised."""
    if isinstance(value, ast.Tuple) and value.elts:
        return ", ".join(unparse(item) for item in value.elts)
    return unparse(value)


def augmentation_comment(spec: CompiledSpec) -> str:
    items = spec.doc.data.get("augmentation") or []
    if not items:
        return ""
    first, last = spec.doc.loc(("augmentation", 0)), spec.doc.loc(("augmentation", len(items) - 1))
    if first is None:
        return ""
    where = _where(first)
    if last is not None and last.line != first.line and last.file == first.file:
        where += f"-{last.line}"
    return comment_text(f"{where} augmentation")


def render_aug_layer(stmt: Stmt) -> dict[str, Any]:
    assert stmt.name is not None
    args = [f"{k}={unparse(v)}" for k, v in stmt.kwargs]
    args.append(f"name={unparse(stmt.name.node())}")
    head = f"layers.{stmt.cls}("
    indent = INDENT * 3
    return {"head": head, "args": args, "form": call_form(indent, head, args, "),"), "comment": stmt.text}


def source_lines(path: Path | None) -> int:
    """Non-empty lines of a spec file (for the "lines of code vs spec" figure)."""
    if path is None or not path.is_file():
        return 0
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def parse_ok(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True
