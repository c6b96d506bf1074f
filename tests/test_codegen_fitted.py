"""`cnnspec codegen` on constants whose code fits only the values they have.

A loop's layer names are numbers fitted to what the resolver made for the spec's values
(``f"dropout_{i}"`` for the dropouts of iterations 1 and 3), so an edited ``N = 4`` built
dropout_1, dropout_3 where ``cnnspec inspect --set vars.n=4`` gives dropout_1, dropout_2 (and
nested loops a name used twice), while the constant looked editable. Such a constant now says
it was decided when the code was generated; one whose code is right for other values does not.
The fast tests replay the code (as the emitter does) against the resolver's model for other
values; the slow one builds the code with Keras beside cnnspec's builder.
"""

from __future__ import annotations

import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.codegen_check import CheckError, check_source, verify_model
from cnnspec.backends.python_emitter import generate_code
from cnnspec.cli.app import app

HEAD = "cnnspec: 1\nname: {name}\ninput: {{shape: [8, 8, 3]}}\n"

#: A `when` that reads the loop variable: the dropouts' numbers are not a formula of `i`.
ALTERNATE = HEAD.format(name="lw") + (
    "vars: {n: 2}\n"
    "model:\n"
    "  - repeat:\n"
    '      times: "${n}"\n'
    "      as: i\n"
    "      layers:\n"
    "        - conv2d: {filters: 3, kernel_size: 1}\n"
    "        - dropout: 0.1\n"
    '          when: "${i % 2 == 1}"\n'
    "  - flatten\n"
)

#: A loop inside a loop whose count reads the outer variable.
NESTED = HEAD.format(name="nest") + (
    "vars: {stages: 2, blocks: [1, 2], base: 4, use_drop: true}\n"
    "model:\n"
    "  - repeat:\n"
    '      times: "${stages}"\n'
    "      as: s\n"
    "      layers:\n"
    "        - repeat:\n"
    '            times: "${blocks[s]}"\n'
    "            as: j\n"
    "            layers:\n"
    '              - conv2d: {filters: "${base}", kernel_size: 1}\n'
    "              - dropout: 0.1\n"
    '                when: "${use_drop and j > 0}"\n'
    "  - flatten\n"
)

#: A layer after a loop: its number is the loop's count plus one, written as text.
AFTER = HEAD.format(name="after") + (
    "vars: {n: 2}\n"
    "model:\n"
    '  - repeat: {times: "${n}", layers: [conv2d: {filters: 3, kernel_size: 1}]}\n'
    "  - conv2d: {filters: 3, kernel_size: 1}\n"
    "  - flatten\n"
)

#: A loop whose names are right for any count: nothing to say.
REGULAR = HEAD.format(name="reg") + (
    "vars: {n: 2, width: 4}\n"
    "model:\n"
    "  - repeat:\n"
    '      times: "${n}"\n'
    "      as: i\n"
    "      layers:\n"
    '        - conv2d: {filters: "${width}", kernel_size: 1}\n'
    "        - dropout: 0.1\n"
    "  - flatten\n"
)

MARK = "decided when this code was generated: change it in the spec"


def codegen(runner, write_spec, tmp_path, text: str, *, script: bool = False) -> tuple[str, str]:
    """The code ``codegen -o`` writes for ``text``, and what it says on the console."""
    spec = write_spec(text)
    target = tmp_path / ("train.py" if script else "model.py")
    result = runner.invoke(app, ["codegen", str(spec), "-o", str(target), *(["--script"] if script else [])])
    assert result.exit_code == 0, result.output
    return target.read_text(encoding="utf-8"), result.output


def builds_spec_model(source: str, line: str, edited: str, spec, override: str) -> bool:
    """Whether the code with its constant's line edited builds what the spec builds with
    ``--set override`` (the emitter's own replay of the code against the model)."""
    assert line in source
    try:
        verify_model(check_source(source.replace(line, edited)), compile_spec(spec, [override]).ir)
    except CheckError:
        return False
    return True


@pytest.mark.parametrize("script", [False, True], ids=["module", "script"])
def test_loop_names_fitted_to_a_constant_mark_it(runner, write_spec, tmp_path, script):
    source, output = codegen(runner, write_spec, tmp_path, ALTERNATE, script=script)
    assert f"N = 2  # spec.yaml:4; {MARK}\n" in source
    note = (
        "the code fits the constant N only as it is: layer names or `when:`s were decided from its "
        "value; for other values change vars.n in the spec and generate again"
    )
    assert f"note: {note}" in " ".join(output.split())
    assert "# Note: the code fits the constant N only as it is" in source
    # what the mark is about: N = 4 edited in the file builds dropout_1, dropout_3, not the
    # spec's dropout_1, dropout_2
    if not script:
        spec = tmp_path / "spec.yaml"
        edited = builds_spec_model(source, f"N = 2  # spec.yaml:4; {MARK}", "N = 4", spec, "vars.n=4")
        assert not edited


