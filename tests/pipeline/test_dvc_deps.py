"""dvc.yaml's ``deps:`` cover the code each stage runs, so a code change can never leave a stale
result that ``dvc status`` calls up to date.

The import closure of each stage script is computed from the source (every ``import`` statement,
including those inside functions, followed through the project's own modules and the stage
helpers in ``stages/``), and every file in it must be a dependency of the stage, listed itself or
through a folder above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imports(path: Path) -> set[Path]:
    """Project files imported by ``path`` (nucvn modules and stage helpers beside a stage script)."""
    out: set[Path] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.startswith("nucvn"):
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # a package's __init__ runs too
                    f = _module_file(".".join(parts[:i]))
                    if f is not None:
                        out.add(f)
            elif path.parent.name == "stages" and (path.parent / f"{name}.py").is_file():
                out.add(path.parent / f"{name}.py")
    return out


def _closure(script: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [script]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo.extend(_imports(f) - seen)
    return seen


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_deps_cover_its_import_closure(stage: str) -> None:
    spec = STAGES[stage]
    script = REPO / spec["cmd"].split()[-1]
    assert script.is_file(), f"{stage}: cannot find the stage script in {spec['cmd']!r}"
    deps = [REPO / (d if isinstance(d, str) else next(iter(d))) for d in spec["deps"]]
    missing = [str(f.relative_to(REPO)) for f in sorted(_closure(script))
               if not any(f == d or d in f.parents for d in deps)]
    assert not missing, f"dvc.yaml stage {stage!r} misses deps on code it imports: {missing}"


def test_closure_follows_imports_inside_functions() -> None:
    """The fetch stage simulates through a lazy import inside nucvn.data.fetch: the closure must see it."""
    closure = _closure(REPO / "stages" / "fetch.py")
    assert any("sim" in f.parts for f in closure)
