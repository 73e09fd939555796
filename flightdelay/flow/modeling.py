"""The ML steps of the pipeline around ml/train.py: export channels, train, batch-score."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa

from flightdelay.flow.errors import StepFailed
from flightdelay.flow.feature_contract import write_feature_ranges
from flightdelay.settings import Settings
from ml.explain import TABLE_REASONS, reason_columns
from ml.model_files import ModelFolderError, fit_record

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
    if "train" in channels:  # the plausible range of each feature, from the mart's contract: kept with the model
        write_feature_ranges(settings.project_root, channels_dir / "train")
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


def model_id(model_dir: Path) -> str:
    """The id of the model in the folder (ml/model_identity.py), once the folder is checked to be one whole fit
    (ml/model_files.fit_record): StepFailed naming the file otherwise."""
    try:
        return fit_record(model_dir)["model_id"]
    except ModelFolderError as refusal:
        raise StepFailed(str(refusal)) from None


MODEL_REGISTRY_TABLE = "ml.model_registry"
MODEL_REGISTRY_DDL = f"""create table if not exists {MODEL_REGISTRY_TABLE} (
    model_id varchar not null, algorithm varchar not null, prediction_horizon_minutes integer not null,
    num_boosted_rounds integer not null, train_first_date date not null, train_last_date date not null,
    train_rows bigint not null, validation_first_date date not null, validation_last_date date not null,
    evaluated_on varchar not null, test_first_date date not null, test_last_date date not null,
    test_rows bigint not null, test_roc_auc double precision not null, test_pr_auc double precision not null,
    test_log_loss double precision not null, baseline_test_roc_auc double precision not null,
    data_id varchar, fit_id varchar, build_id varchar, evaluated_at timestamp not null)"""


# A registry written before horizons were counted in minutes is brought up to date, in the transaction that writes
# the next row: its column renamed and its hours made minutes.
REGISTRY_IN_HOURS_COLUMN = "prediction_horizon_hours"
MIGRATE_REGISTRY_FROM_HOURS = (
    f"alter table {MODEL_REGISTRY_TABLE} rename column {REGISTRY_IN_HOURS_COLUMN} to prediction_horizon_minutes",
    f"update {MODEL_REGISTRY_TABLE} set prediction_horizon_minutes = prediction_horizon_minutes * 60",
)
_REGISTRY_SCHEMA, _REGISTRY_NAME = MODEL_REGISTRY_TABLE.split(".")
REGISTRY_COLUMNS_SQL = ("select column_name from information_schema.columns "
                        f"where table_schema = '{_REGISTRY_SCHEMA}' and table_name = '{_REGISTRY_NAME}'")


def registry_statements(columns: set[str]) -> list[str]:
    """What makes the registry table ready for a row, given the columns it has now (none: it does not exist)."""
    if REGISTRY_IN_HOURS_COLUMN in columns:
        return [*MIGRATE_REGISTRY_FROM_HOURS]
    return [MODEL_REGISTRY_DDL]


def _registry_columns(con) -> set[str]:
    """The registry table's columns, on a warehouse connection; empty when it does not exist."""
    return {name for (name,) in con.execute(REGISTRY_COLUMNS_SQL).fetchall()}


def migrate_registry(settings: Settings) -> None:
    """A registry still in hours brought up to date, for the models over it (`flightdelay score` after an upgrade,
    before any new row was written); nothing when it is current or absent."""
    with settings.connect_warehouse() as con:
        if REGISTRY_IN_HOURS_COLUMN not in _registry_columns(con):
            return
        con.execute("begin transaction")
        try:
            for statement in MIGRATE_REGISTRY_FROM_HOURS:
                con.execute(statement)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise


def registry_row(evaluation: dict, prediction_horizon_minutes: int) -> list:
    """The model's row of MODEL_REGISTRY_TABLE, in its column order, from the evaluation ml/train.py wrote (and the
    flow completed with the data it came from, when it did)."""
    data, metrics = evaluation["dataset"], evaluation["binary_classification_metrics"]
    training = evaluation.get("training_data", {})
    return [evaluation["model_id"], evaluation["model"]["algorithm"], prediction_horizon_minutes,
            evaluation["model"]["num_boosted_rounds"],
            data["train"]["first_date"], data["train"]["last_date"], data["train"]["rows"],
            data["validation"]["first_date"], data["validation"]["last_date"],
            data["evaluated_on"], data["test"]["first_date"], data["test"]["last_date"], data["test"]["rows"],
            metrics["auc"]["value"], metrics["pr_auc"]["value"], metrics["log_loss"]["value"],
            evaluation["baseline"]["binary_classification_metrics"]["auc"]["value"],
            training.get("data_id"), training.get("fit_id"), training.get("build_id"),
            pd.Timestamp.now(tz="UTC").tz_localize(None).floor("us").to_pydatetime()]


def register_model(settings: Settings, evaluation: dict) -> None:
    """The model's row in the registry: its data windows and its metrics on the latest evaluation (a model
    evaluated again on a longer test period keeps its id and gets its row replaced), in one transaction."""
    row = registry_row(evaluation, settings.prediction_horizon_minutes)
    with settings.connect_warehouse() as con:
        con.execute(f"create schema if not exists {_REGISTRY_SCHEMA}")
        con.execute("begin transaction")
        try:
            for statement in registry_statements(_registry_columns(con)):
                con.execute(statement)
            con.execute(f"delete from {MODEL_REGISTRY_TABLE} where model_id = ?", [row[0]])
            con.execute(f"insert into {MODEL_REGISTRY_TABLE} values ({', '.join('?' * len(row))})", row)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise


