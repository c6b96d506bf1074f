"""Block declarations and calls (:class:`BlockCalls`, a part of
:class:`cnnspec.spec.resolve.Resolver`): a declaration's parameters, inputs and outputs checked
once, a call's arguments bound and type-checked, its body walked in a scope of its own, and its
name and outputs given to the caller. Identical calls are replayed instead of walked again
(:mod:`cnnspec.spec.resolve_replay`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnnspec.errors import (
    COMMAND_LINE_PREFIX,
    SpecPath,
    did_you_mean,
    format_path,
    key_hint,
    misspelt,
    spelled,
)
from cnnspec.ir import INPUT
from cnnspec.layers.registry import REGISTRY
from cnnspec.spec.expr import POISONED, is_expression, unreadable_name
from cnnspec.spec.limits import MAX_VALUE_DEPTH, SCALAR_TYPES
from cnnspec.spec.loader import copy_tree
from cnnspec.spec.memo import SiteLog
from cnnspec.spec.resolve_replay import Changed
from cnnspec.spec.scope import IDENTIFIER, RESERVED_BLOCK_NAMES, UNKNOWN, CallName, MemoShape, Scope
from cnnspec.spec.varrefs import var_refs

BLOCK_PARAM_TYPES: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "any": lambda v: True,
}


@dataclass(frozen=True)
class BlockParam:
    type: str
    default: Any
    required: bool
    #: The default is a small list or mapping with no ``${…}`` anywhere that passes the type
    #: check: every call gets a copy without evaluating it (:meth:`Resolver.block_default`).
    plain: bool = False


def scalar_param(declared: dict[str, Any]) -> str | None:
    """The parameter a block called with a single value (``- cb: 8``) gives it to: its only
    parameter, or else its only required one; ``None`` when neither is one parameter.
    ``declared``: the block's parameters by name (:meth:`Resolver.block_params`)."""
    required = [name for name, param in declared.items() if param.required]
    if len(declared) == 1:
        return next(iter(declared))
    return required[0] if len(required) == 1 else None


#: At most this many elements in a default copied without evaluation (BlockParam.plain).
PLAIN_DEFAULT_NODES = 1_000


def param_type_error(kind: str, pname: str, value: Any, *, default: bool = False) -> str:
    """The message for a block argument (or a parameter's default) of the wrong type."""
    what = f"the default of block parameter `{pname}`" if default else f"block parameter `{pname}`"
    return f"expected {kind} for {what}; received {spelled(value)}"


def _plain_size(value: Any, depth: int) -> int:
    """The elements of ``value`` when it holds no ``${…}`` (nor anything but YAML's plain
    types) within :data:`MAX_VALUE_DEPTH` levels, else more than :data:`PLAIN_DEFAULT_NODES`."""
    kind = type(value)
    if kind in SCALAR_TYPES:
        return PLAIN_DEFAULT_NODES + 1 if kind is str and "${" in value else 1
    if depth >= MAX_VALUE_DEPTH or kind not in (list, dict):
        return PLAIN_DEFAULT_NODES + 1
    total = 1
    for key, item in value.items() if kind is dict else enumerate(value):
        if kind is dict and type(key) is str and "${" in key:
            return PLAIN_DEFAULT_NODES + 1
        total += _plain_size(item, depth + 1)
        if total > PLAIN_DEFAULT_NODES:
            break
    return total


