"""The spec's ``vars`` (:class:`VarResolution`, a part of :class:`cnnspec.spec.resolve.Resolver`):
evaluated in the order they read one another (:func:`var_order`), a cycle reported with its
chain (:func:`var_cycles`), and each var's ``choices`` checked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from cnnspec.errors import Loc
from cnnspec.ir import Var
from cnnspec.spec import varchoices
from cnnspec.spec.expr import POISONED, ExpressionError, Poisoned, unreadable_name
from cnnspec.spec.varrefs import var_refs


def var_order(raw: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The names of ``vars`` in an order where every var comes after the vars it reads (linear
    time: a chain of thousands of vars must not take quadratic passes), and, in declaration
    order, the vars on or behind a cycle, which no order can place. The resolver and the code
    emitter evaluate vars in this order."""
    refs = {name: var_refs(value, raw) for name, value in raw.items()}
    deps = {name: names - {name} for name, names in refs.items()}
    cyclic = {name for name, names in refs.items() if name in names}
    users: dict[str, list[str]] = {name: [] for name in raw}
    waiting = {name: len(names) for name, names in deps.items()}
    for name, names in deps.items():
        for dep in names:
            users[dep].append(name)
    ready = deque(name for name in raw if waiting[name] == 0 and name not in cyclic)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0 and user not in cyclic:
                ready.append(user)
    placed = set(order)
    return order, [name for name in raw if name not in placed]


def var_cycles(raw: dict[str, Any], stuck: list[str]) -> list[list[str]]:
    """The cycles among the ``stuck`` vars (those :func:`var_order` cannot place): for each
    group of vars that read each other, the chain from its first var back to itself
    (``[a, b, a]``). Vars only behind a cycle are in none: they are its consequence."""
    members = set(stuck)
    position = {name: i for i, name in enumerate(raw)}
    deps = {name: sorted(var_refs(raw[name], raw) & members, key=position.__getitem__) for name in stuck}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in stuck:  # Tarjan's strongly connected components, without recursion
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(deps[root]))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(deps[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in deps[node]:
                    groups.append(group)
    chains = []
    for group in groups:
        inside = set(group)
        first = min(group, key=position.__getitem__)
        came_from: dict[str, str] = {}
        queue = deque([first])
        last = first
        while queue:  # the shortest way from `first` back to itself
            node = queue.popleft()
            if first in deps[node]:
                last = node
                break
            for child in deps[node]:
                if child in inside and child not in came_from and child != first:
                    came_from[child] = node
                    queue.append(child)
        chain = [first]
        while last != first:
            chain.append(last)
            last = came_from[last]
        chains.append([first, *reversed(chain[1:]), first])
    return sorted(chains, key=lambda chain: position[chain[0]])


def _chain_text(chain: list[str]) -> str:
    if len(chain) > 8:
        chain = [*chain[:4], "…", *chain[-3:]]
    return " → ".join(chain)


class VarResolution:
    """The resolver's evaluation of ``vars``. Its methods share the state
    :class:`cnnspec.spec.resolve.Resolver` sets up."""

    def resolve_vars(self) -> dict[str, Any]:
        """Evaluate ``vars`` in dependency order (linear time: a chain of thousands of vars
        must not take quadratic passes); vars on or behind a cycle are errors."""
        raw: dict[str, Any] = self.data.get("vars") or {}
        # Filled in dependency order: an error in a var names the earlier vars it read.
        env: dict[str, Any] = {}
        self.vars_env = env
        for name in raw:
            problem = unreadable_name(name) if isinstance(name, str) else None
            if problem:
                self.error(
                    problem, ("vars", name), key=True, code="identifier", hint=f"rename it, e.g. `{name}_`"
                )
                self.refused_names.add(name)
        order, cyclic = var_order(raw)
        check_choice = self.var_choices_check()
        for name in order:
            if name in self.refused_names:
                env[name] = POISONED
                continue
            try:
                result = self._substitute(raw[name], env)
            except Poisoned:
                result = POISONED  # reads a var that failed: that one was reported
            except ExpressionError as exc:
                if not self.reads_refused_name(raw[name]):
                    self.error(exc.message, ("vars", name), code="expression", hint=exc.hint)
                result = POISONED
            # (before the vars that read it: they would fail again, or hold what it misled them to)
            env[name] = result if check_choice(name, result) else POISONED
        self.tree.vars = [Var(name, raw[name], env[name], self.loc(("vars", name))) for name in order]
        for name in cyclic:
            env[name] = POISONED
        for chain in var_cycles(raw, cyclic):
            self.error(
                f"variable {chain[0]!r} depends on itself ({_chain_text(chain)})",
                ("vars", chain[0]),
                code="cycle",
            )
        return env

    def var_choices_check(self) -> Callable[[str, Any], bool]:
        """Report a malformed ``var_choices`` declaration (:mod:`cnnspec.spec.varchoices`) now,
        and return the check of one var's value: whether it may keep it, else reported where
        the value was set (``--set``, an extending file, a backbone item, a variants row). A
        variants row reported with the declaration is not reported again for the variant
        being built."""
        reported: set[Loc | None] = set()
        malformed: set[Any] = set()
        for problem in varchoices.declaration_problems(self.data):
            self.error(problem.message, problem.path, key=problem.key, code="var-choice", hint=problem.hint)
            reported.add(self.doc.loc(problem.path))
            if problem.path[0] == varchoices.KEY:
                malformed.add(problem.path[1])
        choices = varchoices.declared(self.data)

        def check(name: str, value: Any) -> bool:
            if value is POISONED or name not in choices or name in malformed:
                return True  # failed where it was set, has no choices, or they were reported
            found = varchoices.refusal(name, value, choices[name])
            if found is not None and self.doc.loc(found.path) not in reported:
                self.error(found.message, found.path, code="var-choice", hint=found.hint)
            return found is None

        return check
