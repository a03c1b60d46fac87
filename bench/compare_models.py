"""Train named configurations on the same data and score them all on one held-out sample.

The measuring stick for νμ CC classifiers (issue 11). Each configuration in ``bench/compare.yaml``
is a set of ``train:`` overrides merged over ``params.yaml`` (so ``default`` is exactly what
``dvc repro`` trains) or the traditional baseline (``baseline: features_gbt``: topology features and
gradient-boosted trees, :mod:`nucvn.report.feature_baseline`). Every run is trained by
:func:`nucvn.train.train` on the ``train`` split of ``--shards`` (optionally its first N events:
``--train-events`` gives learning curves), its threshold is chosen on the ``val`` split by balanced
accuracy (as the ``threshold`` stage does), and it is scored on a sample simulated with another
seed that no run saw. The table gives, with statistical errors:

* AUC (DeLong error) and balanced accuracy at the val-chosen threshold (binomial error);
* the νμ CC efficiency at ≤ 10 % mis-identification of NC + νe CC events (a ROC point; binomial error);
* the differences of AUC and balanced accuracy against ``--reference`` with the paired bootstrap
  error (same events for both, :func:`nucvn.report.uncertainty.paired_bootstrap`), and the
  difference in units of that error.

Trained models are kept under ``--out`` and reused when their recorded parameters match, so runs
can be trained in separate invocations and tabulated together (``--table-only``)::

    python bench/compare_models.py --shards data/shards --run default --run seed_report --run features_gbt
    python bench/compare_models.py --shards data/shards --run default --train-events 10000,20000,40000,0
    python bench/compare_models.py --shards data/shards --table-only
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nucvn.core.params import parse_params
from nucvn.data.shards import ShardDataset, build_shards
from nucvn.inference import load_model, predict
from nucvn.report import evaluation as E
from nucvn.report import stats
from nucvn.report.feature_baseline import FeatureBoostedTrees, topology_features
from nucvn.report.uncertainty import auc_and_error, balanced_accuracy_error, efficiency_at_misid, paired_bootstrap
from nucvn.sim.simulate import simulate_files
from nucvn.train import TrainConfig, train

MISID = ("nc", "nue_cc")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _heldout(out: Path, n: int, seed: int, files: int) -> ShardDataset:
    root = out / f"heldout-seed{seed}-{n}"
    if not (root / "shards" / "index.json").exists():
        t0 = time.perf_counter()
        paths = simulate_files(root / "raw", files=files, events=n // files, seed=seed, workers=2, first_index=1,
                               progress=False)
        build_shards(paths, root / "shards", split={"train": 0.0, "val": 0.0, "test": 1.0}, seed=0, progress=False)
        print(f"held-out sample simulated: {n} events, seed {seed} ({time.perf_counter() - t0:.0f} s)")
    return ShardDataset(root / "shards", "test")


def _images(data: ShardDataset, n: int) -> np.ndarray:
    return data.images(np.arange(min(n, len(data)))).numpy()


def _train_cnn(name: str, cfg: TrainConfig, shards: Path, run_dir: Path) -> dict[str, Any]:
    model_dir = run_dir / "model"
    if (model_dir / "model.json").exists():
        recorded = json.loads((model_dir / "model.json").read_text()).get("train_params")
        if recorded == json.loads(json.dumps(asdict(cfg))) and (run_dir / "run.json").exists():
            print(f"{name}: reusing the model trained with the same parameters in {model_dir}")
            return dict(json.loads((run_dir / "run.json").read_text()))
    t0 = time.perf_counter()
    result = train(ShardDataset(shards, "train"), ShardDataset(shards, "val"), model_dir=model_dir,
                   checkpoint_dir=run_dir / "checkpoint", config=cfg,
                   progress=False)
    info = {"kind": "cnn", "model": cfg.model, "train_seconds": time.perf_counter() - t0} | result.info
    (run_dir / "run.json").write_text(json.dumps(info, indent=1))
    return info


def _scores_of(model_dir: Path, val: ShardDataset, held: ShardDataset) -> tuple[np.ndarray, np.ndarray, float]:
    """numu_cc scores of a model directory on val and on the held-out sample; inference events/s."""
    model, config = load_model(model_dir)
    t0 = time.perf_counter()
    s_held = predict(model, config, held, tasks=["numu_cc"], device="cpu", progress=False)["numu_cc"]
    rate = len(held) / (time.perf_counter() - t0)
    s_val = predict(model, config, val, tasks=["numu_cc"], device="cpu", progress=False)["numu_cc"]
    return s_val, s_held, rate


def _features_gbt(shards: Path, n_train: int, held: ShardDataset,
                  run_dir: Path) -> tuple[dict[str, Any], np.ndarray, np.ndarray, float]:
    tr, va = ShardDataset(shards, "train", verify=False), ShardDataset(shards, "val", verify=False)
    n = min(n_train, len(tr)) if n_train else len(tr)
    t0 = time.perf_counter()
    model = FeatureBoostedTrees().fit(topology_features(_images(tr, n)), E.signal_labels(tr.metadata.iloc[:n]))
    info = {"kind": "features_gbt", "model": "features+GBT", "train_seconds": time.perf_counter() - t0, "n_train": n,
            "n_parameters": 0, "epochs_run": int(model.model.n_iter_)}
    t1 = time.perf_counter()
    s_held = model.predict(topology_features(_images(held, len(held))))
    rate = len(held) / (time.perf_counter() - t1)
    s_val = model.predict(topology_features(_images(va, len(va))))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(info, indent=1))
    return info, s_val, s_held, rate


def _threshold(s_val: np.ndarray, val: ShardDataset) -> float:
    """The val-chosen threshold (balanced accuracy), as the threshold stage chooses it."""
    return stats.choose_threshold(E.signal_labels(val.metadata), s_val, criterion="balanced_accuracy")[0].threshold


def _score(s_held: np.ndarray, threshold: float, held: ShardDataset) -> dict[str, float]:
    """The table's figures of one run on the held-out sample, with their errors."""
    y = E.signal_labels(held.metadata)
    auc, auc_err = auc_and_error(y, s_held)
    sel = s_held >= threshold
    eff, rej = float(sel[y].mean()), float((~sel[~y]).mean())
    op = efficiency_at_misid(y, np.isin(E.categories(held.metadata), MISID), s_held, 0.10)
    return {"auc": auc, "auc_err": auc_err, "bacc": 0.5 * (eff + rej),
            "bacc_err": balanced_accuracy_error(eff, int(y.sum()), rej, int((~y).sum())),
            "eff_at_10pct": op.efficiency, "eff_at_10pct_err": op.efficiency_error}


