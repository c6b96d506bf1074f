"""Proven identical: the generated Python builds the same Keras model as `cnnspec build`.

For every spec in specs/ (globbed at collection time, so new specs are covered) and the
codegen/resolve fixtures, the generated module is imported in a fresh process (before cnnspec,
so it cannot lean on it) and compared with ``cnnspec.build_model``: layer names, classes,
``get_config()``, weight shapes, parameter count, augmentation; and for models under a few
million parameters, both on the same weights (drawn by the builder's initializers), the outputs
on a random batch.
(A generated training script runs in test_script_outputs.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnspec.api import compile_spec
from tests.conftest import FIXTURES, SPEC_FILES, run_python
from tests.test_codegen import module_of

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("codegen_keras")]

EXTRA = sorted((FIXTURES / "codegen").glob("*.yaml")) + sorted((FIXTURES / "resolve").glob("*.yaml"))
ALL_SPECS = SPEC_FILES + EXTRA
OUTPUTS_BELOW_PARAMS = 5_000_000  # bigger models: configs and weight shapes only (time)


def ids(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


# Session-scoped: xdist may run this group's tests between other modules' tests on its worker,
# and a module-scoped fixture would then be torn down and compared all over again (+30 s).
@pytest.fixture(scope="session")
def comparisons(tmp_path_factory) -> dict[str, dict]:
    """Generate every module, then compare them all in one fresh Python process."""
    folder = tmp_path_factory.mktemp("generated")
    jobs = []
    for index, path in enumerate(ALL_SPECS):
        compiled = compile_spec(path)
        module = folder / f"model_{index}.py"
        # the module `cnnspec codegen` writes, as test_codegen.py's tests read it: generated once
        # per process for both files (it names the spec in its comments, which Keras never sees)
        module.write_text(module_of(path).text, encoding="utf-8")
        small = compiled.ir.totals.params < OUTPUTS_BELOW_PARAMS
        jobs.append({"spec": str(path), "module": str(module), "outputs": small})
    job_file = folder / "jobs.json"
    job_file.write_text(json.dumps(jobs))
    done = run_python(FIXTURES / "codegen" / "compare_models.py", str(job_file), cwd=folder, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("path", ALL_SPECS, ids=ids)
def test_generated_module_builds_the_same_model(comparisons, path):
    result = comparisons[str(path)]
    assert result["ok"], "\n".join(result["problems"])
    assert result["params"] == compile_spec(path).ir.totals.params


# -- the assumptions the emitter makes about Keras -----------------------------------------------
def _sample_params(kind) -> dict:
    samples = {"int": 2, "ints": 3, "number": 0.5, "bool": True, "str": "x", "factor": 0.1, "zoom": 0.1}
    samples |= {"shape": [4]}
    samples |= {"padding": 1, "pair": [0, 1], "permutation": [2, 1], "axes": [1]}
    params = kind.defaults()
    for param in kind.params:
        if param.required:
            params[param.name] = param.choices[0] if param.choices else samples[param.type]
    return params


def test_keras_defaults_and_normalisation_match_what_the_emitter_leaves_out():
    """Left-out keywords are Keras' defaults; `kernel_size=3` and `padding=[1, 2]` are stored as
    the registry normalises them. (The table KERAS_KEEP lists the exceptions.)"""
    import keras

    from cnnspec.backends.codegen_check import KERAS_NORMALIZED, default_kwargs
    from cnnspec.layers.registry import REGISTRY

    def config(cls, kwargs):
        out = cls(name="probe", **kwargs).get_config()
        out.pop("name", None)
        if kwargs.get("seed") is None:
            out.pop("seed", None)  # RandomCrop draws a fresh seed for seed=None
        return out

    problems = []
    for kind in REGISTRY.values():
        cls = getattr(keras.layers, kind.keras_class)
        params = _sample_params(kind)
        full = kind.keras_args(params)
        reference = config(cls, full)
        for key, value in default_kwargs(kind).items():
            if key in full and full[key] == value:
                reduced = {k: v for k, v in full.items() if k != key}
                try:
                    got = config(cls, reduced)
                except TypeError as exc:
                    problems.append(f"{kind.name}: leaving out {key} fails: {exc}")
                    continue
                if got != reference:
                    problems.append(f"{kind.name}: Keras' default for {key} differs from {value!r}")
        for param in kind.params:
            if param.type not in KERAS_NORMALIZED or param.keras_name not in full:
                continue
            raw = {"ints": 2, "padding": [1, 2], "shape": [2, -1]}[param.type]
            if param.check(raw) is not None:
                continue
            try:
                expected = config(cls, {**full, param.keras_name: param.normalize(raw)})
            except ValueError:
                continue  # the sample does not fit the other arguments (output_padding ≥ strides)
            if config(cls, {**full, param.keras_name: raw}) != expected:
                problems.append(
                    f"{kind.name}: Keras does not normalise {param.keras_name}={raw!r} like cnnspec"
                )
    assert not problems, "\n".join(problems)
