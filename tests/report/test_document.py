"""The report to share (nucvn.report.document, stages/report.py): one self-contained HTML file.

Built from small fake pipeline outputs written here (metrics, info, manifest, shard index,
model.json, a DVCLive history, PNG figures): every task gets a metrics table with its errors as the
files give them, every selected figure is inlined as a data: URI (nothing external, no script),
and the change against git's HEAD shows the committed value beside the new one with the judgement
against the combined error, or one sentence where there is no git history.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import yaml

from nucvn.core.errors import NucvnError
from nucvn.core.params import params_dict, parse_params
from nucvn.report.document import ReportInputs, build_report, task_figures, write_report
from nucvn.report.document_curves import OVERALL, group_history, read_history
from nucvn.report.document_diff import diff_metrics
from nucvn.report.document_numbers import error_decimals, format_interval, format_with_error
from nucvn.stage_params import ReportParams

REPO = Path(__file__).resolve().parents[2]

TEST_METRICS: dict[str, Any] = {
    "numu_cc": {"auc": 0.9489408890735993, "auc_err": 0.0015950087807380395,
                "efficiency": 0.8655745234632167, "efficiency_lo": 0.8634308699772362,
                "efficiency_hi": 0.8676899374337762,
                "preselected": {"auc": 0.9486, "auc_err": 0.0020}},
    "flavour": {"accuracy": 0.9177, "accuracy_lo": 0.9161, "accuracy_hi": 0.9193,
                "per_class": {"numu_cc": {"efficiency": 0.98752, "efficiency_lo": 0.98679, "efficiency_hi": 0.98821,
                                          "purity": 0.92856, "purity_lo": 0.92698, "purity_hi": 0.93011},
                              "nutau_cc": {"efficiency": 0.0, "efficiency_lo": 0.0, "efficiency_hi": 0.01196,
                                           "purity": None, "purity_lo": 0.0, "purity_hi": 1.0}}},
    "nuenergy": {"bias": 0.01582627, "bias_err": 0.00213355, "resolution_68": 0.33292, "resolution_68_err": 0.0019167},
}
FIGURES = {"numu_cc": ["roc", "scores", "eff_vs_nuenergy"], "flavour": ["confusion_matrix", "per_class"],
           "nuenergy": ["reco_vs_true", "resolution_vs_nuenergy"]}


def _png(path: Path, colour: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1], color=colour)
    ax.set_title(path.stem)
    fig.savefig(path, dpi=40)
    plt.close(fig)


def _json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def make_outputs(root: Path) -> ReportInputs:
    """Fake outputs of every stage the report reads, laid out as in the pipeline under ``root``."""
    _json(root / "metrics" / "test.json", TEST_METRICS)
    _json(root / "metrics" / "threshold.json", {"numu_cc": {"threshold": 0.44, "efficiency": 0.8697}})
    _json(root / "info" / "test.json", {"numu_cc": {"n_test": 29800, "n_signal": 26126}, "flavour": {"n": 29800}})
    _json(root / "info" / "train.json",
          {"model": "cvn2v", "epochs_run": 3, "events_per_s": 701.1, "n_parameters": 172281})
    _json(root / "data" / "raw" / "MANIFEST.json", {
        "source": "sim",
        "parameters": {"files": 2, "events": 100, "seed": 1, "composition": {"numu_cc": 0.88, "nc": 0.12}},
        "complete": True, "files": [{"name": f"neutrino{i}.h5", "size": 1000, "sha256": f"{i}" * 64, "n_events": 100}
                                    for i in (1, 2)]})
    _json(root / "data" / "shards" / "index.json", {
        "format": "nucvn-shards", "version": 2,
        "params": {"seed": 0, "split_used": {"train": 0.7, "val": 0.1, "test": 0.2}},
        "selection": {"events_in": 200, "events_out": 200, "dropped": {"interaction": 0}},
        "counts": {s: {"events": n, "flavour": {"numu_cc": n - 3, "nc": 3}} for s, n in
                   (("train", 140), ("val", 20), ("test", 40))}})
    _json(root / "data" / "model" / "model.json", {
        "model": "cvn2v", "model_kwargs": {"width": 16}, "input": {"layout": "view,plane,cell", "shape": [2, 100, 80]},
        "tasks": [{"name": "numu_cc", "kind": "binary", "definition": "numu_cc = interaction in {0,1,2,3}"},
                  {"name": "flavour", "kind": "multiclass", "classes": ["numu_cc", "nutau_cc"]},
                  {"name": "nuenergy", "kind": "regression", "unit": "GeV"}],
        "train_params": {"epochs": 3, "lr": 0.003, "model_kwargs": {"cvn2v": {"width": 16}}},
        "versions": {"torch": "2.13.0"}})
    live = root / "dvclive"
    history = {"total/train_loss": [3.0, 2.5, 2.2], "numu_cc/val_auc": [0.90, 0.93, 0.94],
               "nuenergy/val_rms": [0.5, 0.4, 0.38], "numu_cc/train_loss": [0.5, 0.4, 0.35],
               "train_events_per_s": [700.0, 710.0, 705.0]}
    for name, values in history.items():
        path = live / "plots" / "metrics" / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = "".join(f"{1700000000000 + i}\t{i + 1}\t{v}\n" for i, v in enumerate(values))
        path.write_text(f"timestamp\tstep\t{Path(name).name}\n{rows}")
    _json(live / "metrics.json", {"best_epoch": 3, "val_auc": 0.94, "step": 3, "numu_cc": {"val_auc": 0.94}})
    colours = iter(f"C{i % 10}" for i in range(100))
    for task, names in FIGURES.items():
        for name in names:
            _png(root / "plots" / "evaluate" / task / "png" / f"{name}.png", next(colours))
    _png(root / "plots" / "evaluate" / "numu_cc" / "preselected" / "png" / "roc.png", "k")
    _png(root / "plots" / "threshold" / "numu_cc.png", "m")
    return ReportInputs(metrics=root / "metrics", info=root / "info", plots=root / "plots", raw=root / "data" / "raw",
                        shards=root / "data" / "shards", model=root / "data" / "model", dvclive=live)


def stage_command(inputs: ReportInputs, params: Path, out: Path) -> list[str]:
    """``python stages/report.py`` on ``inputs`` with the params file ``params``, writing ``out``."""
    return [sys.executable, str(REPO / "stages" / "report.py"), "--params", str(params), "--out", str(out),
            "--metrics", str(inputs.metrics), "--info", str(inputs.info), "--plots", str(inputs.plots),
            "--raw", str(inputs.raw), "--shards", str(inputs.shards), "--model-dir", str(inputs.model),
            "--dvclive", str(inputs.dvclive)]


class _Page(HTMLParser):
    """Sections by id with their text, every img src, and every src/href of any element."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {}
        self.current: str | None = None
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.flagged_rows = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.current = a.get("id")
            self.sections[self.current or ""] = []
        if tag == "img":
            self.images.append(a.get("src") or "")
        self.links += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action", "data")]
        if tag == "tr" and a.get("class") == "flag":
            self.flagged_rows += 1

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.sections[self.current].append(data)

    def text(self, section: str) -> str:
        return " ".join(" ".join(self.sections[section]).split())


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _no_git_above(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(path.parent))


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_every_task_has_a_metrics_table_with_its_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_git_above(monkeypatch, tmp_path)
    page = _parse(build_report(make_outputs(tmp_path), figures=FIGURES))
    numu, flavour, energy = page.text("task-numu_cc"), page.text("task-flavour"), page.text("task-nuenergy")
    assert "auc 0.9489 ± 0.0016" in numu and "efficiency 0.8656 [0.8634, 0.8677]" in numu
    assert "preselected" in numu and "0.9486 ± 0.0020" in numu
    assert "threshold 0.44" in numu and "29,800" in numu  # working point and counts
    assert "accuracy 0.9177 [0.9161, 0.9193]" in flavour
    assert "nutau_cc 0.000 [0.000, 0.012] — [0.0, 1.0]" in flavour  # the undefined purity of an empty class
    assert "bias +0.0158 ± 0.0021" in energy and "resolution 68 0.3329 ± 0.0019" in energy
    assert "data: sim" not in page.text("data") and "Source: sim" in page.text("data")
    assert "train 140 0.7 137 3" in page.text("data")  # split sizes and composition


