"""Compare an environment with requirements.lock (used by the Makefile; standard library only).

``python tools/lockcheck.py verify`` exits 1 unless the running environment holds exactly the
locked distributions at the locked versions (besides pip, which made the venv, and cnnspec
itself). ``python tools/lockcheck.py drift`` prints, for an environment installed from the
ranges in pyproject.toml (``make test-latest``), every distribution whose version differs from
the lock; it always exits 0, since drift is news, not a failure.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"
#: Installed but never locked: the installer of the venv and the project under test.
UNLOCKED = {"pip", "cnnspec"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``Jinja2`` and ``jinja2``, ``ml_dtypes`` and ``ml-dtypes`` agree."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path = LOCK) -> dict[str, str]:
    """The exact pins of the lock file, by canonical name."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed() -> dict[str, str]:
    """Every distribution visible to this interpreter, by canonical name."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}


def differences(pins: dict[str, str], present: dict[str, str]) -> list[str]:
    """Lines describing each way ``present`` differs from ``pins``."""
    lines = []
    for name in sorted(pins.keys() | present.keys()):
        if name in UNLOCKED:
            continue
        want, have = pins.get(name), present.get(name)
        if want is None:
            lines.append(f"{name} {have}: installed, not in the lock")
        elif have is None:
            lines.append(f"{name} {want}: locked, not installed")
        elif want != have:
            lines.append(f"{name}: locked {want}, installed {have}")
    return lines


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) > 1 else "verify"
    pins = locked()
    lines = differences(pins, installed())
    if mode == "drift":
        print(f"versions that differ from {LOCK.name} ({len(lines)}):")
        for line in lines:
            print(f"  {line}")
        return 0
    if lines:
        print(f"the environment does not match {LOCK.name}:", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        print("remove .venv and run make again", file=sys.stderr)
        return 1
    print(f"environment matches {LOCK.name}: {len(pins)} locked distributions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