SCORING_BATCH_ROWS = 500_000
REASON_COLUMNS = reason_columns(TABLE_REASONS)
PREDICTIONS_SCHEMA = pa.schema([
    ("flight_id", pa.string()), ("model_id", pa.string()), ("split_name", pa.string()),
    ("delay_probability", pa.float64()), ("is_dep_delayed_15", pa.bool_()),
    *[(name, pa.string() if name.endswith("_feature") else pa.float64()) for name in REASON_COLUMNS],
    ("scored_at", pa.timestamp("us"))])
_SQL_TYPES = {pa.string(): "varchar", pa.float64(): "double precision", pa.bool_(): "boolean",
              pa.timestamp("us"): "timestamp"}


def predictions_columns_sql(names: list[str] | None = None) -> str:
    """`name type, ...` of PREDICTIONS_SCHEMA's columns (those named, in the schema's order), for a create table on
    any of the warehouses (a bare varchar is varchar(256) on Redshift)."""
    return ", ".join(f"{field.name} {_SQL_TYPES[field.type]}" for field in PREDICTIONS_SCHEMA
                     if names is None or field.name in names)


PREDICTIONS_DDL = f"create table {PREDICTIONS_TABLE} ({predictions_columns_sql()})"


SCORING_RUNS_TABLE = "ml.scoring_runs"
SCORING_RUNS_DDL = f"""create table if not exists {SCORING_RUNS_TABLE} (
    model_id varchar not null, build_id varchar not null, rescored_from date, rows_scored bigint not null,
    scored_at timestamp not null)"""


@dataclass(frozen=True)
class ScoringRun:
    model_id: str
    build_id: str


def _columns(con, table: str) -> set[str]:
    return {row[0] for row in con.execute("select column_name from information_schema.columns "
                                          "where table_schema = 'ml' and table_name = ?", [table]).fetchall()}


def last_scoring_run(settings: Settings) -> ScoringRun | None:
    """The model and published build the predictions were last scored with, if the predictions are there."""
    with settings.connect_warehouse(read_only=True) as con:
        tables = {row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'ml'").fetchall()}
        if not {"scoring_runs", "flight_delay_predictions"} <= tables or \
                "model_id" not in _columns(con, "scoring_runs"):
            return None  # never scored, or scored before models had ids: everything is scored again
        row = con.execute(f"select model_id, build_id from {SCORING_RUNS_TABLE} "
                          "order by scored_at desc limit 1").fetchone()
    return ScoringRun(*row) if row else None


def record_scoring_run(settings: Settings, build_id: str, rescored_from: date | None, rows: int) -> None:
    """Once the predictions and the models over them are built: what the next `score` compares with."""
    with settings.connect_warehouse() as con:
        if "model_id" not in _columns(con, "scoring_runs"):  # a table of the time before model ids, if any
            con.execute(f"drop table if exists {SCORING_RUNS_TABLE}")
        con.execute(SCORING_RUNS_DDL)
        con.execute(f"insert into {SCORING_RUNS_TABLE} values (?, ?, ?, ?, ?)",
                    [model_id(settings.ml_dir / "model"), build_id, rescored_from, rows,
                     pd.Timestamp.now(tz="UTC").tz_localize(None).floor("us").to_pydatetime()])


def score(settings: Settings, rescore_from: date | None = None) -> int:
    """Batch-score the feature mart into ml.flight_delay_predictions, a batch of rows at a time, so memory follows
    the batch size rather than the mart's, all in one transaction: every flight (`rescore_from` None: the table is
    replaced), or the flights dated from `rescore_from` on, replacing their predictions and dropping those of
    flights no longer in the mart."""
    from ml.explain import reasons
    from ml.train import load_fitted, predict

    try:  # only a folder that is one fit: the id stamped on every prediction is the id of the model that made it
        fitted = load_fitted(settings.ml_dir / "model")
    except ModelFolderError as refusal:
        raise StepFailed(str(refusal)) from None
    booster, spec, version = fitted.booster, fitted.spec, fitted.summary["model_id"]
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
            # in the table's own order: each prediction depends on its row alone, and sorting 10M flights' features
            # by id first cost 11 s and 1.1 GiB at SF=30
            batches = warehouse.query_batches(
                reader, f"select {columns}, {split.as_sql_cases()} as split_name from {FEATURE_MART}"
                        + (f" where flight_date >= {rescored}" if rescored else ""), SCORING_BATCH_ROWS)
            for batch in batches:
                frame = batch.to_pandas()
                scored += warehouse.insert_arrow(writer, PREDICTIONS_TABLE, pa.Table.from_pandas(pd.DataFrame({
                    "flight_id": frame["flight_id"],
                    "model_id": version,
                    "split_name": frame["split_name"],
                    "delay_probability": predict(booster, spec, frame).astype("float64"),
                    "is_dep_delayed_15": frame["is_dep_delayed_15"].astype("bool"),
                    **reasons(booster, spec, frame, TABLE_REASONS),
                    "scored_at": scored_at,
                }), schema=PREDICTIONS_SCHEMA, preserve_index=False))
            writer.execute("commit")
        except BaseException:
            writer.execute("rollback")
            raise
    return scored
