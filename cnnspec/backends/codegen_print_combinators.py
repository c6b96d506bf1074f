"""Residual, parallel and repeat items printed (:class:`CombinatorPrinting`, a part of
:class:`cnnspec.backends.codegen_printer.TreePrinter`): a residual's shortcut and merge (with
its projection decided at run time where shapes are known only then), a parallel's branches,
and a repeat as a ``for`` loop with the lists and tensors it carries.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import Any

from cnnspec.backends.codegen_check import Unknown
from cnnspec.backends.codegen_decisions import MAX_LOOP_NESTING
from cnnspec.backends.codegen_model import (
    UNKNOWN,
    Binding,
    Ctx,
    LoopFrame,
    NameRef,
    Stmt,
    TensorRef,
    _reads_tensor,
    _results,
    literal_kwargs,
    node_kwargs,
)
from cnnspec.backends.codegen_tree import (
    PRUNED,
    Inst,
    Slot,
    _keeps_entry,
    _tensor,
    _tuple,
    absorb,
    id_scope,
    iteration_scope,
)
from cnnspec.backends.codegen_values import comment_text
from cnnspec.errors import format_path
from cnnspec.ir import Parallel, Repeat, Residual
from cnnspec.layers.registry import REGISTRY

#: The helper function of projection shortcuts whose shapes are known only at run time.
PROJECTION = "projection_strides"
#: The helper that says at run time whether an ``auto`` shortcut is projected: the shapes
#: differ and the body's output is no gate the merge broadcasts over the entry.
NEEDS_PROJECTION = "needs_projection"


class CombinatorPrinting:
    """The printer's residual, parallel and repeat items. Its methods share the state
    :class:`cnnspec.backends.codegen_printer.TreePrinter` sets up."""

    def print_residual(self, slot: Slot, ctx: Ctx, entry: TensorRef, item_id: str | None) -> TensorRef:
        elems: list[tuple[Residual, Inst]] = slot.elems
        body = elems[0][0].raw
        shortcut_field = body.get("shortcut", "auto")
        mode: Any = None
        if not isinstance(shortcut_field, list):
            try:
                mode = self.value(shortcut_field, ctx, entry)
            except Unknown:
                mode = UNKNOWN
        body_insts = [inst.sub(r.body, scope=id_scope(inst, item_id)) for r, inst in elems]
        saved = ctx.fn.taken.copy()
        alias = None
        start = entry
        if mode != "none":
            alias = ctx.fn.allocate("shortcut")
            ctx.out.append(Stmt("assign", target=alias, value=ast.Name(entry.var, ast.Load())))
            entry = TensorRef(alias, entry.ir, entry.shape)
        inner = replace(ctx, scope=ctx.scope.child())
        body_out = self.print_list(body_insts, inner, start)
        absorb(elems, body_insts)
        if mode == "none":
            result = self.print_activation(inner, elems, body, body_out)
            ctx.fn.taken = saved | {result.var}
            return result
        assert alias is not None
        if mode is UNKNOWN:
            merged = self.print_optional_merge(elems, shortcut_field, entry, body_out, inner)
        else:
            if isinstance(shortcut_field, list):
                sc_insts = [inst.sub(r.shortcut, scope=id_scope(inst, item_id)) for r, inst in elems]
                sc_ctx = replace(inner, scope=inner.scope.child(), chain=alias)
                shortcut = self.print_list(sc_insts, sc_ctx, entry)
                absorb(elems, sc_insts)
            elif mode == "identity" or (mode == "auto" and any(_keeps_entry(r) for r, _ in elems)):
                shortcut = entry
            elif mode in ("auto", "projection"):
                shortcut = self.print_projection(elems, mode, entry, body_out, inner)
            else:
                raise self.need(ctx, f"shortcut {mode!r}")
            merged = self.print_merge(inner, elems, [shortcut, body_out])
        result = self.print_activation(inner, elems, body, merged)
        ctx.fn.taken = saved | {result.var}
        return result

    def protect_alias(self, ctx: Ctx, entry: TensorRef, wanted: str) -> TensorRef:
        alias = ctx.fn.allocate(wanted)
        ctx.out.append(Stmt("assign", target=alias, value=ast.Name(entry.var, ast.Load())))
        return TensorRef(alias, entry.ir, entry.shape)

    def print_optional_merge(
        self,
        elems: list[tuple[Residual, Inst]],
        shortcut_field: Any,
        entry: TensorRef,
        body_out: TensorRef,
        ctx: Ctx,
    ) -> TensorRef:
        node = self.translate(shortcut_field, ctx, entry)
        if not _results(node) <= {"identity", "none"}:
            raise self.need(ctx, "a `shortcut` chosen at run time among projections")
        if (
            isinstance(node, ast.IfExp)
            and isinstance(node.body, ast.Constant)
            and isinstance(node.orelse, ast.Constant)
            and node.body.value != node.orelse.value
        ):
            test = node.test if node.body.value == "identity" else ast.UnaryOp(ast.Not(), node.test)
        else:
            test = ast.Compare(node, [ast.NotEq()], [ast.Constant("none")])
        current = self.to_chain(ctx, body_out)
        merged = [(r, inst) for r, inst in elems if r.merge is not None]
        key = ("shortcut", elems[0][0].path)
        if not _reads_tensor(test):
            self.features[key] = test
            for r, inst in elems:
                inst.set(key, r.merge is not None, [r.merge] if r.merge is not None else [])
        if not merged:
            return TensorRef(ctx.chain)
        statements: list[Stmt] = []
        self.print_merge(replace(ctx, out=statements), merged, [entry, current])
        ctx.out.append(Stmt("if", value=test, body=statements))
        return TensorRef(ctx.chain)

    def print_projection(
        self, elems: list[tuple[Residual, Inst]], mode: str, entry: TensorRef, body_out: TensorRef, ctx: Ctx
    ) -> TensorRef:
        conv, norm = REGISTRY["conv2d"], REGISTRY["batch_norm"]
        made = [(r, inst) for r, inst in elems if len(r.shortcut) == 2]
        if made:
            conv_name = self.name_ref(ctx, [(r.shortcut[0].node.name, inst) for r, inst in made])
            norm_name = self.name_ref(ctx, [(r.shortcut[1].node.name, inst) for r, inst in made])
        else:
            conv_name = self.beside(ctx, elems, "shortcut_conv2d_1")
            norm_name = self.beside(ctx, elems, "shortcut_batch_norm_1")
        if entry.shape is not None and body_out.shape is not None:  # one call, shapes known
            if not made:
                return entry
            conv_node, norm_node = (leaf.node for leaf in made[0][0].shortcut)
            projected = self.put(
                conv, node_kwargs(conv_node), [entry], ctx, None, conv_name, target=entry.var
            )
            return self.put(norm, node_kwargs(norm_node), [projected], ctx, None, norm_name, target=entry.var)
        biases = {r.projection_bias for r, _ in elems}
        if len(biases) != 1:
            raise self.need(ctx, "a `projection_bias` that differs between calls")
        self.uses_projection = True
        sample = {**conv.defaults(), "filters": 1, "kernel_size": 1, "strides": 1, "use_bias": biases.pop()}
        kwargs = []
        for key, node in literal_kwargs(conv, sample):
            if key == "filters":
                node = ast.Subscript(
                    ast.Attribute(ast.Name(body_out.var, ast.Load()), "shape", ast.Load()),
                    ast.Constant(-1),
                    ast.Load(),
                )
            kwargs.append((key, node))
        kwargs.insert(
            2,
            (
                "strides",
                ast.Call(
                    ast.Name(PROJECTION, ast.Load()),
                    [ast.Name(entry.var, ast.Load()), ast.Name(body_out.var, ast.Load())],
                    [],
                ),
            ),
        )
        statements: list[Stmt] = []
        target_ctx = replace(ctx, out=statements)
        projected = self.put(conv, kwargs, [entry], target_ctx, None, conv_name, target=entry.var)
        self.put(
            norm,
            literal_kwargs(norm, norm.defaults()),
            [projected],
            target_ctx,
            None,
            norm_name,
            target=entry.var,
        )
        if mode == "auto":  # (the function projects as the resolver would, whoever calls it)
            ctx.out.append(Stmt("if", value=self.projection_test(elems, entry, body_out), body=statements))
        else:
            ctx.out.extend(statements)
        return TensorRef(entry.var)

    def projection_test(
        self, elems: list[tuple[Residual, Inst]], entry: TensorRef, body_out: TensorRef
    ) -> ast.expr:
        """Whether a call of a block with an ``auto`` shortcut projects it: ``entry.shape !=
        out.shape`` where every call that keeps the entry has matching shapes; where one keeps
        it for a gate (shapes that differ, broadcast by the merge: squeeze-and-excitation),
        the ``needs_projection`` helper, which reads the gate as the resolver does."""
        shape = ast.Attribute(ast.Name(entry.var, ast.Load()), "shape", ast.Load())
        other = ast.Attribute(ast.Name(body_out.var, ast.Load()), "shape", ast.Load())
        gates = any(
            r.merge is not None and len(set(r.merge.node.input_shapes)) > 1
            for r, _ in elems
            if len(r.shortcut) != 2
        )
        if not gates:
            return ast.Compare(shape, [ast.NotEq()], [other])
        self.uses_gate_test = True
        return ast.Call(
            ast.Name(NEEDS_PROJECTION, ast.Load()),
            [ast.Name(entry.var, ast.Load()), ast.Name(body_out.var, ast.Load())],
            [],
        )

    def beside(self, ctx: Ctx, elems: list[tuple[Residual, Inst]], local: str) -> NameRef:
        """The name of a layer the resolver would make in the merge layer's scope (for a
        projection no call made, written under its ``if``)."""
        named = []
        for r, inst in elems:
            if r.merge is None:
                continue
            text = r.merge.node.name
            number = text.rsplit("_", 1)[-1]
            scope = text[: len(text) - len(f"{r.merge.node.kind}_{number}")]
            named.append((scope + local, inst))
        return self.name_ref(ctx, named)

    def print_parallel(self, slot: Slot, ctx: Ctx, entry: TensorRef, item_id: str | None) -> TensorRef:
        elems: list[tuple[Parallel, Inst]] = slot.elems
        body = elems[0][0].raw
        saved = ctx.fn.taken.copy()
        inner = replace(ctx, scope=ctx.scope.child())
        outs = []
        for index in range(len(elems[0][0].branches)):
            var = ctx.fn.allocate(f"branch_{index + 1}")
            branch_ctx = replace(inner, scope=inner.scope.child(), chain=var)
            insts = [inst.sub(p.branches[index], scope=id_scope(inst, item_id)) for p, inst in elems]
            outs.append(self.print_list(insts, branch_ctx, entry))
            absorb(elems, insts)
        merged = self.print_merge(inner, elems, outs)
        result = self.print_activation(inner, elems, body, merged)
        ctx.fn.taken = saved | {result.var}
        return result

    def print_repeat(self, slot: Slot, ctx: Ctx, entry: TensorRef, item_id: str | None) -> TensorRef:
        elems: list[tuple[Repeat, Inst]] = slot.elems
        rep0 = elems[0][0]
        cut = self.cuts.get(id(rep0))
        if cut is not None:
            return self.print_cut_repeat(slot, ctx, entry, cut)
        var_name = rep0.var
        try:
            times = self.value(rep0.raw_times, ctx, entry)
        except Unknown:
            times = UNKNOWN
        reason = None
        if times not in (0, 1):
            reason = self.fits(self.iterations(elems, None)) or self.named_inside(elems)
            if reason is None and self.loop_depth >= MAX_LOOP_NESTING:
                reason = f"it is inside {self.loop_depth} loops, as deep as one function nests them"
            note = f"unrolled the repeat at {format_path(rep0.path)}: {reason}"
            if reason and note not in self.notes:
                self.notes.append(note)
        carried = self.start_carry(rep0, ctx)
        collect = self.start_lists(rep0, ctx)
        if times in (0, 1) or reason:
            counts = {rep.times for rep, _ in elems}
            if len(counts) != 1:
                raise self.need(ctx, "a repeat count known only at run time")
            count = counts.pop()
            current = entry
            for index in range(count):
                names = dict(ctx.names)
                if var_name:
                    names[var_name] = Binding(ast.Constant(index), index)
                start = len(ctx.out)
                if count > 1:
                    label = f"repeat {index + 1} of {count}" + (
                        f" ({var_name} = {index})" if var_name else ""
                    )
                    ctx.out.append(Stmt("comment", text=comment_text(label)))
                insts = [
                    inst.sub(rep.iterations[index], scope=iteration_scope(rep, inst, index))
                    for rep, inst in elems
                ]
                iteration = replace(ctx, names=names, scope=ctx.scope.child())
                iteration.scope.ids.update(carried)
                current = self.print_list(insts, iteration, current)
                made = ctx.out[start + 1 :]
                if count > 1 and made and all(stmt.kind == PRUNED for stmt in made):
                    ctx.out[start:] = [Stmt(PRUNED, body=ctx.out[start:])]  # its label goes with them
                if rep0.item_id:
                    for name, ref in iteration.scope.ids.items():
                        if name not in carried:
                            ctx.scope.ids[f"{rep0.item_id}[{index}].{name}"] = ref
                self.append_lists(collect, iteration)
                carried = {**carried, **{n: self.carried_ref(iteration, r) for n, r in rep0.next.items()}}
            self.end_carry(rep0, ctx, carried, len(elems) == 1)
            return current
        current = self.to_chain(ctx, entry)
        loop_var = ctx.fn.allocate(var_name or "i", "i")
        frame = LoopFrame(loop_var)
        key = ("loop", rep0.path)
        self.features[key] = ast.Name(loop_var, ast.Load())
        self.frames[key] = frame
        times_node = self.translate(rep0.raw_times, ctx, entry)
        statements: list[Stmt] = []
        names = dict(ctx.names)
        if var_name:
            names[var_name] = Binding(ast.Name(loop_var, ast.Load()), UNKNOWN, frame)
        insts = self.iterations(elems, key)
        iteration = replace(ctx, names=names, scope=ctx.scope.child(), out=statements)
        iteration.scope.ids.update(carried)
        self.loop_depth += 1
        try:
            result = self.print_list(insts, iteration, TensorRef(ctx.chain))
        finally:
            self.loop_depth -= 1
        if result.var != ctx.chain:
            statements.append(Stmt("assign", target=ctx.chain, value=ast.Name(result.var, ast.Load())))
        self.append_lists(collect, iteration)
        if rep0.next:  # the advance rule, as one tuple assignment: p, x = x, new
            targets = [carried[name].var for name in rep0.next]
            values = [_tensor(self.carried_ref(iteration, ref)) for ref in rep0.next.values()]
            statements.append(Stmt("assign", target=", ".join(targets), value=_tuple(values)))
        if times is UNKNOWN and not _reads_tensor(times_node):  # numbers after the loop count it
            self.features[("times", rep0.path)] = times_node
            for rep, inst in elems:
                inst.set(("times", rep0.path), rep.times, rep.iterations[0] if rep.iterations else [])
        if not frame.used:
            frame.var = "_"
        ctx.out.append(Stmt("for", value=times_node, body=statements, frame=frame))
        self.end_carry(rep0, ctx, carried, len(elems) == 1)
        return TensorRef(ctx.chain)

    def start_lists(self, rep: Repeat, ctx: Ctx) -> dict[str, str]:
        """A list per id of an iteration that a later item names (``enc[2].level.skip``),
        started empty before the loop: ``enc_level_skip = []``."""
        if rep.item_id not in self.collected:
            return {}
        lists = {}
        for rest in self.collected[rep.item_id]:
            if (rep.item_id, rest) in self.partial:
                continue  # the repeat is unrolled: each iteration's id is a variable of its own
            var = ctx.fn.allocate(f"{rep.item_id}_{rest}".replace(".", "_"), "collected")
            ctx.out.append(Stmt("assign", target=var, value=ast.List([], ast.Load())))
            lists[rest] = var
            self.lists[rep.item_id, rest] = var
        return lists

    def append_lists(self, lists: dict[str, str], iteration: Ctx) -> None:
        for rest, var in lists.items():
            ref = iteration.scope.lookup(rest)
            if ref is None:
                raise self.need(iteration, f"the id {rest!r} of an iteration")
            call = ast.Call(
                ast.Attribute(ast.Name(var, ast.Load()), "append", ast.Load()),
                [ast.Name(ref.var, ast.Load())],
                [],
            )
            iteration.out.append(Stmt("expr", value=call))

    def start_carry(self, rep: Repeat, ctx: Ctx) -> dict[str, TensorRef]:
        """The variables a carrying repeat keeps its names in, set before it: p, x = stem, c0."""
        if not rep.carry:
            return {}
        refs = [self.carried_ref(ctx, ref) for ref in rep.carry.values()]
        variables = [ctx.fn.allocate(name, "carried") for name in rep.carry]
        ctx.out.append(
            Stmt(
                "assign",
                target=", ".join(variables),
                value=_tuple([_tensor(r) for r in refs]),
            )
        )
        return {name: TensorRef(var) for name, var in zip(rep.carry, variables, strict=True)}

    def carried_ref(self, ctx: Ctx, ref: Any) -> TensorRef:
        """The tensor a ``carry`` or ``next`` value names, looked up as an ``inputs`` entry is
        (``enc[1].h``, ``enc[${n - 1}].h``: one iteration of an earlier carrying repeat)."""
        tensor = self.find_ref(ref, ctx, ctx.scope.entry)
        if tensor is None:
            raise self.need(ctx, f"the carried tensor {ref!r}")
        return tensor

    def end_carry(self, rep: Repeat, ctx: Ctx, carried: dict[str, TensorRef], single: bool) -> None:
        """After the loop the carried names hold the final values (and ``cells.x`` too)."""
        for name, ref in carried.items():
            if ctx.fn.is_model and single and name in rep.results:
                self.produced[rep.results[name]] = ref
            ctx.scope.ids[name] = ref
            if rep.item_id:
                ctx.scope.ids[f"{rep.item_id}.{name}"] = ref
