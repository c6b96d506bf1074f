"""``docs/sections.md``: every setting of a spec's sections, walked from the JSON Schema.

The spec's schema (:func:`cnnspec.spec.schema.json_schema`, what ``cnnspec schema`` prints) is
the single source: this module turns it into Markdown tables, one row per setting, named by the
dotted path a user writes in YAML (``training.optimizer.adam.learning_rate``,
``training.callbacks[].early_stopping.patience``, ``training.outputs.<output id>.loss``).

How the schema's shapes come out:

* ``anyOf``/``oneOf`` alternatives are joined into one *takes* text; the settings of their
  mappings are listed below the row.
* A one-key mapping (``{adam: {...}}``, ``{huber: {delta: 1}}``) lists each key as a row of its
  own; settings that every key shares (two or more, equal schemas) are listed once under ``*``.
* Several alternative mappings (``data.source``'s ``npz``, ``directory``, ``csv``, …) list their
  settings under the same path, each marked with the forms that take it.
* A mapping of free keys (``training.outputs``) names its key ``<output id>``; a list's items
  are ``[]``.
* A subtree that recurs (``training.optimizer`` in ``training.phases[].optimizer``) is listed
  once, at its least nested path; elsewhere its row says *settings as* that path.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: The top-level keys that get a section of settings, in no particular order (the page follows
#: the schema's order).
SECTIONS = ("input", "defaults", "data", "training", "runtime", "search", "weights")
#: Top-level keys documented elsewhere: key → (link, where).
ELSEWHERE = {
    "model": ("reference.md", "the layer kinds: reference.md"),
    "augmentation": ("reference.md", "the layer kinds: reference.md"),
    "blocks": ("../README.md#the-spec-language-v1", "README: the spec language"),
}
#: The name of a free key in a mapping, by the path of the mapping (default ``key``).
PLACEHOLDERS = {
    "training.outputs": "output id",
    "training.class_weight": "class",
    "data.source.shapes.target": "output id",
    "data.source.classes": "class name",
    "search.space": "spec path",
    "defaults": "kind",
    "vars": "var",
    "blocks": "block",
    "variants": "variant",
}
#: A line under a section's heading, for sections whose settings live elsewhere.
SECTION_NOTES = {
    "defaults": "A kind's parameters, and their defaults, are listed in [reference.md](reference.md).",
}
#: ``$ref`` targets that are named, not walked.
_LEAF_REFS = {
    "expression": "an expression `${…}`",
    "identifier": "identifier",
    "layer": "layer item",
    "layerList": "list of layer items",
    "block": "block",
}
_BELOW = "settings below"


@dataclass(frozen=True)
class Row:
    """One setting: its dotted path, the values it takes, whether it is required, its description."""

    path: str
    takes: str
    required: str
    description: str


@dataclass(frozen=True)
class _Child:
    """A setting below a row, before it is walked: ``prefix`` leads its description (the forms
    that take it); ``shared`` names the ``*`` path whose settings it also takes."""

    path: str
    schema: dict[str, Any]
    required: bool
    prefix: str = ""
    shared: str = ""


def cell(text: str) -> str:
    """``text`` escaped for a Markdown table cell: pipes escaped, newlines joined."""
    return text.replace("|", "\\|").replace("\n", " ")


def _flow(value: Any) -> str:
    """A schema value as YAML writes it (``true``, ``null``, ``adam``, ``[1, 2]``)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _canonical(schema: Any) -> str:
    """A key for schemas that are equal except for their own top-level description."""
    if isinstance(schema, dict):
        schema = {k: v for k, v in schema.items() if k != "description"}
    return json.dumps(schema, sort_keys=True, ensure_ascii=False)


