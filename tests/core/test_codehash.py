"""The code digest ignores comments, docstrings and blank lines, and nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nucvn.core.codehash import code_text, source_digest

BASE = '''"""Module docstring."""

import math  # a comment


def area(r: float) -> float:
    """Area of a disc.

    Over two lines."""
    # why: pi r^2

    return math.pi * r**2


TEMPLATE = """
first

third
"""
'''

SAME = [
    BASE.replace("Module docstring.", "Module docstring, corrected."),
    BASE.replace("Over two lines.", "Over\n\n    four lines."),
    BASE.replace("# why: pi r^2", "# why: the area of a disc"),
    BASE.replace("import math  # a comment", "import math"),
    BASE.replace("\n\n\ndef", "\n\ndef"),
    BASE.replace("import math", "import math   ").replace("r**2\n", "r**2   \n"),
]
CHANGED = [
    BASE.replace("r**2", "r**3"),  # the code
    BASE.replace("first", "First"),  # a string that is data
    BASE.replace("first\n\nthird", "first\nthird"),  # a blank line inside a string literal
    BASE.replace("    return math.pi", "    x = 1\n    return math.pi"),
    BASE.replace("-> float:\n    \"\"\"Area", "-> float:\n    label = \"\"\"Area"),  # a docstring made an assignment
]


def _digest(tmp_path: Path, text: str) -> str:
    path = tmp_path / "module.py"
    path.write_text(text)
    return source_digest([path])


@pytest.mark.parametrize("k", range(len(SAME)))
def test_edits_that_change_nothing_keep_the_digest(tmp_path: Path, k: int) -> None:
    assert SAME[k] != BASE
    assert _digest(tmp_path, SAME[k]) == _digest(tmp_path, BASE)


@pytest.mark.parametrize("k", range(len(CHANGED)))
def test_edits_of_the_code_change_the_digest(tmp_path: Path, k: int) -> None:
    assert CHANGED[k] != BASE
    assert _digest(tmp_path, CHANGED[k]) != _digest(tmp_path, BASE)


def test_file_names_and_prefix_count(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("x = 1\n")
    assert source_digest([a]) != source_digest([b])
    assert source_digest([a], prefix=b"numpy 2.1") != source_digest([a], prefix=b"numpy 2.2")


def _without_docstrings(tree: ast.AST) -> str:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            node.body = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                                 and isinstance(s.value.value, str))] or [ast.Pass()]
    return ast.dump(tree)


def test_the_package_keeps_its_code() -> None:
    """On every module of the package, what the digest reads parses to the module's own syntax tree,
    docstrings aside (a class whose body is only a docstring leaves no parsable text; skipped)."""
    compared = 0
    for path in sorted((Path(__file__).parents[2] / "src" / "nucvn").rglob("*.py")):
        source = path.read_text()
        try:
            stripped = ast.parse(code_text(source))
        except SyntaxError:
            continue
        assert _without_docstrings(stripped) == _without_docstrings(ast.parse(source)), path
        compared += 1
    assert compared > 100
