"""The project documents itself: docs/format.md defines every label and code the code defines, and
README.md and docs/ link only to files inside the repository that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nucvn.core import events as ev
from nucvn.data.labels import label_columns
from nucvn.data.shard_format import LABEL_COLUMNS
from nucvn.tasks import list_tasks

ROOT = Path(__file__).resolve().parents[1]
FORMAT = ROOT / "docs" / "format.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _label_names() -> set[str]:
    """Every label the code defines: the shard label columns, what :func:`label_columns` computes
    from a file's metadata, :data:`nucvn.core.events.LABELS` and every registered task."""
    meta = {"interaction": [0, 13], "finalstate": [5, 48], "lepenergy": [1.0, 0.5], "nuenergy": [2.0, 1.0]}
    return set(LABEL_COLUMNS) | set(label_columns(meta)) | set(ev.LABELS) | set(list_tasks())


def test_every_label_is_defined_in_format_md() -> None:
    text = FORMAT.read_text(encoding="utf-8")
    names = _label_names()
    assert {"numu_cc", "lepton_fraction", "nproton"} <= names  # the enumeration found the three sources
    missing = sorted(n for n in names if f"| `{n}` |" not in text)
    assert not missing, f"docs/format.md has no table row for label(s) {missing}"


def test_every_interaction_code_is_in_format_md() -> None:
    text = FORMAT.read_text(encoding="utf-8")
    rows = {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| `([A-Z_]+)` \|", text, flags=re.M)}
    assert rows == {int(c): c.name for c in ev.Interaction}
    assert f"{ev.N_INTERACTION} (`N_INTERACTION`" in text


def test_enum_classes_are_in_format_md() -> None:
    text = FORMAT.read_text(encoding="utf-8")
    for enum in (ev.Flavour, ev.Mode):
        for member in enum:
            assert f"{member.value} `{member.name}`" in text, f"{enum.__name__}.{member.name} missing"
    for code in (ev.FS_COSMIC, ev.FS_OTHER, ev.N_FINALSTATE):
        assert str(code) in text


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_link_only_to_files_in_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text and "shared/FORMAT.md" not in text, f"{doc.name} points outside the repository"
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert not broken, f"{doc.name}: links to missing files {broken}"
