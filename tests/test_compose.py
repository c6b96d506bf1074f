"""Composition: extends (deep merge with locations), use (block libraries), --set overrides."""

from __future__ import annotations

import pytest

from cnnspec.api import compile_spec
from cnnspec.errors import SpecError, UsageError
from cnnspec.spec.compose import FlagOverride, load_spec, parse_override

BASE = """\
cnnspec: 1
name: base
input: {shape: [8, 8, 1]}
vars: {width: 8}
model:
  - conv2d: {filters: "${width}", kernel_size: 3}
  - flatten
  - dense: 10
training: {epochs: 5, batch_size: 16}
"""


def test_extends_deep_merges_and_keeps_locations(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nname: child\nvars: {width: 4}\ntraining: {epochs: 2}\n")
    compiled = compile_spec(child)
    assert compiled.name == "child"
    assert compiled.training == {"epochs": 2, "batch_size": 16}
    assert compiled.ir.nodes[0].params["filters"] == 4
    # the conv layer was written in base.yaml and its location says so
    assert compiled.ir.nodes[0].loc.file.endswith("base.yaml")
    assert compiled.doc.loc(("training", "epochs")).file.endswith("child.yaml")


def test_error_in_inherited_value_points_into_the_base_file(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE.replace("kernel_size: 3", "kernel_size: 0"))
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nname: child\n")
    with pytest.raises(SpecError) as caught:
        compile_spec(child)
    error = caught.value.errors[0]
    assert error.loc.file.endswith("base.yaml")
    assert (error.loc.line, error.loc.column) == (6, 48)


def test_extends_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(SpecError, match=r"cycle: a\.yaml → b\.yaml → a\.yaml"):
        load_spec(tmp_path / "a.yaml")


def test_paths_outside_the_spec_folder_are_refused(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "spec.yaml").write_text("extends: ../base.yaml\nname: inner\n")
    with pytest.raises(SpecError) as caught:
        load_spec(inner / "spec.yaml")
    assert caught.value.errors[0].code == "outside"
    assert "--allow-outside" in caught.value.errors[0].hint
    assert load_spec(inner / "spec.yaml", allow_outside=True).data["name"] == "inner"


def test_use_imports_blocks_and_own_definitions_win(tmp_path):
    lib = tmp_path / "blocks"
    lib.mkdir()
    (lib / "conv.yaml").write_text(
        "cnnspec: 1\nblocks:\n  cbr:\n    params: {filters: int}\n    layers:\n"
        "      - conv2d: {filters: '${filters}', kernel_size: 3, padding: same}\n"
        "      - batch_norm\n      - activation: relu\n"
        "  tiny:\n    layers: [flatten]\n"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "cnnspec: 1\nname: s\nuse: [blocks/conv.yaml]\ninput: {shape: [8, 8, 1]}\n"
        "blocks:\n  tiny:\n    layers: [global_avg_pool2d]\n"
        "model:\n  - cbr: {filters: 4}\n  - tiny\n"
    )
    compiled = compile_spec(spec)
    kinds = [node.kind for node in compiled.ir.nodes]
    assert kinds == ["conv2d", "batch_norm", "activation", "global_avg_pool2d"]
    assert compiled.ir.nodes[0].loc.file.endswith("conv.yaml")


def test_what_a_spec_inherits_is_its_own_and_a_library_does_not_replace_it(tmp_path):
    """A library of the extending spec declaring a var and a block the base declares: the
    library's var won (8 filters, not the base's 16) and its block was merged into the base's
    (its layers with the base's params: `k: 3` was taken and did nothing)."""
    (tmp_path / "lib.yaml").write_text(
        "vars: {w: 8}\nblocks:\n"
        "  cb: {params: {f: int}, layers: [conv2d: {filters: '${f}', kernel_size: 1}]}\n"
        "  extra: {layers: [flatten]}\n"
    )
    (tmp_path / "base.yaml").write_text(
        "cnnspec: 1\nname: base\ninput: {shape: [16, 16, 3]}\nvars: {w: 16}\nblocks:\n  cb:\n"
        "    params: {f: int, k: {type: int, default: 5}}\n"
        "    layers: [conv2d: {filters: '${f}', kernel_size: '${k}'}, batch_norm]\n"
        "model: [cb: {f: '${w}'}, global_avg_pool2d]\n"
    )
    spec = tmp_path / "child.yaml"
    spec.write_text(
        "extends: base.yaml\nuse: [lib.yaml]\nname: child\nmodel: [cb: {f: '${w}', k: 3}, extra]\n"
    )
    compiled = compile_spec(spec)
    conv, norm, flat = compiled.ir.nodes
    assert (conv.kind, norm.kind, flat.kind) == ("conv2d", "batch_norm", "flatten")  # base's cb, lib's extra
    assert conv.params["filters"] == 16 and compiled.ir.totals.params == 16 * 3 * 9 + 16 + 4 * 16
    assert conv.loc is not None and conv.loc.file.endswith("base.yaml")


def test_use_of_a_non_library_is_refused(tmp_path):
    (tmp_path / "lib.yaml").write_text("cnnspec: 1\nmodel: [flatten]\nblocks: {}\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("cnnspec: 1\nname: s\nuse: [lib.yaml]\ninput: {shape: [4]}\nmodel: [flatten]\n")
    with pytest.raises(SpecError, match="unknown key 'model'"):
        load_spec(spec)


def test_set_overrides(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    compiled = compile_spec(spec, ["training.epochs=3", "model[0].conv2d.filters=16", "vars.width=2"])
    assert compiled.training["epochs"] == 3
    assert compiled.ir.nodes[0].params["filters"] == 16
    with pytest.raises(SpecError) as caught:
        compile_spec(spec, ["training.epochs=0"])
    assert caught.value.errors[0].loc.file == "<--set 1>"


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("training.epochs=3", ("training", "epochs"), 3),
        ("model[2].dense.units=5", ("model", 2, "dense", "units"), 5),
        ("input.shape=[4, 4, 1]", ("input", "shape"), [4, 4, 1]),
        ("name=abc", ("name",), "abc"),
    ],
)
def test_parse_override(text, path, value):
    assert parse_override(text) == (path, value)


@pytest.mark.parametrize("text", ["epochs", "=3", "a..b=1", "a.=1", "a[x]=1", "a=[1"])
def test_bad_overrides_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_override(text)


def test_a_flag_value_that_is_not_yaml_is_a_usage_error_located_in_the_flag(tmp_path):
    """`train --epochs N` goes through --set's path: a value YAML cannot read (typer's int type
    keeps one from the command line, not from the API) is located in the flag as typed, after
    the `--set 1` before it, not in a `--set 2` nobody wrote."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    with pytest.raises(UsageError) as caught:
        compile_spec(spec, ["training.epochs=2", FlagOverride("training.epochs=[1", "--epochs")])
    (error,) = caught.value.diagnostics
    assert str(caught.value) == (
        "<--epochs>:1:12: invalid YAML: expected ',' or ']', but got '<stream end>' "
        "(in the --epochs option on the command line)"
    )
    assert (error.loc.file, error.loc.line, error.loc.column, error.code) == ("<--epochs>", 1, 12, "yaml")
    assert error.hint == "the `[` opened at 1:10 is never closed; close it with `]`"


def errors_of(spec, overrides=()):
    with pytest.raises(SpecError) as caught:
        compile_spec(spec, list(overrides))
    return caught.value.errors


def test_errors_in_included_files_name_each_include(tmp_path):
    (tmp_path / "lib.yaml").write_text(
        "cnnspec: 1\nblocks:\n  b:\n    layers:\n      - conv2d: {filters: 4, kernel_size: 3, dilation: 2}\n"
    )
    (tmp_path / "base.yaml").write_text(BASE.replace("model:\n", "use: [lib.yaml]\nmodel:\n  - b\n"))
    child = tmp_path / "child.yaml"
    child.write_text("# a child\nextends: base.yaml\nname: child\n")
    (error,) = errors_of(child)
    assert error.loc.file.endswith("lib.yaml") and error.loc.line == 5
    messages = [n.message.replace(str(tmp_path) + "/", "") for n in error.notes]
    assert messages == [
        "included from base.yaml:5:7",
        "included from child.yaml:2:10",
        "in block 'b' called from model[0] (base.yaml:7:5)",
    ]
    assert [n.path for n in error.notes] == ["use[0]", "extends", "model[0]"]


def test_a_yaml_error_in_a_base_file_names_the_include(tmp_path):
    (tmp_path / "base.yaml").write_text("cnnspec: 1\nname: [unclosed\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nname: child\n")
    (error,) = errors_of(child)
    assert error.loc.file.endswith("base.yaml")
    assert [n.message.replace(str(tmp_path) + "/", "") for n in error.notes] == [
        "included from child.yaml:1:10"
    ]


def test_set_of_an_undeclared_var_is_a_located_error(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    (error,) = errors_of(spec, ["training.epochs=3", "vars.widht=4"])
    assert (error.loc.file, error.loc.line, error.loc.column) == ("<--set 2>", 1, 6)
    assert error.path == "vars.widht" and error.code == "unknown-var"
    assert error.message.endswith("(in a --set option on the command line)")
    assert error.hint == "did you mean `width`?"
    (error,) = errors_of(spec, ["vars.depth=4"])
    assert error.hint == "the spec declares width; declare it under `vars:` in the spec"


def test_set_of_the_whole_var_table_sets_each_var_it_names(tmp_path):
    """``--set vars={…}`` is each var set as ``--set vars.NAME=…`` sets it (as a variant's
    ``vars:``): the vars it leaves out keep their values, while another mapping given whole
    replaces the spec's."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        BASE.replace("vars: {width: 8}", "vars: {width: 8, classes: 3}").replace("10", '"${classes}"')
    )
    whole = compile_spec(spec, ["vars={width: 4}", "training={epochs: 2}"])
    one = compile_spec(spec, ["vars.width=4"])
    assert whole.doc.data["vars"] == one.doc.data["vars"] == {"width": 4, "classes": 3}
    assert whole.ir.totals.params == one.ir.totals.params
    assert whole.training == {"epochs": 2}  # (its batch_size: 16 replaced with the rest)
    assert compile_spec(spec, ["vars={}"]).doc.data["vars"] == {"width": 8, "classes": 3}


