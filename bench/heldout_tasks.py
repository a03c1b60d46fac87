"""Every task of one or more trained models on a held-out simulated sample that none of them saw.

Quality claims are measured on events simulated with another seed than the training data, with
statistical errors, side by side in one run. For each model directory: the νμ CC AUC (with the
DeLong error) and balanced accuracy (with its binomial error) at the model's own threshold
(chosen on its validation split), each classification task's accuracy with its Clopper-Pearson
interval, and each regression task's bias and resolution with their errors — the energy next to
the calorimetric baseline fitted on the training split's events (per flavour table too).

    python bench/heldout_tasks.py --model data/model --threshold metrics/threshold.json \\
        --model /tmp/single/model --threshold /tmp/single/threshold.json --events 50000 --seed 1001
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from nucvn.data.shards import ShardDataset, build_shards
from nucvn.inference import load_model, model_tasks, predict
from nucvn.report import evaluation as E
from nucvn.report.baseline import pixel_charge
from nucvn.report.task_report import EvalContext, evaluate_task
from nucvn.report.uncertainty import auc_and_error, balanced_accuracy_error
from nucvn.sim.simulate import simulate_files


def _per_event(data: ShardDataset, fn: object) -> np.ndarray:
    parts = [fn(block) for block in data.dense_blocks(4096)]
    return np.concatenate(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, action="append", required=True)
    p.add_argument("--threshold", type=Path, action="append", required=True, help="one per --model")
    p.add_argument("--train-shards", type=Path, default=Path("data/shards"), help="for the calorimetric baseline's fit")
    p.add_argument("--bins", type=Path, default=Path("bins.yaml"))
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--files", type=int, default=10)
    p.add_argument("--seed", type=int, default=1001)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    bins = yaml.safe_load(args.bins.read_text())
    train = ShardDataset(args.train_shards, "train", verify=False)
    train_meta, train_charge = train.metadata, _per_event(train, pixel_charge)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = simulate_files(Path(tmp) / "raw", files=args.files, events=args.events // args.files, seed=args.seed,
                               workers=args.workers, first_index=1, progress=False)
        build_shards(paths, Path(tmp) / "shards", split={"train": 0.0, "val": 0.0, "test": 1.0}, seed=0, progress=False)
        test = ShardDataset(Path(tmp) / "shards", "test")
        meta = test.metadata
        print(f"held-out sample: {len(test)} events, seed {args.seed} (simulated and sharded in "
              f"{time.perf_counter() - t0:.0f} s); baseline fitted on {len(train)} train events of {args.train_shards}")
        ctx_common = {"meta": meta, "bins": bins, "nhits": _per_event(test, lambda b: E.count_hits([b])),
                      "charge": _per_event(test, pixel_charge), "train_meta": train_meta, "train_charge": train_charge}
        for model_dir, thr_path in zip(args.model, args.threshold, strict=True):
            model, config = load_model(model_dir)
            thresholds = {k: float(v["threshold"]) for k, v in json.loads(thr_path.read_text()).items()}
            tasks = model_tasks(config)
            preds = predict(model, config, test, batch_size=512, device="cpu", progress=False)
            ctx = EvalContext(thresholds=thresholds, **ctx_common)  # type: ignore[arg-type]
            print(f"\n## {model_dir}: tasks {', '.join(t.name for t in tasks)}")
            print("| task | quantity | value |\n|---|---|---|")
            for task in tasks:
                rep = evaluate_task(task, preds[task.name], ctx)
                m = rep.metrics
                if task.kind == "binary":
                    n_sig, n_bkg = int(rep.info["n_signal"]), int(rep.info["n_test"] - rep.info["n_signal"])
                    eff, rej = m["efficiency"], m["background_rejection"]
                    bacc_err = balanced_accuracy_error(eff, n_sig, rej, n_bkg)
                    target, defined = task.targets(meta)
                    auc_err = auc_and_error(np.asarray(target)[defined].astype(bool), preds[task.name][defined])[1]
                    print(f"| {task.name} | AUC | {m['auc']:.4f} ± {auc_err:.4f} |")
                    print(f"| {task.name} | balanced accuracy (threshold {thresholds[task.name]:.3f} from val) | "
                          f"{m['balanced_accuracy']:.4f} ± {bacc_err:.4f} |")
                    print(f"| {task.name} | efficiency / purity | {eff:.4f} / {m['purity']:.4f} |")
                elif task.kind in ("multiclass", "count"):
                    print(f"| {task.name} | accuracy (68 % CP) | {m['accuracy']:.4f} "
                          f"[{m['accuracy_lo']:.4f}, {m['accuracy_hi']:.4f}] |")
                else:
                    print(f"| {task.name} | bias, resolution (68 % half-width), RMS of the residual | "
                          f"{m['bias']:+.4f} ± {m['bias_err']:.4f}, {m['resolution_68']:.4f} ± "
                          f"{m['resolution_68_err']:.4f}, "
                          f"{m['resolution_rms']:.4f} ± {m['resolution_rms_err']:.4f} |")
                    if "calorimetric_resolution_68" in m:
                        print(f"| {task.name} | calorimetric baseline: bias, resolution, RMS | "
                              f"{m['calorimetric_bias']:+.4f} ± {m['calorimetric_bias_err']:.4f}, "
                              f"{m['calorimetric_resolution_68']:.4f} ± {m['calorimetric_resolution_68_err']:.4f}, "
                              f"{m['calorimetric_resolution_rms']:.4f} ± {m['calorimetric_resolution_rms_err']:.4f} |")
                        table = rep.tables["resolution_by_flavour"]
                        print("\n| flavour | n | CNN resolution (68 %) | calorimetric resolution (68 %) | CNN bias | "
                              "calorimetric bias |")
                        print("|---|---|---|---|---|---|")
                        for r in table.itertuples():
                            print(f"| {r.flavour} | {r.n} | {r.w68:.4f} ± {r.w68_err:.4f} | {r.calorimetric_w68:.4f} ± "
                                  f"{r.calorimetric_w68_err:.4f} | {r.bias:+.4f} ± {r.bias_err:.4f} | "
                                  f"{r.calorimetric_bias:+.4f} ± {r.calorimetric_bias_err:.4f} |")
                        print()


if __name__ == "__main__":
    main()
