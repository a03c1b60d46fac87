"""The report (reports/index.html) renders offline in a browser, every image decoded, and is a DVC stage.

The report stage (stages/report.py, run as DVC runs it) builds the page from the fake pipeline
outputs of tests/report/test_document.py; the page alone is copied into an empty folder and opened
in headless Chromium with every host name unresolvable, so nothing can come from the network or
from a file beside it. A copy of the page with one inline script appended records, after loading,
each image's natural width; every image must have decoded (width > 0). A screenshot must show a
drawn page, not a blank one. Run by ``dvc repro report`` in a repository holding only that stage
and the fake outputs, the report is rebuilt when an input changes and only then, and shows the change
against the commit.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from dvc_repo import make_repo, run

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]

_PROBE = """<script>
window.addEventListener('load', () => {
  const widths = Array.from(document.images).map(i => (i.complete ? i.naturalWidth : -1));
  const out = document.createElement('pre');
  out.id = 'image-probe';
  out.textContent = JSON.stringify(widths);
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _report_tests() -> Any:
    """tests/report/test_document.py, for its fake outputs (loaded by path: test folders are not packages)."""
    spec = importlib.util.spec_from_file_location("_report_tests", REPO / "tests" / "report" / "test_document.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _browser(chromium: str, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000", *extra, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it)")
    root = tmp_path_factory.mktemp("report")
    helpers = _report_tests()
    inputs = helpers.make_outputs(root / "run")
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"report": {"compare_to": ""}}))
    out = root / "run" / "reports" / "index.html"
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    res = subprocess.run(helpers.stage_command(inputs, params, out), capture_output=True, text=True, env=env,
                         cwd=root / "run", timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    alone = root / "alone"  # the page without the files it was built from
    alone.mkdir()
    shutil.copy(out, alone / "index.html")
    return alone / "index.html", chromium


def test_every_image_decodes_offline(report: tuple[Path, str]) -> None:
    page, chromium = report
    html = page.read_text()
    n_images = len(re.findall(r"<img ", html))
    assert n_images >= 10
    probed = page.with_name("probed.html")
    probed.write_text(html.replace("</body>", _PROBE + "\n</body>"))
    dom = _browser(chromium, probed, "--dump-dom").stdout
    found = re.search(r'<pre id="image-probe">([^<]*)</pre>', dom)
    assert found, f"the probe did not run: {dom[-2000:]}"
    widths = json.loads(found.group(1))
    assert len(widths) == n_images
    assert all(w > 0 for w in widths), f"images that did not decode: {[i for i, w in enumerate(widths) if w <= 0]}"


def test_screenshot_is_not_blank(report: tuple[Path, str], tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    page, chromium = report
    shot = tmp_path / "page.png"
    _browser(chromium, page, "--window-size=1300,3000", "--hide-scrollbars", f"--screenshot={shot}")
    img = plt.imread(shot)[..., :3]
    assert img.shape[0] >= 2500
    non_white = np.mean(img.min(axis=2) < 0.9)
    assert non_white > 0.03, f"only {non_white:.1%} of the page is drawn"
    assert img.std() > 0.05


def _report_stage_only(helpers: Any) -> Any:
    def configure(repo: Path) -> None:
        shutil.copy2(REPO / "params.yaml", repo / "params.yaml")
        stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["report"]
        (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"report": stage}}, sort_keys=False))
        helpers.make_outputs(repo)
        helpers._json(repo / "metrics" / "systematics.json", {"nominal": {"efficiency": 0.53, "efficiency_lo": 0.52,
                                                                         "efficiency_hi": 0.54}})
        helpers._json(repo / "info" / "systematics.json", {"events": 6000, "seed": 1001})
        helpers._png(repo / "plots" / "systematics" / "shifts.png", "C5")

    return configure


def test_dvc_repro_report_reruns_only_when_an_input_changes(tmp_path: Path) -> None:
    helpers = _report_tests()
    repo = make_repo(tmp_path, _report_stage_only(helpers))
    assert "Running stage 'report'" in run(repo, "repro", "report")
    page = (repo / "reports" / "index.html").read_text()
    assert "No metric differs from HEAD" in page
    assert "reports/index.html" not in (repo / ".gitignore").read_text()  # cache: false, committed with the results
    assert "didn't change" in run(repo, "repro", "report")
    metrics = json.loads((repo / "metrics" / "test.json").read_text())
    metrics["numu_cc"]["auc"] = 0.9600
    (repo / "metrics" / "test.json").write_text(json.dumps(metrics))
    assert "Running stage 'report'" in run(repo, "repro", "report")
    page = (repo / "reports" / "index.html").read_text()
    assert "numu_cc.auc</td><td class='num'>0.9489</td><td class='num'>0.9600</td>" in page
    assert run(repo, "status").strip().endswith("Data and pipelines are up to date.")