def test_nested_loop_names_mark_the_list_they_count_from(runner, write_spec, tmp_path):
    source, _ = codegen(runner, write_spec, tmp_path, NESTED)
    assert f"BLOCKS = [1, 2]  # spec.yaml:4; {MARK}\n" in source
    # the others build the spec's model whatever their values (the names do not count from them)
    assert "STAGES = 2  # spec.yaml:4\n" in source
    assert "BASE = 4  # spec.yaml:4\n" in source
    assert "USE_DROP = True  # spec.yaml:4\n" in source
    spec = tmp_path / "spec.yaml"
    line = f"BLOCKS = [1, 2]  # spec.yaml:4; {MARK}"
    assert not builds_spec_model(source, line, "BLOCKS = [3, 3]", spec, "vars.blocks=[3, 3]")
    assert builds_spec_model(
        source, "USE_DROP = True  # spec.yaml:4", "USE_DROP = False", spec, "vars.use_drop=false"
    )


def test_a_layer_no_iteration_makes_yet_marks_the_count(runner, write_spec, tmp_path):
    # no iteration of two makes the dropout, so the code has none: N = 8 would need one
    source, _ = codegen(runner, write_spec, tmp_path, ALTERNATE.replace("i % 2 == 1", "i == 5"))
    assert "Dropout" not in source
    assert f"N = 2  # spec.yaml:4; {MARK}\n" in source


def test_a_name_after_a_loop_marks_the_count(runner, write_spec, tmp_path):
    source, _ = codegen(runner, write_spec, tmp_path, AFTER)
    assert f"N = 2  # spec.yaml:4; {MARK}\n" in source
    assert 'layers.Conv2D(filters=3, kernel_size=1, name="conv2d_3")' in source


def test_a_loop_right_for_every_count_leaves_its_constants_editable(runner, write_spec, tmp_path):
    source, output = codegen(runner, write_spec, tmp_path, REGULAR)
    assert "N = 2  # spec.yaml:4\n" in source and "WIDTH = 4  # spec.yaml:4\n" in source
    assert "note:" not in output and MARK not in source
    spec = tmp_path / "spec.yaml"
    for value in (1, 3, 7):
        assert builds_spec_model(source, "N = 2  # spec.yaml:4", f"N = {value}", spec, f"vars.n={value}")


#: A constant read in a layer's arguments (so not "not read below") that also decides a
#: `when:` the code has no `if` for: editing it builds another model than `--set` does.
DECIDED = {
    "string": (
        'vars: {act: relu}\nmodel:\n  - conv2d: {filters: 4, kernel_size: 3, activation: "${act}"}\n'
        "  - max_pool2d:\n    when: \"${act == 'relu'}\"\n  - flatten\n",
        'ACT = "relu"',
        'ACT = "gelu"',
        "vars.act=gelu",
    ),
    "threshold": (
        'vars: {s: 8}\nmodel:\n  - conv2d: {filters: "${s}", kernel_size: 3}\n'
        '  - max_pool2d:\n    when: "${s > 4}"\n  - flatten\n',
        "S = 8",
        "S = 3",
        "vars.s=3",
    ),
    "float": (
        'vars: {drop: 0.25}\nmodel:\n  - flatten\n  - dropout: "${drop}"\n    when: "${drop > 0}"\n',
        "DROP = 0.25",
        "DROP = 0.0",
        "vars.drop=0.0",
    ),
    # the when reads the input's shape, which the var sets: found by trying the literal 4
    "input-shape": (
        'vars: {s: 8}\nmodel:\n  - max_pool2d:\n    when: "${in_shape[0] > 4}"\n  - flatten\n',
        "S = 8",
        "S = 4",
        "vars.s=4",
    ),
}


@pytest.mark.parametrize("case", list(DECIDED))
def test_a_when_decided_from_a_constant_marks_it(runner, write_spec, tmp_path, case):
    """A `when:` of a string compared, a threshold none of the larger ints crossed, a float, or
    an input size: the code had no `if`, and the constant said nothing of it (an edited
    ``ACT = "gelu"`` built 114 parameters where ``--set vars.act=gelu`` builds 330)."""
    model, line, edited, override = DECIDED[case]
    text = HEAD.format(name="dec") + model
    if case == "input-shape":
        text = text.replace("shape: [8, 8, 3]", 'shape: ["${s}", "${s}", 3]')
    source, _ = codegen(runner, write_spec, tmp_path, text)
    assert f"{line}  # spec.yaml:4; {MARK}\n" in source
    assert not builds_spec_model(
        source, f"{line}  # spec.yaml:4; {MARK}", edited, tmp_path / "spec.yaml", override
    )


