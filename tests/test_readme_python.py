"""README.md's "Using cnnspec from Python" example runs as shown: run from the repository's root
in a fresh interpreter, it prints exactly the text block that follows it, and imports no
TensorFlow (the section says only ``build_model``/``build_augmentation`` do)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

SECTION = "## Using cnnspec from Python"


def example() -> tuple[str, str]:
    """The section's Python block and the text block after it (what it prints)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    body = text[start : text.index("\n## ", start + len(SECTION))]
    found = re.search(r"^```python\n(.*?)^```\n+```text\n(.*?)^```", body, re.S | re.M)
    assert found, f"README.md's {SECTION!r} lost its example or its printed output"
    return found.group(1), found.group(2)


def test_the_python_example_prints_what_the_readme_shows(tmp_path):
    code, printed = example()
    script = tmp_path / "example.py"
    # the trailer checks the section's promise that nothing of this imports TensorFlow
    script.write_text(code + '\nimport sys\nassert "tensorflow" not in sys.modules, "imported TF"\n')
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == printed


def test_the_errors_the_section_names_are_exported():
    import cnnspec
    from cnnspec import errors

    for name in ("SpecError", "UsageError", "WriteError"):
        assert getattr(cnnspec, name) is getattr(errors, name)
        assert name in cnnspec.__all__
