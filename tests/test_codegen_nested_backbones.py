"""`cnnspec codegen` of a backbone whose spec has a backbone item of its own (`mid.yaml` is
`leaf.yaml` then a layer; the model is `mid.yaml` cut at `neck`, then its head).

What codegen cannot write is refused at the model's own backbone item, the spec being
generated, naming the inner backbone as reached through the outer one, with a note at the
inner item and a hint that leads to code (never to a cut that is refused too).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from cnnspec.cli.app import app
from cnnspec.errors import SpecError

LEAF = """cnnspec: 1
name: leaf
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: stem
  - conv2d: {filters: 6, kernel_size: 1}
    id: head
"""

MID = """cnnspec: 1
name: mid
input: {shape: [8, 8, 3]}
model:
  - backbone: {spec: leaf.yaml, until: head}
    id: body
  - conv2d: {filters: 5, kernel_size: 1}
    id: neck
"""


def top(until: str) -> str:
    """The model: `mid.yaml` cut at ``until``, then a head."""
    return (
        "cnnspec: 1\nname: top\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        f"  - backbone: {{spec: mid.yaml, until: '{until}'}}\n"
        "  - global_avg_pool2d\n  - dense: {units: 2, activation: softmax}\n"
    )


def write(folder: Path, until: str) -> Path:
    (folder / "leaf.yaml").write_text(LEAF, encoding="utf-8")
    (folder / "mid.yaml").write_text(MID, encoding="utf-8")
    spec = folder / "top.yaml"
    spec.write_text(top(until), encoding="utf-8")
    return spec


def refusal(spec: Path) -> tuple[str, str | None, list[str]]:
    """The one error of generating ``spec``'s code: its first line, hint and notes."""
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(spec))
    (diag,) = caught.value.diagnostics
    assert diag.code == "codegen"
    return diag.headline(), diag.hint, [note.message for note in diag.notes]


HINT = (
    "build the model with `cnnspec build`, or write the backbone 'leaf.yaml' as an item of this "
    "spec's own model, with the layers after it"
)


def test_a_cut_inside_the_inner_backbone_is_refused_with_a_hint_that_works(tmp_path):
    """`until: body.stem` lands inside `mid.yaml`'s backbone item: the hint said to cut at a
    layer outside that item, which was refused in turn; it names what leads to code."""
    spec = write(tmp_path, "body.stem")
    headline, hint, notes = refusal(spec)
    assert headline == (
        f"{spec}:5:39: error: model[0].backbone.until: codegen cannot write the backbone cut at "
        "'body.stem': it is inside backbone 'leaf.yaml' at model[0] of 'mid.yaml', and codegen "
        "writes a backbone item only in the model's own list, not in a backbone's spec"
    )
    assert hint == HINT
    assert notes == [f"in backbone 'leaf.yaml' at model[0] ({tmp_path / 'mid.yaml'}:5:15)"]


def test_the_backbone_spec_alone_is_written(runner, tmp_path):
    """`mid.yaml` on its own: its backbone item is in the model's own list."""
    write(tmp_path, "neck")
    result = runner.invoke(app, ["codegen", str(tmp_path / "mid.yaml"), "-o", str(tmp_path / "mid.py")])
    assert result.exit_code == 0, result.output
    assert 'body = leaf(inputs, name="body")' in (tmp_path / "mid.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("until", ["neck", "body"])
def test_a_backbone_inside_the_backbone_is_refused_at_the_models_item(runner, tmp_path, until):
    """No cut inside `mid.yaml`'s backbone item: the error was located in `mid.yaml` and said
    the item was not in the model's own list (it is, in `mid.yaml`)."""
    spec = write(tmp_path, until)
    headline, hint, notes = refusal(spec)
    assert headline == (
        f"{spec}:5:15: error: model[0].backbone: codegen cannot write backbone 'leaf.yaml' inside "
        "backbone 'mid.yaml': codegen writes a backbone item only in the model's own list, not in a "
        "backbone's spec"
    )
    assert hint == HINT
    assert notes == [f"in backbone 'leaf.yaml' at model[0] ({tmp_path / 'mid.yaml'}:5:15)"]
    result = runner.invoke(app, ["codegen", str(spec), "-o", str(tmp_path / "top.py")])
    assert result.exit_code == 1
    headline = f"{spec}:5:15: error: model[0].backbone: codegen cannot write backbone 'leaf.yaml'"
    assert headline in result.output
    assert "internal error" not in result.output and not (tmp_path / "top.py").exists()