def test_every_figure_is_inlined_and_nothing_is_external(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_git_above(monkeypatch, tmp_path)
    inputs = make_outputs(tmp_path)
    figures = {"numu_cc": ["roc", "preselected/roc", "not_a_figure"], "flavour": []}
    html = build_report(inputs, figures=figures)
    page = _parse(html)
    assert not page.tags & {"script", "link", "iframe", "object", "embed"}
    assert not [u for u in page.links if u.startswith(("http:", "https:", "//", "file:"))]
    assert "http://" not in html and "https://" not in html
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    inlined = [base64.b64decode(src.split(",", 1)[1]) for src in page.images]
    wanted = [inputs.plots / "threshold" / "numu_cc.png", inputs.plots / "evaluate" / "numu_cc" / "png" / "roc.png",
              inputs.plots / "evaluate" / "numu_cc" / "preselected" / "png" / "roc.png",
              *sorted((inputs.plots / "evaluate" / "nuenergy" / "png").glob("*.png"))]  # not listed: all of them
    for path in wanted:
        assert path.read_bytes() in inlined, path
    not_wanted = [inputs.plots / "evaluate" / "numu_cc" / "png" / "scores.png",
                  *(inputs.plots / "evaluate" / "flavour" / "png").glob("*.png")]
    for path in not_wanted:
        assert path.read_bytes() not in inlined, path
    curves = [b for b in inlined if b not in {p.read_bytes() for p in wanted}]
    assert len(curves) == 3 and all(b.startswith(b"\x89PNG") for b in curves)  # all tasks, numu_cc, nuenergy
    assert "not_a_figure" in page.text("task-numu_cc")


def test_the_change_against_head_shows_the_committed_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_git_above(monkeypatch, tmp_path)
    inputs = make_outputs(tmp_path)
    old = json.loads(json.dumps(TEST_METRICS))
    old["numu_cc"]["auc"] = 0.9400                  # 0.0089 against sqrt(2) x 0.0016: 4.0 sigma
    old["nuenergy"]["bias"] = 0.0170                # -0.0012 against 0.0030: inside
    _json(inputs.metrics / "test.json", old)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "metrics/test.json")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@nucvn.invalid", "commit", "-q", "-m", "the old metrics")
    head = _git(tmp_path, "rev-parse", "--short", "HEAD").strip()
    _json(inputs.metrics / "test.json", TEST_METRICS)
    page = _parse(build_report(inputs))
    change = page.text("change")
    assert head in change and "the old metrics" in change
    assert "metrics/test.json numu_cc.auc 0.9400 0.9489 +0.0089 0.0023 no (4.0σ)" in change
    assert "metrics/test.json nuenergy.bias 0.0170 0.0158 -0.0012 0.0030 yes (0.4σ)" in change
    assert "auc_err" not in change  # companions are not changes of their own
    assert "metrics/threshold.json no committed version at HEAD" in change
    assert page.flagged_rows == 1


