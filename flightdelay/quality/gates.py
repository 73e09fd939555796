"""Run the suites (suites.py) on the frames (frames.py) through the GX file context in `expectations/`: one
checkpoint per suite, each updating the Data Docs in `artifacts/data_docs/`. The functions the flow calls
are `validate_boundaries` (raw files, the lake, the audit marts) and `validate_training_channel`.

A suite is named `<asset>.<severity>`: `critical` failures stop the run before anything is published,
`warning` failures are reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint import UpdateDataDocsAction

from flightdelay.flow.progress import in_child_process
from flightdelay.quality import docs_assets
from flightdelay.quality.frames import (
    humidity_from_temperatures,
    lake_weather_frame,
    mart_frame,
    raw_files_frame,
    training_channel_frame,
    training_frame,
)
from flightdelay.quality.suites import CRITICAL, SUITES, WARNING, WEATHER_RANGES, columns_checked
from flightdelay.settings import Settings

# The names the flow and the tests import from here, some defined in suites.py and frames.py.
__all__ = ["BOUNDARY_ASSETS", "CRITICAL", "SUITES", "WARNING", "WEATHER_RANGES", "GateReport", "GateResult",
           "humidity_from_temperatures", "raw_files_frame", "run_asset", "validate_asset", "validate_boundaries",
           "validate_training_channel", "validate_training_frame"]

DATASOURCE = "warehouse_frames"
# The marts on a PostgreSQL warehouse are validated where they are, through GX's SQL datasource: the metrics are
# computed by the server, nothing is read into pandas. The connection string is a template GX fills from the
# environment, so no password is written to expectations/great_expectations.yml.
POSTGRES_DATASOURCE = "warehouse_postgres"
# The placeholders are URL-encoded copies of FLIGHTDELAY_PG_* (set by `_postgres_table_batch`), so one password,
# user or database name works for libpq, dbt and GX alike, whatever characters it holds.
POSTGRES_CONNECTION = ("postgresql+psycopg2://${FLIGHTDELAY_GX_PG_USER}:${FLIGHTDELAY_GX_PG_PASSWORD}@"
                       "${FLIGHTDELAY_GX_PG_HOST}:${FLIGHTDELAY_GX_PG_PORT}/${FLIGHTDELAY_GX_PG_DATABASE}")
POSTGRES_DEFAULTS = {"FLIGHTDELAY_PG_USER": "postgres", "FLIGHTDELAY_PG_PASSWORD": "",
                     "FLIGHTDELAY_PG_HOST": "127.0.0.1", "FLIGHTDELAY_PG_PORT": "5432",
                     "FLIGHTDELAY_PG_DATABASE": "flight_delays"}
MART_ASSETS = ("fct_flights", "ml_flight_delay_features")
DOCS_SITE = "local_site"
BOUNDARY_ASSETS = ("raw_files", "lake_weather", "fct_flights", "ml_flight_delay_features")


@dataclass(frozen=True)
class GateResult:
    suite: str
    success: bool
    evaluated: int
    failed: list[str]

    @property
    def severity(self) -> str:
        return self.suite.rsplit(".", 1)[-1]


@dataclass
class GateReport:
    results: list[GateResult] = field(default_factory=list)
    docs_note: str = ""

    @property
    def blocking_failures(self) -> list[str]:
        return [f"{r.suite}: {f}" for r in self.results if r.severity == CRITICAL for f in r.failed]

    @property
    def warnings(self) -> list[str]:
        return [f"{r.suite}: {f}" for r in self.results if r.severity == WARNING for f in r.failed]

    @property
    def expectations(self) -> int:
        return sum(r.evaluated for r in self.results)


def _context(settings: Settings):
    """The file context in expectations/; its Data Docs site points at ${FLIGHTDELAY_DATA_DOCS_DIR}."""
    os.environ["FLIGHTDELAY_DATA_DOCS_DIR"] = str(settings.data_docs_dir)
    context = gx.get_context(mode="file", context_root_dir=str(settings.expectations_dir))
    if DOCS_SITE not in (context.get_config().data_docs_sites or {}):
        context.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": "${FLIGHTDELAY_DATA_DOCS_DIR}",
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def _frame_batch(context, asset_name: str):
    """The batch definition of a pandas frame handed over at run time."""
    try:
        datasource = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas(name=DATASOURCE)
    try:
        asset = datasource.get_asset(asset_name)
    except LookupError:
        asset = datasource.add_dataframe_asset(name=asset_name)
    try:
        return asset.get_batch_definition(f"{asset_name}_whole")
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(f"{asset_name}_whole")


def _postgres_table_batch(context, schema: str, table: str):
    """The batch definition of a whole table in the PostgreSQL warehouse."""
    from urllib.parse import quote

    for name, default in POSTGRES_DEFAULTS.items():
        os.environ[name.replace("FLIGHTDELAY_", "FLIGHTDELAY_GX_")] = quote(os.environ.get(name, default), safe="")
    try:
        datasource = context.data_sources.get(POSTGRES_DATASOURCE)
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_postgres(name=POSTGRES_DATASOURCE, connection_string=POSTGRES_CONNECTION)
    asset_name = f"{schema}.{table}"
    try:
        asset = datasource.get_asset(asset_name)
    except LookupError:
        asset = datasource.add_table_asset(name=asset_name, table_name=table, schema_name=schema)
    try:
        return asset.get_batch_definition(f"{asset_name}_whole")
    except KeyError:
        return asset.add_batch_definition_whole_table(f"{asset_name}_whole")


def _checkpoint(context, batch_definition, suite: gx.ExpectationSuite) -> gx.Checkpoint:
    suite = context.suites.add_or_update(suite)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{suite.name}.validation", data=batch_definition, suite=suite)
    )
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{suite.name}.checkpoint",
            validation_definitions=[validation],
            actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[DOCS_SITE])],
            result_format={"result_format": "SUMMARY"},
        )
    )


def _failures(result) -> list[str]:
    failed = []
    for run_result in result.run_results.values():
        for item in run_result.results:
            if not item.success:
                config = item.expectation_config
                kwargs = config.kwargs
                column = kwargs.get("column") or kwargs.get("column_A") or kwargs.get("column_list") or "table"
                observed = item.result.get("observed_value", item.result.get("unexpected_count"))
                examples = item.result.get("partial_unexpected_list") or []
                detail = f"; e.g. {examples[:3]}" if examples else ""
                failed.append(f"{config.type} on {column} (observed {observed}{detail})")
    return failed


def run_asset(context, asset: str, frame: pd.DataFrame | None, parameters: dict | None = None,
              batch_definition=None) -> list[GateResult]:
    """Run the asset's suites on `frame`, or, without a frame, on `batch_definition` (a warehouse table)."""
    results = []
    for severity, build in SUITES[asset].items():
        suite = gx.ExpectationSuite(name=f"{asset}.{severity}", expectations=build())
        checkpoint = _checkpoint(context, batch_definition or _frame_batch(context, asset), suite)
        outcome = checkpoint.run(batch_parameters={"dataframe": frame} if frame is not None else None,
                                 expectation_parameters=parameters or {})
        results.append(GateResult(suite.name, bool(outcome.success), len(suite.expectations), _failures(outcome)))
    return results


