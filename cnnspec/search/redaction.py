"""Storage URLs without their passwords, for every message and file a search writes
(search.json, search.html, errors): the password of ``user:password@`` however SQLAlchemy
reads it, the value of a ``password=`` query parameter, and what a driver's error quotes of
them."""

from __future__ import annotations

import re

#: Query parameters that carry a password (``?password=…``; ``passwd`` for MySQL's drivers),
#: compared in lower case.
PASSWORD_PARAMS = frozenset({"password", "passwd"})
HIDDEN = "***"


def _userinfo_secret(rest: str) -> tuple[int, int] | None:
    """Where the password is in ``rest`` (a URL after ``://``): ``(start, end)``, or ``None``.

    SQLAlchemy reads ``user:password@`` as a user without ``:`` or ``/``, then a password of
    anything but ``@`` (so ``u:se/cret@h/db`` and ``:secret@h/db`` have one). An ``@`` in the
    password itself (``u:p@ss@h``, ``u:p@ss/w@h``, ``u:p@ss?x@h``) ends it for SQLAlchemy, which
    takes the rest for the host, port or database (and prints them in its errors): the span runs
    to the *last* ``@`` before the query, hiding that part too. The query is the first ``?``
    followed by ``key=`` with a ``/`` (the database path) between it and the ``@`` before it
    (``u:pw@h/db?host=/tmp/a@b``: the socket folder's ``@`` is no userinfo); a ``?`` or ``/``
    in the password before its last ``@`` is no end. A ``:`` after a ``/``, or without an
    ``@`` after it, is no password (``sqlite:////a:b/x.db``, ``host:5432``)."""
    colon = rest.find(":")
    if colon < 0 or "/" in rest[:colon]:
        return None
    end = len(rest)
    for query in re.finditer(r"\?(?=[^=&/@?]+=)", rest[colon:]):
        at = rest.rfind("@", colon, colon + query.start())
        if at >= 0 and "/" in rest[at : colon + query.start()]:
            end = colon + query.start()
            break
    last_at = rest.rfind("@", colon, end)
    return None if last_at < 0 else (colon + 1, last_at)


def at_in_password(url: str) -> bool:
    """Whether the password of ``user:password@`` in ``url`` holds an ``@`` as written: SQLAlchemy
    ends the password at its first ``@`` and reads the rest as the host, port or database, so
    such a URL never opens, and the driver's error would quote pieces of the password."""
    _, sep, rest = url.partition("://")
    span = _userinfo_secret(rest) if sep else None
    return span is not None and "@" in rest[span[0] : span[1]]


def _is_password_param(key: str) -> bool:
    """Whether the query parameter ``key`` (as written, maybe %-encoded) carries a password."""
    from urllib.parse import unquote_plus

    return unquote_plus(key).strip().lower() in PASSWORD_PARAMS


def _redact_query(query: str) -> str:
    """``query`` (after ``?``) with the value of each password parameter hidden; the other
    parameters (``host``, ``port``) stay as written."""
    parts = []
    for part in query.split("&"):
        key, sep, _ = part.partition("=")
        parts.append(f"{key}={HIDDEN}" if sep and _is_password_param(key) else part)
    return "&".join(parts)


def redact(url: str) -> str:
    """A storage URL without its password (search.json, search.html and messages show it): the
    password of ``user:password@`` (:func:`_userinfo_secret`: one with ``/`` or ``@`` in it, or
    without a user, too) and the value of a ``password=`` query parameter (any case). Text
    without ``://`` (a journal path) is returned as it is."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    span = _userinfo_secret(rest)
    after = 0
    if span is not None:
        rest = rest[: span[0]] + HIDDEN + rest[span[1] :]
        after = span[0] + len(HIDDEN)
    question = rest.find("?", after)  # (from the password's end: a "?" in it is no query)
    if question >= 0:
        rest = rest[: question + 1] + _redact_query(rest[question + 1 :])
    return f"{scheme}{sep}{rest}"


def secrets(url: str) -> list[str]:
    """The passwords ``url`` carries as written and decoded (what :func:`redact` hides), longest
    first, to scrub from a driver's error message (it may quote the host SQLAlchemy parsed,
    which holds the part of a password after an ``@``)."""
    from urllib.parse import unquote, unquote_plus

    _, sep, rest = url.partition("://")
    if not sep:
        return []
    found: list[str] = []
    span = _userinfo_secret(rest)
    after = 0
    if span is not None:
        secret = rest[span[0] : span[1]]
        found += [secret, unquote(secret), *secret.split("@")]
        after = span[1]
    question = rest.find("?", after)
    if question >= 0:
        for part in rest[question + 1 :].split("&"):
            key, sep, value = part.partition("=")
            if sep and _is_password_param(key):
                found += [value, unquote_plus(value)]
    # a secret of 1-2 characters would garble every message it is "found" in (and says little)
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def scrub(text: str, url: str | None) -> str:
    """``text`` (an error message) without the passwords of the storage ``url``: the URL itself
    redacted wherever it appears, then any password left (:func:`secrets`) hidden, then any
    other URL in it redacted."""
    if url:
        text = text.replace(url, redact(url))
        for secret in secrets(url):
            text = text.replace(secret, HIDDEN)
    return re.sub(r"[A-Za-z][\w+.-]*://\S+", lambda m: redact(m.group(0)), text)
