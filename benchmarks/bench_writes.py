"""Atomic writes of many files into one folder: what each write costs as the folder fills.

``predict -o MASKS`` of a folder of images writes one mask PNG per input into one folder, each
through :func:`cnnspec.fileio.write_atomic` (a private scratch folder, fsync, rename). Before a
write outside a run folder, cnnspec removes the scratch folders that killed writes of the same
file left there; it listed the whole folder for each write, so the cost of a write grew with
the folder (5,000 writes: 22.5 s). A folder of 64 entries or more is now listed once every
``STALE_AFTER_S`` seconds.

Writes ``--files`` small files into a new temporary folder and prints the seconds after each
1,000 and the mean per write. Run by hand:

    .venv/bin/python benchmarks/bench_writes.py [--files 5000] [--size 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cnnspec.fileio import write_atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000, help="how many files to write (5000)")
    parser.add_argument("--size", type=int, default=100, help="bytes per file (100)")
    args = parser.parse_args()
    payload = b"x" * args.size
    with tempfile.TemporaryDirectory(prefix="cnnspec-bench-writes-") as name:
        folder = Path(name)
        started = time.perf_counter()
        for index in range(args.files):
            write_atomic(folder / f"mask_{index:06d}.png", payload)
            if (index + 1) % 1000 == 0 or index + 1 == args.files:
                print(f"{index + 1:>7,} files: {time.perf_counter() - started:7.2f} s")
        total = time.perf_counter() - started
    print(f"mean {1000 * total / max(args.files, 1):.2f} ms per write")


if __name__ == "__main__":
    main()
