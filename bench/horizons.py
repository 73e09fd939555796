"""The horizon trade-off, measured: the bundled sample's flow run at each prediction horizon in turn, in one
folder, recording the test metrics (ROC AUC, PR AUC, log loss, the baseline's AUC, expected calibration error) and what
moving to that horizon cost per stage; then, on each horizon's channels, what the weather and the departure
board add (bench/feature_families.py's leave-one-family-out over three seeds).

    python -m bench.horizons [--hours 2 24 6 1 0.5] [--seeds 1 2 3]

The first horizon is run from the raw files (`flightdelay run` writes the sample); each next one is
`flightdelay --horizon-hours H run` in the same folder, which is what a user does today: the horizon is a
dbt variable, so the build is a full refresh and validate, publish, train, score and report follow. The
result is bench/results/horizons-<time>.json, and a Markdown table on standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd

from bench.feature_families import families_of, measure, without
from bench.run import WORK_DIR, flow_env, machine, measured_run, stage_rows
from bench.tables import save_result
from flightdelay.settings import describe_horizon, horizon_minutes
from ml.channels import read_channel
from ml.features import FeatureSpec

# leave-one-out groups of the contract's families (bench.feature_families.mart_families): every weather
# column together, and the board's two families together
ABLATIONS = {
    "weather (as-of, trend, previous day)": ["weather at the as-of time", "weather trend (3-6 h)",
                                             "previous day's weather"],
    "origin departure board (with detail)": ["origin departure board", "origin board detail"],
}


def calibration_error(evaluation: dict) -> float:
    """Expected calibration error on the test period: |observed - mean predicted| delay rate over the model's
    probability bins (evaluation.json's calibration table), weighted by their flights."""
    table = evaluation["model"]["calibration"]
    flights = sum(row["count"] for row in table)
    return round(sum(row["count"] * abs(row["observed_rate"] - row["mean_predicted"]) for row in table) / flights, 5)


def ablate(artifacts: Path, seeds: list[int]) -> dict[str, dict]:
    channels = {name: read_channel(artifacts / "ml" / "channels" / name).frame
                for name in ("train", "validation", "test")}
    spec = FeatureSpec.fit(pd.concat([channels["train"], channels["validation"]]))
    families = families_of(spec)  # every group's columns are in the model, or the bench stops here
    rows = {"all features": measure(spec, channels, seeds)}
    for name, group in ABLATIONS.items():
        rows[f"without {name}"] = measure(without(spec, [c for family in group for c in families[family]]),
                                          channels, seeds)
    return rows


def run_horizon(root: Path, hours: str, first: bool, seeds: list[int]) -> dict[str, object]:
    command = [sys.executable, "-m", "flightdelay.cli", "--horizon-hours", hours, "run"]
    # the sample is scale factor 1 of the benchmark's generator: its folders, its split (2013's)
    env = {**os.environ, **flow_env(1, root)}
    wall, monitor = measured_run(command, env, f"flightdelay --horizon-hours {hours} run")
    artifacts = root / "artifacts"
    evaluation = json.loads((artifacts / "ml" / "evaluation.json").read_text())
    metrics = evaluation["binary_classification_metrics"]
    return {
        "horizon_minutes": horizon_minutes(hours),
        "from_raw_files": first,
        "flow": {"wall_seconds": round(wall, 1), **monitor.totals()},
        "stages": stage_rows(artifacts, monitor),
        "test_roc_auc": round(metrics["auc"]["value"], 5),
        "test_pr_auc": round(metrics["pr_auc"]["value"], 5),
        "test_log_loss": round(metrics["log_loss"]["value"], 5),
        "baseline_test_roc_auc": round(evaluation["baseline"]["binary_classification_metrics"]["auc"]["value"], 5),
        "expected_calibration_error": calibration_error(evaluation),
        "top_features_by_gain": list(evaluation["model"]["feature_importance_gain"])[:5],
        "ablation": ablate(artifacts, seeds),
    }


def stage_seconds(row: dict, name: str) -> float:
    return next((stage["seconds"] for stage in row["stages"] if stage["name"] == name), float("nan"))


def table(rows: list[dict]) -> str:
    lines = ["| horizon | test ROC AUC | PR AUC | log loss | baseline AUC | calib. error | weather adds | board adds "
             "| build s | train s | run s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        full = row["ablation"]["all features"]["mean_test_roc_auc"]
        adds = [full - row["ablation"][f"without {name}"]["mean_test_roc_auc"] for name in ABLATIONS]
        cells = [describe_horizon(row["horizon_minutes"]), f"{row['test_roc_auc']:.4f}", f"{row['test_pr_auc']:.4f}",
                 f"{row['test_log_loss']:.4f}", f"{row['baseline_test_roc_auc']:.4f}",
                 f"{row['expected_calibration_error']:.4f}", *(f"{add:+.4f}" for add in adds),
                 f"{stage_seconds(row, 'build'):.0f}", f"{stage_seconds(row, 'train'):.0f}",
                 f"{row['flow']['wall_seconds']:.0f}" + (" (from raw files)" if row["from_raw_files"] else "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", nargs="+", default=["2", "24", "6", "1", "0.5"],
                        help="horizons in hours, the first run from the raw files (0.5 is 30 minutes)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args(argv)
    for hours in args.hours:  # before any run: a typo in the last horizon must not cost the first ones
        try:
            horizon_minutes(hours)
        except ValueError as error:
            parser.error(str(error))
    root = WORK_DIR / "horizons"
    shutil.rmtree(root, ignore_errors=True)
    rows = []
    for position, hours in enumerate(args.hours):
        rows.append(run_horizon(root, hours, position == 0, args.seeds))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    path = save_result("horizons", {"machine": machine(), "seeds": args.seeds, "horizons": rows})
    print(table(rows))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
