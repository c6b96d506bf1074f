"""What the model printer decides before printing an element (:class:`PrintDecisions`, a part of
:class:`cnnspec.backends.codegen_printer.TreePrinter`): whether a block becomes a function or is
written in place, and a repeat a loop or unrolled, from whether every name, parameter and
reference of its instances can be written once for all of them.
"""

from __future__ import annotations

import ast
from typing import Any

from cnnspec.backends.codegen_fit import fit_text
from cnnspec.backends.codegen_model import Ctx, _contains_expression, _direct, _sample, _substitute
from cnnspec.backends.codegen_tree import (
    ITERATION_REF,
    Inst,
    Slot,
    call_scope,
    id_scope,
    iteration_scope,
    loop_nesting,
    reaches_inside,
    reads_shape,
    slots_of,
)
from cnnspec.ir import Backbone, BlockCall, Conditional, Layer, Parallel, Repeat, Residual
from cnnspec.layers.registry import REGISTRY
from cnnspec.spec.expr import ExpressionError

#: The most ``for`` loops written inside one another in one function: Python refuses more
#: than 20 statically nested blocks ("too many statically nested blocks"), and the resolver
#: accepts 32 nested repeats. A repeat deeper than this is unrolled (its count is known
#: there), a block whose own repeats nest this deep is written in place.
MAX_LOOP_NESTING = 16