def _choices(values: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + " or " + values[-1]


def _join(parts: list[str]) -> str:
    """Alternatives joined readably: ``A or B``, or ``A; or B`` when a part lists choices itself."""
    if any(", " in p or " or " in p for p in parts):
        return "; or ".join(parts)
    return " or ".join(parts)


def _range(kind: str, schema: dict[str, Any]) -> str:
    """``number ≥ 0``, ``integer in [1, 8]``, ``number in (0, 1)``."""
    low = ("[", schema["minimum"]) if "minimum" in schema else None
    low = ("(", schema["exclusiveMinimum"]) if "exclusiveMinimum" in schema else low
    high = ("]", schema["maximum"]) if "maximum" in schema else None
    high = (")", schema["exclusiveMaximum"]) if "exclusiveMaximum" in schema else high
    if low and high:
        return f"{kind} in {low[0]}{_flow(low[1])}, {_flow(high[1])}{high[0]}"
    if low:
        return f"{kind} {'≥' if low[0] == '[' else '>'} {_flow(low[1])}"
    if high:
        return f"{kind} {'≤' if high[0] == ']' else '<'} {_flow(high[1])}"
    return kind


def _count(schema: dict[str, Any], low_key: str, high_key: str, noun: str) -> str:
    """``exactly 2 items``, ``at least 1 entry``, ``1–4 items`` (empty when unbounded)."""
    low, high = schema.get(low_key), schema.get(high_key)
    plural = "entries" if noun == "entry" else f"{noun}s"
    if low is not None and low == high:
        return f"exactly {low} {noun if low == 1 else plural}"
    if low is not None and high is not None:
        return f"{low}–{high} {plural}"
    if low is not None:
        return f"at least {low} {noun if low == 1 else plural}"
    if high is not None:
        return f"at most {high} {noun if high == 1 else plural}"
    return ""


def _is_one_key(schema: dict[str, Any]) -> bool:
    """A mapping with exactly one of its properties as its key (``{adam: {...}}``)."""
    return schema.get("maxProperties") == 1 and bool(schema.get("properties"))


def _is_closed(schema: dict[str, Any]) -> bool:
    """A mapping of named settings (``properties``), not a one-key mapping."""
    return schema.get("type") == "object" and "properties" in schema and not _is_one_key(schema)


def _free_values(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of a mapping's free keys' values (``additionalProperties``), if it has one."""
    values = schema.get("additionalProperties")
    if schema.get("type") == "object" and "properties" not in schema and isinstance(values, dict):
        return values
    return None


def _form_labels(forms: list[dict[str, Any]]) -> list[str]:
    """A name for each of several alternative mappings: the first key it requires that no other
    requires (``npz``, ``directory``), else its first required key."""
    labels = []
    for i, form in enumerate(forms):
        others = {k for j, f in enumerate(forms) if j != i for k in f.get("required", ())}
        required = list(form.get("required", ()))
        own = [k for k in required if k not in others] or required
        labels.append(own[0] if own else f"form {i + 1}")
    return labels


def _placeholder(path: str) -> str:
    return PLACEHOLDERS.get(path, "key")


def whole_section(schema: dict[str, Any], key: str) -> dict[str, Any]:
    """The top-level ``key``'s schema as a whole spec has it: the published schema's
    ``properties`` are a file's that ``extends`` another (each required setting relaxed, since
    the base may set it), its ``else`` holds the section as any other file must write it."""
    whole = schema.get("else", {}).get("properties", {}).get(key)
    return whole if isinstance(whole, dict) else schema["properties"][key]


class SectionWalker:
    """Walks a spec's JSON Schema into :class:`Row` s (see the module's docstring)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.defs: dict[str, Any] = schema.get("$defs", {})
        # canonical subtree → the one path its settings are listed at (None while finding them)
        self._homes: dict[str, str] | None = None
        self._found: dict[str, tuple[tuple[int, int, int], str]] = {}
        for key in schema.get("properties", {}):
            if key in SECTIONS:
                for _ in self.rows(whole_section(schema, key), key):
                    pass
        self._homes = {canonical: path for canonical, (_, path) in self._found.items()}

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` with a walked ``$ref`` replaced by its target (its own description kept)."""
        ref = schema.get("$ref", "")
        name = ref.rsplit("/", 1)[-1]
        if not ref or name in _LEAF_REFS or name not in self.defs:
            return schema
        target = dict(self.defs[name])
        if "description" in schema:
            target["description"] = schema["description"]
        return target

    def alternatives(self, schema: dict[str, Any]) -> list[dict[str, Any]]:
        """The schemas ``schema`` may be: its ``anyOf``/``oneOf`` flattened, ``$ref`` s resolved."""
        schema = self.resolve(schema)
        options = schema.get("anyOf") or schema.get("oneOf")
        if not options:
            return [schema]
        return [alt for option in options for alt in self.alternatives(option)]

    def describe(self, schema: dict[str, Any], path: str) -> str:
        """What one alternative takes, in words."""
        ref = schema.get("$ref")
        if ref:
            return _LEAF_REFS.get(ref.rsplit("/", 1)[-1], f"`{ref}`")
        if "const" in schema:
            return f"`{_flow(schema['const'])}`"
        if "enum" in schema:
            return _choices([f"`{_flow(v)}`" for v in schema["enum"]])
        kind = schema.get("type")
        if isinstance(kind, list):
            return _choices(["`null`" if k == "null" else k for k in kind])
        if kind in ("number", "integer"):
            return _range(kind, schema)
        if kind == "string":
            text = "non-empty string" if schema.get("minLength") == 1 else "string"
            return text + (f" matching `{schema['pattern']}`" if "pattern" in schema else "")
        if kind == "boolean":
            return "boolean"
        if kind == "null":
            return "`null`"
        if kind == "array":
            return self._describe_list(schema, path)
        if kind == "object" or "properties" in schema:
            return self._describe_mapping(schema, path)
        return "any value"

    def _describe_list(self, schema: dict[str, Any], path: str) -> str:
        items = schema.get("items")
        text = "list"
        if isinstance(items, dict):
            inner = self.takes(items, path + "[]")
            text += f" of ({inner})" if " or " in inner else f" of {inner}"
        size = _count(schema, "minItems", "maxItems", "item")
        notes = [n for n in (size, "unique" if schema.get("uniqueItems") else "") if n]
        return text + (f" ({', '.join(notes)})" if notes else "")

    def _describe_mapping(self, schema: dict[str, Any], path: str) -> str:
        if _is_one_key(schema):
            return "`{NAME: {…}}` with one NAME below"
        if "properties" in schema:
            return f"mapping ({_BELOW})" if schema["properties"] else "empty mapping `{}`"
        size = _count(schema, "minProperties", "maxProperties", "entry")
        values = _free_values(schema)
        text = "mapping"
        if values is not None:
            text += f" of {_placeholder(path)} → {self.takes(values, path)}"
        return text + (f" ({size})" if size else "")

    def takes(self, schema: dict[str, Any], path: str) -> str:
        """What ``schema`` takes: its alternatives described and joined (several mappings of
        settings as one, named by their forms)."""
        alts = self.alternatives(schema)
        forms = [alt for alt in alts if _is_closed(alt)]
        parts = []
        for alt in alts:
            if len(forms) < 2 or not _is_closed(alt):
                parts.append(self.describe(alt, path))
            elif alt is forms[0]:
                names = _choices([f"`{label}`" for label in _form_labels(forms)])
                parts.append(f"mapping with {names} ({_BELOW})")
        return _join(parts)

    def children(self, schema: dict[str, Any], path: str) -> list[_Child]:
        """The settings below ``schema``'s row."""
        alts = self.alternatives(schema)
        out: list[_Child] = []
        closed = [alt for alt in alts if _is_closed(alt)]
        out += self._form_children(closed, path)
        for alt in alts:
            if _is_one_key(alt):
                out += self._one_key_children(alt, path)
            values = _free_values(alt)
            if values is not None:
                key_path = f"{path}.<{_placeholder(path)}>"
                if self.children(values, key_path) or "description" in values:
                    out.append(_Child(key_path, values, False))
            if alt.get("type") == "array" and isinstance(alt.get("items"), dict):
                out += self.children(alt["items"], path + "[]")
        return out

    def _form_children(self, forms: list[dict[str, Any]], path: str) -> list[_Child]:
        """The settings of one mapping, or of several alternative mappings (each marked with the
        forms that take it; a form is named by the required key no other form requires)."""
        if len(forms) == 1:
            form = forms[0]
            required = set(form.get("required", ()))
            return [_Child(f"{path}.{k}", v, k in required) for k, v in form["properties"].items()]
        labels = _form_labels(forms)
        groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for i, form in enumerate(forms):
            for key, value in form["properties"].items():
                groups.setdefault(key, []).append((i, value))
        out: list[_Child] = []
        for key, occurrences in groups.items():
            variants: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            for i, value in occurrences:
                variants.setdefault(json.dumps(value, sort_keys=True), []).append((i, value))
            for same in variants.values():
                indices = [i for i, _ in same]
                value = same[0][1]
                required = all(key in forms[i].get("required", ()) for i in indices)
                if len(indices) == 1 and labels[indices[0]] == key:
                    form_doc = forms[indices[0]].get("description", "")
                    own = value.get("description", "")
                    doc = " — ".join(d for d in (form_doc, own) if d)
                    described = {**value, "description": doc} if doc else value
                    out.append(_Child(f"{path}.{key}", described, required))
                    continue
                prefix = ""
                if len(indices) < len(forms):
                    prefix = f"With {_choices([f'`{labels[i]}`' for i in indices])}: "
                out.append(_Child(f"{path}.{key}", value, required, prefix))
        return out

    def _one_key_children(self, schema: dict[str, Any], path: str) -> list[_Child]:
        """Each key of a one-key mapping, its settings that every key shares listed under ``*``."""
        options = schema["properties"]
        shared: list[str] = []
        bodies = [self.resolve(v) for v in options.values()]
        if len(bodies) > 1 and all(_is_closed(b) for b in bodies):
            first = bodies[0]["properties"]
            shared = [
                k
                for k, v in first.items()
                if all(_canonical(b["properties"].get(k)) == _canonical(v) for b in bodies[1:])
            ]
            if len(shared) < 2:
                shared = []
        out: list[_Child] = []
        for key in shared:
            out.append(_Child(f"{path}.*.{key}", bodies[0]["properties"][key], False))
        for key, body in zip(options, bodies, strict=True):
            if shared:
                rest = {k: v for k, v in body["properties"].items() if k not in shared}
                out.append(_Child(f"{path}.{key}", {**body, "properties": rest}, False, shared=f"{path}.*"))
            else:
                out.append(_Child(f"{path}.{key}", body, False))
        return out

    def rows(
        self, schema: dict[str, Any], path: str, required: str = "", prefix: str = "", shared: str = ""
    ) -> Iterator[Row]:
        """The row of ``schema`` at ``path`` and the rows of every setting below it; ``prefix``
        leads its description, ``shared`` names the ``*`` path whose settings it also takes."""
        schema = self.resolve(schema)
        takes = self.takes(schema, path)
        if shared:
            takes = f"mapping: the `{shared}` settings" + (
                f" and the {_BELOW}" if schema["properties"] else ""
            )
        children = self.children(schema, path)
        description = schema.get("description", "")
        if "default" in schema:
            description = "; ".join(d for d in (description, f"default `{_flow(schema['default'])}`") if d)
        items = self.resolve(schema["items"]) if isinstance(schema.get("items"), dict) else {}
        if items.get("description"):
            description = "; ".join(d for d in (description, f"each item: {items['description']}") if d)
        canonical = _canonical(schema)
        if children and self._homes is None:  # finding homes: the least nested path wins
            rank = (path.count("[]"), path.count("<"), path.count(".") + path.count("[]"))
            if canonical not in self._found or rank < self._found[canonical][0]:
                self._found[canonical] = (rank, path)
        home = self._homes.get(canonical, path) if children and self._homes is not None else path
        if prefix and not description:
            prefix = prefix.rstrip(": ")
        if home != path:
            note = f"settings as `{home}`"
            takes = takes.replace(_BELOW, note) if _BELOW in takes else f"{takes} ({note})"
            yield Row(path, takes, required, prefix + description)
            return
        yield Row(path, takes, required, prefix + description)
        for child in children:
            required_mark = "yes" if child.required else ""
            yield from self.rows(child.schema, child.path, required_mark, child.prefix, child.shared)


def _top_level_required(schema: dict[str, Any]) -> dict[str, str]:
    """Top-level key → its required mark: ``yes``, or ``unless `extends``` for the ``if``/``else``
    the schema uses for a spec that extends another."""
    marks = {key: "yes" for key in schema.get("required", ())}
    condition = schema.get("if", {}).get("required", [])
    for key in schema.get("else", {}).get("required", ()):
        marks[key] = f"unless {_choices([f'`{c}`' for c in condition])}" if condition else "yes"
    return marks


def _table(rows: list[Row]) -> list[str]:
    lines = ["| setting | takes | required | description |", "| --- | --- | --- | --- |"]
    lines += [f"| `{cell(r.path)}` | {cell(r.takes)} | {r.required} | {cell(r.description)} |" for r in rows]
    return lines


def section_rows(schema: dict[str, Any], key: str) -> list[Row]:
    """Every setting of the top-level ``key`` of the spec ``schema``, its own row first."""
    walker = SectionWalker(schema)
    required = _top_level_required(schema).get(key, "")
    return list(walker.rows(whole_section(schema, key), key, required))


def sections_page(schema: dict[str, Any], generated: str) -> str:
    """The Markdown of ``docs/sections.md`` for the spec ``schema``; ``generated`` is the marker
    line that says the page is generated."""
    walker = SectionWalker(schema)
    properties = {key: whole_section(schema, key) for key in schema["properties"]}
    marks = _top_level_required(schema)
    lines = [
        "# Spec sections",
        "",
        generated,
        "",
        "Every key of a spec file, and every setting of its sections, from the JSON Schema that",
        "`cnnspec schema` prints. A setting is named by its path as written in YAML: `a.b` is key `b`",
        "inside `a`, `[]` an item of a list, `<output id>` a key you choose, `*` any of the names",
        "listed with it. *An expression `${…}`* means the value may also be written as a `${…}`",
        "expression; *settings as* another path means the same settings as listed there. The layer",
        "kinds of `model` and `augmentation`, and their parameters, are in [reference.md](reference.md).",
        "A file that `extends` another is merged over it, mapping by mapping: it may leave out any",
        "setting, required or not, that the base sets (a list, such as `model` or `phases`, is",
        "replaced whole).",
        "",
        "| key | takes | required | description |",
        "| --- | --- | --- | --- |",
    ]
    for key, value in properties.items():
        if key in SECTIONS:
            name = f"[`{key}`](#{key})"
            takes = f"see [{key}](#{key})"
        elif key in ELSEWHERE:
            link, where = ELSEWHERE[key]
            name = f"[`{key}`]({link})"
            takes = f"{walker.takes(value, key)}; see [{where}]({link})"
        else:
            name, takes = f"`{key}`", walker.takes(value, key).replace(f" ({_BELOW})", "")
        description = walker.resolve(value).get("description", "")
        lines.append(f"| {name} | {cell(takes)} | {marks.get(key, '')} | {cell(description)} |")
    for key in properties:
        if key not in SECTIONS:
            continue
        rows = section_rows(schema, key)
        lines += ["", f"## {key}", ""]
        if key in SECTION_NOTES:
            lines += [SECTION_NOTES[key], ""]
        lines += _table(rows)
    return "\n".join(lines) + "\n"
