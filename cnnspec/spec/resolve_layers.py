"""Plain layers (:class:`LayerChecks`, a part of :class:`cnnspec.spec.resolve.Resolver`): a
layer item's parameters checked against its kind in the registry (unknown, missing, of the
wrong type, a division that leaves a remainder), its kind's shape rule run on its inputs (an
image layer fed an input of the wrong rank said once, where the input shape is set), and the
layer emitted as a node of the IR under its unique name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from cnnspec.errors import SpecPath, format_path, key_hint, spelled
from cnnspec.ir import Node
from cnnspec.layers.params import Param, meant_parameters, param_synonym
from cnnspec.layers.registry import Counts, LayerKind, Shape, ShapeError
from cnnspec.spec.expr import POISONED, ExpressionError, Poisoned, substitute
from cnnspec.spec.items import ITEM_EXTRAS, beside_hint
from cnnspec.spec.limits import MAX_NODES
from cnnspec.spec.memo import Site
from cnnspec.spec.scope import UNKNOWN, Scope
from cnnspec.spec.varrefs import input_shape_origin


class _Located:
    """Where a layer item wrote each parameter (its mapping's key, or the item itself for a
    single value), looked up only when a shape error names one: most layers never ask."""

    __slots__ = ("path", "raw", "single")

    def __init__(self, path: SpecPath, raw: dict[str, Any], single: bool) -> None:
        self.path, self.raw, self.single = path, raw, single

    def get(self, key: str, default: SpecPath) -> SpecPath:
        if key not in self.raw:
            return default
        return self.path if self.single else (*self.path, key)


def _example(kind: LayerKind) -> str:
    required = [p.name for p in kind.params if p.required]
    sample = {"filters": 32, "kernel_size": 3, "units": 10, "rate": 0.5, "height": 32, "width": 32}
    parts = ", ".join(f"{name}: {sample.get(name, '…')}" for name in required)
    return f"e.g. {kind.name}: {{{parts}}}"


def tuple_fragments(raw: dict[Any, Any]) -> dict[Any, Any]:
    """The pieces of a Python tuple written in a flow mapping: YAML reads
    ``{kernel_size: (3, 3)}`` as ``kernel_size: "(3"`` and a key ``3)`` without a value. Maps
    the first piece's key to the tuple's whole text and every later piece's key to ``None``
    (skipped), so the mistake is one error at the parameter, not also an unknown ``3)``."""
    found: dict[Any, Any] = {}
    items = list(raw.items())
    for index, (key, value) in enumerate(items):
        if not (isinstance(value, str) and value.lstrip().startswith("(") and ")" not in value):
            continue
        pieces = [value.strip()]
        tail: list[Any] = []
        for later, rest in items[index + 1 :]:
            text = str(later).strip()
            if rest is not None or "(" in text or later in found:
                break
            pieces.append(text)
            tail.append(later)
            if text.endswith(")"):
                found[key] = ", ".join(pieces)
                found.update(dict.fromkeys(tail))
                break
    return found


def _division_hint(param: Param, written: Any, value: Any, env: dict[str, Any]) -> str | None:
    """A hint for a whole float (``16.0``) that an expression with ``/`` computed where an
    integer is wanted: ``/`` always gives a float, ``//`` the integer. Only where the rewritten
    expression, evaluated in the same ``env``, gives an integer the parameter takes (``w // 2.0``
    is still a float)."""
    if not (isinstance(written, str) and "${" in written and "/" in written.replace("//", "")):
        return None
    if not (isinstance(value, float) and value.is_integer() and param.problem(int(value)) is None):
        return None
    rewritten = written.replace("/", "//").replace("////", "//")
    try:
        result = substitute(rewritten, env)
    except (Poisoned, ExpressionError):
        return None
    if type(result) is not int or param.problem(result) is not None:
        return None
    return f"use // for integer division: / always gives a float ({rewritten})"


def _not_image_rank(rank: int) -> bool:
    """Whether an input of ``rank`` axes (without the batch axis) fed to image layers is the
    input shape's mistake, reported where it was set (:meth:`Resolver.report_flat_input`): 2
    (no channel axis) or more than 3 (a batch axis, an extra one). One axis is left to each
    layer: a flat vector is more often a layer's wrong input than an image's."""
    return rank == 2 or rank > 3


def _takes_an_image_of(kind: LayerKind, params: dict[str, Any], shape: Shape) -> bool:
    """Whether a layer of any rank, refused for the input ``shape`` of 2 or more than 3 axes,
    takes the image that shape was meant to be (``[H, W, 1]``, or the shape without its unit
    axes): its error is then the input's, not its parameters'."""
    image = [*shape, 1] if len(shape) == 2 else _without_unit_axes(list(shape))
    if image is None:
        return False
    try:
        kind.output_shape(params, [tuple(image)])
    except ShapeError:
        return False
    return True


def _without_unit_axes(shape: list[int]) -> list[int] | None:
    """``shape`` of more than 3 axes brought to 3 by dropping axes of size 1 from the front
    (a batch axis), then the back; ``None`` when that does not reach 3 axes."""
    while len(shape) > 3 and shape[0] == 1:
        shape = shape[1:]
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return shape if len(shape) == 3 else None


class LayerChecks:
    """The resolver's checks and emission of plain layers. Its methods share the state
    :class:`cnnspec.spec.resolve.Resolver` sets up."""

    def layer_params(self, kind: LayerKind, body: Any, path: SpecPath) -> tuple[dict[str, Any], bool] | None:
        """The parameters written for a layer of ``kind`` (``body``: nothing, a mapping or its
        main parameter's value) and whether as that single value, whose path is the item's;
        ``None`` (reported) for a single value of a kind that takes none."""
        if body is None:
            return {}, False
        if isinstance(body, dict):
            return body, False
        if kind.main is not None:
            return {kind.main: body}, True
        self.error(
            f"`{kind.name}` takes no single value; received {spelled(body)}",
            path,
            code="layer-params",
            hint=f"write `- {kind.name}` on its own, or a mapping of its parameters",
            about_value=False,  # any value is refused: what it would be is beside the point
        )
        return None

    def unknown_parameter(self, kind: LayerKind, key: Any, raw: dict[str, Any], path: SpecPath) -> None:
        """Report the parameter ``key`` written for ``kind`` (beside ``raw``), which it has not,
        with the one meant: another library's name for it, a misspelling, or an item key."""
        beside = self.beside(path, raw)
        meant = param_synonym(key, kind.param_index, beside)
        hint = f"did you mean `{meant}`?" if meant is not None else key_hint(key, kind.param_index, beside)
        if key in ITEM_EXTRAS:
            hint = beside_hint(kind.name, key)
        self.error(
            f"unknown parameter {key!r} for `{kind.name}`",
            path,
            key=True,
            code="unknown-parameter",
            hint=hint or "parameters: " + (", ".join(kind.param_index) or "none"),
        )

    def missing_parameter(self, kind: LayerKind, name: str, path: SpecPath) -> None:
        """Report the required parameter ``name`` of the layer of ``kind`` at ``path``, which
        neither its item nor a per-kind default in force gives."""
        self.error(
            f"missing required parameter `{name}` for `{kind.name}`",
            path,
            code="missing-parameter",
            hint=_example(kind),
        )

    def layer(
        self,
        kind: LayerKind,
        body: Any,
        path: SpecPath,
        scope: Scope,
        inputs: list[str],
        item_id: str | None,
        env: dict[str, Any],
    ) -> str:
        written = self.layer_params(kind, body, path)
        if written is None:
            return UNKNOWN
        raw, single = written
        ok = True
        params: dict[str, Any] = {}
        sites: list[tuple[str, Any, Any]] = []  # parameters read while a call is recorded
        tuples = {} if single else tuple_fragments(raw)
        for key, value in raw.items():
            param = kind.param_index.get(key)
            ppath = path if single else (*path, key)
            if key in tuples:
                if tuples[key] is None:
                    continue  # the rest of a tuple, reported with its first piece
                value = tuples[key]  # `(3, 3)` whole, so the message and hint show it
            if param is None:
                self.unknown_parameter(kind, key, raw, ppath)
                ok = False
                continue
            good, value = self.evaluate(value, env, ppath)
            if not good:
                ok = False
                continue
            hint = param.hint(value)  # the name meant (choices, initializers …), or how to write it
            if hint is None:
                hint = _division_hint(param, raw[key], value, env)
            if self.param_error(param, value, ppath, hint):
                ok = False
                continue
            params[key] = value
            if self.site_logs and scope.block in self.site_logs:
                sites.append((key, raw[key], value))
        # A misspelt required parameter is one mistake: its unknown-parameter error says it.
        # Per-kind defaults in force here (spec, then block); a parameter written wins.
        kind_defaults = scope.defaults.get(kind.name)
        preset = {p: v for p, v in kind_defaults.items() if p not in raw} if kind_defaults else {}
        missing = [name for name in kind.required_names if name not in raw and name not in preset]
        if preset and any(value is POISONED for value, _ in preset.values()):
            # A default that failed (reported where it is declared): not missing, and the
            # layer stays silent, as after any failed parameter.
            preset = {p: pair for p, pair in preset.items() if pair[0] is not POISONED}
            ok = False
        if missing:
            meant = meant_parameters(raw, kind.param_index, missing)
            missing = [name for name in missing if name not in meant]
        for name in missing:
            self.missing_parameter(kind, name, path)
            ok = False
        most = kind.max_inputs
        if kind.arity == "many" and (len(inputs) < 2 or (most is not None and len(inputs) > most)):
            takes = "two or more" if most is None else "exactly two" if most == 2 else f"2 to {most}"
            plural = "s" if len(inputs) != 1 else ""
            self.error(
                f"`{kind.name}` merges {takes} tensors; received {len(inputs)} input{plural}",
                path,
                code="inputs",
                hint="give the layers to merge ids and list them: inputs: [a, b]"
                + (" (in that order)" if most == 2 else ""),
            )
            ok = False
        if kind.arity == "one" and len(inputs) > 1:
            self.error(
                f"`{kind.name}` takes one input; received {len(inputs)}",
                path,
                code="inputs",
                hint="merge them first with add, concat or multiply",
            )
            ok = False
        if preset:
            full = {**kind.default_values, **{p: value for p, (value, _) in preset.items()}, **params}
        else:
            full = {**kind.default_values, **params}
        # The tree keeps what the defaults set as if written here, so the emitted code says it.
        written = {**{p: text for p, (_, text) in preset.items()}, **raw} if preset else raw
        if preset:
            self.defaulted[path] = {p: text for p, (_, text) in preset.items()}
        located = _Located(path, raw, single)
        result = self.emit(kind, full, inputs, scope, path, item_id, ok, located, raw=written)
        for key, value, evaluated in sites:
            self.log_site(scope, len(self.nodes) - 1, key, value, env, evaluated)
        return result

    def log_site(
        self, scope: Scope, node: int | None, key: str, value: Any, env: dict[str, Any], result: Any
    ) -> None:
        """Log an evaluation in the body of a call being recorded that reads one of its block's
        value parameters (a layer parameter of ``self.nodes[node]``, or a ``when``)."""
        log = self.site_logs.get(scope.block)
        if log is None:
            return
        reads = log.reads(value)
        if reads:
            log.sites.append(Site(None if node is None else node - log.base, key, value, env, reads, result))

    def input_rank_error(
        self,
        kind: LayerKind,
        params: dict[str, Any],
        inputs: list[str],
        known: list[Shape],
        path: SpecPath,
        report: Callable[[], None],
    ) -> bool:
        """Hold back the shape error of an image layer fed the model input of shape ``[H, W]``,
        or of more than 3 axes (``[32, 32, 3, 1]``) (``report`` reports it at the layer);
        whether this layer's shape error was that one. :meth:`report_flat_input` decides where
        it goes once every layer is known. A layer of any rank (``normalization``) counts as an
        image layer when its error is the input's rank: the same parameters take the input
        made an image (EfficientNet's ``normalization: {axis: 3}`` fed ``[32, 32]``)."""
        if not self.reads_input(inputs) or len(known) != 1 or not _not_image_rank(len(known[0])):
            return False
        if kind.ranks is None:
            if not _takes_an_image_of(kind, params, known[0]):
                return False
        elif 3 not in kind.ranks or len(known[0]) in kind.ranks:
            return False
        self.flat_input_errors.append(report)
        self.flat_input_layers.append(self.path_text(path))
        return True

    def reads_input(self, inputs: list[str]) -> bool:
        """Whether a layer of ``inputs`` reads the model input, directly or through layers that
        keep its shape whatever its rank (:attr:`input_like`)."""
        return len(inputs) == 1 and (inputs[0] == self.input_name or inputs[0] in self.input_like)

    def report_flat_input(self, shape: Shape | None) -> None:
        """Report the image layers fed a 2-D input (or one of more than 3 axes): once, where
        the input shape was set (``input.shape``, or the var it reads: a zoo model's
        ``--set vars.input_shape=…``), where the mistake is (a missing channel axis, an extra
        axis), if no layer reads that input validly; else at each layer (such an input is
        itself valid: conv1d reads ``[steps, channels]``, and adding a channel axis would break
        that layer)."""
        if not self.flat_input_errors:
            return
        if self.flat_input_valid or shape is None or not _not_image_rank(len(shape)):
            for report in self.flat_input_errors:
                report()
            return
        if len(shape) == 2:
            height, width = shape
            hint = f"images need a channel axis: [{height}, {width}, 1] (or [{height}, {width}, 3] for RGB)"
        else:
            squeezed = _without_unit_axes(list(shape))
            hint = "an image shape is [height, width, channels], without the batch axis" + (
                f": {squeezed}" if squeezed else ""
            )
        loc, path = input_shape_origin(self.doc)
        if loc is None:
            loc, path = self.doc.loc(("input", "shape")), ("input", "shape")
        self.diags.error(
            f"expected an image shape [height, width, channels] for {self.flat_input_layers[0]}; "
            f"received {list(shape)}",
            loc,
            format_path(path),
            code="shape",
            hint=hint,
        )

    def input_labels(self, inputs: list[str]) -> list[str]:
        """How a shape error names each of a layer's ``inputs``: the layer it comes from (its
        id, or the name ``inspect`` shows) and its position: `b` (input 2)."""
        # (a name used twice carries "\0" and a count after it, kept unique for the graph)
        names = [tensor.split("\0")[0] for tensor in inputs]
        return [f"`{name}` (input {index + 1})" for index, name in enumerate(names)]

    def emit(
        self,
        kind: LayerKind,
        params: dict[str, Any],
        inputs: list[str],
        scope: Scope,
        path: SpecPath,
        item_id: str | None,
        ok: bool = True,
        located: _Located | None = None,
        *,
        raw: dict[str, Any] | None = None,
        role: str = "layer",
    ) -> str:
        """Name a checked layer, compute its shape and counts, and append it to the graph
        (and to the tree: ``raw`` is the item's parameters as written, ``role`` what made it)."""
        if len(self.nodes) >= MAX_NODES:
            if not self.too_many:
                self.error(
                    f"expected a model of at most {MAX_NODES:,} layers; this spec expands to more",
                    path,
                    code="too-large",
                    # (inside a repeat or block call, the count it multiplies; else the list is long)
                    hint="check `repeat.times`"
                    if self.repeats or self.call_stack
                    else f"cnnspec builds models of up to {MAX_NODES:,} layers, so that a mistaken spec "
                    "cannot stall the commands that read it",
                )
            self.too_many = True
            return UNKNOWN
        name = self.name_for(scope, item_id, kind.name)
        shapes_of = self.shapes.get
        known = [s for s in map(shapes_of, inputs) if s is not None]
        shape: Shape | None = None
        counts: Counts | None = None
        if ok and len(known) == len(inputs):
            try:
                shape = kind.output_shape(params, known)
                counts = kind.counts(params, known, shape)
                if (
                    self.reads_input(inputs)
                    and _not_image_rank(len(known[0]))
                    and kind.ranks
                    and 3 not in kind.ranks
                ):
                    self.flat_input_valid = True  # (an image shape would break this layer)
            except ShapeError as exc:
                target = located.get(exc.param or "", path) if located is not None else path
                shapes = ", ".join(str(list(s)) for s in known)
                detail = "" if "received" in exc.message else f" (input shape {shapes})"
                origins, fold = self.origin_notes(target)
                report = functools.partial(
                    self.diags.error,
                    exc.labelled(self.input_labels(inputs)) + detail,
                    self.doc.loc(target),
                    format_path(target),
                    notes=[*self.loop_notes(target, every=True), *self.call_notes(target), *origins],
                    context=self.context,
                    origins=fold,
                    code="shape",
                    hint=exc.hint,
                )
                if not self.input_rank_error(kind, params, inputs, known, path, report):
                    report()
        if name == self.input_name and name not in self.by_name:
            # the model input's name (`input.name: conv2d_1`): the hint to give "one of the
            # items" another id named no other item, and never the input
            where = self.doc.loc(("input", "name"))
            self.error(
                f"layer name {name!r} is used twice: by this layer and by the model input"
                + (f" (input.name, line {where.line})" if where is not None else ""),
                path,
                code="duplicate-name",
                hint="rename the input (input.name), or give this item an `id`",
            )
            name = f"{name}\0{len(self.nodes)}"
        elif name in self.by_name:
            if not self.under_refused_id(path):  # (else named unlike its id would name it)
                self.error(
                    f"layer name {name!r} is used twice",
                    path,
                    code="duplicate-name",
                    hint=self.duplicate_hint(item_id, self.by_name.get(name), self.loc(path), path),
                )
            name = f"{name}\0{len(self.nodes)}"
        elif name in self.call_names and self.call_names[name].group == scope.group:
            call = self.call_names[name]
            self.error(
                f"layer name {name!r} is used twice: by this layer and by the block call at "
                f"{self.where(call.path)}" + (" (its automatic name)" if call.automatic else ""),
                path,
                code="duplicate-name",
                hint=self.call_name_hint(call.automatic),
            )
        if counts is None:  # not computed: an error above, or an unknown input
            counts = Counts()
        node = Node(
            name=name,
            kind=kind.name,
            params=params,
            inputs=tuple(inputs),
            shape=shape,
            counts=counts,
            loc=self.loc(path),
            path=self.path_text(path),
            group=scope.group,
            input_shapes=tuple(known),
            trainable=self.trainable[-1] if self.trainable else True,
        )
        self.nodes.append(node)
        self.record.layer(node, raw, role, path)
        self.by_name[name] = node
        self.shapes[name] = shape
        if shape is not None and kind.ranks is None and self.reads_input(inputs) and [shape] == known:
            self.input_like.add(name)
        return name if shape is not None else self._poison(name)