def test_set_of_the_whole_var_table_refuses_an_undeclared_var_where_it_is_written(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    (error,) = errors_of(spec, ["vars={width: 4, widht: 9}"])
    assert (error.loc.file, error.loc.line, error.loc.column) == ("<--set 1>", 1, 17)
    assert error.path == "vars.widht" and error.code == "unknown-var"
    assert error.message == (
        "unknown var 'widht': --set can only change a var the spec declares "
        "(in a --set option on the command line)"
    )
    assert error.hint == "did you mean `width`?"
    # each one named, not only the first; a name that is no string is one too
    errors = errors_of(spec, ["vars={depth: 2, 3: 1}"])
    assert [(e.path, e.loc.column, e.hint) for e in errors] == [
        ("vars.depth", 7, "the spec declares width; declare it under `vars:` in the spec"),
        ("vars.3", 17, "the spec declares width; declare it under `vars:` in the spec"),
    ]


@pytest.mark.parametrize("key", ["extends", "use", "variants", "family"])
def test_set_of_a_key_composing_reads_is_refused(tmp_path, key):
    # it was accepted and did nothing: the files had been put together already
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    value = {"extends": "other.yaml", "use": "[lib.yaml]", "variants": "{a: {}}", "family": "f"}[key]
    (error,) = errors_of(spec, ["training.epochs=3", f"{key}={value}"])
    assert (error.loc.file, error.loc.column, error.path) == ("<--set 2>", 1, key)
    assert error.message.startswith(f"cannot set `{key}` with --set: it is read when the spec's files")


@pytest.mark.parametrize(
    ("override", "column", "path", "message"),
    [
        ("trainig.epochs=3", 1, "trainig", "unknown key 'trainig'"),
        ("training.epoch=3", 10, "training.epoch", "unknown key 'epoch'"),
        (
            "model[7].dense=3",
            6,
            "model[7]",
            "expected an index from 0 to 2 (`model` has 3 items); received 7",
        ),
        ("name.first=a", 6, "name.first", "expected a mapping at `name` to set `first` in; it is not one"),
        (
            "model[0].conv2d.filtres=3",
            17,
            "model[0].conv2d.filtres",
            "unknown parameter 'filtres' for `conv2d`",
        ),
    ],
)
def test_set_paths_the_spec_rejects_are_located_on_the_command_line(
    tmp_path, override, column, path, message
):
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    (error,) = errors_of(spec, [override])
    assert (error.loc.file, error.loc.line, error.loc.column) == ("<--set 1>", 1, column)
    assert (error.path, error.message) == (path, f"{message} (in a --set option on the command line)")


def test_set_counts_an_index_from_the_end_as_python_does(tmp_path):
    """`model[-1]` was a usage error with no place ("expected a spec path like …"): it is the
    last item, and an error in the value names the item by its index, located in the option."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    compiled = compile_spec(spec, ["model[-1].dense.units=4", "model[-3].conv2d.filters=2"])
    assert compiled.doc.data["model"] == [
        {"conv2d": {"filters": 2, "kernel_size": 3}},
        "flatten",
        {"dense": {"units": 4}},
    ]
    (error,) = errors_of(spec, ["model[-3].conv2d.filters=0"])
    assert (error.loc.file, error.loc.column, error.path) == ("<--set 1>", 26, "model[0].conv2d.filters")
    (error,) = errors_of(spec, ["model[-4].conv2d.filters=2"])
    assert (error.loc.column, error.path) == (6, "model[-4]")
    assert error.message == (
        "expected an index from -3 to 2 (`model` has 3 items); received -4 "
        "(in a --set option on the command line)"
    )
    assert error.hint == "`model[-1]` is its last item and `model[-3]` its first"
    # (the index stays as written: a search space's key is read against its spec's data)
    assert parse_override("model[-1].dense.units=2") == (("model", -1, "dense", "units"), 2)


def test_set_past_a_list_s_end_says_how_to_add_an_item(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    (error,) = errors_of(spec, ["model[3]=flatten"])
    assert error.message.startswith("expected an index from 0 to 2 (`model` has 3 items); received 3")
    assert (
        error.hint == "--set changes an item that is there; to add one, give `model` whole: --set 'model=[…]'"
    )


@pytest.mark.parametrize(
    ("override", "column", "path", "message", "hint"),
    [
        (
            "training.phasse[0].epochs=2",
            10,
            "training.phasse",
            "expected `training.phasse` to be in the spec to set its item 0; "
            "there is no `phasse` at `training`",
            "to add `phasse`, give it whole: --set 'training.phasse=…'",
        ),
        (
            "trainig.phases[0].epochs=2",
            1,
            "trainig",
            "expected `trainig.phases` to be in the spec to set its item 0; "
            "there is no `trainig` at the top level",
            "did you mean `training`?",
        ),
        (
            "blocks.cb.layrs[0].conv2d.filters=2",
            11,
            "blocks.cb.layrs",
            "expected `blocks.cb.layrs` to be in the spec to set its item 0; "
            "there is no `layrs` at `blocks.cb`",
            "did you mean `layers`?",
        ),
    ],
)
def test_set_through_a_name_the_spec_lacks_into_a_list_is_located_at_the_name(
    tmp_path, override, column, path, message, hint
):
    """It said `expected a list with an item 0 at `blocks.cb.layrs`; there is none`, at the
    index, with no word of the misspelt name that made the list missing."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        BASE.replace("model:", "blocks:\n  cb: {layers: [conv2d: {filters: 2, kernel_size: 1}]}\nmodel:")
    )
    (error,) = errors_of(spec, [override])
    assert (error.loc.file, error.loc.line, error.loc.column, error.path) == ("<--set 1>", 1, column, path)
    assert (error.message, error.hint) == (f"{message} (in a --set option on the command line)", hint)