def _paired(y: np.ndarray, a: tuple[np.ndarray, float], b: tuple[np.ndarray, float], n_boot: int) -> dict[str, float]:
    def bacc(s: np.ndarray, t: float, idx: np.ndarray) -> float:
        yy, sel = y[idx], s[idx] >= t
        return 0.5 * (sel[yy].mean() + (~sel[~yy]).mean())

    d_auc = paired_bootstrap(lambda i: (stats.auc(y[i], a[0][i]), stats.auc(y[i], b[0][i])), y.size, n_boot=n_boot)
    d_bacc = paired_bootstrap(lambda i: (bacc(a[0], a[1], i), bacc(b[0], b[1], i)), y.size, n_boot=n_boot)
    return {"d_auc_err": d_auc[1], "d_bacc_err": d_bacc[1]}


def _diff(d: float, err: float) -> str:
    """A difference with its paired error and significance (none when the error is 0: identical scores)."""
    return f"{d:+.4f} ± {err:.4f}" + (f" ({d / err:+.1f}σ)" if err > 0 else "")


def _table(results: dict[str, dict[str, Any]], held: ShardDataset, out: Path, reference: str | None,
           n_boot: int) -> str:
    y = E.signal_labels(held.metadata)
    rows = [("| run | model | train events | epochs | train time | params | AUC | balanced accuracy | "
             "eff. at ≤10 % NC+νe misid | ΔAUC vs ref | Δbal. acc. vs ref |"),
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    scores = {name: np.load(out / name / "heldout_scores.npy", allow_pickle=False) for name in results}
    figures = {name: _score(scores[name], r["threshold"], held) for name, r in results.items()}
    ref = None if reference not in results else results[reference] | figures[reference]
    ref_scores = None if ref is None else (scores[reference], ref["threshold"])
    for name, r0 in results.items():
        r = r0 | figures[name]
        diff = ""
        if ref_scores is not None and name != reference:
            p = _paired(y, (scores[name], r["threshold"]), ref_scores, n_boot)
            da, db = r["auc"] - ref["auc"], r["bacc"] - ref["bacc"]
            diff = f"{_diff(da, p['d_auc_err'])} | {_diff(db, p['d_bacc_err'])}"
        else:
            diff = "— | —"
        rows.append(f"| {name} | {r['model']} | {r['n_train']} | {r.get('epochs_run', '')} | "
                    f"{r['train_seconds'] / 60:.1f} min | {r.get('n_parameters', 0) / 1e3:.0f}k | "
                    f"{r['auc']:.4f} ± {r['auc_err']:.4f} | {r['bacc']:.4f} ± {r['bacc_err']:.4f} | "
                    f"{r['eff_at_10pct']:.3f} ± {r['eff_at_10pct_err']:.3f} | {diff} |")
    return "\n".join(rows)


def _learning_curves(results: dict[str, dict[str, Any]], held: ShardDataset, out: Path, footer: str) -> list[Path]:
    """One figure per configuration trained on several numbers of events: AUC and balanced
    accuracy (held-out, with errors) against the number of training events, log axis."""
    import matplotlib.pyplot as plt

    from nucvn.report.plots import add_footer, save_figure

    by_config: dict[str, list[tuple[int, dict[str, float]]]] = {}
    for name, r in results.items():
        if "n_train" in r:
            fig = _score(np.load(out / name / "heldout_scores.npy", allow_pickle=False), r["threshold"], held)
            by_config.setdefault(name.split("@")[0], []).append((int(r["n_train"]), fig))
    written = []
    for config, points in by_config.items():
        if len({n for n, _ in points}) < 2:
            continue
        points.sort(key=lambda p: p[0])
        n = np.array([p[0] for p in points], dtype=float)
        fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.2), layout="constrained")
        fig.get_layout_engine().set(h_pad=0.15)  # type: ignore[union-attr]  # room for the footer
        for ax, key, label in ((axes[0], "auc", "AUC"), (axes[1], "bacc", "balanced accuracy (val threshold)")):
            ax.errorbar(n, [p[1][key] for p in points], yerr=[p[1][f"{key}_err"] for p in points], fmt="o-", capsize=3)
            ax.set_xscale("log")
            ax.set_xlabel("training events")
            ax.set_ylabel(f"νμ CC {label}")
            ax.grid(alpha=0.3, which="both")
        fig.suptitle(f"learning curve of {config!r} (simulation, held-out sample)", fontsize=10)
        add_footer(fig, footer)
        written.append(save_figure(fig, out / f"learning_curve_{config}.png"))
    return written


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", type=Path, default=Path("data/shards"), help="training data (train and val splits)")
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="base train section")
    p.add_argument("--configs", type=Path, default=Path(__file__).with_name("compare.yaml"))
    p.add_argument("--run", action="append", default=[], help="configuration name (repeat; default: all)")
    p.add_argument("--train-events", default="0", help="comma list: first N train events (0 = all); learning curves")
    p.add_argument("--heldout-events", type=int, default=30_000)
    p.add_argument("--heldout-seed", type=int, default=1001)
    p.add_argument("--heldout-files", type=int, default=10)
    p.add_argument("--reference", default="seed_report", help="run the differences are taken against")
    p.add_argument("--boot", type=int, default=300, help="bootstrap resamples of the paired differences")
    p.add_argument("--out", type=Path, default=Path("bench/out/compare"))
    p.add_argument("--table-only", action="store_true", help="train nothing: tabulate the runs under --out")
    p.add_argument("--add", action="append", default=[], metavar="NAME=MODEL_DIR",
                   help="score an already trained model directory (e.g. default=data/model, the pipeline's own)")
    args = p.parse_args()

    configs = yaml.safe_load(args.configs.read_text())
    base = yaml.safe_load(args.params.read_text())["train"]
    held = _heldout(args.out, args.heldout_events, args.heldout_seed, args.heldout_files)
    val = ShardDataset(args.shards, "val", verify=False)
    results_path = args.out / "results.json"
    results: dict[str, dict[str, Any]] = json.loads(results_path.read_text()) if results_path.exists() else {}
    names = args.run or ([] if args.add else list(configs))
    for spec_add in args.add:
        name, _, model_dir = spec_add.partition("=")
        run_dir = args.out / name
        run_dir.mkdir(parents=True, exist_ok=True)
        info = json.loads((Path(model_dir) / "model.json").read_text())["result"]["info"]
        s_val, s_held, rate = _scores_of(Path(model_dir), val, held)
        np.save(run_dir / "heldout_scores.npy", s_held.astype(np.float32), allow_pickle=False)
        # the epochs' time, from the model's record
        seconds = info["epochs_run"] * info["n_train"] / info["events_per_s"]
        results[name] = {"kind": "cnn", "train_seconds": seconds, "source": str(model_dir)} | info | {
            "infer_events_per_s": rate, "threshold": _threshold(s_val, val)}
        results_path.write_text(json.dumps(results, indent=1))
    for name in [] if args.table_only else names:
        if name not in configs:
            raise SystemExit(f"{args.configs}: no configuration {name!r}; have {', '.join(configs)}")
        for n in (int(v) for v in args.train_events.split(",")):
            run = name if n == 0 else f"{name}@{n}"
            run_dir = args.out / run
            spec = configs[name] or {}
            if spec.get("baseline") == "features_gbt":
                info, s_val, s_held, rate = _features_gbt(args.shards, n, held, run_dir)
            else:
                cfg = parse_params(TrainConfig, _merge(base, spec.get("train", {})) | {"train_events": n}, "train")
                cfg.validate()
                print(f"{run}: training {cfg.model} ({spec.get('train', {})}) on {n or 'all'} events")
                info = _train_cnn(run, cfg, args.shards, run_dir)
                s_val, s_held, rate = _scores_of(run_dir / "model", val, held)
            np.save(run_dir / "heldout_scores.npy", s_held.astype(np.float32), allow_pickle=False)
            results[run] = info | {"infer_events_per_s": rate, "threshold": _threshold(s_val, val)}
            fig = _score(s_held, results[run]["threshold"], held)
            print(f"{run}: AUC {fig['auc']:.4f} ± {fig['auc_err']:.4f}, balanced accuracy "
                  f"{fig['bacc']:.4f} ± {fig['bacc_err']:.4f}")
            results_path.write_text(json.dumps(results, indent=1))
    added = [a.partition("=")[0] for a in args.add]
    shown = {k: v for k, v in results.items()
             if args.table_only or k.split("@")[0] in names or k in added or k == args.reference}
    print(f"\nheld-out: {len(held)} events (seed {args.heldout_seed}), "
          f"{int((~E.signal_labels(held.metadata)).sum())} background; thresholds chosen on {args.shards} val "
          f"({len(val)} events); differences: paired bootstrap ({args.boot} resamples) against {args.reference}\n")
    print(_table(shown, held, args.out, args.reference, args.boot))
    footer = f"data: nucvn fast simulation | held-out: {len(held)} events, seed {args.heldout_seed}"
    for path in _learning_curves(shown, held, args.out, footer):
        print(f"learning curve: {path}")


if __name__ == "__main__":
    main()