def test_only_vars_decide_a_when_the_code_writes_no_if_for():
    """A `when:` that reads a loop variable or a block parameter beside a var is no decision of
    the var's alone (the code may test it); one that reads vars alone is."""
    from cnnspec.spec.varrefs import when_vars

    data = {
        "vars": {"a": 1, "b": 2, "k": 3, "i": 4},
        "blocks": {"blk": {"params": {"k": "int"}, "layers": [{"dense": 2, "when": "${k > a}"}]}},
        "model": [
            {"repeat": {"times": 2, "as": "i", "layers": [{"dense": 2, "when": "${i > b}"}]}},
            {"dense": 2, "when": "${a < b}"},
            {"dense": 2, "when": "${in_shape[0] > a}"},
        ],
    }
    assert when_vars(data) == {"a", "b"}


def test_a_value_the_spec_refuses_proves_nothing(write_spec):
    # blocks[s] past the end for more stages: those values are passed over, not held against it
    compiled = compile_spec(write_spec(NESTED))
    source = generate_code(compiled).text
    assert "STAGES = 2  # spec.yaml:4\n" in source


@pytest.mark.slow
def test_marked_code_builds_the_builders_model(write_spec, tmp_path):
    from tests.test_codegen_refs import assert_module_builds_the_builders_model

    spec = write_spec(NESTED)
    target = tmp_path / "nest_model.py"
    target.write_text(generate_code(compile_spec(spec)).text, encoding="utf-8")
    assert_module_builds_the_builders_model(target, spec)


def _filters(ir) -> list[int]:
    return [node.params["filters"] for node in ir.nodes if node.kind == "conv2d"]


def test_probes_share_resolutions_only_within_one_spec(write_spec, tmp_path):
    """The probes' resolutions are kept by the spec's content (a module's and its script's
    probes, or a spec compiled again, share them), never served to a spec of other content at
    the same path, and the cache stays bounded."""
    from cnnspec.backends import codegen_probe

    first = compile_spec(write_spec(REGULAR))
    ir = codegen_probe.resolved_with(first, "n", 3, False)
    assert _filters(ir) == [4, 4, 4]
    assert codegen_probe.resolved_with(compile_spec(tmp_path / "spec.yaml"), "n", 3, False) is ir
    other = compile_spec(write_spec(REGULAR.replace("width: 4", "width: 6")))
    assert _filters(codegen_probe.resolved_with(other, "n", 3, False)) == [6, 6, 6]
    assert _filters(codegen_probe.resolved_with(first, "n", 3, False)) == [4, 4, 4]
    assert codegen_probe.resolved_with(first, "n", True, False) is not ir  # (True is not 1)
    for width in range(1, codegen_probe.RESOLVED_CACHE_SIZE + 5):
        assert _filters(codegen_probe.resolved_with(first, "width", width, False)) == [width] * 2
    assert len(codegen_probe._RESOLVED) == codegen_probe.RESOLVED_CACHE_SIZE


def test_a_spec_with_a_backbone_file_is_probed_afresh(write_spec):
    """A backbone spec file can change on disk between two generations of the same spec text:
    such a spec's probes are not kept (:func:`~cnnspec.backends.codegen_probe.probe_key`)."""
    from cnnspec.backends import codegen_probe

    body = HEAD.format(name="body") + (
        'vars: {width: 4}\nmodel:\n  - conv2d: {filters: "${width}", kernel_size: 1}\n'
    )
    write_spec(body, "body.yaml")
    main = write_spec(
        HEAD.format(name="main")
        + "vars: {n: 2}\nmodel:\n  - backbone: {spec: body.yaml}\n"
        + '  - repeat: {times: "${n}", layers: [conv2d: {filters: 3, kernel_size: 1}]}\n'
    )
    assert _filters(codegen_probe.resolved_with(compile_spec(main), "n", 3, False)) == [4, 3, 3, 3]
    write_spec(body.replace("width: 4", "width: 6"), "body.yaml")
    assert _filters(codegen_probe.resolved_with(compile_spec(main), "n", 3, False)) == [6, 3, 3, 3]
    zoo = compile_spec(write_spec(HEAD.format(name="z") + "model:\n  - backbone: {spec: zoo:resnet50}\n"))
    assert codegen_probe.probe_key(zoo) is not None


def test_a_spec_generated_again_gets_its_own_verdict(write_spec, tmp_path):
    """The generator keeps each verdict by the spec's content and the code: the same spec
    compiled again is marked as before, another spec written to the same file is judged anew."""
    spec = write_spec(ALTERNATE)
    marked = generate_code(compile_spec(spec)).text
    assert f"N = 2  # spec.yaml:4; {MARK}\n" in marked
    assert generate_code(compile_spec(spec)).text == marked
    write_spec(ALTERNATE.replace('when: "${i % 2 == 1}"', 'when: "${i >= 0}"'))
    assert MARK not in generate_code(compile_spec(spec)).text
