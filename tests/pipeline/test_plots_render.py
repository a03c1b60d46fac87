"""`dvc plots show` renders every declared plot offline.

Builds a throw-away DVC repository with this project's dvc.yaml, params.yaml, .dvc/config (its
``plots.html_template``) and page template, fills the plot files by running the real threshold
and evaluate stages on a tiny model trained by nucvn.train (files declared by other stages that
do not exist yet are filled with synthetic numbers for their declared fields), runs
``dvc plots show`` and opens the page in headless Chromium with every host name unresolvable, so
nothing can come from the network. Every vega plot must have drawn its marks (a canvas or svg),
no error text may appear, every image must be copied, and the screenshot must not be blank.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml

from tiny_pipeline import make_model, make_shards, write_params

REPO = Path(__file__).resolve().parents[2]
ASSETS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
DVC = str(Path(sys.executable).with_name("dvc"))

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _run(cmd: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DVC_NO_ANALYTICS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _plot_files(dvcyaml: dict) -> dict[Path, set[str]]:
    """Data files the plot definitions read, with the fields they need."""
    files: dict[Path, set[str]] = {}

    def add(path: str, fields: set[str]) -> None:
        if Path(path).suffix in (".csv", ".tsv", ".json", ".yaml", ".yml"):
            files.setdefault(Path(path), set()).update(f for f in fields if f)

    for entry in dvcyaml.get("plots", []):
        name, props = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
        props = props or {}
        x = props.get("x")
        ys = props.get("y")
        if isinstance(ys, dict):
            for path, fields in ys.items():
                add(path, set([fields] if isinstance(fields, str) else fields) | ({x} if isinstance(x, str) else set()))
        else:
            add(name, {f for f in (x, ys) if isinstance(f, str)})
    for stage in dvcyaml.get("stages", {}).values():
        for entry in stage.get("plots", []):
            path, props = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            props = props or {}
            add(path, {f for f in (props.get("x"), props.get("y")) if isinstance(f, str)})
    return files


def _fill_missing_images(repo: Path, dvcyaml: dict) -> None:
    """Image folders of tasks the tiny model does not have: one copied PNG each, so every plot loads."""
    pngs = sorted(repo.glob("plots/**/*.png"))
    assert pngs, "the stages wrote no PNG"
    for entry in dvcyaml.get("plots", []):
        if isinstance(entry, str) and not Path(entry).suffix and not (repo / entry).exists():
            (repo / entry).mkdir(parents=True)
            shutil.copy(pngs[0], repo / entry / pngs[0].name)


def _fill_missing(repo: Path, files: dict[Path, set[str]]) -> None:
    for rel, fields in files.items():
        path = repo / rel
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        cols = sorted(fields) or ["step"]
        if len(cols) < 2:  # a stage plot that names only x plots every other column
            cols.append("value")
        rng = np.random.default_rng(0)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for i in range(5):
                w.writerow([i] + [f"{v:.4f}" for v in rng.random(len(cols) - 1)])


class _Marks(HTMLParser):
    """For each element id in ``ids``: whether a vega-drawn canvas/svg (class "marks") is inside."""

    def __init__(self, ids: set[str]) -> None:
        super().__init__()
        self.ids, self.stack, self.drawn, self.text = ids, [], {i: False for i in ids}, []
        self.in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.in_code = tag in ("script", "style")
        if tag in ("img", "br", "meta", "link", "input", "path", "rect"):
            return
        self.stack.append(a.get("id") if a.get("id") in self.ids else None)
        if tag in ("canvas", "svg") and "marks" in (a.get("class") or ""):
            for owner in self.stack:
                if owner:
                    self.drawn[owner] = True

    def handle_endtag(self, tag: str) -> None:
        self.in_code = False
        if tag not in ("img", "br", "meta", "link", "input", "path", "rect") and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not self.in_code:  # visible text only, not the plot specs in the inline scripts
            self.text.append(data)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it)")
    missing = [a for a in ASSETS if not (REPO / ".web" / a).is_file()]
    if missing:
        pytest.skip(f".web/{', '.join(missing)} missing: run `make web-assets` (needs npm)")
    root = tmp_path_factory.mktemp("render")
    repo = root / "repo"
    repo.mkdir()
    _run(["git", "init", "-q"], repo)
    _run(["git", "config", "user.name", "nucvn tests"], repo)
    _run(["git", "config", "user.email", "tests@nucvn.invalid"], repo)
    _run([DVC, "init", "-q"], repo)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, repo / name)
    shutil.copy(REPO / ".dvc" / "config", repo / ".dvc" / "config")
    shutil.copytree(REPO / "web", repo / "web")
    (repo / ".web").symlink_to(REPO / ".web")
    template = _run([DVC, "config", "plots.html_template"], repo).stdout.strip()
    assert (repo / ".dvc" / template).is_file(), f".dvc/config plots.html_template {template!r} does not exist"

    shards = make_shards(root / "data")
    model = make_model(root / "data", shards)
    params = write_params(root / "params.yaml")
    common = ["--params", str(params), "--shards", str(shards), "--model-dir", str(model), "--raw", str(root / "data" / "raw"),
              "--no-progress"]
    _run([sys.executable, str(REPO / "stages" / "threshold.py"), *common], repo)
    _run([sys.executable, str(REPO / "stages" / "evaluate.py"), *common, "--predictions", str(root / "test.csv")], repo)
    spec = yaml.safe_load((repo / "dvc.yaml").read_text())
    _fill_missing(repo, _plot_files(spec))
    _fill_missing_images(repo, spec)

    proc = _run([DVC, "plots", "show"], repo)
    assert "failed" not in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr
    page = repo / "dvc_plots" / "index.html"
    assert page.is_file()
    return page, chromium


def _browser(chromium: str, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000", *extra, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_page_uses_local_vega_and_every_plot_renders_offline(rendered: tuple[Path, str]) -> None:
    page, chromium = rendered
    source = page.read_text()
    assert 'src="../.web/vega.min.js"' in source and "cdn.jsdelivr.net/npm/vega@5.20.2" not in source
    ids = set(re.findall(r'<div id\s*=\s*"([^"]+)">\s*<script', source))
    declared = yaml.safe_load((page.parents[1] / "dvc.yaml").read_text())
    n_series = sum(1 for e in declared.get("plots", []) if isinstance(e, dict) and any(k in (next(iter(e.values())) or {}) for k in ("x", "y")))
    assert len(ids) >= n_series >= 15
    dom = _browser(chromium, page, "--dump-dom").stdout
    marks = _Marks(ids)
    marks.feed(dom)
    not_drawn = sorted(i for i, ok in marks.drawn.items() if not ok)
    assert not not_drawn, f"plots not rendered offline: {not_drawn}"
    text = " ".join(marks.text)
    assert "error" not in text.lower(), text[:2000]
    images = re.findall(r'<img src="([^"]+)"', source)
    assert len(images) >= 14  # the PNG figures of plots/evaluate/png and plots/threshold_scan.png
    for src in images:
        assert (page.parent / src).is_file(), src


def test_screenshot_is_not_blank(rendered: tuple[Path, str], tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    page, chromium = rendered
    shot = tmp_path / "page.png"
    _browser(chromium, page, "--window-size=1400,2400", f"--screenshot={shot}")
    img = plt.imread(shot)[..., :3]
    assert img.shape[0] >= 2000
    non_white = np.mean(img.min(axis=2) < 0.9)
    assert non_white > 0.03, f"only {non_white:.1%} of the page is drawn"
    assert img.std() > 0.05
