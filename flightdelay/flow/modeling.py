"""The ML steps of the pipeline around ml/train.py: export channels, train, batch-score."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa

from flightdelay.settings import Settings
from ml.model_files import MODEL_FILE

FEATURE_MART = "marts.ml_flight_delay_features"
CHANNELS = ("train", "validation", "test")  # the channel folders ml/train.py reads (SM_CHANNEL_*)
PREDICTIONS_TABLE = "ml.flight_delay_predictions"


@dataclass(frozen=True)
class TimeSplit:
    """Train on [train_start, validation_start), early-stop on [validation_start, test_start),
    evaluate on [test_start, test_end]: strictly in time order, so no future leaks into training."""

    train_start: date
    validation_start: date
    test_start: date
    test_end: date

    @classmethod
    def from_settings(cls, settings: Settings) -> TimeSplit:
        # Default: the last month before the test period is the validation (early-stopping) month.
        validation_start = settings.validation_start or (settings.test_start - timedelta(days=1)).replace(day=1)
        return cls(settings.train_start, validation_start, settings.test_start, settings.test_end)

    def as_sql_cases(self) -> str:
        return (
            f"case when flight_date < date '{self.validation_start}' then 'train' "
            f"when flight_date < date '{self.test_start}' then 'validation' else 'test' end"
        )

    def where(self) -> str:
        return f"flight_date between date '{self.train_start}' and date '{self.test_end}'"


def export_channels(settings: Settings, channels: tuple[str, ...] = CHANNELS) -> dict[str, int]:
    """Write the feature mart's rows to Parquet channel folders train/, validation/, test/ (or those named),
    exported by the warehouse that holds the mart."""
    split = TimeSplit.from_settings(settings)
    channels_dir = settings.ml_dir / "channels"
    counts = {}
    warehouse = settings.warehouse()
    with warehouse.connect(read_only=True) as con:
        for channel in channels:
            folder = channels_dir / channel
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.parquet"):
                old.unlink()
            # the warehouse exports its own rows (DuckDB: COPY ... TO Parquet; PostgreSQL: COPY ... TO STDOUT)
            counts[channel] = warehouse.export_parquet(
                con,
                f"select * from {FEATURE_MART} where {split.where()} and {split.as_sql_cases()} = '{channel}' "
                f"order by flight_date, {warehouse.binary_order('flight_id')}",
                folder / "part-0000.parquet")
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise ValueError(
            f"time split {split} leaves channels {empty} empty; set FLIGHTDELAY_TRAIN_START / "
            "FLIGHTDELAY_TEST_START / FLIGHTDELAY_TEST_END to dates the data covers"
        )
    return counts


HYPERPARAMETERS_FILE = "ml/hyperparameters.json"


def versioned_hyperparameters(project_root: Path) -> dict[str, object]:
    """The hyperparameters under version control; local training and the SageMaker job both pass them."""
    return json.loads((project_root / HYPERPARAMETERS_FILE).read_text())


def run_training(settings: Settings, hyperparameters: dict[str, str] | None = None,
                 evaluate_only: bool = False) -> dict:
    """Run ml/train.py exactly as SageMaker would: a separate process with the SM_* environment and the
    versioned hyperparameters as `--name value` arguments. `evaluate_only`: the model folder is passed as the
    model channel, so the model there is evaluated on the test channel, not refit."""
    if hyperparameters is None:
        hyperparameters = versioned_hyperparameters(settings.project_root)
    channels = settings.ml_dir / "channels"
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(settings.ml_dir / "model"),
        "SM_CHANNEL_TRAIN": str(channels / "train"),
        "SM_CHANNEL_VALIDATION": str(channels / "validation"),
        "SM_CHANNEL_TEST": str(channels / "test"),
        "SM_OUTPUT_DATA_DIR": str(settings.ml_dir),
        "SM_CHANNEL_MODEL": str(settings.ml_dir / "model") if evaluate_only else "",
    }
    args = [sys.executable, "-m", "ml.train"]
    for name, value in (hyperparameters or {}).items():
        args += [f"--{name}", str(value)]
    subprocess.run(args, env=env, cwd=settings.project_root, check=True)
    return json.loads((settings.ml_dir / "evaluation.json").read_text())


def model_version(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / MODEL_FILE).read_bytes()).hexdigest()[:12]


SCORING_BATCH_ROWS = 500_000
PREDICTIONS_SCHEMA = pa.schema([("flight_id", pa.string()), ("model_version", pa.string()),
                                ("split_name", pa.string()), ("delay_probability", pa.float64()),
                                ("is_dep_delayed_15", pa.bool_()), ("scored_at", pa.timestamp("us"))])
PREDICTIONS_DDL = f"""create table {PREDICTIONS_TABLE} (
    flight_id varchar, model_version varchar, split_name varchar, delay_probability double precision,
    is_dep_delayed_15 boolean, scored_at timestamp)"""


SCORING_RUNS_TABLE = "ml.scoring_runs"
SCORING_RUNS_DDL = f"""create table if not exists {SCORING_RUNS_TABLE} (
    model_version varchar not null, build_id varchar not null, rescored_from date, rows_scored bigint not null,
    scored_at timestamp not null)"""


@dataclass(frozen=True)
class ScoringRun:
    model_version: str
    build_id: str


def last_scoring_run(settings: Settings) -> ScoringRun | None:
    """The model and published build the predictions were last scored with, if the predictions are there."""
    with settings.connect_warehouse(read_only=True) as con:
        tables = {row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'ml'").fetchall()}
        if not {"scoring_runs", "flight_delay_predictions"} <= tables:
            return None
        row = con.execute(f"select model_version, build_id from {SCORING_RUNS_TABLE} "
                          "order by scored_at desc limit 1").fetchone()
    return ScoringRun(*row) if row else None


def record_scoring_run(settings: Settings, build_id: str, rescored_from: date | None, rows: int) -> None:
    """Once the predictions and the models over them are built: what the next `score` compares with."""
    with settings.connect_warehouse() as con:
        con.execute(SCORING_RUNS_DDL)
        con.execute(f"insert into {SCORING_RUNS_TABLE} values (?, ?, ?, ?, ?)",
                    [model_version(settings.ml_dir / "model"), build_id, rescored_from, rows,
                     pd.Timestamp.now(tz="UTC").tz_localize(None).floor("us").to_pydatetime()])


def score(settings: Settings, rescore_from: date | None = None) -> int:
    """Batch-score the feature mart into ml.flight_delay_predictions, a batch of rows at a time, so memory follows
    the batch size rather than the mart's, all in one transaction: every flight (`rescore_from` None: the table is
    replaced), or the flights dated from `rescore_from` on, replacing their predictions and dropping those of
    flights no longer in the mart."""
    from ml.train import load_model, predict

    model_dir = settings.ml_dir / "model"
    booster, spec = load_model(model_dir)
    version = model_version(model_dir)
    split = TimeSplit.from_settings(settings)
    columns = ", ".join(dict.fromkeys(["flight_id", "is_dep_delayed_15", *spec.columns]))
    rescored = f"date '{rescore_from.isoformat()}'" if rescore_from else None  # a date, never other text
    warehouse = settings.warehouse()
    scored_at = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("us")
    scored = 0
    with warehouse.connect() as reader, warehouse.connect() as writer:
        writer.execute("create schema if not exists ml")
        writer.execute("begin transaction")
        try:
            if rescored is None:
                writer.execute(f"drop table if exists {PREDICTIONS_TABLE}")
                writer.execute(PREDICTIONS_DDL)
            else:
                writer.execute(f"delete from {PREDICTIONS_TABLE} where flight_id not in "
                               f"(select flight_id from {FEATURE_MART} where flight_date < {rescored})")
            batches = warehouse.query_batches(
                reader, f"select {columns}, {split.as_sql_cases()} as split_name from {FEATURE_MART} "
                        + (f"where flight_date >= {rescored} " if rescored else "")
                        + f"order by {warehouse.binary_order('flight_id')}", SCORING_BATCH_ROWS)
            for batch in batches:
                frame = batch.to_pandas()
                scored += warehouse.insert_arrow(writer, PREDICTIONS_TABLE, pa.Table.from_pandas(pd.DataFrame({
                    "flight_id": frame["flight_id"],
                    "model_version": version,
                    "split_name": frame["split_name"],
                    "delay_probability": predict(booster, spec, frame).astype("float64"),
                    "is_dep_delayed_15": frame["is_dep_delayed_15"].astype("bool"),
                    "scored_at": scored_at,
                }), schema=PREDICTIONS_SCHEMA, preserve_index=False))
            writer.execute("commit")
        except BaseException:
            writer.execute("rollback")
            raise
    return scored
