"""`dvc plots show` draws every declared plot with this project's templates, offline, from any folder.

Unit checks (fast): each vega-lite template in .dvc/plots is valid JSON with the anchors DVC fills;
a small table sent through DVC's own converter and dvc_render (one revision and two, as for
``dvc plots diff``) gives a complete vega-lite spec with error bars from the ``_lo``/``_hi`` columns
and a log x scale for the log template; dvc.yaml puts log-binned variables (bins.yaml) on a log axis
and labels every axis.

Page check (slow): builds a throw-away DVC repository with this project's dvc.yaml, params.yaml,
.dvc/config, templates and page template, runs web/build_offline_template.py (what ``make
web-assets`` runs), fills the plot files by running the real threshold and evaluate stages on a tiny
model (files other stages declare are filled with synthetic numbers), writes the page with ``dvc
plots show -o`` into a folder outside the repository, moves that folder elsewhere, hides the
repository's .web/ and opens the copy in headless Chromium with every host name unresolvable.
Every vega plot must have drawn its marks, no vega error may reach the console or the page, every
image must lie inside the copied folder, and the screenshot must not be blank.
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tiny_pipeline import make_model, make_shards, write_params

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / ".dvc" / "plots"
ASSETS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
DVC = str(Path(sys.executable).with_name("dvc"))
BUILTIN = {"simple", "linear", "smooth", "confusion", "confusion_normalized", "scatter", "scatter_jitter",
           "bar_horizontal", "bar_horizontal_sorted"}


def _top_level_plots(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [next(iter(e.items())) for e in spec.get("plots", []) if isinstance(e, dict)]


def _render(template: str, rows: list[dict[str, str]], x: str, ys: list[str],
            revs: tuple[str, ...] = ("workspace",)) -> dict[str, Any]:
    """The vega-lite spec DVC writes for ``rows`` (CSV strings, as DVC reads them) in ``revs``."""
    from dvc.render.converter.vega import VegaConverter
    from dvc_render import VegaRenderer

    props = {"template": template, "x": x, "y": {"t.csv": ys if len(ys) > 1 else ys[0]},
             "x_label": "x (GeV)", "y_label": "y (fraction)"}
    points: list[dict[str, Any]] = []
    first: dict[str, Any] = {}
    for rev in revs:
        dps, p = VegaConverter("plot", {"t.csv": copy.deepcopy(rows)}, props).flat_datapoints(rev)
        points += dps
        first = first or p
    renderer = VegaRenderer(points, "plot", **first, template_dir=str(TEMPLATES))
    return renderer.get_filled_template()


def _rate_rows() -> list[dict[str, str]]:
    edges = [0, 0.5, 1, 2, 5, 80]
    rows = []
    for lo, hi in itertools.pairwise(edges):
        rows.append({"nuenergy": str((lo + hi) / 2), "bin_low": str(lo), "bin_high": str(hi), "efficiency": "0.8",
                     "efficiency_lo": "0.7", "efficiency_hi": "0.9", "purity": "0.95", "purity_lo": "0.9",
                     "purity_hi": "0.97"})
    rows[0].update(efficiency="", purity="")  # an empty bin, as the stages write it
    return rows


def _walk(node: Any) -> list[dict[str, Any]]:
    out = []
    if isinstance(node, dict):
        out.append(node)
        for v in node.values():
            out += _walk(v)
    elif isinstance(node, list):
        for v in node:
            out += _walk(v)
    return out


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.json")), ids=lambda p: p.stem)
def test_template_is_vega_lite_with_the_anchors_dvc_fills(path: Path) -> None:
    spec = json.loads(path.read_text())
    assert spec["$schema"].endswith("vega-lite/v5.json")
    assert spec["data"] == {"values": "<DVC_METRIC_DATA>"}
    text = path.read_text()
    for anchor in ("TITLE", "X", "Y", "X_LABEL", "Y_LABEL"):
        assert f"<DVC_METRIC_{anchor}>" in text, anchor
    unknown = set(re.findall(r"<DVC_METRIC_(\w+)>", text)) - {"DATA", "TITLE", "X", "Y", "X_LABEL", "Y_LABEL"}
    assert not unknown, f"anchors DVC fills only in some cases (or never): {unknown}"


@pytest.mark.parametrize("revs", [("workspace",), ("HEAD", "workspace")], ids=["show", "diff"])
def test_rate_templates_draw_interval_bars_and_log_x(revs: tuple[str, ...]) -> None:
    for template, scale in (("nucvn_rate", None), ("nucvn_rate_logx", "log")):
        spec = _render(template, _rate_rows(), "nuenergy", ["efficiency", "purity"], revs)
        text = json.dumps(spec)
        assert "<DVC_METRIC" not in text
        assert spec["encoding"]["x"]["scale"].get("type") == scale
        assert spec["encoding"]["x"]["title"] == "x (GeV)"
        values = spec["data"]["values"]
        assert len(values) == 2 * 5 * len(revs) and {v["rev"] for v in values} == set(revs)
        assert {v["field"] for v in values} == {"efficiency", "purity"}  # the colour: one per quantity
        rules = [layer for layer in spec["layer"] if layer["mark"]["type"] == "rule"]
        assert {r["encoding"].get("y", {}).get("field") for r in rules} >= {"lo"}
        assert any(r["encoding"].get("x2", {}).get("field") == "xhi" for r in rules)  # bin width
        encodings = [spec["encoding"], *(layer["encoding"] for layer in spec["layer"])]
        assert any(e.get("strokeDash", {}).get("field") == "rev" for e in encodings)  # revisions told apart
        lo_expr = next(t["calculate"] for t in spec["transform"] if t.get("as") == "lo")
        assert "'_lo'" in lo_expr
    log_xlo = next(t["calculate"] for t in spec["transform"] if t.get("as") == "xlo")
    assert "> 0" in log_xlo  # a bin starting at 0 cannot sit on a log axis


def test_confusion_and_histogram_templates() -> None:
    rows = [{"actual": a, "predicted": p} for a, p in [("nc", "nc"), ("nc", "numu_cc"), ("numu_cc", "numu_cc")]]
    spec = _render("nucvn_confusion", rows, "predicted", ["actual"], ("HEAD", "workspace"))
    assert "<DVC_METRIC" not in json.dumps(spec)
    ops = list(spec["transform"])
    assert any(t.get("joinaggregate", [{}])[0].get("as") == "row_total" for t in ops)
    assert any(t.get("as") == "row_fraction" for t in ops) and spec["facet"]["column"]["field"] == "rev"
    text_layer = next(layer for layer in spec["spec"]["layer"] if layer["mark"]["type"] == "text")
    assert text_layer["encoding"]["text"]["field"] == "label"

    hist = [{"score": "0.25", "bin_low": "0", "bin_high": "0.5", "numu_cc": "0.2", "nc": "0.7"},
            {"score": "0.75", "bin_low": "0.5", "bin_high": "1", "numu_cc": "0.8", "nc": "0.3"}]
    spec = _render("nucvn_step_histogram", hist, "score", ["numu_cc", "nc"])
    assert spec["mark"]["type"] == "line" and spec["encoding"]["x"]["field"] == "edge"
    assert any("fold" in t and t["fold"] == ["edge_low", "edge_high"] for t in spec["transform"])


def _log_binned(edges: list[float]) -> bool:
    """Bins that widen along the axis over more than a decade of positive edges (energies, hits)."""
    e = np.asarray(edges, dtype=float)
    w = np.diff(e)
    pos = e[e > 0]
    return bool(np.all(np.diff(w) >= 0) and w[-1] >= 10 * w[0] and pos.size > 1 and pos[-1] / pos[0] >= 50)


def test_dvc_yaml_plots_use_log_x_for_log_bins_and_label_every_axis() -> None:
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    bins = yaml.safe_load((REPO / "bins.yaml").read_text())
    logs = {k for k, v in bins.items() if _log_binned(v)}
    assert {"nuenergy", "lepenergy", "visible_energy", "nhits"} <= logs
    assert not logs & {"vtxz", "nproton", "inelasticity"}
    checked = 0
    for name, props in _top_level_plots(spec):
        template = props.get("template", "linear")
        assert template in BUILTIN or (TEMPLATES / f"{template}.json").is_file(), (name, template)
        assert props.get("x_label") and props.get("y_label"), f"{name}: set x_label and y_label (with units)"
        (path,) = props["y"]
        m = re.match(r"(?:eff_|misid_)?vs_(\w+)$|efficiency_vs_(nuenergy)$|resolution_vs_(nuenergy)$", Path(path).stem)
        if m:
            var = next(g for g in m.groups() if g)
            assert template == ("nucvn_rate_logx" if var in logs else "nucvn_rate"), name
            assert "log scale" in props["x_label"] if var in logs else "log" not in props["x_label"], name
            checked += 1
    assert checked >= 20


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _run(cmd: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DVC_NO_ANALYTICS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
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


def _fill_missing_dirs(repo: Path, dvcyaml: dict) -> None:
    """Stage plot folders (e.g. DVCLive's dvclive/plots) of stages not run here: one TSV with their x."""
    for stage in dvcyaml.get("stages", {}).values():
        for entry in stage.get("plots", []):
            path, props = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            if not Path(path).suffix and not (repo / path).exists():
                x = (props or {}).get("x") if isinstance((props or {}).get("x"), str) else "step"
                _fill_missing(repo, {Path(path) / "metrics" / "filler.tsv": {x, "value"}})


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
            w = csv.writer(f, delimiter="\t" if path.suffix == ".tsv" else ",")
            w.writerow(cols)
            for i in range(5):
                w.writerow([i] + [f"{v:.4f}" for v in rng.random(len(cols) - 1)])


class _Marks(HTMLParser):
    """For each element id in ``ids``: whether a vega-drawn canvas/svg (class "marks") is inside."""

    def __init__(self, ids: set[str]) -> None:
        super().__init__()
        self.ids, self.stack, self.drawn, self.text = ids, [], dict.fromkeys(ids, False), []
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
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any]]:
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
    shutil.copytree(TEMPLATES, repo / ".dvc" / "plots")
    shutil.copytree(REPO / "web", repo / "web", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / ".web").mkdir()
    for a in ASSETS:
        shutil.copy(REPO / ".web" / a, repo / ".web" / a)
    _run([sys.executable, str(repo / "web" / "build_offline_template.py"), str(repo)], repo)
    template = _run([DVC, "config", "plots.html_template"], repo).stdout.strip()
    assert template == "../.web/dvc_plots_template.html" and (repo / ".dvc" / template).is_file()

    shards = make_shards(root / "data")
    model = make_model(root / "data", shards)
    params = write_params(root / "params.yaml")
    common = ["--params", str(params), "--shards", str(shards), "--model-dir", str(model),
              "--raw", str(root / "data" / "raw"), "--no-progress"]
    _run([sys.executable, str(REPO / "stages" / "threshold.py"), *common], repo)
    _run([sys.executable, str(REPO / "stages" / "evaluate.py"), *common, "--predictions", str(root / "test.csv")], repo)
    spec = yaml.safe_load((repo / "dvc.yaml").read_text())
    _fill_missing(repo, _plot_files(spec))
    _fill_missing_images(repo, spec)
    _fill_missing_dirs(repo, spec)

    written = root / "elsewhere" / "page"
    proc = _run([DVC, "plots", "show", "-o", str(written)], repo)
    out = proc.stdout + proc.stderr
    assert "failed" not in out.lower() and "warning" not in out.lower(), out
    copied = root / "copied" / "plots page"
    shutil.copytree(written, copied)
    shutil.rmtree(written)
    (repo / ".web").rename(repo / ".web-hidden")  # nothing outside the copied folder may be needed
    page = copied / "index.html"
    assert page.is_file()
    return page, chromium, spec