def _localize_docs(settings: Settings) -> str:
    try:
        pages = docs_assets.localize(settings.data_docs_dir, docs_assets.node_modules(settings.project_root))
        return f"{pages} pages use vendored assets (render offline)"
    except FileNotFoundError as missing:
        return f"pages still load assets from CDNs: {missing}"


def validate_boundaries(settings: Settings, marts_schema: str) -> GateReport:
    """Raw files, the lake, and the marts in `marts_schema` (the audit schema before publishing).

    Each asset is read and validated in a child process of its own: GX works on pandas copies of the frame,
    and at 10M flights the feature mart's alone peaks at several GiB; run one after another in one process,
    the memory of each stayed with the next."""
    report = GateReport()
    for asset in BOUNDARY_ASSETS:
        report.results += in_child_process(validate_asset, settings, marts_schema, asset)
    report.docs_note = _localize_docs(settings)
    return report


def validate_asset(settings: Settings, marts_schema: str, asset: str) -> list[GateResult]:
    """Run one asset's suites: a mart in the warehouse where it is (SQL datasource) on PostgreSQL, on a frame of
    only the columns its suites check on DuckDB; the raw files and the lake on frames everywhere."""
    context = _context(settings)
    if asset in MART_ASSETS and settings.backend == "postgres":
        return run_asset(context, asset, None, batch_definition=_postgres_table_batch(context, marts_schema, asset))
    if asset == "raw_files":
        frame = raw_files_frame(settings, settings.warehouse())
    elif asset == "lake_weather":
        frame = lake_weather_frame(settings)
    else:
        with settings.connect_warehouse(read_only=True) as con:
            frame = mart_frame(con, marts_schema, asset, columns_checked(asset))
    return run_asset(context, asset, frame)


def validate_training_frame(settings: Settings, train: pd.DataFrame, validation_start: date) -> GateReport:
    report = GateReport(run_asset(_context(settings), "ml_training_frame", training_frame(train, validation_start)))
    report.docs_note = _localize_docs(settings)
    return report


def validate_training_channel(settings: Settings, channel: Path, validation_start: date) -> GateReport:
    """The training-frame gate over the channel folder ml/train.py will read."""
    return validate_training_frame(settings, training_channel_frame(channel), validation_start)