class BlockCalls:
    """The resolver's block calls: checks of ``blocks:`` declarations, argument binding and
    :meth:`call_block`. Its methods share the state :class:`cnnspec.spec.resolve.Resolver` sets up."""

    def check_blocks(self) -> None:
        """Check every block's declaration once, called or not: a name a layer item reads as
        something else, parameter names no expression can read, defaults that read a parameter
        declared after them, and literal defaults of the wrong type (with the check a call's
        arguments get; a ``${…}`` default is checked when a call evaluates it)."""
        for name, block in self.blocks.items():
            if not isinstance(name, str):
                continue
            reason = RESERVED_BLOCK_NAMES.get(name) or (
                f"it names the layer kind `{name}`" if name in REGISTRY else None
            )
            if reason:
                self.error(
                    f"block name {name!r} is reserved: {reason}",
                    ("blocks", name),
                    key=True,
                    code="block-name",
                    hint=f"rename the block: a layer item `{name}` never calls it",
                )
                self.bad_blocks.add(name)
            declared = block.get("params") if isinstance(block, dict) else None
            for index, (pname, spec) in enumerate(declared.items() if isinstance(declared, dict) else ()):
                problem = unreadable_name(pname) if isinstance(pname, str) else None
                if problem:
                    self.error(
                        problem,
                        ("blocks", name, "params", pname),
                        key=True,
                        code="identifier",
                        hint=f"rename the parameter, e.g. `{pname}_`",
                    )
                    self.bad_blocks.add(name)
                if not isinstance(spec, dict) or "default" not in spec:
                    continue
                default, kind = spec["default"], spec.get("type", "any")
                if self.reads_later(name, pname, default, list(declared)[index + 1 :]):
                    continue
                if isinstance(default, str) and "${" in default:
                    continue  # its type is known once a call evaluates it (block_default)
                if not BLOCK_PARAM_TYPES.get(kind, BLOCK_PARAM_TYPES["any"])(default):
                    self.error(
                        param_type_error(kind, pname, default, default=True),
                        ("blocks", name, "params", pname, "default"),
                        code="parameter",
                    )
                    self.bad_defaults.add((name, pname))

    def reads_later(self, name: str, pname: Any, default: Any, after: list[Any]) -> bool:
        """Refuse (at the default, whether a call uses it or not) the default of parameter
        ``pname`` of block ``name`` that reads one of the parameters ``after`` it. Defaults are
        filled in declaration order, so such a name would read the var of that name or nothing
        where the default is used, while the generated function reads the parameter: one rule
        for every call (and for a library or a block no call uses) is that a default reads
        only the parameters declared before it."""
        later = [p for p in after if isinstance(p, str)]
        found = var_refs(default, dict.fromkeys(later)) if later else set()
        later = [p for p in later if p in found]
        if not later:
            return False
        self.error(
            f"expected the default of block parameter `{pname}` to read parameters declared "
            f"before it; received {', '.join(f'`{p}`' for p in later)}, declared after it",
            ("blocks", name, "params", pname, "default"),
            code="parameter",
            hint=f"defaults are filled in declaration order: declare {' and '.join(later)} before "
            f"{pname} in `params`",
        )
        self.bad_defaults.add((name, pname))
        return True

    def block_params(self, name: str) -> dict[str, BlockParam]:
        """Block ``name``'s declared parameters, read once per resolution (every call asks)."""
        found = self.param_decls.get(name)
        if found is None:
            found = self.param_decls[name] = self._block_params(name)
        return found

    def _block_params(self, name: str) -> dict[str, BlockParam]:
        declared = (self.blocks[name] or {}).get("params") or {}
        out: dict[str, BlockParam] = {}
        for pname, spec in declared.items():
            if isinstance(spec, str):
                out[pname] = BlockParam(spec, None, True)
            else:
                has_default = "default" in spec
                kind, default = spec.get("type", "any"), spec.get("default")
                plain = (
                    isinstance(default, (list, dict))
                    and _plain_size(default, 0) <= PLAIN_DEFAULT_NODES
                    and BLOCK_PARAM_TYPES.get(kind, BLOCK_PARAM_TYPES["any"])(default)
                )
                out[pname] = BlockParam(kind, default, not has_default, plain)
        return out

    def block_signature(self, name: str) -> bool:
        """Check once that a block's input and output names are usable: distinct identifiers,
        not ``input``, not the name of one of its parameters (reported at the block)."""
        if name in self.signatures:
            return self.signatures[name]
        spec = self.blocks[name] or {}
        params = set(self.block_params(name))
        ok = True
        for key in ("inputs", "outputs"):
            raw = spec.get(key)
            names = [raw] if isinstance(raw, str) else raw or []
            seen: set[str] = set()
            for index, item in enumerate(names):
                ipath: SpecPath = ("blocks", name, key)
                if isinstance(raw, list):
                    ipath = (*ipath, index)
                problem = hint = None
                if not isinstance(item, str) or not IDENTIFIER.fullmatch(item):
                    problem = f"expected an identifier; received {spelled(item)}"
                    hint = (
                        "name each input as its body refers to it (an identifier: letters, digits, _)"
                        if key == "inputs"
                        else "list the ids of the body's layers (or its inputs) the call returns"
                    )
                elif item in seen:
                    problem = f"{item!r} is listed twice"
                    hint = (
                        "give each input a distinct name (the ids its body refers to)"
                        if key == "inputs"
                        else f"list each output once: a call of `{name}` with id ID gives `{item}` as "
                        f"ID.{item} (and by position as ID[0], ID[1], …), so a second entry names nothing new"
                    )
                elif key == "inputs" and item in (INPUT, self.input_name):
                    problem = f"{item!r} cannot name a block input (it means the model's input)"
                    taken = {INPUT, self.input_name, *params, *(n for n in names if isinstance(n, str))}
                    free = [n for n in ("x", "skip", "h", "features") if n not in taken][:2]
                    hint = "name it after what it carries, e.g. " + " or ".join(f"`{n}`" for n in free)
                elif key == "inputs" and item in params:
                    problem = f"{item!r} is both an input and a parameter of block `{name}`"
                    hint = f"rename the input or the parameter: inside the body `{item}` can mean only one"
                if problem:
                    self.diags.error(
                        problem,
                        self.doc.loc(ipath),
                        format_path(ipath),
                        code="block-signature",
                        hint=hint,
                    )
                    ok = False
                seen.add(str(item))
        self.signatures[name] = ok
        return ok

    def block_inputs(self, name: str) -> tuple[str, ...]:
        """The names a block declares for its inputs (``()``: one unnamed input, ``input``)."""
        declared = (self.blocks[name] or {}).get("inputs")
        if isinstance(declared, str):
            declared = [declared]
        return tuple(n for n in declared or () if isinstance(n, str))

    def block_outputs(self, name: str) -> tuple[str, ...]:
        """The ids a block returns, in order (``()``: its last item)."""
        declared = (self.blocks[name] or {}).get("outputs")
        if isinstance(declared, str):
            declared = [declared]
        return tuple(n for n in declared or () if isinstance(n, str))

    def beside(self, path: SpecPath, written: Any) -> Any:
        """The keys written beside the unknown key at ``path`` that its did-you-mean must not
        name (renaming it to one of them would write a key twice): ``written``, but for a key a
        ``--set`` option wrote, only those the same option wrote. The option is what is
        renamed, and its path merges into the mapping it names: ``--set
        model[0].conv2d.filtrs=3`` meant `filters`, which the file writes (as the schema says
        of an unknown key)."""
        loc = self.doc.key_loc(path)
        if loc is None or not loc.file.startswith(COMMAND_LINE_PREFIX) or not isinstance(written, dict):
            return written
        return [k for k in written if getattr(self.doc.key_loc((*path[:-1], k)), "file", None) == loc.file]

    def unknown_argument(
        self, name: str, key: Any, declared: dict[str, Any], path: SpecPath, written: Any = ()
    ) -> None:
        """Report the argument ``key`` of a call of block ``name``, which declares none such."""
        self.error(
            f"unknown argument {key!r} for block `{name}`",
            path,
            key=True,
            code="unknown-parameter",
            hint=key_hint(key, declared, self.beside(path, written))
            or "parameters: " + (", ".join(declared) or "none"),
        )

    def call_arguments(
        self, name: str, body: Any, path: SpecPath, declared: dict[str, BlockParam]
    ) -> tuple[dict[str, Any], dict[str, SpecPath]] | None:
        """The arguments written at a call of block ``name`` (``body``: nothing, a mapping, or
        the value of its only or only required parameter) and the path of each; ``None``
        (reported) for a single value the block cannot take."""
        if body is None:
            return {}, {}
        if isinstance(body, dict):
            return body, {k: (*path, k) for k in body}
        only = scalar_param(declared)
        if only is not None:
            return {only: body}, {only: path}
        self.error(
            f"expected a mapping of arguments for block `{name}`; received {spelled(body)}",
            path,
            code="block-args",
            hint="parameters: " + (", ".join(declared) or "none"),
        )
        return None

    def argument_error(self, param: BlockParam, key: str, value: Any, path: SpecPath) -> bool:
        """Report (and say) whether the argument ``key``'s ``value`` is not of its parameter's type."""
        if BLOCK_PARAM_TYPES.get(param.type, BLOCK_PARAM_TYPES["any"])(value):
            return False
        self.error(param_type_error(param.type, key, value), path, code="parameter")
        return True

    def missing_arguments(
        self, name: str, raw: dict[str, Any], declared: dict[str, BlockParam], path: SpecPath
    ) -> list[str]:
        """The required parameters of block ``name`` that the call at ``path`` (its arguments
        ``raw``) does not pass, each reported unless an argument misspelt it (whose
        unknown-argument error says it: one mistake)."""
        missing = [pname for pname, param in declared.items() if param.required and pname not in raw]
        meant = misspelt(raw, declared, missing)
        for pname in missing:
            if pname not in meant:
                self.error(
                    f"missing required argument `{pname}` for block `{name}`",
                    path,
                    code="missing-parameter",
                )
        return missing

    def call_block(
        self,
        name: str,
        body: Any,
        path: SpecPath,
        scope: Scope,
        inputs: list[str],
        item_id: str | None,
        env: dict[str, Any],
    ) -> str:
        entry = inputs[0]
        self.used_blocks.add(name)
        if name in self.call_stack:
            chain = " → ".join([*self.call_stack, name])
            self.error(f"block {name!r} calls itself ({chain})", path, code="cycle", about_value=False)
            return UNKNOWN
        if name in self.bad_blocks or not self.block_signature(name):
            return UNKNOWN  # its declaration's error says why
        declared = self.block_params(name)
        arguments = self.call_arguments(name, body, path, declared)
        if arguments is None:
            self.unwalked_body(name)
            return UNKNOWN
        raw, located = arguments
        args: dict[str, Any] = {}
        ok = True
        for key, value in raw.items():
            param = declared.get(key)
            if param is None:
                self.unknown_argument(name, key, declared, located[key], raw)
                ok = False
                continue
            args[key] = POISONED  # until checked: what depends on a failed argument stays silent
            good, value = self.evaluate(value, env, located[key])
            if not good or self.argument_error(param, key, value, located[key]):
                ok = False
                continue
            args[key] = value
        missing = self.missing_arguments(name, raw, declared, path)
        for pname in missing:
            args[pname] = POISONED
            ok = False
        defaulted = [p for p in declared if p not in raw and p not in missing]
        # After the missing ones are poisoned: a default that reads one stays silent.
        for pname in defaulted:
            ok = self.block_default(name, pname, declared[pname], args, entry, path[:-1]) and ok
        if not ok:
            self.unwalked_body(name)
            return UNKNOWN
        if self.over_budget(self.least.of_block(name), path, f"this call of block `{name}`", "the call"):
            return UNKNOWN
        local = item_id or self.name_for(scope, None, name).removeprefix(scope.prefix)
        self.claim_call_name(CallName(scope.prefix + local, scope.group, path, item_id is None))
        names = self.block_inputs(name)
        key = self.memo_key(name, args, inputs)
        memo = self.memos.get(key) if key is not None else None
        values = self.value_params(name) if key is not None else frozenset()
        free = key is not None and self.shape_free(name)
        value_key = self.value_key(key, args, values, free) if values or free else None
        changed: Changed | None = None
        if memo is None and value_key is not None and key not in self.memos:
            found = self.value_memos.get(value_key)
            if found is not None:
                memo, recorded, sites = found
                given = dict(key[1])  # key is not None here: value_key is not
                differ = {p for p in values if given.get(p) != recorded.get(p)}
                changed = Changed(args, sites, differ, free)
        if memo is not None and changed is None and self.past_budget(memo, name, path):
            return UNKNOWN
        if memo is not None and not self.replay_fits(memo, f"{scope.prefix}{local}_", (*scope.group, local)):
            memo = None  # walked instead, which reports what the replay would hide
        if memo is not None:
            prefix, group = f"{scope.prefix}{local}_", (*scope.group, local)
            replayed = self.replay(memo, prefix, group, tuple(inputs), changed)
            if replayed is None and key is not None and changed is None:
                self.memos[key] = None  # not a pure function of its prefix and inputs
            if replayed is not None:
                below, calls = self.memo_calls(memo)
                self.deepest = max(self.deepest, self.nesting + below)
                for inner in calls:
                    made = CallName(prefix + inner.name, (*group, *inner.group), inner.path, inner.automatic)
                    self.call_names.setdefault(made.name, made)
                    self.call_log.append(made)
                self.record_call(name, declared, raw, args, prefix)
                ids, outputs = replayed
                self.record.note(outputs=tuple(outputs))
                self.export(scope, local, name, Scope(None, ids, None, prefix, {}, group), outputs)
                return outputs[0] if outputs else UNKNOWN
        start = self.call_start() if key is not None and key not in self.memos else None
        log = None
        if start is not None and values:
            known = self.site_known.setdefault(name, {})
            log = self.site_logs[name] = SiteLog(values, len(self.nodes), [], known)
        block_env = {**self.global_env(scope), **args}
        # How deep this call nests below itself, and the calls made inside it, for its memo.
        calls_before, deepest_before, self.deepest = len(self.call_log), self.deepest, self.nesting
        self.push_call(name, path[:-1], args)  # the calling item: `called from model[4]`
        saved_context, self.context = self.context, self.next_context()
        try:
            defaults = self.resolve_defaults(
                (self.blocks[name] or {}).get("defaults"),
                ("blocks", name, "defaults"),
                block_env,
                self.spec_defaults,
            )
            block_scope = Scope(
                entry=None if names else entry,
                ids=dict(zip(names, inputs, strict=True)) if names else {},
                parent=None,
                prefix=f"{scope.prefix}{local}_",
                env=block_env,
                group=(*scope.group, local),
                defaults=defaults,
                block=name,
                block_inputs=names,
                caller=scope,
            )
            self.record_call(name, declared, raw, args, block_scope.prefix)
            last = self.walk_list(
                self.blocks[name].get("layers"), ("blocks", name, "layers"), block_scope, entry
            )
            outputs = self.call_outputs(name, block_scope, last)
        finally:
            self.pop_call()
            self.context = saved_context
            if log is not None:
                del self.site_logs[name]
            below = self.deepest - self.nesting
            self.deepest = max(self.deepest, deepest_before)
        if start is not None and key is not None:
            recorded = self.memos[key] = self.record_memo(start, block_scope, tuple(inputs), outputs)
            if recorded is not None:
                self.memo_shape[id(recorded)] = MemoShape(
                    below, calls_before, len(self.call_log), block_scope.prefix, len(block_scope.group)
                )
            if recorded is not None and value_key is not None:
                sites = log.sites if log is not None else []
                self.value_memos.setdefault(value_key, (recorded, dict(key[1]), sites))
        self.record.note(outputs=tuple(outputs))
        self.export(scope, local, name, block_scope, outputs)
        return outputs[0] if outputs else UNKNOWN

    def claim_call_name(self, call: CallName) -> None:
        """Note a block call's name; report it if a layer beside it (or the model input) has
        that name already. A call's name is a group of its layers: `cnnspec inspect` shows it
        as a row and a freeze pattern naming it covers the call's layers, so a layer of the
        same name in the same group is two things under one name (one named later than the
        call is reported in :meth:`emit`). As with the kind_N names of layers (``conv2d_1``
        beside ``id: conv2d_1``), an automatic name is not moved past a taken one: the clash
        is reported."""
        self.call_log.append(call)
        if not self.name_taken(call.name, call.group):
            self.call_names.setdefault(call.name, call)
            return
        other = self.by_name.get(call.name)
        where = f" at line {other.loc.line}" if other is not None and other.loc else ""
        what = "the model input" if other is None else f"the layer{where}"
        how = " (its automatic name)" if call.automatic else ""
        self.error(
            f"name {call.name!r} is used twice: by {what} and by this block call{how}",
            call.path,
            code="duplicate-name",
            hint=self.call_name_hint(call.automatic),
        )

    def name_taken(self, full: str, group: tuple[str, ...]) -> bool:
        """Whether a layer of ``group`` (or, at the top, the model input) is named ``full``:
        a layer of another group is shown and matched under its group, not beside the call."""
        node = self.by_name.get(full)
        if node is not None:
            return node.group == group
        return full == self.input_name and not group

    def call_outputs(self, name: str, block_scope: Scope, last: str) -> list[str]:
        """The tensors a call returns: the block's declared ``outputs``, else its last item."""
        declared = self.block_outputs(name)
        if not declared or last == UNKNOWN:
            return [last] if not declared else [UNKNOWN] * len(declared)
        out = []
        for index, ref in enumerate(declared):
            tensor = block_scope.lookup(ref)
            if tensor is None:
                raw = (self.blocks[name] or {}).get("outputs")
                opath: SpecPath = (
                    ("blocks", name, "outputs", index)
                    if isinstance(raw, list)
                    else ("blocks", name, "outputs")
                )
                if not self.lost_ids:
                    self.error(
                        f"block `{name}` returns {ref!r}, which its body does not define",
                        opath,
                        code="reference",
                        hint=self.hidden_hint(ref, block_scope)
                        or did_you_mean(ref, block_scope.visible())
                        or "outputs name ids of the block's layers (or its inputs)",
                    )
                tensor = UNKNOWN
            out.append(tensor)
        return out

    def export(self, scope: Scope, local: str, name: str, block_scope: Scope, outputs: list[str]) -> None:
        """Make a call's outputs and inner ids reachable from the caller: ``c0.x`` / ``c0[1]``
        for outputs, ``c0.h`` (and ``stage3.block2.out`` through nested calls) for ids."""
        inputs = set(self.block_inputs(name))
        for inner, tensor in block_scope.ids.items():
            if inner not in inputs:
                scope.ids.setdefault(f"{local}.{inner}", tensor)
        declared = self.block_outputs(name)
        for index, (ref, tensor) in enumerate(zip(declared, outputs, strict=False)):
            scope.ids[f"{local}.{ref}"] = tensor
            scope.ids[f"{local}[{index}]"] = tensor
        # For the hint of a reference to the call's bare automatic name (`inner_1`).
        if declared:
            scope.results[local] = f"{local}.{declared[0]}"
        elif outputs and outputs[0] != UNKNOWN:
            named = [inner for inner, t in block_scope.ids.items() if t == outputs[0] and inner not in inputs]
            named.sort(key=lambda inner: "." in inner or "[" in inner)  # its own ids first
            scope.results[local] = f"{local}.{named[0]}" if named else None
        for inner, result in block_scope.results.items():
            scope.results.setdefault(f"{local}.{inner}", None if result is None else f"{local}.{result}")

    def block_default(
        self, name: str, pname: str, param: BlockParam, args: dict[str, Any], entry: str, site: SpecPath
    ) -> bool:
        """Fill ``args[pname]`` with the parameter's default. A ``${…}`` default is evaluated
        against the vars, the arguments before it and ``in_channels``/``in_shape`` of the
        block's input (``channels: {type: int, default: "${in_channels}"}``); its errors name
        the calling item ``site``."""
        if (name, pname) in self.bad_defaults:
            args[pname] = POISONED  # refused where it is declared (check_blocks)
            return False
        if not is_expression(param.default) and not isinstance(param.default, (list, dict)):
            args[pname] = param.default
            return True
        if param.plain:  # what evaluating it gives: a copy, checked when declared
            args[pname] = copy_tree(param.default)  # as substitution would build it
            return True
        path: SpecPath = ("blocks", name, "params", pname, "default")
        env = self.layer_env(self.vars_env, self.shapes.get(entry), args)
        self.push_call(name, site, args)
        saved_context, self.context = self.context, self.next_context()
        try:
            good, value = self.evaluate(param.default, env, path)
            if good and not BLOCK_PARAM_TYPES.get(param.type, BLOCK_PARAM_TYPES["any"])(value):
                self.error(
                    param_type_error(param.type, pname, value, default=True),
                    path,
                    code="parameter",
                )
                good = False
        finally:
            self.pop_call()
            self.context = saved_context
        if not good:
            args[pname] = POISONED
            return False
        args[pname] = value
        return True

    def unwalked_body(self, name: str) -> None:
        """A call of block ``name`` failed on its arguments: the block's items are checked as a
        dormant block's, those no other call expands (a block whose every call failed would
        otherwise have no item checked at all, where a block nothing calls has them all)."""
        block = self.blocks.get(name)
        layers = block.get("layers") if isinstance(block, dict) else None
        if isinstance(layers, list) and id(layers) not in self.stopped:
            self.stopped.add(id(layers))
            self.dormant.append((layers, ("blocks", name, "layers")))