def _browser(chromium: str, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=20000", "--enable-logging=stderr", "--v=0",
           *extra, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _div_id(name: str) -> str:
    return name.translate({ord(c): "_" for c in r"!@#$%^&*()[]{};,<>?\/:.|`~=_+ "})  # as dvc_render names divs


@pytest.mark.pipeline
@pytest.mark.slow
def test_copied_page_draws_every_plot_offline(rendered: tuple[Path, str, dict[str, Any]]) -> None:
    page, chromium, spec = rendered
    source = page.read_text()
    assert '<meta name="nucvn-vega" content="inline">' in source
    assert not re.search(r'<script[^>]+src=', source), "the page loads a script from a file or the network"
    ids = set(re.findall(r'<div id\s*=\s*"([^"]+)">\s*<script', source))
    declared = {_div_id(name) for name, props in _top_level_plots(spec) if "y" in (props or {})}
    assert declared <= ids and len(declared) >= 40
    browser = _browser(chromium, page, "--dump-dom")
    marks = _Marks(ids)
    marks.feed(browser.stdout)
    not_drawn = sorted(i for i, ok in marks.drawn.items() if not ok)
    assert not not_drawn, f"{len(not_drawn)} of {len(ids)} plots not drawn offline: {not_drawn}"
    text = " ".join(marks.text)
    assert "error" not in text.lower() and "could not be loaded" not in text, text[:2000]
    console = [line for line in browser.stderr.splitlines() if "CONSOLE" in line]
    errors = [line for line in console if "Uncaught" in line or "Error" in line]
    assert not errors, "\n".join(errors[:5])
    images = re.findall(r'<img src="([^"]+)"', source.split("<body>", 1)[1])  # not the inlined vega code
    assert len(images) >= 14  # the PNG figures of plots/evaluate/*/png and plots/threshold/numu_cc.png
    for src in images:
        assert not src.startswith(("/", "..")) and (page.parent / src).is_file(), src


@pytest.mark.pipeline
@pytest.mark.slow
def test_screenshot_is_not_blank(rendered: tuple[Path, str, dict[str, Any]], tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    page, chromium, _ = rendered
    shot = tmp_path / "page.png"
    _browser(chromium, page, "--window-size=1400,2400", f"--screenshot={shot}")
    if os.environ.get("NUCVN_KEEP_SCREENSHOT"):  # to look at it: NUCVN_KEEP_SCREENSHOT=/some/file.png
        shutil.copy(shot, os.environ["NUCVN_KEEP_SCREENSHOT"])
    img = plt.imread(shot)[..., :3]
    assert img.shape[0] >= 2000
    non_white = np.mean(img.min(axis=2) < 0.9)
    assert non_white > 0.03, f"only {non_white:.1%} of the page is drawn"
    assert img.std() > 0.05
