"""Each mistake reported once, and every independent mistake reported in the same run.

A value that failed silences only what depends on it (README, "Errors point at the line"):
a bad ``input.shape`` keeps the shapes after it silent, not the layers' own parameters; one
bad value that a ``${…}`` expression reaches several layers with is one error that lists the
other uses. Each case goes through ``cnnspec validate`` (what the user reads) or the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path, overrides: tuple[str, ...] = ()) -> list:
    with pytest.raises(SpecError) as caught:
        compile_spec(path, overrides)
    return caught.value.errors


CASCADE = """\
cnnspec: 1
name: cascade2
input: {shape: [8, 0, -1]}
model:
  - conv2d: {filters: 8.5, kernel_size: 3}
  - dense: {units: 10, activation: softmaxx}
"""


def test_a_bad_input_shape_hides_no_independent_error(tmp_path, runner):
    """Each bad dimension, the layers' own bad parameters, nothing about shapes after it."""
    path = write(tmp_path, CASCADE)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    headlines = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert [h.split(": error: ")[1].split(":")[0] for h in headlines] == [
        "input.shape[1]",
        "input.shape[2]",
        "model[0].conv2d.filters",
        "model[1].dense.activation",
    ]
    assert "received integer -1" in headlines[1]
    assert "received number 8.5" in headlines[2]


def test_a_bad_input_shape_keeps_the_shapes_after_it_silent(tmp_path):
    """A layer whose shape rule would fail on any input (a kernel larger than the image)
    cannot be judged without the input shape: one error, the shape's."""
    path = write(
        tmp_path,
        "cnnspec: 1\nname: t\ninput: {shape: [8, 0, 1]}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 3}\n  - flatten\n  - dense: 10\n",
    )
    errors = errors_of(path)
    assert [(e.path, e.message) for e in errors] == [
        ("input.shape[1]", "expected an integer ≥ 1; received integer 0")
    ]


DIGITS = Path(__file__).resolve().parent.parent / "specs" / "digits_cnn.yaml"


def test_a_bad_var_reaching_layers_through_an_expression_is_one_error(runner):
    """`--set vars.width=0`: `${width}` and `${width * 2}` (twice) all fail as 0: the one bad
    value, reported once, listing the other uses."""
    result = runner.invoke(app, ["validate", str(DIGITS), "--set", "vars.width=0"])
    assert result.exit_code == 1
    assert result.stderr.count(": error: ") == 1, result.stderr
    assert "model[0].conv2d.filters: expected a positive integer; received integer 0" in result.stderr
    assert "note: same error at 2 more uses: model[3].conv2d.filters" in result.stderr
    assert "model[7].conv2d.filters" in result.stderr


def test_a_bad_var_of_a_search_space_is_one_error(tmp_path, runner):
    text = DIGITS.read_text(encoding="utf-8") + "search:\n  space:\n    vars.width: {choice: [0, 16]}\n"
    path = write(tmp_path, text)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.stderr.count(": error: ") == 1, result.stderr
    assert "same error at 2 more uses" in result.stderr


HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"


def test_one_expression_of_a_bad_var_at_two_layers_is_one_error(tmp_path):
    """`${w * 2}` twice, -2 where `${w}` is -1: the two uses of the one computed value fold;
    the var's own use, another value, is its own error."""
    path = write(
        tmp_path,
        HEAD + "vars: {w: -1}\nmodel:\n"
        '  - conv2d: {filters: "${w * 2}", kernel_size: 1}\n'
        '  - conv2d: {filters: "${w}", kernel_size: 1}\n'
        '  - conv2d: {filters: "${w*2}", kernel_size: 1}\n'
        "  - flatten\n  - dense: 10\n",
    )
    first, second = errors_of(path)
    assert (first.path, second.path) == ("model[0].conv2d.filters", "model[1].conv2d.filters")
    assert first.message.endswith("received integer -2")
    assert [n.message for n in first.notes] == [
        f"w is integer -1, set at {path}:4:11",
        f"same error at 1 more use: model[2].conv2d.filters ({path}:8:23)",
    ]


