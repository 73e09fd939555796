"""ml/train.py as SageMaker runs it: SM_* environment, hyperparameters as arguments, a few hundred rows."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from flightdelay.aws.staging import sourcedir_tarball
from flightdelay.flow.feature_contract import write_feature_ranges
from ml import train
from ml.features import REQUIRED_COLUMNS
from tests.conftest import NUMERIC_FEATURES, PROJECT_ROOT


def synthetic_features(n: int, seed: int, start: str) -> pd.DataFrame:
    """Feature-mart-shaped rows where delays depend on hour, precipitation and carrier."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "flight_id": [f"f{seed}-{i}" for i in range(n)],
        "carrier_code": rng.choice(["AA", "UA", "B6"], n),
        "origin_airport_code": rng.choice(["JFK", "EWR", "LGA"], n),
        "dest_airport_code": rng.choice(["ORD", "ATL", "LAX", "MIA"], n),
        "flight_date": pd.date_range(start, periods=n, freq="h").date,
    })
    for column in NUMERIC_FEATURES:
        frame[column] = rng.normal(size=n)
    frame["scheduled_dep_hour_local"] = rng.integers(5, 23, n)
    frame["precip_in"] = rng.exponential(0.05, n)
    frame.loc[rng.random(n) < 0.1, "temp_f"] = np.nan  # missing weather is normal
    logit = -2 + 0.15 * (frame["scheduled_dep_hour_local"] - 12) + 20 * frame["precip_in"] \
        + (frame["carrier_code"] == "B6") * 0.8
    frame[train.LABEL] = rng.random(n) < 1 / (1 + np.exp(-logit))  # a boolean, as in the feature mart
    return frame


