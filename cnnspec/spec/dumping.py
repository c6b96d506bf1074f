"""YAML that cnnspec writes for its own loader to read back (a run's resolved spec, a search's
best spec, a model file's stand-in spec): PyYAML's ``safe_dump`` with every string that this
loader would type or refuse unquoted written quoted.

PyYAML quotes a string whose plain form YAML 1.1 reads as another type (``"yes"``, ``"010"``)
but writes ``n``, ``y``, ``1e3`` and ``0o7`` plain; :mod:`cnnspec.spec.loader` reads the last
two as numbers (YAML 1.2) and refuses the first two (YAML 1.1 booleans). A class named ``n`` or
a model file ``n.keras`` then made a spec cnnspec could not read again.

A string holding one of Unicode's line breaks that PyYAML writes as they are (NEL, U+0085,
with ``allow_unicode``) inside single quotes, where YAML folds a line break to a space, is
written double-quoted: there it is an escape (``\x85``, read back as itself).
"""

from __future__ import annotations

from typing import Any

import yaml

from cnnspec.spec.loader import plain_is_text

_STR_TAG = "tag:yaml.org,2002:str"


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, with strings quoted where this loader would not read them back."""


#: Line breaks YAML folds in a quoted scalar that PyYAML may write there as they are.
_UNICODE_BREAKS = frozenset("\x85\u2028\u2029")


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _UNICODE_BREAKS & set(value):
        return dumper.represent_scalar(_STR_TAG, value, style='"')
    if plain_is_text(value):
        return dumper.represent_str(value)
    return dumper.represent_scalar(_STR_TAG, value, style="'")


_Dumper.add_representer(str, _string)


def dump_yaml(data: Any, **options: Any) -> str:
    """``data`` as YAML text that :func:`cnnspec.spec.loader.load_text` reads back as ``data``
    (``options``: ``yaml.dump``'s, e.g. ``sort_keys=False``)."""
    return yaml.dump(data, Dumper=_Dumper, **options)


__all__ = ["dump_yaml"]