def test_a_computed_use_met_before_the_var_s_own_use_folds_too(tmp_path):
    path = write(
        tmp_path,
        HEAD + "vars: {w: 0}\nmodel:\n"
        '  - conv2d: {filters: "${w * 2}", kernel_size: 1}\n'
        '  - conv2d: {filters: "${w}", kernel_size: 1}\n'
        "  - flatten\n  - dense: 10\n",
    )
    (error,) = errors_of(path)
    assert error.path == "model[0].conv2d.filters"
    assert error.notes[-1].message == f"same error at 1 more use: model[1].conv2d.filters ({path}:7:23)"


def test_different_expressions_of_a_right_var_stay_apart(tmp_path):
    """`${n - 2}` and `${n // 4}` are both 0 of n = 2, which is not 0 itself: two mistakes."""
    path = write(
        tmp_path,
        HEAD + "vars: {n: 2}\nmodel:\n"
        '  - conv2d: {filters: "${n - 2}", kernel_size: 1}\n'
        '  - conv2d: {filters: "${n // 4}", kernel_size: 1}\n'
        "  - flatten\n  - dense: 10\n",
    )
    assert [e.path for e in errors_of(path)] == ["model[0].conv2d.filters", "model[1].conv2d.filters"]


def test_a_kind_added_by_set_is_located_at_the_option(runner):
    """`--set model[0].dense.units=3` on a conv2d item: the file never says dense; the error
    is the option's, with a note on the file's item."""
    result = runner.invoke(app, ["validate", str(DIGITS), "--set", "model[0].dense.units=3"])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "<--set 1>:1:10: error: model[0]: expected exactly one layer kind per item; received conv2d, dense"
    ), result.stderr
    assert "digits_cnn.yaml:13:5: error" not in result.stderr
    note = next(line for line in result.stderr.splitlines() if "note:" in line)
    assert note.startswith("  note: model[0] is written at ")
    assert note.endswith("digits_cnn.yaml:13:5 as conv2d")


FINETUNE = Path(__file__).resolve().parent.parent / "examples" / "transfer" / "finetune.yaml"


