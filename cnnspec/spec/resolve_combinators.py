"""The combinators ``residual``, ``parallel`` and ``repeat`` (:class:`Combinators`, a part of
:class:`cnnspec.spec.resolve.Resolver`): their lists walked in scopes of their own, branches
merged (a shortcut projected where shapes differ, ``shortcut: auto``), and a repeat's iterations
with their loop variable and the tensors they carry from one to the next.
"""

from __future__ import annotations

from typing import Any

from cnnspec.errors import SpecPath, describe_value, did_you_mean, format_path, key_hint, spelled
from cnnspec.ir import INPUT
from cnnspec.layers.registry import REGISTRY, LayerKind, Shape, combinator_merges
from cnnspec.spec.expr import unreadable_name
from cnnspec.spec.items import ITEM_EXTRAS, beside_hint
from cnnspec.spec.limits import MAX_REPEAT
from cnnspec.spec.scope import IDENTIFIER, UNKNOWN, Hidden, Scope, free_loop_name
from cnnspec.spec.varrefs import Shadow


class _RepeatFailed(Exception):
    """A repeat stopped at an error it has reported (:meth:`Resolver.repeat`)."""


def _broadcasts_onto(small: Shape, big: Shape) -> bool:
    """Whether ``small`` is a gate an element-wise merge broadcasts over ``big``: the same
    channels, every other axis 1 (squeeze-and-excitation's 1×1×C), or fewer axes (its C alone,
    pooled without keepdims: Keras' merges line shapes up on their last axes). A body that ends
    with other channels (1 of 16: a likely mistake in `filters`) is projected, as before."""
    return (
        1 <= len(small) <= len(big)
        and len(big) >= 2
        and small[-1] == big[-1]
        and all(side == 1 for side in small[:-1])
        and any(side != 1 for side in big[:-1])
    )


