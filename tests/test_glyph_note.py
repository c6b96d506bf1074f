"""A picture's characters that its font cannot draw (class names in Chinese) are said once per
command, as a note naming the character and what to do, not as matplotlib's raw warning per
glyph naming cnnspec's source lines."""

from __future__ import annotations

import warnings

import pytest

from cnnspec.reporting import glyphs


def _draw(text: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1))
    figure.text(0.1, 0.5, text)
    FigureCanvasAgg(figure).draw()


def test_missing_glyphs_are_one_note_per_command(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        glyphs.install()
        _draw("猫 and 犬")
        _draw("狗")
        err = capsys.readouterr().err
        assert err.count("note:") == 1 and "UserWarning" not in err and "Glyph" not in err
        assert "has no glyph for '猫' (U+732B)" in " ".join(err.split())
        glyphs.install()  # the next command (in one process) says it again, once
        _draw("狗")
        err = capsys.readouterr().err
        assert err.count("note:") == 1 and "'狗' (U+72D7)" in " ".join(err.split())


def test_other_warnings_are_shown_as_before(capsys):
    with pytest.warns(UserWarning, match="something else"):
        glyphs.install()
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert "note:" not in capsys.readouterr().err


def test_a_command_drawing_names_its_font_lacks_says_it_once(tmp_path):
    """End to end: `runs compare` of two runs in folders named in Chinese labels its curves
    with the names (a dozen raw warnings before, each with a line of cnnspec's source)."""
    from tests.test_report_support import invoke
    from tests.test_runs import make_run

    a = make_run(tmp_path / "猫", lr=0.01, accuracy=0.5, created="2026-01-01T10:00:00+0000")
    b = make_run(tmp_path / "犬", lr=0.02, accuracy=0.6, created="2026-01-01T11:00:00+0000")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = invoke("runs", "compare", a, b, "--png", tmp_path / "c.png", "--force")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("note:") == 1 and "Glyph" not in result.stderr
    assert "has no glyph for" in result.stderr
