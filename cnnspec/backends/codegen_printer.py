"""The model module printed from the resolver's structured tree (``ir.tree``).

The printer never walks the spec: it reads the :class:`~cnnspec.ir.ModelTree`, where every
block call, repeat iteration and conditional item is recorded with the layers it produced.
A block is printed once, as a function, from all of its calls together; a repeat becomes a
``for`` loop from all of its iterations together. Every layer name is the resolver's
``node.name``: inside a function or loop it is written as the call's name parameter plus the
text the calls (iterations) share, with the numbers that differ fitted as a linear function of
the loop variables and conditions in scope. Whether a block is a function (else inlined) and
a repeat a loop (else unrolled) is decided once, before printing it, from that data.

The printer is written in parts, a module each: this module sets up its state and prints the
model function, its layer lists and plain layers; :class:`TreePrinter`'s other bases add

- :mod:`cnnspec.backends.codegen_decisions`: whether a block is a function, a repeat a loop;
- :mod:`cnnspec.backends.codegen_print_combinators`: residual, parallel and repeat items;
- :mod:`cnnspec.backends.codegen_print_blocks`: block calls and block functions;
- :mod:`cnnspec.backends.codegen_print_backbones`: backbone items, cut inside an item too.

What they read off the tree: :mod:`cnnspec.backends.codegen_tree` (instances, slots,
references), :mod:`cnnspec.backends.codegen_cuts` (a cut inside an item) and
:mod:`cnnspec.backends.codegen_fit` (numbers fitted to loop variables).
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from typing import Any

from cnnspec.backends.codegen_check import Unknown, same_value
from cnnspec.backends.codegen_cuts import Cut
from cnnspec.backends.codegen_decisions import PrintDecisions
from cnnspec.backends.codegen_fit import fit_text
from cnnspec.backends.codegen_model import (
    UNKNOWN,
    Binding,
    CodegenError,
    CodeWriter,
    Constant,
    Ctx,
    FuncState,
    Function,
    IdScope,
    LoopFrame,
    ModelModule,
    NameRef,
    PrefixPart,
    Stmt,
    TensorRef,
    _build_model_doc,
    _contains_expression,
    _direct,
    _first_free,
    _input_statement,
    _model_return,
    _reads_tensor,
    _sample,
    _where,
    augmentation_statements,
    default_kwargs,
    drop_unused,
    literal_kwargs,
    merge_ifs,
    node_kwargs,
)
from cnnspec.backends.codegen_print_backbones import BackbonePrinting
from cnnspec.backends.codegen_print_blocks import BlockPrinting
from cnnspec.backends.codegen_print_combinators import NEEDS_PROJECTION, PROJECTION, CombinatorPrinting
from cnnspec.backends.codegen_tree import (
    ITERATION_REF,
    PRUNED,
    Inst,
    Slot,
    _called,
    _reads,
    _tensor,
    alive,
    call_local,
    drop_pruned,
    expand_refs,
    own_items,
    partial_iteration_ids,
    plain,
    references,
    repeats_to_unroll,
    slots_of,
)
from cnnspec.backends.codegen_values import UnsafeValue, comment_text, literal_node
from cnnspec.backends.codegen_vars import gives, passed_alone
from cnnspec.errors import SpecPath
from cnnspec.ir import (
    INPUT,
    Backbone,
    BlockCall,
    Conditional,
    Item,
    Layer,
    Parallel,
    Repeat,
    Residual,
    layers_of,
    walk,
)
from cnnspec.layers.registry import REGISTRY
from cnnspec.spec.expr import ExpressionError, is_expression

#: The spec path of an augmentation layer the resolver made (``augmentation[0].random_flip``).
AUGMENTATION_PATH = re.compile(r"augmentation\[(\d+)\]\.[A-Za-z_][A-Za-z0-9_]*")


class TreePrinter(PrintDecisions, CombinatorPrinting, BlockPrinting, BackbonePrinting, CodeWriter):
    """Prints the model module from ``compiled.ir.tree`` (no walk of the spec)."""

    def __init__(
        self,
        compiled: Any,
        *,
        script: bool = False,
        reach: tuple[str, ...] = (),
        float32_outputs: frozenset[str] = frozenset(),
    ) -> None:
        """``reach``: the ids of a backbone's spec that the model around it names
        (``body.stem`` is ``stem``): its function returns them too. ``float32_outputs``: the
        layers (model outputs) written with ``dtype="float32"`` (``runtime.mixed_precision``,
        see :meth:`output_dtype`)."""
        super().__init__(compiled, script=script)
        self.script = script  # a training script loads the spec's weights; a model module doesn't
        #: The ids of this spec that the model around it names (a backbone's printer).
        self.reach = reach
        #: A backbone's printer: the backbone item's prefix of its layer names (``body_``).
        self.ir_prefix = ""
        self.float32_outputs = float32_outputs
        #: The layers of ``float32_outputs`` written so far (a backbone's printer adds its own).
        self.float32_written: set[str] = set()
        self.features: dict[Any, ast.expr] = {}
        self.frames: dict[Any, LoopFrame] = {}
        self.calls: dict[str, list[BlockCall]] = {}
        for item in own_items(self.tree.body):
            if isinstance(item, BlockCall):
                self.calls.setdefault(item.block, []).append(item)
        #: A backbone's printer: the prefix of its vars' constants, its blocks' function names.
        self.const_prefix = ""
        #: Spec paths outside the model's layers written as expressions (ModelModule.expressed).
        self.expressed: set[SpecPath] = set()
        self.function_names: dict[str, str] = {}
        self.backbone_partials = False
        self.modes: dict[str, str | None] = {}
        self.partials: dict[str, tuple[str, list[tuple[str, ast.expr]]]] = {}  # kind → (name, preset)
        var_values = {var.name: var.value for var in self.tree.vars}
        self.refs = [*expand_refs(references(self.tree), var_values), *reach]
        #: Per repeat id, the ids of its iterations that items name (``enc[i].skip``): with
        #: ``carry`` or without (``rep[0].c0``, ids the resolver records alike).
        self.collected: dict[str, list[str]] = {}
        for ref in self.refs:
            found = ITERATION_REF.fullmatch(ref)
            if found is None or ITERATION_REF.search(found[3]):
                continue  # (an iteration inside an iteration: both repeats are unrolled)
            if found[3] not in self.collected.setdefault(found[1], []):
                self.collected[found[1]].append(found[3])
        #: The repeats an iteration reference reaches through a call or iteration (unrolled).
        self.unroll = repeats_to_unroll(self.tree.body, self.refs)
        #: The collected ids some iteration does not make (no list: each is unrolled).
        self.partial = partial_iteration_ids(self.tree.body, self.collected, var_values)
        self.lists: dict[tuple[str, str], str] = {}  # (repeat id, inner id) → the list variable
        self.produced: dict[str, TensorRef] = {}  # IR name → the variable holding it
        self.notes: list[str] = []
        self.fitted: dict[tuple[Any, ...], tuple[str | None, list[Inst], list[Inst]]] = {}
        #: Per layer list (kept alive here, so ids stay unique): its local names by stem.
        self.unit_names: dict[tuple[int, str], tuple[list[Item], dict[str, int], set[str]]] = {}
        #: Whether the resolver left layers out (they lead to no output): the builder drops
        #: them, and so does the code (:meth:`print_slot`).
        self.any_pruned = any(not leaf.live for leaf in layers_of(self.tree.body))
        #: How many ``for`` loops enclose what is being printed, in the function being printed.
        self.loop_depth = 0
        #: A backbone's printer cut inside an item: the copies of the items that hold the cut
        #: (by ``id()``), each with how to write the part the cut tensor depends on.
        self.cuts: dict[int, Cut] = {}
        #: The cut's ``until:`` as the backbone item writes it (in the comments of what is cut).
        self.cut_label = ""
        #: A backbone's printer: the backbone items it is reached through, from the model's
        #: own, each with the document that writes it (a refusal is located at the first).
        self.around: list[tuple[Backbone, Any]] = []

    # -- entry point -----------------------------------------------------------------------
    def build(self) -> ModelModule:
        self.check_names()
        self.build_constants()
        self.build_partials()
        model = self.build_model_function()
        source = self.data.get("weights")
        if source is not None and not self.script:  # (train, build --weights and scripts do)
            text = source.get("from") if isinstance(source, dict) else source
            self.notes.append(f"the spec starts from the weights {text!r}; this code does not load them")
        # Only the functions the model calls (those of pruned calls only are left out).
        functions = [self.functions[name] for name in self.order]
        called = _called(model.body)
        for function in reversed(functions):  # a function calls only those defined before it
            if function.name in called:
                called |= _called(function.body)
        functions = [function for function in functions if function.name in called]
        missed = sorted((self.float32_outputs & set(self.ir_nodes)) - self.float32_written)
        if missed:  # (each output layer is printed by print_layer, print_merge or print_activation)
            raise CodegenError(f"the output layer {missed[0]!r} was not written in float32")
        bodies = [model.body, *(function.body for function in functions)]
        return ModelModule(
            name=self.ir.name,
            description=self.ir.description,
            constants=self.constants,
            functions=[*functions, model],
            augmentation=self.augmentation_statements(),
            uses_projection=self.uses_projection and any(_reads(body, PROJECTION) for body in bodies),
            uses_gate_test=self.uses_gate_test and any(_reads(body, NEEDS_PROJECTION) for body in bodies),
            notes=self.notes,
            uses_partial=bool(self.partials) or self.backbone_partials,
            expressed=frozenset(self.expressed),
        )

    def augmentation_statements(self) -> list[Stmt]:
        """The ``augmentation`` layers, with a parameter the spec writes as an expression of
        vars written as that expression of their constants (``height_factor=F``), as the
        model's layers are, where Keras gets its value as it is and nothing else follows from
        it (each such path kept in :attr:`expressed`); the others as the resolver made them."""
        stmts = augmentation_statements(self.ir, self.doc)
        items = self.data.get("augmentation")
        if not isinstance(items, list):
            return stmts
        constants = {f"{self.const_prefix}{var.name.upper()}": var.value for var in self.tree.vars}
        for stmt, node in zip(stmts, self.ir.augmentation, strict=True):
            found = AUGMENTATION_PATH.fullmatch(node.path)
            index = int(found.group(1)) if found is not None else -1
            item = items[index] if 0 <= index < len(items) else None
            raw = item.get(node.kind) if isinstance(item, dict) and len(item) == 1 else None
            kind = REGISTRY[node.kind]
            # the shorthand (``random_rotation: "${rot}"``) is the kind's main parameter, as a
            # model layer's is (``dropout: "${rate}"``): its value sits at the kind's own path
            shorthand = raw is not None and not isinstance(raw, dict) and kind.main is not None
            if shorthand:
                raw = {kind.main: raw}
            if not isinstance(raw, dict):
                continue
            kwargs = dict(stmt.kwargs)
            for pname, value in raw.items():
                param = kind.param_index.get(pname)
                key = param.keras_name if param is not None else None
                if key is None or key not in kwargs or not is_expression(value):
                    continue
                resolved = node.params.get(pname)
                try:
                    passed = ast.literal_eval(kwargs[key])
                    written = self.translate_value(value, self.var_bindings, None)
                except (ValueError, Unknown, ExpressionError, UnsafeValue):
                    continue
                if not same_value(passed, resolved) or not passed_alone(kind, node.params, pname, key):
                    continue
                if gives(written, constants, resolved):
                    kwargs[key] = written
                    place = ("augmentation", index, node.kind)
                    self.expressed.add(place if shorthand else (*place, pname))
            stmt.kwargs = list(kwargs.items())
        return stmts

    def input_shape_node(self) -> ast.expr:
        """``keras.Input``'s shape. In a model module: the spec's expression of vars where
        ``input.shape`` (or a side of it) writes one that gives its value, as the layers are
        written (each such path kept in :attr:`expressed`); the replay of
        :func:`~cnnspec.backends.codegen_probe.fitted_constants` tries other values of the vars
        it reads, against the model the resolver makes of them. In a training script: its value,
        which the script also decodes and resizes the images to."""
        shape = tuple(self.ir.input_shape)
        section = self.data.get("input")
        raw = section.get("shape") if isinstance(section, dict) else None
        if self.script or not self.tree.vars:
            return literal_node(shape)
        constants = {f"{self.const_prefix}{var.name.upper()}": var.value for var in self.tree.vars}

        def expression(value: Any, resolved: Any) -> ast.expr | None:
            if not isinstance(value, str) or not is_expression(value):
                return None
            try:
                node = self.translate_value(value, self.var_bindings, None)
            except (Unknown, ExpressionError, UnsafeValue):
                return None
            return node if gives(node, constants, resolved) else None

        if isinstance(raw, str):
            whole = expression(raw, list(shape))
            if whole is not None:
                self.expressed.add(("input", "shape"))
                return whole
        elif isinstance(raw, list) and len(raw) == len(shape):
            sides: list[ast.expr] = []
            for index, (value, side) in enumerate(zip(raw, shape, strict=True)):
                node = expression(value, side)
                if node is not None:
                    self.expressed.add(("input", "shape", index))
                sides.append(node or literal_node(side))
            return ast.Tuple(sides, ast.Load())
        return literal_node(shape)

    def build_partials(self) -> None:
        """Spec-level ``defaults:`` as one constant per kind, a ``functools.partial`` of the
        Keras class with the values that differ from Keras' own:
        ``BATCH_NORM = functools.partial(layers.BatchNormalization, momentum=0.9997)``."""
        taken = {c.name for c in self.constants} | set(self.module_names) | set(self._used_blocks())
        where = _where(self.doc.key_loc(("defaults",)))
        for kind_name, values in self.tree.defaults.items():
            kind = REGISTRY[kind_name]
            kwargs = literal_kwargs(kind, {**kind.defaults(), **values})
            # A value that is an object (`keras.initializers.Constant(…)`, a regularizer) stays
            # on each layer: a module constant calls nothing but `functools.partial`, and each
            # layer gets its own object, as the builder gives it.
            kwargs = [(k, v) for k, v in kwargs if not any(isinstance(n, ast.Call) for n in ast.walk(v))]
            if not kwargs:
                continue  # every value is Keras' default (or an object): nothing to say
            name = _first_free([kind_name.upper(), f"{kind_name.upper()}_LAYER"], taken)
            taken.add(name)
            func = ast.Attribute(ast.Name("functools", ast.Load()), "partial", ast.Load())
            cls = ast.Attribute(ast.Name("layers", ast.Load()), kind.keras_class, ast.Load())
            value = ast.Call(func, [cls], [ast.keyword(k, v) for k, v in kwargs])
            self.constants.append(Constant(name, value, f"defaults ({where})"))
            self.partials[kind_name] = (name, kwargs)

    def partial_kwargs(self, kind: Any, kwargs: list[tuple[str, ast.expr]]) -> list[tuple[str, ast.expr]]:
        """A layer's keyword arguments beside its kind's partial: the ones the partial sets
        to the same value go; a value the partial sets but this layer keeps at Keras' default
        (a parameter written on the layer) is written."""
        _, preset = self.partials[kind.name]
        given = {key: ast.dump(node) for key, node in kwargs}
        out = [(k, v) for k, v in kwargs if not any(k == p and given[k] == ast.dump(n) for p, n in preset)]
        defaults = default_kwargs(kind)
        for key, _ in preset:
            if key not in given and key in defaults:
                out.append((key, literal_node(defaults[key])))
        return out

    def build_constants(self) -> None:
        for var in self.tree.vars:
            node = literal_node(var.value)
            if _contains_expression(var.raw):
                try:
                    node = self.translate_value(var.raw, self.var_bindings, None, fold=False)
                except (Unknown, ExpressionError, UnsafeValue):
                    node = literal_node(var.value)
                if any(isinstance(n, ast.JoinedStr) for n in ast.walk(node)):
                    node = literal_node(var.value)
            constant = self.const_prefix + var.name.upper()
            self.constants.append(Constant(constant, node, _where(var.loc)))
            self.var_bindings[var.name] = Binding(ast.Name(constant, ast.Load()), var.value)

    def build_model_function(self) -> Function:
        taken = set(self.module_names) | {c.name for c in self.constants} | set(self.functions)
        taken |= set(self._used_blocks())
        fn = FuncState("build_model", None, taken, is_model=True)
        inputs_var = fn.allocate("inputs")
        chain = fn.allocate("x")
        entry = TensorRef(inputs_var, self.input_name, tuple(self.ir.input_shape))
        out: list[Stmt] = [_input_statement(inputs_var, self.ir, self.input_shape_node())]
        ctx = Ctx(fn, (), dict(self.var_bindings), IdScope(entry, None), chain, out)
        self.produced[self.input_name] = entry  # `outputs: [head, input]`
        last = self.print_list([Inst(self.tree.body, "")], ctx)
        refs = []
        written = self.tree.output_refs
        if len(written) != len(self.tree.outputs):
            written = (None,) * len(self.tree.outputs)
        for output, ref in zip(self.tree.outputs, written, strict=True):
            tensor = self.produced.get(output)
            if tensor is None and ref is not None:  # one iteration (`cells[0].new`), an inner id
                tensor = self.find_ref(ref, ctx, last)
            if tensor is None and len(self.tree.outputs) == 1:
                tensor = last  # no `outputs:`, the last layer
            if tensor is None:
                raise self.need(ctx, f"the model output {output!r}")
            refs.append(_tensor(tensor))
        result = refs[0] if len(refs) == 1 else ast.List(refs, ast.Load())
        out.append(_model_return(inputs_var, result, self.ir))
        self.freeze_statements(fn, out)
        doc = _build_model_doc(self.ir)
        return Function(
            "build_model", None, None, [], None, doc, "", drop_unused(merge_ifs(drop_pruned(out)))
        )

    def freeze_statements(self, fn: FuncState, out: list[Stmt]) -> None:
        """``trainable: false``: the model is made, then its frozen layers are named in one
        constant and frozen in a loop (readable, and the same whatever loops and block
        functions made the layers): ``return keras.Model(…)`` becomes
        ``model = keras.Model(…)``, the loop, ``return model``."""
        frozen = [node.name for node in self.ir.nodes if not node.trainable]
        if not frozen:
            return
        taken = set(self.module_names) | {c.name for c in self.constants} | set(self.functions)
        constant = _first_free(["FROZEN_LAYERS", "FROZEN_LAYER_NAMES"], taken)
        names = ast.List([ast.Constant(name) for name in frozen], ast.Load())
        self.constants.append(
            Constant(
                constant,
                names,
                "the layers of items with `trainable: false`: training leaves their weights as they are",
            )
        )
        model, layer = fn.allocate("model"), fn.allocate("layer_name")
        made = out.pop()
        assert made.value is not None
        out.append(Stmt("assign", target=model, value=made.value))
        freeze = Stmt("assign", target=f"{model}.get_layer({layer}).trainable", value=ast.Constant(False))
        loop = Stmt(
            "for", value=ast.Name(constant, ast.Load()), body=[freeze], frame=LoopFrame(layer), text="in"
        )
        out.append(loop)
        out.append(Stmt("return", value=ast.Name(model, ast.Load())))

    # -- names -----------------------------------------------------------------------------
    def name_ref(self, ctx: Ctx, elems: list[tuple[str, Inst]]) -> NameRef:
        texts = []
        for name, inst in elems:
            if not name.startswith(inst.prefix):
                raise self.need(ctx, f"layer {name!r} outside its block's prefix")
            texts.append(name[len(inst.prefix) :])
        parts = fit_text(texts, [inst for _, inst in elems], self.unit_count)
        if parts is None:
            raise self.need(ctx, f"the names {texts[:3]} with one expression")
        out: list[PrefixPart] = list(ctx.prefix)
        for part in parts:
            out.append(part if isinstance(part, str) else self.number(part))
        return NameRef(tuple(out))

    def number(self, fitted: tuple[int, dict[Any, int]]) -> PrefixPart:
        const, coefs = fitted
        expr: ast.expr | None = None
        for key, coef in coefs.items():
            frame = self.frames.get(key)
            if frame is not None:
                frame.used = True
            part = ast.parse(ast.unparse(self.features[key]), mode="eval").body
            if coef != 1:
                part = ast.BinOp(ast.Constant(coef), ast.Mult(), part)
            expr = part if expr is None else ast.BinOp(expr, ast.Add(), part)
        if expr is None:
            return str(const)
        if const:
            expr = ast.BinOp(expr, ast.Add(), ast.Constant(const))
        return expr

    def unit_count(self, inst: Inst, key: Any, stem: str, own: str) -> int:
        """How many names ``stem<N>`` one unit of feature ``key`` adds in ``inst`` (0 for the
        condition the item named ``own`` stands under: inside its ``if`` it is always true)."""
        items = inst.units.get(key, [])
        cached = self.unit_names.get((id(items), inst.prefix))
        if cached is None:
            stems: dict[str, int] = {}
            names: set[str] = set()
            for item in walk(items):
                if isinstance(item, Layer):
                    name = item.node.name
                elif isinstance(item, BlockCall):
                    name = item.prefix[:-1]
                else:
                    continue
                if name.startswith(inst.prefix):
                    local = name[len(inst.prefix) :]
                    names.add(local)
                    stem_of = local.rstrip("0123456789")
                    if stem_of != local:
                        stems[stem_of] = stems.get(stem_of, 0) + 1
            cached = self.unit_names[(id(items), inst.prefix)] = (items, stems, names)
        if own in cached[2] and key[0] != "loop":
            return 0
        return cached[1].get(stem, 0)

    # -- layer lists -----------------------------------------------------------------------
    def print_list(self, insts: list[Inst], ctx: Ctx, start: TensorRef | None = None) -> TensorRef:
        current = start if start is not None else ctx.scope.entry
        slots = slots_of(insts)
        run_end = -1
        comment: Stmt | None = None
        last_comment = ""
        for index, slot in enumerate(slots):
            if index > run_end:
                run_end, comment = self.comment_slots(slots, index)
            before = len(ctx.out)
            current = self.print_slot(slot, ctx, current)
            if comment is not None and any(stmt.kind != PRUNED for stmt in ctx.out[before:]):
                if comment.text != last_comment:
                    ctx.out.insert(before, comment)
                last_comment = comment.text
                comment = None
        return current

    def comment_slots(self, slots: list[Slot], index: int) -> tuple[int, Stmt | None]:
        end = index
        if plain(slots[index]):
            while end + 1 < len(slots) and plain(slots[end + 1]):
                end += 1
        first = self.doc.loc(slots[index].path)
        last = self.doc.loc(slots[end].path)
        labels = {slot.kind for slot in slots[index : end + 1]}
        what = labels.pop() if len(labels) == 1 else "layers"
        if first is None:
            return end, None
        where = _where(first)
        if last is not None and last.line != first.line and last.file == first.file:
            where += f"-{last.line}"
        return end, Stmt("comment", text=comment_text(f"{where} {what}"))

    def print_slot(self, slot: Slot, ctx: Ctx, current: TensorRef) -> TensorRef:
        if self.any_pruned and not any(alive(item) for item, _ in slot.elems):
            # Left out of the model in every call and iteration (it leads to no output): its
            # statements are set aside, and dropped unless a later statement reads one of
            # their variables (:func:`drop_pruned`). Printing them still records what later
            # items may name (its ids) and what numbers the layers after it.
            aside: list[Stmt] = []
            current = self.print_live_slot(slot, replace(ctx, out=aside), current)
            ctx.out.append(Stmt(PRUNED, body=aside))
            return current
        return self.print_live_slot(slot, ctx, current)

    def print_live_slot(self, slot: Slot, ctx: Ctx, current: TensorRef) -> TensorRef:
        first = slot.elems[0][0]
        if not isinstance(first, Conditional):
            return self.print_item(slot, ctx, current)
        try:
            condition = self.value(first.condition, ctx, current)
        except Unknown:
            condition = UNKNOWN
        inner = [(c.item, inst) for c, inst in slot.elems if c.value and c.item is not None]
        if condition is not UNKNOWN:
            if not condition or not inner:
                return current
            return self.print_item(Slot(slot.path, slot.kind, inner), ctx, current)
        test = self.translate(first.condition, ctx, current)
        key = ("when", slot.path)
        if not _reads_tensor(test):  # a shape test means something else further on
            self.features[key] = test
            for c, inst in slot.elems:
                inst.set(key, c.value, [c.item] if c.item is not None else [])
        if not inner:
            return current  # false in every call: nothing to write
        current = self.to_chain(ctx, current)
        inner_out: list[Stmt] = []
        inner_ctx = replace(ctx, out=inner_out)
        self.to_chain(inner_ctx, self.print_item(Slot(slot.path, slot.kind, inner), inner_ctx, current))
        ctx.out.append(Stmt("if", value=test, body=inner_out))
        return TensorRef(ctx.chain)

    def computed_id(self, extras: dict[str, Any]) -> str | None:
        """The ``id`` text of a layer or block call when it embeds ``${…}`` (``block${s + 1}``):
        such an item is named by an f-string of the same expressions, in a function or loop."""
        raw = extras.get("id")
        if isinstance(raw, str) and _contains_expression(raw) and "inputs" not in extras:
            return raw
        return None

    def computed_name(self, raw: str, ctx: Ctx, current: TensorRef, insts: list[Inst]) -> NameRef | None:
        """The name of an item whose ``id`` is computed: the function's prefix and the scopes
        around the item (``rep_``, ``enc_{i}_``), then the id's text and translated expressions
        (``None`` when the value is known here: a plain name)."""
        try:
            self.value(raw, ctx, current)
            return None
        except Unknown:
            pass
        node = self.translate(raw, ctx, current)
        parts: list[PrefixPart] = list(self.name_ref(ctx, [(i.prefix + i.scope, i) for i in insts]).parts)
        for value in node.values if isinstance(node, ast.JoinedStr) else [ast.FormattedValue(node, -1, None)]:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif (
                isinstance(value, ast.FormattedValue) and value.format_spec is None and value.conversion == -1
            ):
                parts.append(value.value)
            else:
                raise self.need(ctx, "an `id` that cannot be written as an f-string")
        return NameRef(tuple(parts))

    def print_item(self, slot: Slot, ctx: Ctx, current: TensorRef) -> TensorRef:
        first = slot.elems[0][0]
        extras = getattr(first, "extras", {})
        item_id = None
        computed = None
        raw_id = self.computed_id(extras) if isinstance(first, (Layer, BlockCall)) else None
        if raw_id is not None:
            computed = self.computed_name(raw_id, ctx, current, [inst for _, inst in slot.elems])
        if "id" in extras and computed is None:
            item_id = self.known(extras["id"], ctx, current, "an `id`")
        inputs = [current]
        if "inputs" in extras:
            refs = extras["inputs"]
            if isinstance(refs, dict) and isinstance(first, BlockCall):  # bound by name
                refs = [refs[name] for name in self.tree.blocks[first.block].inputs or (INPUT,)]
            inputs = self.input_refs(refs, ctx, current)
        head = inputs[0] if inputs else current
        cut = self.cuts.get(id(first))
        # An item that holds a backbone's cut ends at the cut: its output, which its id names,
        # is never made (the id only scopes the names inside it).
        if cut is not None and cut.kind in ("body", "shortcut", "projection", "branch"):
            return self.print_cut_path(slot, ctx, head, item_id, cut)
        if isinstance(first, (Repeat, Residual, Parallel)):
            if isinstance(first, Repeat):
                result = self.print_repeat(slot, ctx, head, item_id)
            elif isinstance(first, Residual):
                result = self.print_residual(slot, ctx, head, item_id)
            else:
                result = self.print_parallel(slot, ctx, head, item_id)
            if item_id is not None and cut is None:
                var = ctx.fn.allocate(item_id, "layer")
                ctx.out.append(Stmt("assign", target=var, value=ast.Name(result.var, ast.Load())))
                result = TensorRef(var, result.ir, result.shape)
        elif isinstance(first, Layer):
            result = self.print_layer(slot, ctx, inputs, item_id, computed)
        elif isinstance(first, BlockCall):
            local = item_id
            if "id" not in extras:  # reachable by its automatic name (`stage3.inner_1.out`)
                automatic = {call_local(call) for call, _ in slot.elems}
                local = automatic.pop() if len(automatic) == 1 else None
            result = self.print_call(slot, ctx, inputs, item_id, computed, local)
        elif isinstance(first, Backbone):
            result = self.print_backbone(slot, ctx, head, item_id)
        else:
            raise self.need(ctx, "an unknown item")
        if item_id is not None and cut is None:
            ctx.scope.ids[item_id] = result
            if ctx.fn.is_model and len(slot.elems) == 1:  # an id the model's `outputs` may name
                made = first.node.name if isinstance(first, Layer) else first.output
                self.produced[made] = result
        return result

    def input_refs(self, refs: Any, ctx: Ctx, current: TensorRef) -> list[TensorRef]:
        """The tensors of an item's ``inputs``: each entry of a list looked up on its own, or
        one reference, which may be one ``${…}`` that gives a list of them (``inputs:
        "${srcs}"`` with ``srcs: [a, b]``: the resolver reads each element as a reference)."""
        if not isinstance(refs, list) and is_expression(refs):
            try:
                value = self.value(refs, ctx, current)
            except Unknown:
                value = None  # (one iteration's element of a list: :meth:`find_ref`)
            if isinstance(value, list):
                return [self.input_ref(ref, ctx, current) for ref in value]
        return [self.input_ref(ref, ctx, current) for ref in (refs if isinstance(refs, list) else [refs])]

    def input_ref(self, raw: Any, ctx: Ctx, current: TensorRef) -> TensorRef:
        """The tensor an ``inputs`` entry names. One iteration of a repeat with an ``id``
        (``enc[2].skip``, ``enc[${levels - 1 - i}].skip`` in a loop) is an element of the list
        that repeat collects its ids in."""
        tensor = self.find_ref(raw, ctx, current)
        if tensor is None:
            raise self.need(ctx, f"unknown input {raw!r}")
        return tensor

    def find_ref(self, raw: Any, ctx: Ctx, current: TensorRef) -> TensorRef | None:
        """:meth:`input_ref`, or ``None`` where the code has no such tensor."""
        try:
            ref = self.value(raw, ctx, current)
        except Unknown:
            ref = None
        if ref is None:  # the index reads a loop variable
            found = ITERATION_REF.fullmatch(raw) if isinstance(raw, str) else None
            if found is None or (found[1], found[3]) not in self.lists:
                return None
            index = self.translate(found[2], ctx, current)
            return TensorRef(f"{self.lists[found[1], found[3]]}[{ast.unparse(index)}]")
        tensor = ctx.scope.lookup(ref) if isinstance(ref, str) else None
        if ref == self.input_name and tensor is None:
            tensor = ctx.scope.entry
        found = ITERATION_REF.fullmatch(ref) if tensor is None and isinstance(ref, str) else None
        if found is not None and (found[1], found[3]) in self.lists:
            return TensorRef(f"{self.lists[found[1], found[3]]}[{int(found[2])}]")
        return tensor

    # -- plain layers ----------------------------------------------------------------------
    def print_layer(
        self,
        slot: Slot,
        ctx: Ctx,
        inputs: list[TensorRef],
        item_id: str | None,
        computed: NameRef | None = None,
    ) -> TensorRef:
        leaves: list[Layer] = [item for item, _ in slot.elems]
        kind = REGISTRY[leaves[0].node.kind]
        kwargs = self.tree_kwargs(kind, leaves[0].raw or {}, ctx, inputs[0], leaves)
        name = computed or self.name_ref(ctx, [(leaf.node.name, inst) for leaf, inst in slot.elems])
        dtype = self.output_dtype(ctx, [leaf.node.name for leaf in leaves])
        if kind.name in self.partials:  # a layer written in the spec: the defaults apply
            kwargs = self.partial_kwargs(kind, kwargs)
            return self.put(
                kind, [*kwargs, *dtype], inputs, ctx, item_id, name, func=self.partials[kind.name][0]
            )
        return self.put(kind, [*kwargs, *dtype], inputs, ctx, item_id, name)

    def tree_kwargs(
        self, kind: Any, raw: dict[str, Any], ctx: Ctx, current: TensorRef, leaves: list[Layer]
    ) -> Any:
        """:meth:`layer_kwargs`, with a parameter that Keras does not take straight (a
        ``reshape`` target computed from a block parameter) written as the value every
        instance shares (:meth:`params_fit` made sure there is one)."""
        fixed: dict[str, Any] = {}
        for pname, value in raw.items():
            param = kind.param_index.get(pname)
            if param is None or not _contains_expression(value):
                continue
            try:
                self.value(value, ctx, current)
                continue
            except Unknown:
                pass
            full = {**kind.defaults(), **leaves[0].node.params}
            if _sample(param, 0) is not None and param.keras_name and _direct(kind, full, param):
                continue
            fixed[pname] = leaves[0].node.params.get(pname)
        return self.layer_kwargs(kind, {**raw, **fixed}, ctx, current)

    def put(
        self,
        kind: Any,
        kwargs: list[tuple[str, ast.expr]],
        inputs: list[TensorRef],
        ctx: Ctx,
        item_id: str | None,
        name: NameRef,
        target: str | None = None,
        func: str = "",
    ) -> TensorRef:
        var = target or self.target(ctx, item_id)
        ctx.out.append(
            Stmt(
                "layer",
                target=var,
                cls=kind.keras_class,
                func=func,
                kwargs=kwargs,
                name=name,
                inputs=[t.var for t in inputs],
                many=kind.arity == "many",
            )
        )
        ir_name = name.static_text() if ctx.fn.is_model else None
        node = self.ir_nodes.get(ir_name) if ir_name is not None else None
        return TensorRef(var, ir_name if node is not None else None, node.shape if node is not None else None)

    def made(self, ctx: Ctx, elems: list[tuple[Any, Inst]], role: str) -> NameRef | None:
        named = [(getattr(item, role).node.name, inst) for item, inst in elems if getattr(item, role)]
        return self.name_ref(ctx, named) if named else None

    def print_merge(self, ctx: Ctx, elems: list[tuple[Any, Inst]], tensors: list[TensorRef]) -> TensorRef:
        """The merge layer of a residual or parallel, as the resolver made it."""
        node = next(item.merge.node for item, _ in elems if item.merge is not None)
        name = self.made(ctx, elems, "merge")
        assert name is not None
        dtype = self.output_dtype(ctx, [item.merge.node.name for item, _ in elems if item.merge is not None])
        kwargs = [*node_kwargs(node), *dtype]
        return self.put(REGISTRY[node.kind], kwargs, tensors, ctx, None, name, target=ctx.chain)

    def print_activation(
        self, ctx: Ctx, elems: list[tuple[Any, Inst]], fields: dict[str, Any], current: TensorRef
    ) -> TensorRef:
        if fields.get("activation") is None:
            return current
        kind = REGISTRY["activation"]
        kwargs = self.layer_kwargs(kind, {"activation": fields["activation"]}, ctx, current)
        name = self.made(ctx, elems, "activation")
        assert name is not None
        names = [item.activation.node.name for item, _ in elems if item.activation is not None]
        kwargs = [*kwargs, *self.output_dtype(ctx, names)]
        return self.put(kind, kwargs, [current], ctx, None, name, target=ctx.chain)