@pytest.fixture()
def channels(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, n, seed, start in (("train", 400, 1, "2013-01-01"), ("validation", 150, 2, "2013-02-01"),
                                 ("test", 200, 3, "2013-03-01")):
        folder = tmp_path / name
        folder.mkdir()
        synthetic_features(n, seed, start).to_parquet(folder / "part-0000.parquet")
        out[name] = folder
    write_feature_ranges(PROJECT_ROOT, out["train"])  # as the flow exports it: the contract's ranges
    return out


@pytest.mark.engine  # trains in a subprocess, as the container would
def test_entry_point_honours_sagemaker_contract(tmp_path, channels):
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output"),
        "SM_CHANNEL_TRAIN": str(channels["train"]),
        "SM_CHANNEL_VALIDATION": str(channels["validation"]),
        "SM_CHANNEL_TEST": str(channels["test"]),
    }
    # The code channel unpacked, its train.py run as the SageMaker container does (`python train.py
    # --max_depth 3 ...`), isolated (-I) from the project the venv also holds.
    code = tmp_path / "code"
    with tarfile.open(fileobj=io.BytesIO(sourcedir_tarball(PROJECT_ROOT))) as archive:
        archive.extractall(code, filter="data")
    completed = subprocess.run(
        [sys.executable, "-I", str(code / "train.py"), "--max_depth", "3", "--num_round", "60",
         "--early_stopping_rounds", "10", "--min_child_weight", "1"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "test ROC AUC" in completed.stdout

    model_dir = tmp_path / "model"
    model_json = json.loads((model_dir / "model.json").read_text())
    assert "learner" in model_json  # XGBoost's own JSON format, not a pickle
    spec = json.loads((model_dir / "feature_spec.json").read_text())
    assert spec["categorical"]["carrier_code"] == ["AA", "B6", "UA"]

    evaluation = json.loads((tmp_path / "output" / "evaluation.json").read_text())
    metrics = evaluation["binary_classification_metrics"]
    for name in ("auc", "pr_auc", "log_loss", "precision", "recall", "accuracy", "f1"):
        assert set(metrics[name]) == {"value", "standard_deviation"}
    assert sum(sum(row.values()) for row in metrics["confusion_matrix"].values()) == 200
    assert metrics["auc"]["value"] > 0.6  # the signal planted above is learnable
    assert evaluation["model"]["hyperparameters"]["max_depth"] == 3
    assert evaluation["baseline"]["algorithm"] == "logistic_regression"
    assert evaluation["dataset"]["test"]["rows"] == 200

    card = (tmp_path / "output" / "model_card.md").read_text()
    auc, base_auc = metrics["auc"]["value"], evaluation["baseline"]["binary_classification_metrics"]["auc"]["value"]
    assert f"| ROC AUC | {auc:.4f} | {base_auc:.4f} |" in card
    assert "## Calibration" in card and "## Feature importance" in card and "`max_depth` = 3" in card


def test_scoring_reuses_training_vocabulary(tmp_path, channels):
    train.run(train.parse_args([
        "--model-dir", str(tmp_path / "model"), "--output-data-dir", str(tmp_path / "out"),
        "--train", str(channels["train"]), "--validation", str(channels["validation"]),
        "--test", str(channels["test"]), "--num_round", "20", "--early_stopping_rounds", "5",
    ]))
    booster, spec = train.load_model(tmp_path / "model")
    rows = synthetic_features(3, 9, "2013-04-01")
    rows.loc[0, "carrier_code"] = "ZZ"  # unseen at training time: treated as missing, not an error
    probabilities = train.predict(booster, spec, rows)
    assert probabilities.shape == (3,) and np.all((probabilities > 0) & (probabilities < 1))
    shuffled = train.predict(booster, spec, rows.iloc[::-1].reset_index(drop=True))
    np.testing.assert_allclose(shuffled[::-1], probabilities, rtol=1e-6)


def test_metrics_match_a_hand_computed_case():
    metrics = train.binary_classification_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    assert metrics["auc"]["value"] == pytest.approx(0.75)
    assert metrics["confusion_matrix"] == {"0": {"0": 1, "1": 1}, "1": {"0": 1, "1": 1}}
    assert metrics["auc"]["standard_deviation"] == "NaN"  # fewer than 200 rows, as Model Monitor does


def test_missing_channel_columns_are_named(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    pd.DataFrame({"flight_id": ["a"], train.LABEL: [True]}).to_parquet(folder / "x.parquet")
    with pytest.raises(ValueError, match="columns .*carrier_code.* missing"):
        train.read_channel(folder)


def test_a_channel_past_max_rows_is_sampled_the_same_way_every_time(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for part in range(3):
        synthetic_features(2_000, part, "2013-01-01").to_parquet(folder / f"part-{part:04d}.parquet")
    whole = train.read_channel(folder)
    assert whole.rows_in_channel == len(whole.frame) == 6_000
    assert list(whole.frame.columns) == [*REQUIRED_COLUMNS, *NUMERIC_FEATURES]  # only what the model reads
    sampled = train.read_channel(folder, max_rows=1_500, seed=7)
    assert sampled.rows_in_channel == 6_000 and 1_300 < len(sampled.frame) < 1_700
    assert sampled.frame["flight_id"].is_unique
    assert set(sampled.frame["flight_id"]) <= set(whole.frame["flight_id"])
    again = train.read_channel(folder, max_rows=1_500, seed=7)
    assert again.frame["flight_id"].tolist() == sampled.frame["flight_id"].tolist()
    # every part contributes, not just the first file
    assert {flight_id.split("-")[0] for flight_id in sampled.frame["flight_id"]} == {"f0", "f1", "f2"}


def test_the_training_sample_is_bounded_and_the_same_however_the_channel_is_split(tmp_path):
    """Past max_rows the sample is exactly the max_rows ids that hash lowest for the seed: the same rows for one
    file or three, any batch size, in the channel's order."""
    from ml import channels

    rows = pd.concat([synthetic_features(2_000, part, "2013-01-01") for part in range(3)], ignore_index=True)
    split, whole = tmp_path / "split", tmp_path / "whole"
    split.mkdir()
    whole.mkdir()
    for part in range(3):
        rows.iloc[part * 2_000:(part + 1) * 2_000].to_parquet(split / f"part-{part:04d}.parquet")
    rows.to_parquet(whole / "part-0000.parquet", row_group_size=1_000)
    lowest = rows.assign(hash=channels.id_hashes(pa.array(rows["flight_id"]), 7)).sort_values(
        "hash", kind="stable").head(1_500).sort_index()["flight_id"].tolist()
    for folder, batch_rows in ((split, 256_000), (split, 333), (whole, 1_000)):
        sampled = train.read_channel(folder, max_rows=1_500, seed=7, batch_rows=batch_rows)
        assert sampled.rows_in_channel == 6_000
        assert sampled.frame["flight_id"].tolist() == lowest
    other_seed = set(train.read_channel(split, max_rows=1_500, seed=8).frame["flight_id"])
    assert len(other_seed) == 1_500 and other_seed != set(lowest)


@pytest.mark.engine  # measures Arrow's peak allocation in fresh processes
def test_sampling_a_channel_holds_the_sample_not_the_channel(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for part in range(4):
        # row groups of 4,000 rows, as the reader decodes a row group at a time (the flow's exports: 122,880 rows)
        synthetic_features(40_000, part, "2013-01-01").to_parquet(folder / f"part-{part:04d}.parquet",
                                                                   row_group_size=4_000)
    script = tmp_path / "peak.py"
    script.write_text("import sys\nimport pyarrow as pa\nfrom ml.channels import read_channel\n"
                      "max_rows = int(sys.argv[2]) or None\n"
                      "frame = read_channel(sys.argv[1], max_rows=max_rows, seed=1, batch_rows=4_000).frame\n"
                      "print(len(frame), pa.default_memory_pool().max_memory())\n")

    def peak(max_rows: int) -> tuple[int, int]:
        completed = subprocess.run([sys.executable, str(script), str(folder), str(max_rows)], cwd=PROJECT_ROOT,
                                   capture_output=True, text=True, timeout=300, check=True)
        rows, peak_bytes = completed.stdout.split()
        return int(rows), int(peak_bytes)

    whole_rows, whole_peak = peak(0)
    sample_rows, sample_peak = peak(2_000)
    assert (whole_rows, sample_rows) == (160_000, 2_000)
    # at most ~1.5 x 2,000 rows kept plus a 4,000-row batch, against 160,000 rows: well under a sixth
    assert sample_peak < whole_peak / 6, (sample_peak, whole_peak)


def test_the_baseline_saved_as_numbers_scores_as_the_fitted_pipeline(tmp_path):
    """No pickle: the baseline is kept as its numbers (ml.evaluation.LinearBaseline) and scores every row as the
    scikit-learn pipeline does, rare categories (one indicator), unseen ones (none) and missing numbers included."""
    from ml.evaluation import BASELINE_FEATURES, LinearBaseline, fit_baseline, train_baseline

    rows = synthetic_features(600, 5, "2013-01-01")
    rows.loc[:7, "carrier_code"] = "XX"  # under min_frequency: grouped with the other rare ones
    rows.loc[8:12, "carrier_code"] = "YY"
    rows.loc[rows.index % 7 == 0, "previous_day_tmax_f"] = np.nan
    pipeline = train_baseline(rows, seed=3)
    fit_baseline(rows, seed=3).save(tmp_path)
    baseline = LinearBaseline.load(tmp_path)
    assert baseline.categories["carrier_code"]["infrequent"] == ["XX", "YY"]
    scored = synthetic_features(300, 6, "2013-03-01")
    scored.loc[:4, "carrier_code"] = "YY"
    scored.loc[5:9, "carrier_code"] = "ZZ"  # never seen
    scored.loc[10:30, "distance_miles"] = np.nan
    np.testing.assert_allclose(baseline.probabilities(scored), pipeline.predict_proba(scored[BASELINE_FEATURES])[:, 1],
                               rtol=0, atol=1e-9)


def test_a_model_channel_is_evaluated_again_not_refit(tmp_path, channels):
    """A month arriving inside the test period: the model from the model channel is evaluated on the grown test
    channel and kept as this job's model, byte for byte; its evaluation is what fitting anew would report."""
    def args(model_dir: Path, output: Path, *extra: str) -> list[str]:
        return ["--model-dir", str(model_dir), "--output-data-dir", str(output), "--train", str(channels["train"]),
                "--validation", str(channels["validation"]), "--test", str(channels["test"]), "--num_round", "30",
                "--early_stopping_rounds", "5", "--min_child_weight", "1", *extra]

    before = train.run(train.parse_args(args(tmp_path / "model", tmp_path / "before")))
    assert before["dataset"]["test"]["rows"] == 200
    synthetic_features(120, 4, "2013-04-01").to_parquet(channels["test"] / "part-0001.parquet")  # the new month

    # as SageMaker runs it: the earlier model arrives as the `model` channel, the job's model goes to SM_MODEL_DIR
    again = train.run(train.parse_args(args(tmp_path / "kept", tmp_path / "again",
                                            "--model-channel", str(tmp_path / "model"))))
    for name in ("model.json", "feature_spec.json", "baseline.json", "fit.json"):
        assert (tmp_path / "kept" / name).read_bytes() == (tmp_path / "model" / name).read_bytes(), name
    refit = train.run(train.parse_args(args(tmp_path / "refit", tmp_path / "refit_out")))
    assert again["dataset"]["test"]["rows"] == refit["dataset"]["test"]["rows"] == 320
    assert again["dataset"]["test"]["last_date"] == "2013-04-05"
    for part in ("binary_classification_metrics", "dataset"):
        assert again[part] == refit[part], part
    assert again["baseline"]["binary_classification_metrics"] == refit["baseline"]["binary_classification_metrics"]
    assert {k: v for k, v in again["model"].items() if k != "training_seconds"} == \
        {k: v for k, v in refit["model"].items() if k != "training_seconds"}
    assert again["model"]["training_seconds"] == before["model"]["training_seconds"]  # no fit happened


def test_a_model_channel_that_is_not_one_fit_is_refused_naming_the_file(tmp_path, channels, capsys):
    """The four files of a fit are checked against the digests fit.json records before anything parses them: an
    edited baseline (even one whose shapes still agree), a missing or broken record, a folder that is not there."""
    import shutil

    base = ["--output-data-dir", str(tmp_path / "out"), "--train", str(channels["train"]), "--validation",
            str(channels["validation"]), "--test", str(channels["test"]), "--num_round", "10"]
    train.run(train.parse_args(["--model-dir", str(tmp_path / "model"), *base]))

    def edited(name: str, change) -> Path:
        folder = tmp_path / f"edited-{name}-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(tmp_path / "model", folder)
        change(folder / name)
        return folder

    def drop_a_category(path: Path) -> None:
        baseline = json.loads(path.read_text())
        baseline["categories"]["carrier_code"]["frequent"].pop()
        baseline["coef"].pop(0)
        path.write_text(json.dumps(baseline))

    for folder, name, why in (
            (edited("baseline.json", drop_a_category), "baseline.json", "is not the file the fit wrote"),
            (edited("fit.json", lambda path: path.unlink()), "fit.json", "is missing"),
            (edited("fit.json", lambda path: path.write_text("[" * 100_000)), "fit.json", "is not JSON"),
            (edited("model.json", lambda path: path.write_text("{}")), "model.json", "is not the file the fit wrote"),
            (tmp_path / "nowhere", "fit.json", "is missing")):
        code = train.main(["--model-dir", str(tmp_path / "kept"), "--model-channel", str(folder), *base])
        error = capsys.readouterr().err
        assert code == 2 and f"model channel {folder}: {name} {why}" in error, error
        assert "flightdelay train --retrain" in error
        assert not (tmp_path / "kept").exists()  # nothing of a refused folder becomes this job's model
