"""Write pytest's assertion-rewritten bytecode of the test modules before a run, in parallel.

pytest rewrites the ``assert`` statements of every test module and conftest.py when it imports
them, and caches the result in ``__pycache__`` unless ``PYTHONDONTWRITEBYTECODE`` is set (as on
the CI machines). Then every pytest-xdist worker rewrites all 270 modules again at collection:
about 17 s of CPU each, at the same moment, so a cache written during the run helps no one.
This writes that cache first, the modules split over the cores, the way pytest itself writes it
(its ``_rewrite_test`` and ``_write_pyc``: the same code object, in a file pytest reads back
only while the source's mtime and size match). Modules whose cache is current are skipped.

It uses pytest's private functions: if a pytest release changes them, the cache is left as it is
and this says so; pytest then rewrites the modules itself, as it would without this.

    python tools/rewrite_tests.py [TESTS_FOLDER]
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace


def _cached(source: Path) -> Path:
    """Where pytest looks for ``source``'s rewritten bytecode."""
    from _pytest.assertion.rewrite import PYC_TAIL, get_cache_dir

    return get_cache_dir(source) / (source.name[:-3] + PYC_TAIL)


def _rewrite(source: Path) -> bool:
    """Write ``source``'s rewritten bytecode unless it is current; whether it was written."""
    from _pytest.assertion.rewrite import _read_pyc, _rewrite_test, _write_pyc

    pyc = _cached(source)
    if _read_pyc(source, pyc) is not None:
        return False
    pyc.parent.mkdir(exist_ok=True)
    # (no pytest config: it only enables the assertion-pass hook, which this project leaves off)
    stat, code = _rewrite_test(source, None)  # type: ignore[arg-type]
    return _write_pyc(SimpleNamespace(trace=lambda _: None), code, stat, pyc)  # type: ignore[arg-type]


def main(folder: Path) -> int:
    sources = sorted({*folder.rglob("test_*.py"), *folder.rglob("conftest.py")})
    try:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            written = sum(pool.map(_rewrite, sources, chunksize=8))
    except (ImportError, AttributeError, TypeError) as exc:  # (another pytest's private API)
        print(f"rewrite_tests: left to pytest ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 0
    if written:
        print(f"rewrite_tests: {written} of {len(sources)} test modules rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tests")))
