"""The hints of the resolver's errors about names (:class:`ReferenceHints`, a part of
:class:`cnnspec.spec.resolve.Resolver`): for a reference that names nothing visible, why (a
later item, a skipped one, an id inside a repeat or another branch) and the near names; for a
duplicate id or layer name, where the other one is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cnnspec.errors import Loc, SpecPath, did_you_mean, format_path, key_hint
from cnnspec.ir import INPUT, Node
from cnnspec.spec.loader import value_at
from cnnspec.spec.scope import UNKNOWN, Hidden, Scope, free_loop_name, scope_head
from cnnspec.spec.varrefs import var_refs


class ReferenceHints:
    """The resolver's hints for references, ids and names. Its methods share the state
    :class:`cnnspec.spec.resolve.Resolver` sets up."""

    @staticmethod
    def input_hint(name: str, declared: Sequence[str], refs: dict[str, Any]) -> str:
        """The hint for ``name``, no input of a block whose inputs ``refs`` binds by name: the
        input meant among those not bound yet (the only one left, when one is), else what
        the block's inputs are."""
        unbound = [d for d in declared if d not in refs]
        if len(unbound) == 1:
            return f"did you mean `{unbound[0]}`? it is the input not bound yet"
        return key_hint(name, unbound, ()) or (
            f"its inputs: {', '.join(declared)}"
            + (f" (not bound yet: {', '.join(unbound)})" if unbound else "")
        )

    @staticmethod
    def one_reference_hint(ref: list[Any] | dict[Any, Any], path: SpecPath) -> str:
        """What to write where a reference is a list or mapping: a block input bound by name
        (``inputs: {p: [a]}``), an entry of ``carry``/``next``, or one of a list of inputs."""
        first = ref[0] if isinstance(ref, list) and ref else None
        example = first if isinstance(first, str) else "a"
        if len(path) >= 2 and path[-2] in ("inputs", "carry", "next") and isinstance(path[-1], str):
            what = "a block input bound by name" if path[-2] == "inputs" else f"a `{path[-2]}` entry"
            return f"{what} takes one reference, not a list: write {path[-1]}: {example}"
        return f"each entry names one tensor: write {example} (a list of inputs is one flat list: [a, b])"

    @staticmethod
    def failed_call(ref: Any, scope: Scope) -> bool:
        """Whether ``ref`` is ``c0[1]``, ``c0.x`` of an item ``c0`` that failed (reported), or
        reaches through such an item inside a call (``k.sw.c`` of a call ``k`` whose inner call
        ``sw`` failed: ``k.sw`` is known, and unknown)."""
        if not isinstance(ref, str):
            return False
        ends = [found.start() for found in re.finditer(r"[.\[]", ref)]
        return any(scope.lookup(ref[:end]) == UNKNOWN for end in ends)

    @staticmethod
    def iteration_hint(text: str, head: str, scope: Scope) -> str | None:
        """Of ``lp[3].c.new`` where the repeat ``lp`` has iterations 0–2 (or ``lp[-1]``): which
        iterations there are and the last one's name. A near name (``lp[0].c.new``) would
        reach another iteration than the one meant."""
        found = re.fullmatch(r"[^.\[]+\[(-?\d+)\](.*)", text, flags=re.DOTALL)
        if found is None:
            return None
        made = {
            int(m.group(1)) for n in scope.visible() if (m := re.match(rf"{re.escape(head)}\[(\d+)\]", n))
        }
        if not made or int(found.group(1)) in made:
            return None
        last = max(made)
        return (
            f"`{head}` has iterations {min(made)}–{last} (counted from 0; an index never counts from "
            f"the end): the last one is `{head}[{last}]{found.group(2)}`"
        )

    def reference_hint(self, ref: Any, scope: Scope, path: SpecPath = ()) -> str:
        """What to write instead of an unknown reference (at ``path``), from the scoping rules."""
        text = str(ref)
        hidden = self.hidden_hint(ref, scope) or self.later_hint(ref, path)
        if hidden is not None:
            return hidden
        is_call, result = scope.result_of(text)
        if is_call:
            what = f"`{text}` is the automatic name of a block call: it reaches the ids inside the call"
            if result is not None:
                return f"{what}, and its result is `{result}`"
            return f"{what} (`{text}.…`); give the call an `id:` to refer to its result by that id"
        if scope.block is not None and text == INPUT and scope.block_inputs:
            return (
                f"block `{scope.block}` names its inputs ({', '.join(scope.block_inputs)}): "
                "refer to them by name"
            )
        if scope.block is not None:
            outer = scope.caller
            while outer is not None and outer.lookup(text) is None:
                outer = outer.caller
            if outer is not None:
                names = ", ".join((*scope.block_inputs, text)) if scope.block_inputs else f"x, {text}"
                first = "" if scope.block_inputs else " (the first input is then `x`, not `input`)"
                return (
                    f"`{text}` is defined outside block `{scope.block}`, and a block body sees only "
                    f"its inputs, its own ids and its params: declare it as an input "
                    f"(blocks: {scope.block}: inputs: [{names}]){first} and pass it at the call"
                )
        enclosed = scope.enclosed_by(text)
        if enclosed is not None:
            where, what = enclosed
            if what == "branch":
                return (
                    f"{text!r} is defined in another branch of this parallel ({self.where(where)}): a "
                    "branch sees the ids before the parallel, not its siblings'; to join layers of two "
                    "branches, write them as items with `id` and `inputs`"
                )
            return (
                f"{text!r} is defined inside the {what} at {self.where(where)}, and its ids are visible "
                "only inside it: to read that layer after it, write the layers as items with `id` and "
                "`inputs`"
            )
        head = re.split(r"[.\[]", text, maxsplit=1)[0]
        beyond = self.iteration_hint(text, head, scope)
        if beyond is not None:
            return beyond
        if head != text:
            inner = sorted(n for n in scope.visible() if n.startswith(head) and n != head)
            if inner:
                shown = ", ".join(inner[:8]) + (", …" if len(inner) > 8 else "")
                return did_you_mean(text, inner) or f"names inside `{head}`: {shown}"
        return did_you_mean(text, scope.visible()) or "give the earlier layer an `id:` and refer to it here"

    def later_hint(self, ref: Any, path: SpecPath) -> str | None:
        """Where the id an item's ``inputs`` entry (at ``path``) names is defined, when that is
        the item itself or an item after it, in its layer list or an enclosing one (an
        ``inputs`` list reads only the layers before its item); ``None`` otherwise."""
        if not isinstance(ref, str) or "inputs" not in path:
            return None
        head = scope_head(ref)
        item_path = path[: len(path) - 1 - path[::-1].index("inputs")]
        first = True  # (the item's own list: the item itself counts; an enclosing list's: after it)
        while item_path and isinstance(item_path[-1], int):
            index, list_path = item_path[-1], item_path[:-1]
            items = value_at(self.data, list_path)
            for at in range(index if first else index + 1, len(items) if isinstance(items, list) else 0):
                item = items[at]
                if not isinstance(item, dict) or item.get("id") != head:
                    continue
                if at == index:
                    return f"{head!r} is this item's own id: an item cannot take its own output as input"
                return (
                    f"{head!r} is defined later ({self.where((*list_path, at, 'id'))}): `inputs` may name "
                    "only layers before the item; move that layer above this item"
                )
            first = False
            item_path = list_path
            while item_path and not isinstance(item_path[-1], int):
                item_path = item_path[:-1]
        return None

    def hidden_hint(self, ref: Any, scope: Scope) -> str | None:
        """Why an id the spec writes is not visible at a reference to it (a false ``when``
        skipped its item; it is defined inside a repeat) and what to write; ``None`` if it is
        not such an id."""
        if not isinstance(ref, str):
            return None
        why = scope.why_missing(ref)
        head = scope_head(ref)
        if why is None and head != ref:
            # `c0.x`, `c0[1]`, `cells[0].nn` of an item `c0` a false `when` skipped
            inner = scope.why_missing(head)
            if inner is not None and not isinstance(inner, Hidden):
                where = self.where(inner)
                return f"{ref!r} is inside {head!r} ({where}), which is skipped: its `when` is false"
        if why is None:
            return None
        if not isinstance(why, Hidden):
            if len(why) > 3 and why[-2] == "carry":  # a name a skipped repeat would have carried
                return (
                    f"{ref!r} is carried by the repeat at {self.where(why[:-3])}, which is skipped: "
                    "its `when` is false"
                )
            return f"{ref!r} ({self.where(why)}) is skipped: its `when` is false"
        head = (
            f"{ref!r} is defined inside the repeat at {self.where(why.path[:-1])}, and ids inside a "
            "repeat are visible only inside the iteration that defines them: "
        )
        scoped = f"{why.repeat_id or 'cells'}[{why.iteration}].{ref}"
        if why.repeat_id is not None:
            return head + f"refer to it as {scoped}"
        carry = (
            "carry the tensor out (carry: {x: …} with next: {x: …}; after the loop `x` holds its last value)"
        )
        if why.carries:
            return head + f"{carry}, or give the repeat an id (id: cells) and refer to it as {scoped}"
        return head + f"{carry}, or give the repeat `carry` and an id (id: cells) and refer to it as {scoped}"

    def where(self, path: SpecPath) -> str:
        """``line N`` of ``path`` (with its file when another document declares it)."""
        loc = self.loc(path)
        if loc is None:
            return format_path(path)
        return f"line {loc.line}" if loc.file == self.doc.file else f"{loc.file}:{loc.line}"

    def duplicate_hint(
        self,
        item_id: str | None,
        other: Node | None = None,
        here: Loc | None = None,
        path: SpecPath | None = None,
    ) -> str:
        """How to name a layer uniquely: inside a repeat, a fixed id names every iteration's
        layer alike, and the fix depends on the repeat. ``other``: the layer that has the name
        already (``None``: the model's input); ``here``: where the error is (the other is named
        with its file where that is another: a zoo library's layer and the spec's own);
        ``path``: the layer's item kind, whose ``id`` as written (``q${i}``) says which loop
        variables it reads already."""
        where = ""
        if other is not None and other.loc is not None:
            same = here is not None and here.file == other.loc.file
            where = f" (the other is at {'line ' if same else other.loc.file + ':'}{other.loc.line})"
        plain = f"give one of the items a different `id`{where}; automatic names are kind_N"
        if item_id is None or not self.repeats:
            return plain
        rid, var, carries = self.repeats[-1]
        if carries and rid is not None:
            # each iteration is a scope (rid_N_id): a clash is with a layer outside the repeat,
            # or with another item of the same body, never with another iteration
            return (
                f"the iterations of `{rid}` name this layer {rid}_N_{item_id}, and another layer "
                f"has that name: {plain}"
            )
        if carries and rid is None:
            return (
                f"a fixed id inside a repeat names every iteration's layer `{item_id}`: give the repeat "
                f"an id (e.g. `id: cells`); its iterations are then scopes, named cells_0_{item_id}, "
                f"cells_1_{item_id}, … and reachable as cells[0].{item_id}, cells[1].{item_id}"
            )
        written = value_at(self.data, (*path[:-1], "id")) if path else None
        if isinstance(written, str) and "${" in written:
            return self.computed_id_hint(written, item_id, plain)
        loop = var or "i"
        extra = "" if var else " (with as: i)"
        return (
            f"a fixed id inside a repeat names every iteration's layer `{item_id}`: write "
            f'id: "{item_id}${{{loop}}}"{extra}, or make the repeat carry its tensors '
            f"(carry/next) and give it an id, so each iteration is a scope ({rid or 'cells'}[0].{item_id})"
        )

    def computed_id_hint(self, written: str, item_id: str, plain: str) -> str:
        """The hint of a name used twice whose ``id`` is an expression (``written``) inside
        plain repeats: it is not a fixed id, so the fix is a loop variable it does not read yet
        (one an inner repeat's ``as:`` hides, one of an enclosing repeat, or a new one), never
        one it reads already."""
        depth = len(self.call_stack)
        levels = [  # the repeats around it in this block body (or the model), outermost first
            (var or None, format_path(where[:-1]))
            for (level, var), where in zip(self.loop_vars, self.loop_paths, strict=True)
            if level == depth
        ]
        names = [var for var, _ in levels if var]
        read = var_refs(written, dict.fromkeys(names))
        free = free_loop_name({*names, *self.vars_env})
        inner, inner_at = levels[-1] if levels else (None, "")
        for var, where in levels[:-1]:
            if var is not None and var == inner and var in read:
                return (
                    f"the repeat at {inner_at} has `as: {var}`, which hides the loop variable `{var}` of "
                    f"the repeat at {where} around it: every `${{{var}}}` inside reads the inner one, so "
                    f"each iteration of the outer repeat names this layer `{item_id}` again. Name the "
                    f'inner loop variable otherwise (as: {free}) and read both: id: "{written}_${{{free}}}"'
                )
        unread = [(var, where) for var, where in levels if var is None or var not in read]
        if not unread:
            return f"the id `{written}` gives two layers the same name `{item_id}`: {plain}"
        var, where = unread[0]
        if var is None:
            return (
                f"the id `{written}` is the same in each iteration of the repeat at {where}: give that "
                f'repeat a loop variable (as: {free}) and read it: id: "{written}_${{{free}}}"'
            )
        return (
            f"the id `{written}` is the same in each iteration of the repeat at {where}: read its loop "
            f'variable too: id: "{written}_${{{var}}}"'
        )

    @staticmethod
    def call_name_hint(automatic: bool) -> str:
        """How to name a block call and a layer apart."""
        if automatic:
            return (
                "a block call without an `id` is named after its block and how many calls of it "
                "the list has made (blk_1, blk_2, …): give the call an `id:`, or the layer another `id`"
            )
        return "give the call or the layer another `id`"