def test_without_git_history_the_change_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_git_above(monkeypatch, tmp_path)
    inputs = make_outputs(tmp_path)
    change = _parse(build_report(inputs)).text("change")
    assert "not inside a git repository" in change and "workspace" not in change.split("repository")[-1]
    _git(tmp_path, "init", "-q")
    assert "the repository has no commit 'HEAD'" in _parse(build_report(inputs)).text("change")
    assert "switched off" in _parse(build_report(inputs, compare_to="")).text("change")


def test_diff_judges_changes_against_the_combined_error() -> None:
    old = {"a": {"x": 1.0, "x_err": 0.3, "y": 0.5, "y_lo": 0.4, "y_hi": 0.6, "n": 10}, "gone": 1.0}
    new = {"a": {"x": 1.5, "x_err": 0.4, "y": 0.5, "y_lo": 0.4, "y_hi": 0.6, "n": 12}, "z": 2.0}
    rows, unchanged = diff_metrics(old, new)
    by = {r.metric: r for r in rows}
    assert unchanged == 1 and set(by) == {"a.x", "a.n", "z", "gone"}
    assert by["a.x"].sigma == pytest.approx(0.5) and by["a.x"].inside_error is True
    assert by["a.n"].sigma is None and by["a.n"].inside_error is None
    assert by["z"].old is None and by["gone"].new is None


@pytest.mark.parametrize(("value", "error", "text"), [
    (0.9489408, 0.0015950, "0.9489 ± 0.0016"),   # 159: two digits
    (0.8753, 0.0036734, "0.875 ± 0.004"),        # 367: one digit
    (0.123, 0.0996, "0.12 ± 0.10"),              # 996: up to 1000, two digits
    (1234.5, 45.0, "1230 ± 50"),
    (0.5, 0.0, "0.5 ± 0"),
])
def test_values_are_rounded_to_their_error(value: float, error: float, text: str) -> None:
    assert format_with_error(value, error) == text


