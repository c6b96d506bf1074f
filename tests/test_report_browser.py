"""report.html in a real browser: headless Chromium (Debian's `chromium` package) loads the page
without a console message (a CSP violation, a broken resource, a script error) and decodes
every image. Skipped, with the reason, where Chromium is not installed: CI does not need it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.test_report_support import invoke, trained_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.xdist_group("reporting"),
    pytest.mark.skipif(
        CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)"
    ),
]

#: A probe appended to a copy of the page (whose CSP is widened for it): after `load`, it
#: writes each image's decode state and natural size into the DOM, which --dump-dom prints.
PROBE = """<script>
window.addEventListener('load', () => {
  const out = Array.from(document.images).map(
    (img) => [img.complete, img.naturalWidth, img.naturalHeight]);
  const pre = document.createElement('pre');
  pre.id = 'image-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium(page, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # tests may run as root in containers
        "--disable-gpu",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    run_dir = trained_run(tmp_path_factory)
    target = tmp_path_factory.mktemp("browser") / "report.html"
    result = invoke("report", run_dir, "--out", target)
    assert result.exit_code == 0, result.output
    return target


def test_page_loads_without_console_messages(page):
    result = chromium(page, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<h1>tiny_colors</h1>" in result.stdout  # the page was rendered
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, "\n".join(console)


def test_every_image_decodes(page, tmp_path):
    text = page.read_text(encoding="utf-8")
    widened = text.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';", 1)
    assert widened != text
    probe = tmp_path / "probe.html"
    probe.write_text(widened.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    result = chromium(probe, "--dump-dom")
    match = re.search(r'<pre id="image-check">(.*?)</pre>', result.stdout)
    assert match, result.stderr[-2000:]
    images = json.loads(match.group(1))
    assert len(images) == text.count("<img ") and len(images) >= 25
    assert all(done and width > 0 and height > 0 for done, width, height in images), images


def test_screenshot(page, tmp_path):
    from PIL import Image

    shot = tmp_path / "page.png"
    result = chromium(page, f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 100  # not a blank page


def test_the_runtimes_card_of_a_model_of_several_outputs_renders(tmp_path):
    """The card's table of every output (a hand-written run and benchmark.json, no TensorFlow)
    is laid out in the browser without a console message."""
    from cnnspec.reporting.html import write_report
    from tests.test_report_html import make_run, multi_output_benchmark

    run = make_run(tmp_path / "run")
    multi_output_benchmark(run)
    result = chromium(write_report(run), "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, "\n".join(console)
    table = re.search(r'<table id="benchmark-outputs">.*?</table>', result.stdout, re.S)
    assert table is not None and table.group(0).count("<tr>") == 5  # (the header and 4 rows)
    assert "<td>onnx</td><td>mask</td>" in table.group(0) and "100.00%" in table.group(0)
