"""Generated code of a model deep enough for Keras to meet Python's recursion limit raises the
limit itself, in the one form the generated-code checker takes: the code runs without cnnspec,
which raises it where it imports Keras (its build of such a model is tests/test_deep_models.py)."""

from __future__ import annotations

import ast

import pytest

from cnnspec.api import compile_text, generate_code
from cnnspec.backends.codegen_check import CheckError, check_source
from cnnspec.backends.codegen_recursion import DEEP_CHAIN, longest_chain, recursion_limit

RAISE = "sys.setrecursionlimit(max(sys.getrecursionlimit(), 4204))"


def chain(times: int) -> str:
    """A spec whose longest chain is ``times`` activations, a flatten and a dense layer."""
    return f"""\
cnnspec: 1
name: deep
input: {{shape: [8, 8, 1]}}
model:
  - repeat: {{times: {times}, layers: [activation: relu]}}
  - flatten
  - dense: {{units: 10, activation: softmax}}
"""


@pytest.mark.parametrize("script", [False, True], ids=["module", "script"])
def test_a_deep_chain_raises_the_limit_before_anything_builds(script):
    compiled = compile_text(chain(1100), "deep.yaml")
    assert longest_chain(compiled.ir) == 1102
    source = generate_code(compiled, script=script)
    tree = check_source(source, script=script)
    raises = [s for s in tree.body if isinstance(s, ast.Expr) and "setrecursionlimit" in ast.unparse(s)]
    assert [ast.unparse(s) for s in raises] == [RAISE]
    first_def = next(i for i, s in enumerate(tree.body) if isinstance(s, ast.FunctionDef))
    assert tree.body.index(raises[0]) < first_def  # before build_model can run
    assert "import sys" in source.splitlines()
    assert "this model's chain of 1,102 layers" in source
    assert recursion_limit(compiled.ir) == 4204 >= 2 * 1102


@pytest.mark.parametrize("times", [DEEP_CHAIN - 3, 10])
def test_a_shallower_model_has_no_such_line(times):
    compiled = compile_text(chain(times), "deep.yaml")
    assert recursion_limit(compiled.ir) is None
    for script in (False, True):
        tree = ast.parse(generate_code(compiled, script=script))
        assert "sys" not in {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


MODULE = "import keras\n"


@pytest.mark.parametrize(
    "source",
    [
        f"import sys\n{MODULE}",  # the import alone
        f"{MODULE}{RAISE}\n",  # the raise without its import
        f"import sys as system\n{MODULE}{RAISE}\n",
        f"import sys, os\n{MODULE}{RAISE}\n",
        f"import sys\n{MODULE}{RAISE}\n{RAISE}\n",
        f"import sys\n{MODULE}sys.setrecursionlimit(100000)\n",
        f"import sys\n{MODULE}sys.setrecursionlimit(max(sys.getrecursionlimit(), 10**9))\n",
        f"import sys\n{MODULE}sys.setrecursionlimit(max(sys.getrecursionlimit(), '1'))\n",
        f"import sys\n{MODULE}sys.setrecursionlimit(min(sys.getrecursionlimit(), 4204))\n",
        f"import sys\n{MODULE}{RAISE}\nsys.exit(1)\n",
        f"import sys\n{MODULE}{RAISE}\n\n\ndef build_model():\n    return sys.modules\n",
    ],
    ids=[
        "import-alone", "raise-alone", "import-as", "import-two", "raise-twice", "bare-limit",
        "expression", "string", "min", "exit-beside", "sys-in-a-function",
    ],
)  # fmt: skip
def test_the_checker_takes_the_raise_in_its_one_form_only(source):
    with pytest.raises(CheckError):
        check_source(source)


def test_the_checker_takes_the_raise_with_its_import():
    check_source(f"import sys\n{MODULE}{RAISE}\n")
    check_source(f"import sys\n{MODULE}{RAISE}\n", script=True)
