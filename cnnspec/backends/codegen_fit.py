"""Numbers in generated names fitted as linear functions of the loop variables and conditions in
scope (:func:`fit_linear`, :func:`fit_text`): how a layer name that differs between the calls
or iterations printed together is written once, as the expression that gives each of them.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from cnnspec.backends.codegen_tree import Inst

_NUMBER = re.compile(r"(\d+)")


def fit_linear(
    values: list[int], feats: list[dict[Any, int]], prefer: Callable[[Any], int] | None = None
) -> tuple[int, dict[Any, int]] | None:
    """Integer ``const + Σ coef·feature`` equal to ``values`` for every instance, or ``None``.
    A feature the data cannot tell apart from the constant (a loop that ran once everywhere, a
    condition true in every call) gets its ``prefer`` coefficient: what one unit of it adds,
    so the code stays right for other values."""
    # Only the features every instance has: one that a condition or loop inside another
    # condition found is unknown (and meaningless) where that condition was false.
    keys = [k for k in feats[0] if all(k in f for f in feats[1:])] if feats else []
    rows = list(dict.fromkeys((1, *(int(f[k]) for k in keys), v) for f, v in zip(feats, values, strict=True)))
    # Solve on the rows that the current solution gets wrong only, until it gets none wrong
    # (each round adds a row the basis does not span, so at most one per feature and one
    # more): checking a row is cheap, eliminating over thousands of rows is not.
    basis: list[tuple[int, ...]] = []
    coef: list[Any] | None = None
    while True:
        wrong = next(
            (row for row in rows if coef is None or sum(map(operator.mul, coef, row)) != row[-1]), None
        )
        if wrong is None:
            break
        basis.append(wrong)
        solved = _solve(basis, keys, prefer)
        if solved is None:
            return None
        coef = [int(x) for x in solved] if all(x.denominator == 1 for x in solved) else solved
    if coef is None or any(isinstance(x, Fraction) and x.denominator != 1 for x in coef):
        return None
    return int(coef[0]), {k: int(coef[i + 1]) for i, k in enumerate(keys) if coef[i + 1]}


def _solve(
    basis: list[tuple[int, ...]], keys: list[Any], prefer: Callable[[Any], int] | None
) -> list[Fraction] | None:
    """``[const, coef…]`` solving the rows ``(1, features…, value)`` exactly (free features
    at their ``prefer`` value), or ``None`` when they contradict each other."""
    rows = [[Fraction(x) for x in row] for row in basis]
    ncols = 1 + len(keys)
    pivots: list[int] = []
    r = 0
    for c in range(ncols):
        pivot = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][c]
        rows[r] = [x / lead for x in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                factor = rows[i][c]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(c)
        r += 1
    if any(rows[i][-1] != 0 for i in range(r, len(rows))):
        return None
    coef = [Fraction(0)] * ncols
    for c in range(1, ncols):
        if c not in pivots:
            coef[c] = Fraction(prefer(keys[c - 1]) if prefer is not None else 0)
    for i, c in enumerate(pivots):
        coef[c] = rows[i][-1] - sum(
            (rows[i][f] * coef[f] for f in range(ncols) if f not in pivots), Fraction(0)
        )
    return coef


def fit_text(
    texts: list[str], insts: list[Inst], count: Callable[[Inst, Any, str, str], int]
) -> list[Any] | None:
    """``texts`` (one per instance) as text parts and fitted numbers (``(const, {feature:
    coef})``), or ``None`` when no such expression gives every one of them."""
    feats = [inst.feats for inst in insts]
    tokens = [_NUMBER.split(text) for text in texts]
    first = tokens[0]
    if any(len(t) != len(first) for t in tokens):
        return None
    parts: list[Any] = []
    for i, token in enumerate(first):
        column = [t[i] for t in tokens]
        if i % 2 == 0 or (all(c == token for c in column) and i != len(first) - 2):
            if any(c != token for c in column):
                return None
            if token:
                parts.append(token)
            continue
        if any(str(int(c)) != c for c in column):  # a number written with a leading zero (c00)
            if all(c == token for c in column):
                parts.append(token)  # the same in every instance: text, as it is
                continue
            return None
        prefer = None
        if i == len(first) - 2:  # the layer's own number: what one unit of a feature adds
            stem = "".join(first[:i])

            def prefer(key: Any, stem: str = stem) -> int:
                seen = {
                    (id(inst.units.get(key)), inst.prefix, text): inst
                    for inst, text in zip(insts, texts, strict=True)
                }
                return max(count(inst, key, stem, text) for (_, _, text), inst in seen.items())

        fitted = fit_linear([int(c) for c in column], feats, prefer)
        if fitted is None:
            return None
        parts.append(fitted if fitted[1] else str(fitted[0]))
    return parts