@pytest.mark.parametrize(
    ("override", "message", "hint"),
    [
        ("model[0].conv2d.filtres=3", "unknown parameter 'filtres' for `conv2d`", "did you mean `filters`?"),
        ("model[2].cb.widht=3", "unknown argument 'widht' for block `cb`", "did you mean `width`?"),
    ],
)
def test_a_misspelt_key_a_set_adds_beside_the_one_meant_is_told_the_one_meant(
    tmp_path, override, message, hint
):
    """The option's key merges into the mapping, which holds the key meant already: the hint was
    "`filters` is set already in this mapping: remove `filtres`, or give `filters` its value",
    the file's hint for two keys written side by side; the option is what to correct, as the
    schema's hint for an unknown key a --set adds says (`training.epoch=3`: `epochs`)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        BASE.replace(
            "model:", "blocks:\n  cb:\n    params: {width: int}\n    layers: [dense: '${width}']\nmodel:"
        ).replace("  - dense: 10", "  - cb: {width: 2}\n  - dense: 10")
    )
    (error,) = errors_of(spec, [override])
    assert (error.loc.file, error.loc.column) == ("<--set 1>", override.rindex(".") + 2)
    assert (error.message, error.hint) == (f"{message} (in a --set option on the command line)", hint)
    # in the file, or in one option, the two keys side by side are what to correct
    set_already = "`filters` is set already in this mapping: remove `filtres`, or give `filters` its value"
    written = tmp_path / "written.yaml"
    written.write_text(spec.read_text().replace("kernel_size: 3}", "kernel_size: 3, filtres: 3}"))
    (error,) = errors_of(written)
    assert error.hint == set_already
    (error,) = errors_of(spec, ["model[0].conv2d={filters: 8, filtres: 3, kernel_size: 3}"])
    assert error.hint == set_already
    (error,) = errors_of(spec, ["training={epochs: 3, epoch: 4}"])  # (the schema's hint alike)
    assert error.hint == "`epochs` is set already in this mapping: remove `epoch`, or give `epochs` its value"


@pytest.mark.parametrize(
    ("override", "hint"),
    [
        (
            "training.optimizer.adam.learning_rate=0.1",
            "`training.optimizer` is 'adam': to make it a mapping, give it whole: "
            "--set 'training.optimizer={adam: …}'",
        ),
        ("model.conv2d=1", "`model` is a list: name an item by its index, as in --set 'model[0]…'"),
        ("training.epochs.x=1", None),  # (a number has no key under it, nor a name at the top)
        ("name.first=a", None),
    ],
)
def test_set_under_a_value_that_is_no_mapping_says_how_to_reach_it(tmp_path, override, hint):
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("batch_size: 16}", "batch_size: 16, optimizer: adam}"))
    (error,) = errors_of(spec, [override])
    assert error.message.startswith("expected a mapping at `") and error.hint == hint


def test_set_epochs_beside_phases_another_set_gives_is_refused_in_either_order(tmp_path):
    """Phases set after the epochs dropped them, as they drop the spec's own: the first option
    did nothing, unsaid (the other order was refused)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE)
    phases = "training.phases=[{epochs: 2}]"
    assert compile_spec(spec, [phases]).training == {"batch_size": 16, "phases": [{"epochs": 2}]}
    for overrides, at in (
        (["training.epochs=9", phases], "<--set 1>"),
        ([phases, "training.epochs=9"], "<--set 2>"),
    ):
        (error,) = errors_of(spec, overrides)
        assert (error.loc.file, error.path) == (at, "training.epochs")
        assert error.message.startswith("expected the epochs in each phase; received training.epochs beside")


