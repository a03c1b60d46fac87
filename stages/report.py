"""DVC stage ``report``: the self-contained HTML report to share, ``reports/index.html``.

Reads what the other stages wrote (metrics, info, plots, the data manifest and shard index, the
model's ``model.json`` and the DVCLive training history) and writes one HTML file with every figure
inlined (:func:`nucvn.report.document.build_report`), atomically. Its ``report`` section of
``params.yaml`` (:class:`nucvn.stage_params.ReportParams`) chooses the title, the tasks, the key
figures and the git revision the metrics are compared against; that comparison is made when the
stage runs (a DVC dependency cannot be git's HEAD). Paths can be overridden on the command line,
e.g. ``--out /tmp/report.html`` for a copy outside the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _stage import read_params, run_stage
from nucvn.report.document import ReportInputs, build_report, write_report
from nucvn.stage_params import ReportParams


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--metrics", type=Path, default=Path("metrics"))
    p.add_argument("--info", type=Path, default=Path("info"))
    p.add_argument("--plots", type=Path, default=Path("plots"))
    p.add_argument("--raw", type=Path, default=Path("data/raw"))
    p.add_argument("--shards", type=Path, default=Path("data/shards"))
    p.add_argument("--model-dir", type=Path, default=Path("data/model"))
    p.add_argument("--dvclive", type=Path, default=Path("dvclive"))
    p.add_argument("--out", type=Path, default=Path("reports/index.html"))
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _args(argv)
    p = read_params(ReportParams, "report", args.params)
    inputs = ReportInputs(metrics=args.metrics, info=args.info, plots=args.plots, raw=args.raw, shards=args.shards,
                          model=args.model_dir, dvclive=args.dvclive)
    html = build_report(inputs, title=p.title, tasks=p.tasks, figures=p.figure_lists(), compare_to=p.compare_to)
    out = write_report(html, args.out)
    print(f"report: {out} ({len(html.encode()) / 1e6:.1f} MB, self-contained)")
    return 0


if __name__ == "__main__":
    run_stage("report", main)
