"""tools/rewrite_tests.py (run by `make test` before pytest): the assertion-rewritten bytecode
it caches is the code pytest makes itself, in the file pytest reads back, and a changed module
is rewritten again."""

from __future__ import annotations

import os

from _pytest.assertion.rewrite import _read_pyc, _rewrite_test

from tools.rewrite_tests import _cached, main


def test_the_cached_code_is_pytests_own_and_follows_the_source(tmp_path, capsys):
    folder = tmp_path / "suite"
    (folder / "deeper").mkdir(parents=True)
    sources = [folder / "test_one.py", folder / "deeper" / "test_two.py", folder / "conftest.py"]
    for source in sources:
        source.write_text("def test_it():\n    x = 1\n    assert x + 1 == 3, 'no'\n", encoding="utf-8")
    (folder / "helpers.py").write_text("VALUE = 1\n", encoding="utf-8")  # (pytest does not rewrite it)
    assert main(folder) == 0
    assert "3 of 3 test modules rewritten" in capsys.readouterr().out
    for source in sources:
        assert _read_pyc(source, _cached(source)) == _rewrite_test(source, None)[1]  # type: ignore[arg-type]
    assert not list((folder / "__pycache__").glob("helpers*"))
    assert main(folder) == 0 and capsys.readouterr().out == ""  # (current: nothing to do)
    changed = sources[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    os.utime(changed, (1, 1))  # (another mtime even within the same second)
    assert _read_pyc(changed, _cached(changed)) is None  # what pytest would see: out of date
    assert main(folder) == 0
    assert "1 of 3 test modules rewritten" in capsys.readouterr().out
    assert _read_pyc(changed, _cached(changed)) == _rewrite_test(changed, None)[1]  # type: ignore[arg-type]