def test_intervals_use_their_half_width_and_missing_values_a_dash() -> None:
    assert format_interval(0.8655745, 0.8634309, 0.8676899) == "0.8656 [0.8634, 0.8677]"
    assert format_interval(None, 0.0, 1.0) == "— [0.0, 1.0]"
    assert error_decimals(0.0015) == 4 and error_decimals(25.0) == 0
    with pytest.raises(ValueError):
        error_decimals(0.0)


def test_dvclive_history_is_read_and_grouped_by_task(tmp_path: Path) -> None:
    inputs = make_outputs(tmp_path)
    series = read_history(inputs.dvclive)
    assert [s.name for s in series] == sorted(s.name for s in series)
    groups = group_history(series, ["numu_cc", "nuenergy"])
    assert list(groups) == [OVERALL, "numu_cc", "nuenergy"]
    assert {label for label, _ in groups["numu_cc"]} == {"val_auc", "train_loss"}
    auc = next(s for label, s in groups["numu_cc"] if label == "val_auc")
    assert list(auc.step) == [1, 2, 3] and list(auc.value) == [0.90, 0.93, 0.94]  # the timestamp column is not a metric
    (inputs.dvclive / "plots" / "metrics" / "broken.tsv").write_text("epoch\tx\ty\n1\t2\t3\n")
    with pytest.raises(NucvnError, match=r"broken\.tsv: expected DVCLive's columns step and one metric"):
        read_history(inputs.dvclive)
    assert read_history(tmp_path / "nowhere") == []


def test_figure_selection_lists_what_is_missing(tmp_path: Path) -> None:
    inputs = make_outputs(tmp_path)
    found, missing = task_figures(inputs.plots, "numu_cc", ["scores", "preselected/roc", "eff_vs_nproton"])
    assert [p.relative_to(inputs.plots).as_posix() for p in found] == [
        "threshold/numu_cc.png", "evaluate/numu_cc/png/scores.png", "evaluate/numu_cc/preselected/png/roc.png"]
    assert missing == ["eff_vs_nproton"]


def test_bad_inputs_are_one_clear_error(tmp_path: Path) -> None:
    inputs = make_outputs(tmp_path)
    known = "known: numu_cc, flavour, nuenergy"
    with pytest.raises(NucvnError, match=rf"report\.tasks: npion not in .*test\.json; {known}"):
        build_report(inputs, tasks=["numu_cc", "npion"])
    (inputs.plots / "evaluate" / "numu_cc" / "png" / "roc.png").write_text("not an image")
    with pytest.raises(NucvnError, match=r"roc\.png: not a PNG or SVG image"):
        build_report(inputs)
    (inputs.metrics / "test.json").unlink()
    with pytest.raises(NucvnError, match=r"test\.json: missing; run the evaluate stage first"):
        build_report(inputs)


def test_params_yaml_report_section_equals_the_typed_defaults() -> None:
    section = yaml.safe_load((REPO / "params.yaml").read_text())["report"]
    assert params_dict(parse_params(ReportParams, section, "report")) == params_dict(ReportParams())


@pytest.mark.slow
def test_stage_writes_the_report_and_refuses_bad_params_in_one_line(tmp_path: Path) -> None:
    inputs = make_outputs(tmp_path / "run")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"report": {"title": "A run & its <numbers>", "compare_to": ""}}))
    out = tmp_path / "out" / "index.html"
    args = stage_command(inputs, params, out)
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    res = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    html = out.read_text()
    assert "<title>A run &amp; its &lt;numbers&gt;</title>" in html and html.rstrip().endswith("</html>")
    assert sorted(p.name for p in out.parent.iterdir()) == ["index.html"]  # written atomically, nothing left over
    params.write_text(yaml.safe_dump({"report": {"tasks": ["numu_cc"], "figures": {"numu_cc": ["roc"]}}}))
    res = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "report.figures.numu_cc" in lines[0], res.stderr


def test_write_report_replaces_the_file(tmp_path: Path) -> None:
    path = write_report("<html>one</html>", tmp_path / "reports" / "index.html")
    write_report("<html>two</html>", path)
    assert path.read_text() == "<html>two</html>" and [p.name for p in path.parent.iterdir()] == ["index.html"]
