"""Backbone items printed (:class:`BackbonePrinting`, a part of
:class:`cnnspec.backends.codegen_printer.TreePrinter`): the other spec's model as a function of
its own, cut where ``until:`` says (inside an item too: :mod:`cnnspec.backends.codegen_cuts`),
and the functions of the blocks it calls.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from typing import Any

from cnnspec.backends.codegen_cuts import Cut, CutRefused, cut_list
from cnnspec.backends.codegen_model import Binding, Ctx, Function, Stmt, TensorRef, _first_free, node_kwargs
from cnnspec.backends.codegen_tree import (
    Slot,
    _is_layer,
    absorb,
    id_scope,
    iteration_scope,
    model_refs,
    top_level,
)
from cnnspec.backends.codegen_values import comment_text
from cnnspec.errors import Diagnostic, Note, SpecError, SpecPath, format_path
from cnnspec.ir import Backbone, BlockCall, BlockDef, Item, Layer
from cnnspec.layers.registry import REGISTRY


class BackbonePrinting:
    """The printer's backbone items and block functions. Its methods share the state
    :class:`cnnspec.backends.codegen_printer.TreePrinter` sets up."""

    # -- a backbone cut inside an item ------------------------------------------------------
    def print_cut_repeat(self, slot: Slot, ctx: Ctx, entry: TensorRef, cut: Cut) -> TensorRef:
        """A repeat that holds a backbone's cut: its whole iterations before the cut's as a
        repeat of that many (a loop, or unrolled), then the cut's iteration written out with
        the loop variable's value, up to the cut."""
        rep, inst = slot.elems[0]
        index = cut.index
        if index:
            label = f"iterations 1-{index} of {cut.times}" if index > 1 else f"iteration 1 of {cut.times}"
            ctx.out.append(Stmt("comment", text=comment_text(f"{label} (the cut is in the next one)")))
        # the whole iterations: a repeat of that many, a copy not in self.cuts (a literal
        # count: how many of the spec's count come before the cut is decided here)
        whole = replace(rep, iterations=rep.iterations[:index], times=index, raw_times=index)
        current = self.print_repeat(Slot(slot.path, slot.kind, [(whole, inst)]), ctx, entry, None)
        names = dict(ctx.names)
        if rep.var:
            names[rep.var] = Binding(ast.Constant(index), index)
        label = f"iteration {index + 1} of {cut.times}" + (f" ({rep.var} = {index})" if rep.var else "")
        ctx.out.append(Stmt("comment", text=comment_text(f"{label}, up to the cut at {self.cut_label}")))
        iteration = replace(ctx, names=names, scope=ctx.scope.child())
        # what the iterations before it left in the carried names (end_carry)
        iteration.scope.ids.update({name: ctx.scope.ids[name] for name in rep.carry if name in ctx.scope.ids})
        insts = [inst.sub(rep.iterations[index], scope=iteration_scope(rep, inst, index))]
        return self.print_list(insts, iteration, current)

    def print_cut_path(
        self, slot: Slot, ctx: Ctx, entry: TensorRef, item_id: str | None, cut: Cut
    ) -> TensorRef:
        """A residual or parallel that holds a backbone's cut: only the path from its entry to
        the cut (its body, its shortcut, or one branch, up to the cut). The other paths and
        the merge come after the cut: the cut tensor does not depend on them."""
        item, inst = slot.elems[0]
        what = {
            "body": "the residual's body",
            "shortcut": "the residual's shortcut",
            "projection": "the residual's projection shortcut",
            "branch": f"branch {cut.index + 1} of the parallel",
        }[cut.kind]
        ctx.out.append(Stmt("comment", text=comment_text(f"{what}, up to the cut at {self.cut_label}")))
        if cut.kind == "projection":  # the layers the resolver made, as it made them
            current = entry
            for leaf in item.shortcut:
                assert isinstance(leaf, Layer)
                name = self.name_ref(ctx, [(leaf.node.name, inst)])
                kind = REGISTRY[leaf.node.kind]
                current = self.put(kind, node_kwargs(leaf.node), [current], ctx, None, name)
            return current
        if cut.kind == "branch":
            path = item.branches[0]
        else:
            path = item.body if cut.kind == "body" else item.shortcut
        insts = [inst.sub(path, scope=id_scope(inst, item_id))]
        result = self.print_list(insts, replace(ctx, scope=ctx.scope.child()), entry)
        absorb(slot.elems, insts)
        return result

    def cut_inside(self, element: Backbone) -> tuple[list[Item], dict[int, Cut]]:
        """The backbone's items up to a cut inside one of them (``until:`` a layer in a block
        call or repeat, ``stem.bn``): those before it, left out where the cut tensor does not
        depend on them, then the one that holds it, cut (:func:`cut_item`); with how to write
        each item cut. A cut the code cannot write is refused, located at ``until``."""
        cuts: dict[int, Cut] = {}
        try:
            body = cut_list(element.body, element.output, frozenset(element.names), cuts)
            if body is None:
                raise CutRefused("none of its items makes that layer")
        except CutRefused as exc:
            reason = str(exc)
            hint = "cut at a layer outside that item, or build the model with `cnnspec build`"
            notes: list[Note] = []
            if exc.backbone is not None:
                reason = (
                    f"{exc} of {element.spec!r}, and codegen does not cut a backbone of a backbone's spec"
                )
                hint = self.nested_hint(exc.backbone)
                if top_level(exc.backbone, element.body):  # (written whole there; one in a block is not)
                    nested_id = exc.backbone.extras.get("id")
                    at = f"at {nested_id!r} (its output) or " if isinstance(nested_id, str) else ""
                    hint = f"cut {at}at a layer after that backbone item, or build the model with "
                    hint += "`cnnspec build`"
                notes.append(self.item_note(exc.backbone, element.doc))
            raise self.refusal(
                f"codegen cannot write the backbone cut at {element.until!r}: {reason}",
                (*element.path, "until"),
                hint,
                notes,
            ) from None
        return body, cuts

    def refusal(self, message: str, path: SpecPath, hint: str | None, notes: list[Note]) -> SpecError:
        """A ``codegen`` error at ``path`` of this printer's spec; a backbone's printer locates
        it at the model's own backbone item it is reached through (the spec being generated),
        with notes down to ``path``."""
        loc, where = self.doc.loc(path), format_path(path)
        if self.around:
            notes = [*notes, *(self.item_note(item, doc) for item, doc in reversed(self.around[1:]))]
            if not notes or notes[0].loc != loc:  # (the first note says where, or this does)
                notes.insert(0, Note(f"at {where} ({loc})" if loc else f"at {where}", loc, where))
            top, top_doc = self.around[0]
            loc, where = top_doc.loc(top.path), format_path(top.path)
        return SpecError([Diagnostic(message, loc, where, "codegen", hint, notes=tuple(notes))])

    @staticmethod
    def item_note(item: Backbone, doc: Any) -> Note:
        """``in backbone 'zoo:resnet50' at model[0] (inner.yaml:5:15)``: where ``doc`` writes
        ``item``, as the notes of the checks on the resolved model say it."""
        from cnnspec.analysis.calls import backbone_note

        return backbone_note(item, doc)

    @staticmethod
    def nested_hint(item: Backbone) -> str:
        """How to get a model whose backbone ``item`` is inside another backbone's spec."""
        return (
            "build the model with `cnnspec build`, or write the backbone "
            f"{item.spec!r} as an item of this spec's own model, with the layers after it"
        )

    # -- backbones ---------------------------------------------------------------------------
    def print_backbone(self, slot: Slot, ctx: Ctx, entry: TensorRef, item_id: str | None) -> TensorRef:
        """A backbone item: a call of the function that builds the backbone's layers
        (``x = resnet50(x, name="body")``); the ids inside it that the model names are
        returned too (``body, body_stem = fpn(x, name="body")`` for ``body.stem``). In a
        backbone's printer, a backbone item of its spec's model list: a call in the backbone's
        function (``body = resnet50(x, name=f"{name}_body")``)."""
        element: Backbone = slot.elems[0][0]
        # a backbone's printer writes one in its spec's own model list, in the backbone's
        # function (a function of this module too)
        if self.around and (len(slot.elems) != 1 or not top_level(element, self.tree.body)):
            outer = self.around[-1][0]
            raise self.refusal(
                f"codegen cannot write backbone {element.spec!r} inside backbone {outer.spec!r}: it is "
                f"in a block or loop of {outer.spec!r}, and codegen writes a backbone item only in a "
                "model's own list",
                element.path,
                self.nested_hint(element),
                [self.item_note(element, self.doc)],
            )
        if not self.around and (len(slot.elems) != 1 or not ctx.fn.is_model):
            raise SpecError.single(
                "codegen writes a backbone item only in the model's own list (not in a block or loop)",
                self.doc.loc(element.path),
                element.path,
                code="codegen",
            )
        local = element.prefix[:-1]
        # the item's id as its spec writes it (`body`, where `a_body` prefixes its layers inside
        # the model's backbone `a`): what the ids of its spec name (`body.stem`), and the ids
        # the model around this backbone's spec names through it (`a.body.stem`)
        own = element.prefix[len(self.ir_prefix) : -1]
        refs = [*model_refs(self.tree), *self.reach]
        named = [ref[len(own) + 1 :] for ref in refs if ref.startswith(f"{own}.")]
        reach = tuple(ref for ref in dict.fromkeys(named) if ref != element.until)
        function = self.backbone_function(element, reach)
        var = self.target(ctx, item_id)
        if element.until is not None:  # `body.p2` is the cut tensor itself
            ctx.scope.ids[f"{own}.{element.until}"] = TensorRef(var)
        variables = [var]
        for ref in reach:  # body, body_stem = fpn(x, name="body")
            variables.append(ctx.fn.allocate(re.sub(r"\W+", "_", f"{own}_{ref}").strip("_"), "out"))
            ctx.scope.ids[f"{own}.{ref}"] = TensorRef(variables[-1])
        name = self.name_ref(ctx, [(local, slot.elems[0][1])])
        ctx.out.append(
            Stmt(
                "call",
                target=", ".join(variables),
                func=function.name,
                inputs=[entry.var],
                kwargs=[],
                name=name,
                text=function.prefix_param or "name",
            )
        )
        return TensorRef(var)

    def backbone_function(self, element: Backbone, reach: tuple[str, ...] = ()) -> Function:
        """The backbone as one function of this module, printed by a printer of its own spec:
        its vars become constants named after the item (``BODY_STAGE_BLOCKS``), its blocks
        functions (renamed only where this module has the name), its items up to the cut
        the function's body, returning the cut tensor (then the tensors of ``reach``, its
        ids that the model names: ``body.stem``). A cut inside one of its items (``until:`` a
        layer in a block call or repeat) ends the body with that item cut (:meth:`cut_inside`):
        only the layers the cut tensor depends on, as ``cnnspec build`` keeps them."""
        from cnnspec.analysis.compiled import CompiledSpec
        from cnnspec.ir import ModelIR

        local = element.prefix[:-1]
        assert element.tree is not None
        # a copy: the cut, the outputs and the function written below must not change the
        # compiled spec's tree (a second generate_code of it named the function differently)
        tree = replace(element.tree, blocks=dict(element.tree.blocks))
        body = element.body
        # the cut's id, returned by the function; "" where the cut is a layer item without
        # one (`until: conv_bn_activation`), the last tensor of the body up to it
        until = element.until
        cuts: dict[int, Cut] = {}
        if element.until is not None:
            layer_name = f"{element.prefix}{element.until}"
            cut = next(
                (i for i, item in enumerate(body) if getattr(item, "extras", {}).get("id") == element.until),
                None,
            )
            if cut is None:
                cut = next((i for i, item in enumerate(body) if _is_layer(item, layer_name)), None)
                until = ""
            if cut is not None:
                body = body[: cut + 1]
            else:  # inside one of its items: up to the cut layer (the last tensor written)
                body, cuts = self.cut_inside(element)
        taken = set(self.module_names) | {c.name for c in self.constants} | set(self.functions)
        taken |= set(self._used_blocks())
        fname = _first_free([tree.name, f"{local}_{tree.name}", f"{local}_backbone"], taken)
        tree.body = body
        tree.outputs = (element.output,)
        nodes = [self.ir_nodes[name] for name in element.names if name in self.ir_nodes]
        ir = ModelIR(
            tree.name, tree.description, tree.input_name, tuple(tree.input_shape), nodes, tree.outputs
        )
        ir.tree = tree
        # (script: a training script loads an inner backbone's weights too, so no note says not)
        sub = type(self)(  # (a printer of its own for the other spec)
            CompiledSpec(element.doc, ir),
            script=self.script,
            reach=reach,
            float32_outputs=self.float32_outputs,
        )
        if cuts:
            sub.cuts, sub.cut_label = cuts, str(element.until)
            # a call cut is written in place: its block's function is of its other calls only
            sub.calls = {
                block: [call for call in calls if id(call) not in cuts] for block, calls in sub.calls.items()
            }
        sub.module_names |= taken | {fname}
        sub.const_prefix = f"{local.upper()}_"
        sub.around = [*self.around, (element, self.doc)]
        sub.ir_prefix = element.prefix
        sub.function_names = {b: (f"{local}_{b}" if b in taken or b == fname else b) for b in tree.blocks}
        sub.build_constants()
        sub.build_partials()
        description = (
            f"The backbone {element.spec}" + (f" up to {element.until}" if element.until else "") + "."
        )
        outputs = (until,) if until else ()
        if reach:  # ("": the backbone's own output)
            outputs = (until or "", *reach)
            returned = ", ".join(f"`{ref}`" for ref in reach)
            description += f" Also returns {returned} (the model uses them)."
        tree.blocks[fname] = BlockDef(fname, {}, description, self.doc.loc(element.path), (), outputs)
        sub.calls[fname] = [BlockCall(fname, prefix=element.prefix, body=body, entry=element.entry)]
        function = sub.function_for(fname)
        self.constants.extend(sub.constants)
        for name in sub.order:
            made = sub.functions[name]
            self.functions[made.name] = made
            self.order.append(made.name)
        self.uses_projection = self.uses_projection or sub.uses_projection
        self.uses_gate_test = self.uses_gate_test or sub.uses_gate_test
        self.backbone_partials = self.backbone_partials or bool(sub.partials) or sub.backbone_partials
        self.notes.extend(sub.notes)
        self.float32_written |= sub.float32_written
        if element.weights is not None and not self.script:
            self.notes.append(
                f"backbone `{local}` starts from the weights {element.weights.text!r}; "
                "this code does not load them"
            )
        return function
