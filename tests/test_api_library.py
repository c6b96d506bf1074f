"""cnnspec used as a library (`cnnspec.api`) from a user's own long-lived process: errors that
cross a process pool, compiles in threads, the argument forms a caller writes, and values that
read like copies. All without TensorFlow."""

from __future__ import annotations

import copy
import pickle
import sys
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import pytest

from cnnspec import api
from cnnspec.errors import SpecError, UsageError, WriteError
from tests.conftest import ROOT

BAD = """\
cnnspec: 1
name: x
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 8, kernel_size: 3, paddin: same}
  - conv2d: {filters: 0, kernel_size: 3}
  - frobnicate: 3
"""


def _spec_error() -> SpecError:
    with pytest.raises(SpecError) as caught:
        api.compile_text(BAD, "bad.yaml")
    return caught.value


def test_errors_survive_pickling_and_copying_whole():
    """Python pickles an exception as ``cls(*args)``, the message alone: SpecError read the
    message's characters as its diagnostics (a process pool's result thread died, and its
    ``.get()`` waited for ever), WriteError refused to be made without a reason."""
    error = _spec_error()
    for back in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(back) is SpecError and str(back) == str(error) and back.errors == error.errors
    written = WriteError("/x/model.keras", "No space left on device", errno=28, needed=5, hint="free some")
    back = pickle.loads(pickle.dumps(written))
    assert (str(back), back.errno, back.needed, back.hint) == (str(written), 28, 5, "free some")
    usage = pickle.loads(pickle.dumps(UsageError("expected a run folder", "train first")))
    assert (str(usage), usage.hint) == ("expected a run folder", "train first")


def _compile(path: str) -> int:
    return api.compile_spec(path).summary()["total_params"]


def test_a_process_pool_gets_each_specs_result_or_its_error(tmp_path):
    """One bad spec broke the pool: every future, the good specs' too, raised BrokenProcessPool."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    good = str(ROOT / "specs" / "digits_cnn.yaml")
    with ProcessPoolExecutor(2) as pool:
        futures = [pool.submit(_compile, path) for path in (good, str(bad), good)]
        assert futures[0].result(timeout=60) == futures[2].result(timeout=60) > 0
        with pytest.raises(SpecError) as caught:
            futures[1].result(timeout=60)
    assert len(caught.value.errors) == 3 and "paddin" in str(caught.value.errors[0].message)


def test_compiles_in_threads_share_the_caches_safely():
    """The parse and schema caches were walked while another thread added to them: "RuntimeError:
    OrderedDict mutated during iteration" (1,535 of 3,200 compiles with a short switch interval)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    failures: Counter[str] = Counter()
    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
        "model:\n  - conv2d: {filters: %d, kernel_size: 3}\n# %s\n"
    )

    def work(thread: int) -> None:
        for i in range(60):
            try:
                api.compile_text(text % (1 + i % 5, f"{thread}-{i}"))
            except Exception as exc:  # (any failure is the finding)
                failures[f"{type(exc).__name__}: {exc}"] += 1

    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(before)
    assert failures == Counter()


def test_one_override_may_be_passed_as_a_string():
    """``compile_spec(path, "vars.width=8")`` was read character by character: "expected --set
    PATH=VALUE; received 'v'"."""
    path = ROOT / "specs" / "digits_cnn.yaml"
    one = api.compile_spec(path, "vars.width=8").summary()["total_params"]
    assert one == api.compile_spec(path, ["vars.width=8"]).summary()["total_params"]
    assert one != api.compile_spec(path).summary()["total_params"]
    assert api.load(path, "vars.width=8").data["vars"]["width"] == 8


@pytest.mark.parametrize("key", ["extends: base.yaml", "use: [zoo:blocks/head]"])
def test_spec_text_that_names_other_files_is_a_located_error(key):
    """compile_text reads no other file: the key was ignored without a word (another model)."""
    text = f"cnnspec: 1\nname: q\n{key}\ninput: {{shape: [4, 4, 1]}}\nmodel:\n  - flatten\n  - dense: 3\n"
    with pytest.raises(SpecError) as caught:
        api.compile_text(text, "q.yaml")
    (error,) = caught.value.errors
    name = key.split(":")[0]
    assert (error.path, error.loc.line) == (name, 3)
    assert error.message == f"expected no `{name}` in spec text: compile_text reads no other file"


def test_the_sections_a_compiled_spec_gives_are_copies_all_the_way_down():
    """A nested value changed in ``compiled.training`` changed the spec's hash and its script."""
    compiled = api.compile_spec(ROOT / "specs" / "digits_cnn.yaml")
    digest, script = compiled.spec_hash(), api.generate_code(compiled, script=True)
    for section in (compiled.training, compiled.data, compiled.runtime):
        for value in section.values():
            if isinstance(value, dict):
                value.clear()
            elif isinstance(value, list):
                value.append("changed")
    assert compiled.spec_hash() == digest and api.generate_code(compiled, script=True) == script


@pytest.mark.parametrize("script", [False, True])
def test_generated_code_of_an_overridden_spec_names_the_overrides_as_codegen_does(tmp_path, script):
    """``generate_code(compile_spec(path, overrides))`` said it came from the plain file, while
    the code is the overridden spec's; `cnnspec codegen --set` names them. Both now alike."""
    from typer.testing import CliRunner

    from cnnspec.cli.app import app

    spec = ROOT / "specs" / "resnet.yaml"
    overrides = ["model[0].conv2d.filters=32"]

    def header(text: str) -> list[str]:
        """The header comment's first lines (a long path wraps it onto the next)."""
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("# Generated by cnnspec"))
        return lines[start : start + 2]

    ours = header(api.generate_code(api.compile_spec(spec, overrides), script=script))
    said = " ".join(line.removeprefix("# ") for line in ours)
    assert f"from {spec} --set 'model[0].conv2d.filters=32' (spec sha256" in said
    out = tmp_path / "train.py"
    result = CliRunner().invoke(
        app, ["codegen", str(spec), "--set", overrides[0], "-o", str(out), *(["--script"] if script else [])]
    )
    assert result.exit_code == 0, result.output
    assert header(out.read_text(encoding="utf-8")) == ours


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (lambda: api.compile_spec(ROOT / "specs" / "resnet.yaml", [3]), "received 3"),
        (lambda: api.compile_spec(ROOT / "specs" / "resnet.yaml", 5), "received 5"),
        (lambda: api.compile_spec(None), "received None"),
        (
            lambda: api.compile_text(
                "cnnspec: 1\nname: x\ninput: {shape: [8, 8, 1]}\nmodel: [conv2d: 3]\n", None
            ),
            "received None",
        ),
    ],
)
def test_an_argument_of_another_type_is_a_usage_error(call, said):
    """An override that is no string, or a file name of None, failed as an AttributeError deep
    in the loader (the latter only once the spec had an error to locate): the README promises
    SpecError, or UsageError for a mistake in the arguments."""
    with pytest.raises(UsageError) as raised:
        call()
    assert str(raised.value).endswith(said)


def test_overrides_may_be_any_iterable_of_strings():
    """A generator of overrides was taken before the arguments were checked; it still is."""
    spec = ROOT / "specs" / "resnet.yaml"
    compiled = api.compile_spec(spec, (item for item in ["model[0].conv2d.filters=32"]))
    assert compiled.overrides == ("model[0].conv2d.filters=32",)