class Combinators:
    """The resolver's residual, parallel and repeat items. Its methods share the state
    :class:`cnnspec.spec.resolve.Resolver` sets up."""

    def combinator_fields(
        self, body: Any, path: SpecPath, allowed: dict[str, bool], example: str
    ) -> dict[str, Any] | None:
        if not isinstance(body, dict):
            self.error(
                f"expected a mapping; received {spelled(body)}",
                path,
                code="combinator",
                hint=example,
            )
            return None
        ok = True
        for key in body:
            if key not in allowed:
                self.error(
                    f"unknown key {key!r}",
                    (*path, key),
                    key=True,
                    code="unknown-key",
                    hint=beside_hint(path[-1], key)
                    if key in ITEM_EXTRAS
                    else key_hint(key, allowed, self.beside((*path, key), body))
                    or "keys: " + ", ".join(allowed),
                )
                ok = False
        for key, required in allowed.items():
            if required and key not in body:
                self.error(f"missing required key `{key}`", path, code="missing-key", hint=example)
                ok = False
        return body if ok else None

    def sub_scope(self, scope: Scope, item_id: str | None) -> Scope:
        """The scope of a combinator's lists: it sees the ids around it; ``input`` keeps its meaning."""
        if item_id is None:
            return scope.child()
        return scope.child(prefix=f"{scope.prefix}{item_id}_", group=(*scope.group, item_id))

    def merge_kind(self, merge: Any, env: dict[str, Any], path: SpecPath) -> LayerKind | None:
        """The kind a combinator's ``merge`` field names (reported and ``None`` when it names
        none): one of the registry's :func:`combinator_merges`, so a merge kind added with the
        ``combines`` trait is a ``merge:`` word without a change here."""
        ok, mode = self.evaluate(merge, env, (*path, "merge"))
        if not ok:
            return None
        choices = combinator_merges()
        if not isinstance(mode, str) or mode not in choices:
            other = REGISTRY.get(mode) if isinstance(mode, str) else None
            # a merge kind no combinator takes (subtract: its inputs' order matters)
            elsewhere = (
                f"`{mode}` merges as an item of its own: give the layers to merge ids and write "
                f"`- {mode}:` then `  inputs: [a, b]` on the next line"
                if other is not None and other.arity == "many"
                else None
            )
            self.error(
                f"expected merge: one of {', '.join(choices)}; received {spelled(mode)}",
                (*path, "merge"),
                code="parameter",
                hint=elsewhere or did_you_mean(str(mode), choices),
            )
            return None
        return REGISTRY[mode]

    def merge(self, kind: LayerKind, tensors: list[str], scope: Scope, path: SpecPath) -> str:
        """The combinator's merge layer: ``kind`` at its defaults over ``tensors``."""
        return self.emit(kind, kind.defaults(), tensors, scope, path, None, role="merge")

    def post_activation(
        self, fields: dict[str, Any], current: str, scope: Scope, path: SpecPath, env: dict[str, Any]
    ) -> str:
        if fields.get("activation") is None:
            return current
        kind = REGISTRY["activation"]
        ok, value = self.evaluate(fields["activation"], env, (*path, "activation"))
        if not ok:
            return UNKNOWN
        problem = kind.param_index["activation"].check(value)
        if problem:
            self.error(problem, (*path, "activation"), code="parameter")
            return UNKNOWN
        return self.emit(kind, {"activation": value}, [current], scope, path, None, role="activation")

    def residual(
        self, body: Any, path: SpecPath, scope: Scope, entry: str, item_id: str | None, env: dict[str, Any]
    ) -> str:
        example = "residual: {body: [...layers], shortcut: auto, merge: add}"
        fields = self.combinator_fields(
            body,
            path,
            {"body": True, "shortcut": False, "merge": False, "activation": False, "projection_bias": False},
            example,
        )
        if fields is None:
            return UNKNOWN
        ok, projection_bias = self.evaluate(
            fields.get("projection_bias", True), env, (*path, "projection_bias")
        )
        if not ok:
            return UNKNOWN
        if not isinstance(projection_bias, bool):
            self.error(
                f"expected projection_bias: true or false; received {spelled(projection_bias)}",
                (*path, "projection_bias"),
                code="parameter",
            )
            return UNKNOWN
        self.record.note(projection_bias=projection_bias)
        inner = self.sub_scope(scope, item_id)
        body_out = self.walk_list(fields["body"], (*path, "body"), inner, entry)
        self.enclose(scope, [inner], path, "residual", item_id)
        shortcut_field = fields.get("shortcut", "auto")
        merge_mode = fields.get("merge", "add")
        self.record.note(merge_mode=merge_mode)
        if isinstance(shortcut_field, list):
            self.record.note(mode="list")
            sc_scope = inner.child(prefix=f"{inner.prefix}shortcut_")
            shortcut = self.walk_list(shortcut_field, (*path, "shortcut"), sc_scope, entry)
            self.enclose(scope, [sc_scope], path, "residual", item_id)
            merge = self.merge_kind(merge_mode, env, path)
        else:
            ok, mode = self.evaluate(shortcut_field, env, (*path, "shortcut"))
            modes = ("auto", "identity", "projection", "none")
            if not ok:
                return UNKNOWN
            if mode not in modes:
                self.error(
                    f"expected shortcut: one of {', '.join(modes)} or a list of layers; "
                    f"received {spelled(mode)}",
                    (*path, "shortcut"),
                    code="parameter",
                    hint=did_you_mean(str(mode), modes),
                )
                return UNKNOWN
            self.record.note(mode=mode)
            if mode == "none":
                return self.post_activation(fields, body_out, inner, path, env)
            # the merge decides what `auto` makes of the shortcut: read it first
            merge = self.merge_kind(merge_mode, env, path)
            if merge is None:
                return UNKNOWN
            shortcut = self.shortcut(mode, entry, body_out, merge, inner, path, projection_bias)
        if merge is None or shortcut == UNKNOWN or body_out == UNKNOWN:
            return UNKNOWN
        merged = self.merge(merge, [shortcut, body_out], inner, path)
        return self.post_activation(fields, merged, inner, path, env)

    @staticmethod
    def enclose(scope: Scope, inner: list[Scope], path: SpecPath, what: str, item_id: str | None) -> None:
        """For the hints of a reference after a residual or parallel item at ``path``: the ids
        its lists defined (``inner`` and the scopes under them: a shortcut list, a nested
        combinator's), visible only inside it, also as ``ID.name`` where the item has an id."""
        for child in inner:
            for name in child.ids:
                scope.enclosed.setdefault(name, (path[:-1], what))
                if item_id is not None:
                    scope.enclosed.setdefault(f"{item_id}.{name}", (path[:-1], what))
            for name, where in child.enclosed.items():  # (deeper: where it is defined)
                scope.enclosed.setdefault(name, where)
                if item_id is not None:
                    scope.enclosed.setdefault(f"{item_id}.{name}", where)

    def shortcut(
        self,
        mode: str,
        entry: str,
        body_out: str,
        merge: LayerKind,
        scope: Scope,
        path: SpecPath,
        bias: bool = True,
    ) -> str:
        """The shortcut tensor: the entry, or its projection (a strided 1×1 convolution, with a
        bias unless ``bias`` is false, then batch normalisation) to the body's output shape.
        ``auto`` projects only for an element-wise ``merge``: a merge along an axis (concat)
        takes the entry as it is, whatever its channels."""
        in_shape, out_shape = self.shapes.get(entry), self.shapes.get(body_out)
        if mode == "identity" or in_shape is None or out_shape is None:
            return entry
        if mode == "auto" and (in_shape == out_shape or merge.combines != "elementwise"):
            return entry
        if mode == "auto" and _broadcasts_onto(out_shape, in_shape):
            # a gate (squeeze-and-excitation: 1×1×C by `multiply`): the merge broadcasts it over
            # the entry, which a strided projection down to 1×1 would have collapsed instead
            return entry
        if len(in_shape) != 3 or len(out_shape) != 3:
            self.error(
                f"expected image tensors for a projection shortcut; received {list(in_shape)} → "
                f"{list(out_shape)}",
                (*path, "shortcut"),
                code="shape",
            )
            return UNKNOWN
        strides = []
        for size_in, size_out in zip(in_shape[:2], out_shape[:2], strict=True):
            stride = -(-size_in // size_out)
            if (size_in - 1) // stride + 1 != size_out:
                self.error(
                    f"cannot project the shortcut from {list(in_shape)} to the body's output "
                    f"{list(out_shape)} with a strided 1×1 convolution",
                    (*path, "shortcut"),
                    code="shape",
                    hint="write the shortcut as a list of layers",
                )
                return UNKNOWN
            strides.append(stride)
        sc_scope = scope.child(prefix=f"{scope.prefix}shortcut_")
        conv = REGISTRY["conv2d"]
        params = {
            **conv.defaults(),
            "filters": out_shape[-1],
            "kernel_size": 1,
            "strides": strides,
            "use_bias": bias,
        }
        if strides[0] == strides[1]:
            params["strides"] = strides[0]
        projected = self.emit(conv, params, [entry], sc_scope, path, None, role="projection")
        norm = REGISTRY["batch_norm"]
        return self.emit(norm, norm.defaults(), [projected], sc_scope, path, None, role="projection")

    def parallel(
        self, body: Any, path: SpecPath, scope: Scope, entry: str, item_id: str | None, env: dict[str, Any]
    ) -> str:
        example = "parallel: {branches: [[...layers], [...layers]], merge: concat}"
        fields = self.combinator_fields(
            body, path, {"branches": True, "merge": False, "activation": False}, example
        )
        if fields is None:
            return UNKNOWN
        branches = fields["branches"]
        if not isinstance(branches, list) or len(branches) < 2:
            self.error(
                "expected at least two branches (each a list of layers)",
                (*path, "branches"),
                code="combinator",
                hint=example,
            )
            return UNKNOWN
        inner = self.sub_scope(scope, item_id)
        outs = []
        for index, branch in enumerate(branches):
            branch_scope = inner.child()
            outs.append(self.walk_list(branch, (*path, "branches", index), branch_scope, entry))
            for name in branch_scope.ids:  # (for the hints of a sibling branch)
                inner.enclosed.setdefault(name, ((*path, "branches", index), "branch"))
            self.enclose(scope, [branch_scope], path, "parallel", item_id)
        if UNKNOWN in outs:
            return UNKNOWN
        merge = self.merge_kind(fields.get("merge", "concat"), env, path)
        if merge is None:
            return UNKNOWN
        merged = self.merge(merge, outs, inner, path)
        return self.post_activation(fields, merged, inner, path, env)

    def repeat(
        self, body: Any, path: SpecPath, scope: Scope, entry: str, item_id: str | None, env: dict[str, Any]
    ) -> str:
        example = "repeat: {times: 3, as: i, layers: [...layers]}"
        allowed = {"times": True, "as": False, "layers": True, "carry": False, "next": False}
        fields = self.combinator_fields(body, path, allowed, example)
        if fields is None:
            return UNKNOWN
        try:
            return self._repeat(fields, path, scope, entry, item_id, env)
        except _RepeatFailed:
            # The names it would have left behind (`x`, `cells.x`) stay silent when used later:
            # the repeat's own error has been reported. So do the ids its items would have made
            # (`c${i}`, which no iteration made: "unknown layer id 'c1'" was its consequence).
            layers = fields.get("layers")
            if isinstance(layers, list) and any(isinstance(item, dict) and "id" in item for item in layers):
                self.lost_ids = True
            carry = fields.get("carry")
            for name in carry if isinstance(carry, dict) else ():
                if isinstance(name, str):
                    scope.ids.setdefault(name, UNKNOWN)
                    if item_id:
                        scope.ids.setdefault(f"{item_id}.{name}", UNKNOWN)
            return UNKNOWN

    def hidden_loop_var(self, var: str, path: SpecPath) -> None:
        """Warn (once per repeat) that the loop variable ``var`` of the repeat at ``path``
        hides an enclosing repeat's of that name in the same body: inside it the outer one
        cannot be read, so an id or value meant to differ per outer iteration does not."""
        depth = len(self.call_stack)
        outer = [
            where
            for (level, name), where in zip(self.loop_vars, self.loop_paths, strict=True)
            if level == depth and name == var
        ]
        if not outer or path in self.warned_loops:
            return
        self.warned_loops.add(path)
        names = {name for _, name in self.loop_vars}
        free = free_loop_name({*names, *self.vars_env})
        declared = (*outer[-1], "as")
        self.diags.warning(
            f"loop variable {var!r} hides the loop variable of the repeat at {format_path(outer[-1][:-1])} "
            f"around it: inside this repeat every `${{{var}}}` reads this one",
            self.loc((*path, "as")),
            format_path((*path, "as")),
            code="hidden-loop-var",
            hint=f"name it otherwise (e.g. as: {free}) and read `${{{var}}}` and `${{{free}}}` where both "
            "are meant",
            notes=self.shadow_notes([Shadow(f"the loop variable `{var}` of the outer repeat", declared)]),
        )

    def _repeat(
        self,
        fields: dict[str, Any],
        path: SpecPath,
        scope: Scope,
        entry: str,
        item_id: str | None,
        env: dict[str, Any],
    ) -> str:
        """:meth:`repeat` once its fields are read; raises :class:`_RepeatFailed` after an error."""
        ok, times = self.evaluate(fields["times"], env, (*path, "times"))
        if not ok:
            raise _RepeatFailed
        if not isinstance(times, int) or isinstance(times, bool) or not 0 <= times <= MAX_REPEAT:
            self.error(
                f"expected an integer from 0 to {MAX_REPEAT:,}; received {describe_value(times)}",
                (*path, "times"),
                code="parameter",
            )
            raise _RepeatFailed
        made = self.least.of_repeat(times, fields["layers"])
        if self.over_budget(made, (*path, "times"), "this repeat", "the repeat"):
            raise _RepeatFailed
        var = fields.get("as")
        if var is not None and (not isinstance(var, str) or not IDENTIFIER.fullmatch(var)):
            self.error(f"expected an identifier; received {spelled(var)}", (*path, "as"), code="identifier")
            raise _RepeatFailed
        if var is not None and (problem := unreadable_name(var)):
            self.error(problem, (*path, "as"), code="identifier", hint=f"rename it, e.g. `{var}_`")
            raise _RepeatFailed
        if var is not None:
            self.hidden_loop_var(var, path)
        raw_carry = fields.get("carry")
        shadowed = item_id is not None and isinstance(raw_carry, dict) and item_id in raw_carry
        if shadowed:
            # After the loop both the repeat's id and each carried name are ids of this list.
            self.error(
                f"duplicate id {item_id!r} in this layer list: the repeat's `id` is also a name it "
                "carries, and after the loop each carried name is an id of this list",
                (*path[:-1], "id"),
                code="duplicate-id",
                hint=f"rename the repeat (e.g. id: cells) or the carried name: after the loop "
                f"`{item_id}` is the carried value, and the repeat's id reaches it as `cells.{item_id}`",
            )
        carried = self.carry(fields, path, scope, env)
        if carried is None or shadowed:
            raise _RepeatFailed
        steps: dict[str, Any] = fields.get("next") or {}
        current = entry
        self.record.note(
            var=var,
            times=times,
            raw_times=fields["times"],
            carry=dict(fields.get("carry") or {}),
            next=dict(steps),
            item_id=item_id,
        )
        prefix = f"{scope.prefix}{item_id}_" if item_id else scope.prefix
        group = (*scope.group, item_id) if item_id else scope.group
        self.repeats.append((item_id, var, bool(carried)))
        self.loop_vars.append((len(self.call_stack), var or ""))
        self.loop_values.append(0)
        self.loop_paths.append(path)
        self.loop_times.append(times)
        times_path, layers_path = (*path, "times"), (*path, "layers")  # (made once: 10**5 iterations)
        if times == 0:
            self.dormant.append((fields["layers"], layers_path))
        try:
            for i in range(times):
                if not self.tick(times_path):
                    raise _RepeatFailed
                iteration_env = {**scope.env, var: i} if var else scope.env
                self.loop_values[-1] = i  # (the repeats inside have popped theirs)
                # A carrying repeat with an id is one scope per iteration: its layers are named
                # `cells_0_…`, `cells_1_…` and its ids are reachable as cells[0].h, cells[1].h.
                scoped = bool(carried and item_id)
                own = f"{prefix}{i}_" if scoped else prefix
                own_group = (*scope.group, f"{item_id}[{i}]") if scoped else group
                iteration = scope.child(prefix=own, group=own_group, env=iteration_env)
                iteration.ids.update(carried)
                saved_context, self.context = self.context, self.next_context()
                current = self.walk_list(fields["layers"], layers_path, iteration, current)
                self.context = saved_context
                if iteration.ids or iteration.hidden or iteration.skipped:  # (else nothing to note)
                    self.note_hidden(scope, iteration, carried, Hidden(path, item_id, bool(carried), i))
                if current == UNKNOWN:
                    raise _RepeatFailed
                if item_id:
                    for name, tensor in iteration.ids.items():
                        if name not in carried:
                            scope.ids[f"{item_id}[{i}].{name}"] = tensor
                advanced = self.advance(steps, carried, path, iteration, iteration_env)
                if advanced is None:
                    raise _RepeatFailed
                carried = advanced
        finally:
            self.repeats.pop()
            self.loop_vars.pop()
            self.loop_values.pop()
            self.loop_paths.pop()
            self.loop_times.pop()
        self.record.note(results=dict(carried))
        for name, tensor in carried.items():  # the final values, by name (and as the repeat's)
            scope.ids[name] = tensor
            if item_id:
                scope.ids[f"{item_id}.{name}"] = tensor
        return current

    @staticmethod
    def note_hidden(scope: Scope, iteration: Scope, carried: dict[str, str], where: Hidden) -> None:
        """Remember the ids an iteration defined, which only the iteration sees, for the hint
        of a reference to one after the repeat (and those hidden inside it in turn)."""
        for name in iteration.ids:
            if name not in carried and name not in scope.ids:
                scope.hidden.setdefault(name, where)
        for name, inner in iteration.hidden.items():
            scope.hidden.setdefault(name, inner)
        for name in iteration.skipped:
            scope.hidden.setdefault(name, where)

    def carry(
        self, fields: dict[str, Any], path: SpecPath, scope: Scope, env: dict[str, Any]
    ) -> dict[str, str] | None:
        """The tensors a repeat starts with (``carry: {p: stem_b, x: c0}``), checked with
        its ``next`` rule."""
        raw = fields.get("carry")
        steps = fields.get("next")
        if raw is None:
            if steps is not None:
                self.error(
                    "`next` advances carried names; this repeat carries none",
                    (*path, "next"),
                    key=True,
                    code="carry",
                    hint="add carry: {name: id, …} with the tensors the iterations pass on",
                )
                return None
            return {}
        if not isinstance(raw, dict) or not raw:
            self.error(
                f"expected a mapping of names to ids; received {spelled(raw)}",
                (*path, "carry"),
                code="carry",
                hint="e.g. carry: {p: stem, x: c0}",
            )
            return None
        carried: dict[str, str] = {}
        for name, ref in raw.items():
            cpath = (*path, "carry", name)
            if not isinstance(name, str) or not IDENTIFIER.fullmatch(name) or name == INPUT:
                said = spelled(name)
                self.error(f"expected an identifier; received {said}", cpath, key=True, code="identifier")
                return None
            tensor = self.reference(ref, cpath, scope, env)
            if tensor is None:
                return None
            carried[name] = tensor
        if steps is not None and not isinstance(steps, dict):
            self.error(
                f"expected a mapping of carried names to ids; received {spelled(steps)}",
                (*path, "next"),
                code="carry",
                hint="e.g. next: {p: x, x: out}",
            )
            return None
        for name in steps or {}:
            if name not in carried:
                self.error(
                    f"`next` names {name!r}, which the repeat does not carry",
                    (*path, "next", name),
                    key=True,
                    code="carry",
                    hint=key_hint(str(name), carried, self.beside((*path, "next", name), steps or {}))
                    or "carried: " + ", ".join(carried),
                )
                return None
        return carried

    def advance(
        self,
        steps: dict[str, Any],
        carried: dict[str, str],
        path: SpecPath,
        iteration: Scope,
        env: dict[str, Any],
    ) -> dict[str, str] | None:
        """The carried tensors after one iteration: every ``next`` reference is read in the
        iteration's scope, so ``next: {p: x, x: new}`` passes the old ``x`` on as ``p``; a
        name ``next`` leaves out keeps its value."""
        out = dict(carried)
        for name, ref in steps.items():
            tensor = self.reference(ref, (*path, "next", name), iteration, env)
            if tensor is None:
                return None
            out[name] = tensor
        return out