def test_set_into_search_space_takes_a_key_that_is_a_spec_path_whole(tmp_path):
    """`search.space.training.batch_size` was read as `space: {training: {batch_size: …}}` (an
    error that named no dimension); the key of a dimension is a spec path itself."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        BASE + "search:\n  space:\n    training.phases: {choice: [[{epochs: 1}], [{epochs: 2}]]}\n"
    )
    space = compile_spec(
        spec,
        [
            "search.space.training.phases.choice[-1]=[{epochs: 3}]",  # (the last: counted from the end)
            "search.space.training.batch_size={choice: [8, 16]}",
            "search.space.model[0].conv2d.filters.int=[2, 4]",
        ],
    ).doc.data["search"]["space"]
    assert space == {
        "training.phases": {"choice": [[{"epochs": 1}], [{"epochs": 3}]]},
        "training.batch_size": {"choice": [8, 16]},
        "model[0].conv2d.filters": {"int": [2, 4]},
    }
    (error,) = errors_of(spec, ["search.space.training.batch_size.choice=[0, 8]"])
    assert (error.loc.file, error.loc.column, error.path) == ("<--set 1>", 42, "training.batch_size")
    assert error.message.startswith("expected an integer ≥ 1")


SHORTHANDS = """\
cnnspec: 1
name: short
input: {shape: [8, 8, 3]}
blocks:
  head:
    params: {units: {type: int, default: 2}}
    layers: [dense: "${units}"]