def test_an_error_in_train_s_epochs_flag_names_the_flag(tmp_path, runner):
    """`train --epochs 3` on a phased spec: the error is in the flag the user typed, quoted as
    typed, not in a `--set training.epochs=3` nobody wrote. It is found before training starts
    (the weights named do not exist: the spec is refused first)."""
    result = runner.invoke(
        app,
        [
            "train",
            str(FINETUNE),
            "--weights",
            str(tmp_path / "none"),
            "--epochs",
            "3",
            "-o",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("<--epochs>:1:1: error: training.epochs: "), result.stderr
    assert lines[0].endswith("(in the --epochs option on the command line)")
    assert lines[1] == " 1 | --epochs 3"
    assert "--set" not in lines[0]
    assert "instead of --epochs N, set a phase's epochs" in result.stderr
    assert not (tmp_path / "x").exists()


def test_the_same_mistake_through_set_still_names_set(runner):
    result = runner.invoke(app, ["validate", str(FINETUNE), "--set", "training.epochs=3"])
    assert result.exit_code == 1
    assert result.stderr.startswith("<--set 1>:1:10: error: training.epochs: "), result.stderr
    assert "(in a --set option on the command line)" in result.stderr
    assert "instead of --set training.epochs=N, set a phase's epochs" in result.stderr


def test_a_yaml_1_1_boolean_hides_no_independent_error(tmp_path, runner):
    """`kernel_size: yes` is one mistake among others: the epochs and the activation are
    reported with it; what the resolver would say about `yes` as a kernel size is not."""
    path = write(
        tmp_path,
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel:\n"
        "  - conv2d: {filters: 8, kernel_size: yes}\n"
        "  - dense: {units: 10, activation: softmaxx}\n"
        "training: {epochs: 0}\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    headlines = [line.split(": error: ")[1] for line in result.stderr.splitlines() if ": error: " in line]
    assert [h.split(":")[0] for h in headlines] == [
        "model[0].conv2d.kernel_size",
        "model[1].dense.activation",
        "training.epochs",
    ]
    assert "which YAML 1.1 reads as a boolean" in headlines[0]


def test_what_reads_a_value_that_failed_as_it_was_read_stays_silent(tmp_path):
    """A var written `yes`, read as a kernel size and as a condition: its one error."""
    path = write(
        tmp_path,
        HEAD + "vars: {k: yes}\nmodel:\n"
        '  - conv2d: {filters: 4, kernel_size: "${k}"}\n'
        '  - conv2d: {filters: 4, kernel_size: 1}\n    when: "${k}"\n'
        "  - dense: {units: 0}\n",
    )
    assert [e.path for e in errors_of(path)] == ["vars.k", "model[2].dense.units"]


def test_a_yaml_1_1_value_in_a_base_or_a_library_hides_nothing_either(tmp_path):
    write(tmp_path, "blocks:\n  b:\n    layers:\n      - conv2d: {filters: 4, kernel_size: no}\n", "lib.yaml")
    write(tmp_path, HEAD + "training: {epochs: on}\nmodel:\n  - dense: 3\n", "base.yaml")
    path = write(
        tmp_path, "extends: base.yaml\nname: c\nuse: [lib.yaml]\nmodel:\n  - b\n  - dense: {units: 0}\n"
    )
    errors = errors_of(path)
    assert sorted((Path(e.loc.file).name, e.path) for e in errors) == [
        ("base.yaml", "training.epochs"),
        ("lib.yaml", "blocks.b.layers[0].conv2d.kernel_size"),
        ("spec.yaml", "model[1].dense.units"),
    ]
    base = next(e for e in errors if e.path == "training.epochs")
    assert [n.message for n in base.notes] == [f"included from {path}:1:10"]


def test_the_loader_alone_still_refuses_a_yaml_1_1_value():
    """Readers of a spec outside the front end (a run's recorded spec) still get the error."""
    from cnnspec.spec.loader import load_text

    with pytest.raises(SpecError) as caught:
        load_text("cnnspec: 1\nflag: yes\n", "x.yaml")
    assert [e.path for e in caught.value.errors] == ["flag"]


NESTED_REPEAT = """\
cnnspec: 1
name: t
input: {shape: [16, 16, 1]}
blocks:
  inner:
    params: {k: int, f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: "${k}"}
  outer:
    params: {s: int}
    layers:
      - inner: {k: "${s * 2 + 1}", f: 4}
model:
  - repeat:
      times: 3
      as: i
      layers:
        - outer: {s: "${i * 5}"}
  - flatten
  - dense: 10
"""


def test_the_call_stack_names_the_iteration_and_the_arguments_it_computed(tmp_path, runner):
    """The kernel size 21 is k of inner, `${s * 2 + 1}` of outer's s = 10, `${i * 5}` of the
    iteration i = 2: each call note says its part; f (4, read by nothing that failed) is not
    named."""
    path = write(tmp_path, NESTED_REPEAT)
    (error,) = errors_of(path)
    assert "effective kernel size (21)" in error.message
    assert [n.message for n in error.notes] == [
        f"in block 'inner' called from blocks.outer.layers[0] ({path}:12:9), with k = 21",
        f"in block 'outer' called from model[0].repeat.layers[0] ({path}:18:11)"
        ", in iteration i = 2, with s = 10",
    ]
    result = runner.invoke(app, ["validate", str(path)])
    assert "in iteration i = 2, with s = 10" in result.stderr


def test_the_same_error_in_other_iterations_adds_no_call_notes(tmp_path):
    """Every iteration fails (-5, -4, -3): the first says its iteration; the others are the same
    chain of calls, not listed again; another call site is, with its own values."""
    path = write(
        tmp_path,
        HEAD + "blocks:\n  cb:\n    params: {f: int}\n    layers:\n"
        '      - conv2d: {filters: "${f}", kernel_size: 1}\n'
        "model:\n"
        '  - repeat: {times: 3, as: i, layers: [cb: {f: "${i - 5}"}]}\n'
        "  - cb: {f: 0}\n  - flatten\n  - dense: 10\n",
    )
    (error,) = errors_of(path)
    assert [n.message for n in error.notes] == [
        f"in block 'cb' called from model[0].repeat.layers[0] ({path}:10:40)"
        ", in iteration i = 0, with f = -5",
        f"also in block 'cb' called from model[1] ({path}:11:5)",
        f"f is integer 0, set at {path}:11:13",
    ]


def test_a_structural_error_past_the_error_limit_still_stops_before_the_resolver(tmp_path):
    """300 unknown optimizer keys fill the error limit, and `vars: basic` after them was
    dropped unseen: the resolver then read `vars` as checked, an internal error (found by
    `make fuzz`). A full collection now stops at the schema as any structural error does."""
    keys = "".join(f"    k{i}: {i}\n" for i in range(300))
    spec = tmp_path / "full.yaml"
    spec.write_text(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
        "model: [flatten, {dense: {units: 3, activation: softmax}}]\n"
        f"training:\n  optimizer:\n{keys}vars: basic\n"
    )
    with pytest.raises(SpecError) as caught:
        compile_spec(spec)
    assert all(error.path.startswith("training.optimizer") for error in caught.value.errors)


UNKNOWN_SECTIONS = """\
cnnspec: 1
name: t
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filtres: 4, kernel_size: 3}
  - flatten
  - dense: 10
notes: a key nothing reads
trainnig: {epochs: 2}
"""


def test_an_unknown_top_level_key_hides_no_layer_error(tmp_path):
    """`notes:` (close to nothing) and `trainnig:` (close to a section the resolver does not
    read) stopped every check after the schema's: the layers' mistakes came only once the keys
    were fixed. The resolver reads neither, so both and the layer's error come in one run."""
    errors = errors_of(write(tmp_path, UNKNOWN_SECTIONS))
    assert [(e.path, e.message, e.hint) for e in errors] == [
        ("model[0].conv2d.filtres", "unknown parameter 'filtres' for `conv2d`", "did you mean `filters`?"),
        ("notes", "unknown key 'notes'", errors[1].hint),
        ("trainnig", "unknown key 'trainnig'", "did you mean `training`?"),
    ]
    assert errors[1].hint.startswith("keys: cnnspec, name, ")


@pytest.mark.parametrize("key", ["varz", "bloks", "augment", "modl"])
def test_an_unknown_key_meant_for_a_section_the_resolver_reads_still_stops_there(tmp_path, key):
    """Without the section it was meant for (vars, blocks, augmentation, model), the layers
    would fail for its absence (an unknown var or kind): the schema's errors come alone."""
    text = UNKNOWN_SECTIONS.replace("notes: a key nothing reads\ntrainnig: {epochs: 2}\n", f"{key}: {{}}\n")
    errors = errors_of(write(tmp_path, text))
    assert [e.path for e in errors] == [key]


def test_a_yaml11_word_where_a_boolean_alone_is_taken_is_not_told_to_be_quoted(tmp_path, runner):
    """`trainable: no`, `deterministic: on`, `strict: yes` were "expected true, false or a quoted
    string", with the hint to quote them, and quoted they were then refused ("expected true or
    false"): where only a boolean is taken (the schema's type, an item's trainable), the error
    says so. Where a string is taken too, the hint still offers the quotes."""
    path = tmp_path / "yn.yaml"
    path.write_text(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel:\n  - flatten:\n    trainable: no\n"
        "  - dense: {units: 10, activation: softmax}\ndata: {source: digits}\n"
        "training: {deterministic: on, epochs: 1}\nweights: {from: x.keras, strict: yes}\n"
        "description: yes\n"
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    said = [line.split(": error: ")[1] for line in result.stderr.splitlines() if ": error: " in line]
    hints = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("hint:")]
    assert said == [
        "model[0].trainable: expected true or false; received 'no', which YAML 1.1 reads as a boolean",
        "training.deterministic: expected true or false; received 'on', which YAML 1.1 reads as a boolean",
        "weights.strict: expected true or false; received 'yes', which YAML 1.1 reads as a boolean",
        "description: expected a text; received a bare 'yes', which YAML 1.1 reads as a boolean",
    ]
    assert hints[:3] == ["hint: write true or false: this setting takes no string"] * 3
    # (a text alone is taken: the quotes, not true/false)
    assert (
        hints[3]
        == 'hint: quote it ("yes"): a description is never a boolean, but unquoted YAML 1.1 reads it as one'
    )
