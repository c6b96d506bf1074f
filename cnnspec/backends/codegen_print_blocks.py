"""Block calls printed (:class:`BlockPrinting`, a part of
:class:`cnnspec.backends.codegen_printer.TreePrinter`): a call of a block printed as a function,
or the block's layers written in place, and the results the caller reads.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import Any

from cnnspec.backends.codegen_check import Unknown
from cnnspec.backends.codegen_model import (
    ANNOTATIONS,
    UNKNOWN,
    Binding,
    Ctx,
    FuncParam,
    FuncState,
    Function,
    IdScope,
    NameRef,
    Stmt,
    TensorRef,
    _first_free,
    _reads_tensor,
    _short,
    _where,
    drop_unused,
    merge_ifs,
)
from cnnspec.backends.codegen_tree import (
    Inst,
    Slot,
    _argument_values,
    _tensor,
    _tuple,
    call_scope,
    drop_pruned,
    reads_first_output,
    refers_to_input,
)
from cnnspec.backends.codegen_values import comment_text, is_identifier, literal_node
from cnnspec.ir import BlockCall, walk
from cnnspec.spec.expr import is_expression


def _renamed_note(renamed: dict[str, str], module_taken: set[str]) -> str:
    """The sentences of a block function's docstring that say which spec parameter each
    renamed Python parameter is, and why: a name the module uses itself, or one Python uses
    (a keyword or builtin)."""
    out = ""
    for why, spec_names in (
        ("the module uses", [p for p in renamed if p in module_taken]),
        ("Python uses", [p for p in renamed if p not in module_taken]),
    ):
        if not spec_names:
            continue
        spec_text = ", ".join(f"`{spec}`" for spec in spec_names)
        py_text = ", ".join(f"`{renamed[spec]}`" for spec in spec_names)
        out += (
            f" Parameter {spec_text} is {py_text} here: {why} the name itself."
            if len(spec_names) == 1
            else f" Parameters {spec_text} are {py_text} here: {why} those names itself."
        )
    return out


class BlockPrinting:
    """The printer's block calls. Its methods share the state
    :class:`cnnspec.backends.codegen_printer.TreePrinter` sets up."""

    def print_call(
        self,
        slot: Slot,
        ctx: Ctx,
        inputs: list[TensorRef],
        item_id: str | None,
        computed: NameRef | None = None,
        local: str | None = None,
    ) -> TensorRef:
        """A block call: a call of the block's function, or its layers written in place. Its
        outputs and (written in place) its ids become reachable under ``local`` (``c0.x``)."""
        elems: list[tuple[BlockCall, Inst]] = slot.elems
        call0 = elems[0][0]
        name = call0.block
        entry = inputs[0]
        block_name = computed or self.name_ref(ctx, [(call.prefix[:-1], inst) for call, inst in elems])
        block = self.tree.blocks[name]
        declared = block.params
        raw = call0.raw_args
        if id(call0) in self.cuts:  # a backbone's cut inside it: written in place, up to the cut
            outputs = self.inline_call(elems, declared, raw, ctx, inputs, block_name, local, cut=True)
        elif self.block_mode(name) is not None:
            outputs = self.inline_call(elems, declared, raw, ctx, inputs, block_name, local)
        else:
            function = self.function_for(name)
            args = []
            for pname in declared:
                if pname in raw:
                    args.append((function.arg_name(pname), self.translate(raw[pname], ctx, entry)))
            own = item_id
            if own is None and local is not None and block.outputs:
                # Without an id the first output would live in the chain variable, which the
                # next call of any block or layer without an id overwrites: one that a later
                # item reads by the call's automatic name (`two_1.out`) gets a variable named
                # like it (two_1, two_1_side = two(…)), as a call with an id does.
                own = local if reads_first_output(self.refs, local, block.outputs[0]) else None
            first = self.target(ctx, own)
            variables = [first]
            for out in block.outputs[1:]:  # c0, c0_x = cell(…)
                variables.append(ctx.fn.allocate(f"{own or first}_{out}", "out"))
            ctx.out.append(
                Stmt(
                    "call",
                    target=", ".join(variables),
                    func=function.name,
                    inputs=[t.var for t in inputs],
                    kwargs=args,
                    name=block_name,
                    text=function.prefix_param or "name",
                )
            )
            outputs = [TensorRef(var) for var in variables]
            if ctx.fn.is_model and len(elems) == 1:  # what the model's `outputs` may name
                self.produced.update(zip(call0.outputs[1:], outputs[1:], strict=False))
        if local is not None:
            for index, (out, ref) in enumerate(zip(block.outputs, outputs, strict=False)):
                ctx.scope.ids[f"{local}.{out}"] = ref
                ctx.scope.ids[f"{local}[{index}]"] = ref
        return outputs[0]

    def inline_call(
        self,
        elems: list[tuple[BlockCall, Inst]],
        declared: dict[str, Any],
        raw: dict[str, Any],
        ctx: Ctx,
        inputs: list[TensorRef],
        block_name: NameRef,
        local: str | None = None,
        cut: bool = False,
    ) -> list[TensorRef]:
        """The block's layers written in place; the tensors it returns (its ids reachable
        as ``local.id``). ``cut``: the call holds a backbone's cut (its body is cut there,
        :class:`Cut`); it returns the cut tensor, the last it writes."""
        entry = inputs[0]
        name = elems[0][0].block
        block = self.tree.blocks[name]
        names = dict(self.var_bindings)
        # A cut call is the one call written here (never in a loop): where the code does not
        # know a value (a tensor's shape, in a function), it is this call's, as the resolver
        # bound it; a shape read from a variable the block overwrites would be wrong.
        bound = elems[0][0].args if cut else {}
        # A value that reads the shape of the block's input where the code does not know it is,
        # in the model's function, the one call's value as the resolver bound it; in a block's
        # function (which stands for any input) it is read into a variable of its own before
        # the block's layers, which may overwrite the variable that holds the input.
        single = elems[0][0].args if ctx.fn.is_model and len(elems) == 1 else {}
        shapes: list[Stmt] = []
        for pname in declared:
            if pname in raw:
                node = self.translate(raw[pname], ctx, entry)
                try:
                    known = self.value(raw[pname], ctx, entry)
                except Unknown:
                    known = bound.get(pname, UNKNOWN)
                    if known is UNKNOWN and _reads_tensor(node):
                        known = single.get(pname, UNKNOWN)
                        if known is UNKNOWN:
                            node = self.shape_value(ctx, pname, node, shapes)
                if known is not UNKNOWN and _reads_tensor(node):
                    node = literal_node(known)
                values = _argument_values([call for call, _ in elems], pname)
                names[pname] = Binding(node, known, values=values)
        for pname, param in declared.items():
            if pname not in raw:
                default = param.default
                if isinstance(default, (list, dict)) or is_expression(default):
                    probe = replace(ctx, names=names)
                    node = self.translate(default, probe, entry)
                    try:
                        known = self.value(default, probe, entry)
                    except Unknown:
                        known = bound.get(pname, UNKNOWN)
                    if _reads_tensor(node):
                        known = single.get(pname, UNKNOWN) if known is UNKNOWN else known
                        if known is UNKNOWN:
                            node = self.shape_value(ctx, pname, node, shapes)
                        else:
                            node = literal_node(known)
                    values = _argument_values([call for call, _ in elems], pname)
                    names[pname] = Binding(node, known, values=values)
                else:
                    names[pname] = Binding(literal_node(default), default)
        label = ", ".join(f"{p}={_short(raw[p])}" for p in declared if p in raw)
        ctx.out.append(Stmt("comment", text=comment_text(f"block {name}({label})")))
        if cut:  # (a line of its own: the arguments' line is shortened where long)
            text = f"its layers written here, up to the cut at {self.cut_label}"
            ctx.out.append(Stmt("comment", text=comment_text(text)))
        ctx.out.extend(shapes)
        insts = [inst.sub(call.body, scope=call_scope(call, inst)) for call, inst in elems]
        protected = entry
        if entry.var == ctx.chain and refers_to_input(insts, self.input_name):
            protected = self.protect_alias(ctx, entry, "block_input")
        scope = IdScope(protected, None)
        if block.inputs:  # the chain var is overwritten: the inputs must not live in it
            for input_name, ref in zip(block.inputs, inputs, strict=True):
                if ref.var == ctx.chain:
                    ref = self.protect_alias(ctx, ref, input_name)
                scope.ids[input_name] = ref
        block_ctx = replace(ctx, names=names, scope=scope)
        last = self.print_list(insts, block_ctx, entry)
        if local is not None:  # its ids, by hierarchical name (c0.h, stage3.block2.out)
            for inner, ref in block_ctx.scope.ids.items():
                if inner not in block.inputs:
                    ctx.scope.ids.setdefault(f"{local}.{inner}", ref)
        if cut:  # (its outputs come after the cut: they are never made)
            return [last]
        return self.block_results(block, block_ctx, last)

    def shape_value(self, ctx: Ctx, pname: str, node: ast.expr, shapes: list[Stmt]) -> ast.expr:
        """The variable (named after parameter ``pname``) that a block written in place reads a
        value ``node`` reading its input's shape from, assigned by a statement added to
        ``shapes`` (``channels = x.shape[-1]``), written before the block's layers."""
        var = ctx.fn.allocate(pname, "value")
        shapes.append(Stmt("assign", target=var, value=node))
        return ast.Name(var, ast.Load())

    def block_results(self, block: Any, ctx: Ctx, last: TensorRef) -> list[TensorRef]:
        if not block.outputs:
            return [last]
        results = []
        for ref in block.outputs:
            tensor = self.find_ref(ref, ctx, last) if ref else last  # "": a backbone's own output
            if tensor is None:
                raise self.need(ctx, f"the block output {ref!r}")
            results.append(tensor)
        return results

    def function_for(self, name: str) -> Function:
        if name in self.functions:
            return self.functions[name]
        saved, self.loop_depth = self.loop_depth, 0  # (a call inside a loop: a new function)
        try:
            function = self.build_block_function(name)
        finally:
            self.loop_depth = saved
        self.functions[name] = function
        self.order.append(name)
        return function

    def default_names(
        self,
        declared: dict[str, Any],
        renamed: dict[str, str],
        own: str,
        names: dict[str, Binding],
    ) -> dict[str, Binding]:
        """What the computed default of the parameter written ``own`` in the function reads,
        as the resolver evaluates it: the vars, the arguments passed and the parameters
        filled before it. So the parameter itself is the var of that name
        (``if f is None: f = F + 1``), not the parameter, which is still ``None`` there. (The
        resolver refuses a default that reads a parameter declared after it.)"""
        out = dict(self.var_bindings)
        for pname in declared:
            if renamed.get(pname, pname) == own:
                break
            out[pname] = names[pname]
        return out

    def build_block_function(self, name: str) -> Function:
        block = self.tree.blocks[name]
        declared = block.params
        calls = self.calls.get(name, [])
        insts = [Inst(call.body, call.prefix) for call in calls]
        module_taken = set(self.module_names) | {c.name for c in self.constants} | set(self._used_blocks())
        module_taken |= {f.name for f in self.functions.values()} | set(self.function_names.values())
        refers = refers_to_input(insts, self.input_name) or bool(block.inputs)
        taken = module_taken | set(declared)
        # A parameter named like a module name (`layers`, the constant `K` of var `k`, the
        # partial `BATCH_NORM`, a block it calls) would hide it in the body, one named like a
        # builtin (`filter`, `max`) would hide that, and a keyword (`class`) cannot be a
        # parameter: each gets another name (`filter_`).
        renamed: dict[str, str] = {}
        for pname in declared:
            if pname in module_taken or not is_identifier(pname):
                stem = pname.strip("_") or "arg"  # (`_`: `__`, a dunder, is no name for it)
                renamed[pname] = _first_free([f"{pname}_", f"{pname}_value", f"{stem}_value"], taken)
                taken.add(renamed[pname])
        if block.inputs:  # named inputs: each a parameter (renamed only if it clashes)
            tensors = [_first_free([n, f"{n}_in", f"{n}_tensor"], taken) for n in block.inputs]
            taken.update(tensors)
            tensor = ", ".join(tensors)
        else:
            tensor = _first_free(["inputs", "tensor"] if refers else ["x", "tensor", "inputs"], taken)
            tensors = [tensor]
            taken.add(tensor)
        prefix_param = _first_free(["name", "prefix", "block_name"], taken)
        taken.add(prefix_param)
        fname = self.function_names.get(name, name)
        fn = FuncState(fname, name, taken)
        if block.inputs:  # the chain must not take a name an id of the body will want
            own_ids = {i.extras.get("id") for inst in insts for i in walk(inst.items) if hasattr(i, "extras")}
            chain = _first_free(
                ["x", "y", "h", "t", "tensor"], taken | {i for i in own_ids if isinstance(i, str)}
            )
            fn.taken.add(chain)
        else:
            chain = tensor if not refers else fn.allocate("x" if "x" not in taken else "h")
        params: list[FuncParam] = []
        names = dict(self.var_bindings)
        body: list[Stmt] = []
        entry = TensorRef(tensors[0])
        computed: list[tuple[FuncParam, Any]] = []
        for pname, bparam in declared.items():
            annotation = ANNOTATIONS.get(bparam.type)
            pyname = renamed.get(pname, pname)
            param = FuncParam(pyname, annotation, None)
            default = None
            if not bparam.required:
                value = bparam.default
                if isinstance(value, (list, dict)) or is_expression(value):
                    # `None` stands for "not passed", unless a call passes null itself (`a:
                    # null` over a default of `${act}`): then `...`, which no spec value is
                    passed_none = any(v is None for v in _argument_values(calls, pname) or ())
                    param.unset = ast.Constant(... if passed_none else None)
                    default = param.unset
                    param.annotation = f"{annotation} | None" if annotation else None
                    computed.append((param, value))
                else:
                    default = literal_node(value)
            param.default = default
            params.append(param)
            # (its value in each call: whether an f-string field of it can be a bool)
            names[pname] = Binding(ast.Name(pyname, ast.Load()), values=_argument_values(calls, pname))
        for param, value in computed:
            fill_names = self.default_names(declared, renamed, param.name, names)
            probe = Ctx(fn, (), fill_names, IdScope(entry, None), chain, body)
            param.fill = self.translate(value, probe, entry)
        scope = IdScope(entry, None)
        if block.inputs:
            scope.ids.update({n: TensorRef(t) for n, t in zip(block.inputs, tensors, strict=True)})
        ctx = Ctx(fn, (ast.Name(prefix_param, ast.Load()), "_"), names, scope, chain, body)
        result = self.print_list(insts, ctx, entry)
        results = self.block_results(block, ctx, result)
        body.append(Stmt("return", value=_tuple([_tensor(r) for r in results])))
        body[:] = drop_unused(merge_ifs(drop_pruned(body)))
        description = str(block.description or f"The `{name}` block of the spec.")
        if renamed:  # the docstring says which spec parameter `layers_` is
            description += _renamed_note(renamed, module_taken)
        return Function(
            fname, name, tensor, params, prefix_param, description, _where(block.loc), body, renamed
        )