model: [conv2d: {filters: 4, kernel_size: 3}, batch_norm, max_pool2d: [2, 2], flatten, dense: 3, head]
"""


@pytest.mark.parametrize(
    ("override", "index", "params"),
    [
        # a bare kind becomes its mapping; a shorthand value its kind's main parameter
        ("model[1].batch_norm.momentum=0.5", 1, {"momentum": 0.5}),
        ("model[4].dense.units=5", 4, {"units": 5}),
        ("model[4].dense.activation=relu", 4, {"units": 3, "activation": "relu"}),
        ("model[2].max_pool2d.strides=1", 2, {"pool_size": [2, 2], "strides": 1}),
        # an item of the shorthand's own list is still set in it
        ("model[2].max_pool2d[0]=1", 2, {"pool_size": [1, 2]}),
    ],
)
def test_set_reaches_the_parameters_of_a_shorthand_item(tmp_path, override, index, params):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SHORTHANDS)
    compiled = compile_spec(spec, [override])
    node = compiled.ir.nodes[index]
    assert {k: node.params[k] for k in params} == params


@pytest.mark.parametrize("call", ["head", "head: 4"])
def test_set_reaches_the_arguments_of_a_block_called_without_a_mapping(tmp_path, call):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SHORTHANDS.replace(", head]", f", {call}]"))
    compiled = compile_spec(spec, ["model[5].head.units=7"])
    assert compiled.ir.nodes[-1].params["units"] == 7


def test_an_error_in_a_shorthand_value_kept_beside_a_set_points_into_the_file(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SHORTHANDS.replace("dense: 3,", "dense: 0,"))
    (error,) = errors_of(spec, ["model[4].dense.activation=relu"])
    assert (error.loc.file, error.loc.line, error.loc.column) == (str(spec), 8, 95)
    assert (error.path, error.message) == (
        "model[4].dense.units",
        "expected a positive integer; received integer 0",
    )


def test_set_under_another_name_than_a_bare_item_s_shows_the_form_that_works(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SHORTHANDS)
    (error,) = errors_of(spec, ["model[1].dense.units=5"])
    assert (error.loc.file, error.loc.column, error.path) == ("<--set 1>", 10, "model[1].dense")
    assert error.message == (
        "expected a mapping at `model[1]` to set `dense` in; it is not one "
        "(in a --set option on the command line)"
    )
    assert (
        error.hint
        == "`model[1]` is `batch_norm`: set its parameters with --set model[1].batch_norm.NAME=VALUE"
    )


@pytest.mark.parametrize(
    ("text", "overrides", "where"),
    [
        ("extends: zoo:resnet50\nblocks:\n  bottleneck:\n    layers: 5\n", [], "child.yaml:4"),
        ("extends: zoo:resnet50\n", ["blocks.bottleneck.layers=7"], "<--set 1>:1"),
    ],
    ids=["extends", "set"],
)
def test_a_library_block_changed_after_import_is_schema_checked_again(tmp_path, text, overrides, where):
    # blocks imported unchanged from a library skip the spec schema (the library schema passed
    # them); one that `extends` merges into or `--set` changes does not
    (tmp_path / "child.yaml").write_text(text)
    with pytest.raises(SpecError) as caught:
        compile_spec(tmp_path / "child.yaml", overrides)
    (error,) = caught.value.errors
    assert error.path == "blocks.bottleneck.layers" and "expected a list" in error.message
    assert f"{error.loc.file}:{error.loc.line}".endswith(where)


def test_a_mapping_merged_with_its_bases_keys_names_where_they_come_from(tmp_path):
    """A child's search space of another type keeps the base's key (`float` beside `int`): the
    error showed only the child's line, "received keys float, int, step", with no word of where
    `float` came from."""
    (tmp_path / "base.yaml").write_text(
        "cnnspec: 1\nname: base\ninput: {shape: [8, 8, 1]}\n"
        "model: [flatten, {id: drop, dropout: 0.3}, {dense: {units: 3, activation: softmax}}]\n"
        "search:\n  trials: 2\n  space:\n    drop.rate: {float: [0.0, 0.5]}\n"
    )
    child = tmp_path / "child.yaml"
    child.write_text(
        "cnnspec: 1\nextends: base.yaml\nname: child\n"
        "search:\n  space:\n    drop.rate: {int: [16, 20], step: 32}\n"
    )
    with pytest.raises(SpecError) as caught:
        compile_spec(child)
    (error,) = caught.value.errors
    assert error.loc.file.endswith("child.yaml") and "keys float, int, step" in error.message
    (note,) = error.notes
    assert note.message.startswith("float comes from ") and note.loc.file.endswith("base.yaml")
    assert (note.loc.line, note.loc.column) == (8, 17)
    assert "a key the base sets stays" in note.message