class PrintDecisions:
    """The printer's decisions of what fits in a function or loop. Its methods share the state
    :class:`cnnspec.backends.codegen_printer.TreePrinter` sets up."""

    def fits(self, insts: list[Inst], parents: list[Inst] | None = None) -> str | None:
        """Why these instances of a layer list cannot share one text (``None``: they can).
        With ``parents`` (a residual's or parallel's lists, which share the enclosing list's
        layer numbering), the conditions and loop counts found inside are passed up to them.
        Remembered: the printer asks again, with the same instances, what deciding an outer
        loop or block already asked."""
        key = tuple(
            (id(i.items), i.prefix, i.scope, tuple((k, v, id(i.units.get(k))) for k, v in i.feats.items()))
            for i in insts
        )
        if key not in self.fitted:
            copies = [Inst(i.items, i.prefix, dict(i.feats), dict(i.units), i.scope) for i in insts]
            reason = next(filter(None, map(self.slot_fits, slots_of(copies))), None)
            self.fitted[key] = (reason, insts, copies)  # the instances keep the key's ids unique
        reason, _, copies = self.fitted[key]
        for parent, copy in zip(parents or [], copies, strict=False):
            parent.absorb(copy)
        return reason

    def names_fit(self, elems: list[tuple[str, Inst]]) -> bool:
        if not elems:
            return True
        texts = []
        for name, inst in elems:
            if not name.startswith(inst.prefix):
                return False
            texts.append(name[len(inst.prefix) :])
        return fit_text(texts, [inst for _, inst in elems], self.unit_count) is not None

    def slot_fits(self, slot: Slot) -> str | None:
        elems = slot.elems
        if len({type(item) for item, _ in elems}) != 1:
            return "items differ between calls"
        first = elems[0][0]
        if isinstance(first, Conditional):
            for item, inst in elems:
                assert isinstance(item, Conditional)
                if not reads_shape(item.condition):
                    inst.set(("when", slot.path), item.value, [item.item] if item.item is not None else [])
            inner = [(item.item, inst) for item, inst in elems if item.item is not None]
            return self.slot_fits(Slot(slot.path, slot.kind, inner)) if inner else None
        extras = getattr(first, "extras", {})
        computed_id = isinstance(first, (Layer, BlockCall)) and self.computed_id(extras) is not None
        for key in ("id", "inputs"):
            if key == "id" and computed_id:
                continue  # written as an f-string of the loop variables and parameters
            if key == "inputs" and self.picks_iterations(extras.get(key)):
                continue
            if key in extras and _contains_expression(extras[key]):
                what = "an `id`" if key == "id" else "`inputs`"
                try:
                    _substitute(extras[key], {var.name: var.value for var in self.tree.vars})
                    detail = ""
                except ExpressionError as exc:
                    detail = f" ({exc.message})"
                return f"{what} depends on a value known only at run time{detail}"
        if computed_id and not self.names_fit([(inst.prefix + inst.scope, inst) for _, inst in elems]):
            return "the scopes around an `id` vary between calls or iterations"
        if isinstance(first, Layer):
            if not computed_id and not self.names_fit([(item.node.name, inst) for item, inst in elems]):
                return "layer numbers vary between calls or iterations"
            return self.float32_split([item.node.name for item, _ in elems]) or self.params_fit(
                [item for item, _ in elems]
            )
        if isinstance(first, BlockCall):
            if not computed_id and not self.names_fit([(item.prefix[:-1], inst) for item, inst in elems]):
                return "block numbers vary between calls or iterations"
            if self.block_mode(first.block) is None:
                return None
            return self.fits([inst.sub(item.body, scope=call_scope(item, inst)) for item, inst in elems])
        if isinstance(first, Repeat):
            reason = self.loop_fits(elems)
            for item, inst in elems:
                if not reads_shape(item.raw_times):
                    inst.set(("times", slot.path), item.times, item.iterations[0] if item.iterations else [])
            return reason
        if isinstance(first, Residual):
            scopes = [id_scope(inst, item.extras.get("id")) for item, inst in elems]
            lists = [[inst.sub(item.body, scope=sc) for (item, inst), sc in zip(elems, scopes, strict=True)]]
            if first.mode == "list":
                lists.append(
                    [
                        inst.sub(item.shortcut, scope=sc)
                        for (item, inst), sc in zip(elems, scopes, strict=True)
                    ]
                )
            else:
                made = [(item, inst) for item, inst in elems if len(item.shortcut) == 2]
                for index in (0, 1):
                    if not self.names_fit([(item.shortcut[index].node.name, inst) for item, inst in made]):
                        return "layer numbers vary between calls or iterations"
        elif isinstance(first, Parallel):
            count = max(len(item.branches) for item, _ in elems)
            lists = [
                [
                    inst.sub(item.branches[b], scope=id_scope(inst, item.extras.get("id")))
                    for item, inst in elems
                ]
                for b in range(count)
            ]
        elif isinstance(first, Backbone):
            return "a backbone is written once, at the model's level"
        else:
            return "an unknown item"
        for insts in lists:
            reason = self.fits(insts, [inst for _, inst in elems])
            if reason:
                return reason
        for role in ("merge", "activation"):
            named = [(getattr(item, role).node.name, inst) for item, inst in elems if getattr(item, role)]
            if not self.names_fit(named):
                return "layer numbers vary between calls or iterations"
            reason = self.float32_split([name for name, _ in named])
            if reason:
                return reason
        return None

    def float32_split(self, names: list[str]) -> str | None:
        """Why the layers ``names`` (one text's instances) cannot share one text: some are
        model outputs written in float32 (:meth:`output_dtype`) and some are not."""
        outputs = [name for name in names if name in self.float32_outputs]
        if outputs and len(outputs) < len(names):
            return (
                f"`{outputs[0]}` is a model output, in float32 under runtime.mixed_precision, and the "
                "layer's other instances are not"
            )
        return None

    def output_dtype(self, ctx: Ctx, names: list[str]) -> list[tuple[str, ast.expr]]:
        """``dtype="float32"`` for a layer that makes model outputs (``names``: the IR names of
        every instance of its text) under ``runtime.mixed_precision``: the builder gives the
        output layers float32 under a mixed policy (a stable softmax and loss), so the code
        does too; nothing for any other layer."""
        outputs = [name for name in names if name in self.float32_outputs]
        if not outputs:
            return []
        if len(outputs) < len(names):  # (float32_split made the printer inline or unroll it)
            raise self.need(ctx, f"the float32 output {outputs[0]!r} beside layers that are not outputs")
        self.float32_written.update(outputs)
        return [("dtype", ast.Constant("float32"))]

    def picks_iterations(self, refs: Any) -> bool:
        """Whether every ``${…}`` of an ``inputs`` is the index of a repeat's
        iteration (``enc[${levels - 1 - i}].skip``), which the code reads from a list."""
        if isinstance(refs, dict):
            refs = list(refs.values())
        refs = refs if isinstance(refs, list) else [refs]
        dynamic = [r for r in refs if _contains_expression(r)]
        for ref in dynamic:
            found = ITERATION_REF.fullmatch(ref) if isinstance(ref, str) else None
            if found is None or found[1] not in self.collected or "${" in found[1] + found[3]:
                return False
            if (found[1], found[3]) in self.partial:
                return False  # no list holds it: the item is unrolled where the index is known
        return bool(dynamic)

    def params_fit(self, leaves: list[Layer]) -> str | None:
        kind = REGISTRY[leaves[0].node.kind]
        raw = leaves[0].raw or {}
        for pname, value in raw.items():
            param = kind.param_index.get(pname)
            if param is None or not _contains_expression(value):
                continue
            full = {**kind.defaults(), **leaves[0].node.params}
            if _sample(param, 0) is not None and param.keras_name and _direct(kind, full, param):
                continue
            values = [leaf.node.params.get(pname) for leaf in leaves]
            if any(v != values[0] for v in values):
                return f"a `{kind.name}` parameter whose type needs a literal value"
        return None

    def loop_fits(self, elems: list[tuple[Repeat, Inst]]) -> str | None:
        looped = self.fits(self.iterations(elems, None)) or self.named_inside(elems)
        if looped is None:
            return None
        times = {rep.times for rep, _ in elems}
        if len(times) != 1:
            return looped
        for k in range(times.pop()):
            reason = self.fits(
                [inst.sub(rep.iterations[k], scope=iteration_scope(rep, inst, k)) for rep, inst in elems]
            )
            if reason:
                return reason
        return None

    def named_inside(self, elems: list[tuple[Repeat, Inst]]) -> str | None:
        """Why a repeat is unrolled whatever else fits: a reference names one of its
        iterations through a call or another iteration (``st.inner[0].c``)."""
        for rep, _ in elems:
            if id(rep) in self.unroll:
                return f"a later item refers to an id inside one of its iterations ({self.unroll[id(rep)]})"
            partial = [
                rest
                for rest in self.collected.get(rep.item_id or "", [])
                if (rep.item_id, rest) in self.partial
            ]
            if partial:
                return (
                    f"a later item refers to an id that only some of its iterations make "
                    f"({rep.item_id}[…].{partial[0]})"
                )
        return None

    def iterations(self, elems: list[tuple[Repeat, Inst]], var_key: Any) -> list[Inst]:
        out = []
        for rep, inst in elems:
            key = var_key if var_key is not None else ("loop", rep.path)
            for k, iteration in enumerate(rep.iterations):
                out.append(inst.sub(iteration, key, k, iteration, iteration_scope(rep, inst, k)))
        return out

    def block_mode(self, name: str) -> str | None:
        """Why block ``name`` is inlined (``None``: it is a function), from all its calls."""
        if name not in self.modes:
            self.modes[name] = None
            calls = self.calls.get(name, [])
            reason = self.fits([Inst(call.body, call.prefix) for call in calls])
            inner = reaches_inside(self.refs, calls, self.tree.blocks[name].outputs)
            if reason is None and inner is not None:
                reason = f"a later item refers to an id inside a call ({inner})"
            depth = max((loop_nesting(call.body) for call in calls), default=0)
            if reason is None and depth > MAX_LOOP_NESTING:
                reason = f"its repeats nest {depth} deep, more loops than one function should nest"
            self.modes[name] = reason
            if reason:
                self.notes.append(f"inlined block `{name}`: {reason}")
        return self.modes[name]
