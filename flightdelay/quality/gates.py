"""Run the suites (suites.py) on the frames (frames.py) through the GX file context in `expectations/`: one
checkpoint per suite, each updating the Data Docs in `artifacts/data_docs/`. The functions the flow calls
are `validate_boundaries` (raw files, the lake, the audit marts) and `validate_training_channel`.

A suite is named `<asset>.<severity>`: `critical` failures stop the run before anything is published,
`warning` failures are reported.

Big tables (the marts on DuckDB, the training channel) are validated in bounded memory (`run_in_chunks`): GX
checks the expectations each row decides alone on one chunk of months at a time, and the rest (shares of
rows, means, uniqueness, row counts) are computed over the whole table in SQL (whole_table.py) and reported in
the same suite's result. On PostgreSQL the marts are validated in the server through GX's SQL datasource.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint import UpdateDataDocsAction

from flightdelay.flow.progress import in_child_process
from flightdelay.quality import docs_assets
from flightdelay.quality.frames import (
    CHUNK_MONTH,
    CHUNK_ROWS,
    TRAINING_GATE_COLUMNS,
    channel_relation,
    chunk_frame,
    humidity_from_temperatures,
    lake_weather_frame,
    month_rows,
    months_filter,
    plan_chunks,
    raw_files_frame,
    training_frame,
)
from flightdelay.quality.suites import CRITICAL, SUITES, WARNING, WEATHER_RANGES, columns_checked, is_per_row
from flightdelay.quality.whole_table import WholeTable
from flightdelay.settings import Settings

# The names the flow and the tests import from here, some defined in suites.py and frames.py.
__all__ = ["BOUNDARY_ASSETS", "CRITICAL", "SUITES", "WARNING", "WEATHER_RANGES", "GateReport", "GateResult",
           "humidity_from_temperatures", "raw_files_frame", "run_asset", "run_in_chunks", "validate_asset",
           "validate_boundaries", "validate_training_channel", "validate_training_frame"]

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


def _checkpoint(context, batch_definition, suite: gx.ExpectationSuite, update_docs: bool = True) -> gx.Checkpoint:
    """The suite's checkpoint; without `update_docs` its runs only store their results (the caller builds the
    Data Docs pages once for all of them: a rebuild after every chunk took seconds each)."""
    suite = context.suites.add_or_update(suite)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{suite.name}.validation", data=batch_definition, suite=suite)
    )
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{suite.name}.checkpoint",
            validation_definitions=[validation],
            actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[DOCS_SITE])] if update_docs else [],
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


def _month_name(month: str | None) -> str:
    return "no flight_date" if month is None or pd.isna(month) else month


def _chunk_failures(checkpoint: gx.Checkpoint, frame: pd.DataFrame, months: list[str | None], parameters: dict,
                    ran: list) -> list[str]:
    """The checkpoint's failures on one chunk, each named by its month: a chunk of several months that fails is
    validated again a month at a time (only then, failures being rare) to say which months hold the bad rows.
    The identifiers of the results stored go to `ran`, for the Data Docs."""
    outcome = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters)
    ran += outcome.run_results
    if outcome.success:
        return []
    if len(months) == 1:
        return [f"{_month_name(months[0])}: {failure}" for failure in _failures(outcome)]
    failures = []
    for month, rows in frame.groupby(CHUNK_MONTH, dropna=False, sort=True):
        outcome = checkpoint.run(batch_parameters={"dataframe": rows}, expectation_parameters=parameters)
        ran += outcome.run_results
        failures += [f"{_month_name(month)}: {failure}" for failure in _failures(outcome)]
    return failures


def run_in_chunks(context, asset: str, con, relation: str, columns: list[str], months: list[str] | None = None,
                  prepare=None, chunk_rows: int = CHUNK_ROWS, parameters: dict | None = None) -> list[GateResult]:
    """Run the asset's suites on `relation` (of the DuckDB connection `con`) without ever holding a whole column:

    - the expectations each row decides alone (suites.is_per_row) run in GX on one chunk of whole months at a
      time (frames.plan_chunks, at most `chunk_rows` rows unless one month is bigger), reading only `columns`,
      passed through `prepare` (a frame -> frame adding derived columns); a failure names its month;
    - the others depend on the whole table, which no chunk sees: they are aggregate queries on `relation` in
      SQL (whole_table.py), reported in the same suite's result, so none is dropped.

    `months` ('YYYY-MM') limits both to those months (an incremental run validating its new partitions), except
    uniqueness, always checked over the whole table. The suite stored for Data Docs holds the per-row
    expectations and names the whole-table ones in its notes."""
    if months is not None:
        malformed = [m for m in months if not (isinstance(m, str) and len(m) == 7 and m[4] == "-"
                                               and m[:4].isdigit() and m[5:].isdigit())]
        if malformed:
            raise ValueError(f"months {malformed}: expected 'YYYY-MM' strings")
    parameters = parameters or {}
    whole_table = WholeTable(con, relation, months_filter(months))
    suites, checkpoints = {}, {}
    for severity, build in SUITES[asset].items():
        expectations = build()
        per_row = [e for e in expectations if is_per_row(e)]
        in_sql = [e for e in expectations if not is_per_row(e)]
        notes = ("Checked over the whole table in SQL (flightdelay/quality/whole_table.py), reported in the run's "
                 "gate summary: " + "; ".join(f"`{e.expectation_type}` on `{_column_of(e)}` ({_arguments_of(e)})"
                                              for e in in_sql)
                 if in_sql else "Every expectation here is checked on each chunk of months.")
        suite = gx.ExpectationSuite(name=f"{asset}.{severity}", expectations=per_row, notes=notes)
        suites[severity] = (expectations, in_sql)
        checkpoints[severity] = _checkpoint(context, _frame_batch(context, asset), suite, update_docs=False)
    failed: dict[str, list[str]] = {severity: [] for severity in suites}
    ran: list = []
    # an empty table is still validated once, on an empty frame, as a whole frame was
    for chunk in plan_chunks(month_rows(con, relation, months), chunk_rows) or [[]]:
        frame = chunk_frame(con, relation, columns, chunk)
        if prepare is not None:
            frame = prepare(frame)
        for severity, checkpoint in checkpoints.items():
            failed[severity] += _chunk_failures(checkpoint, frame, chunk, parameters, ran)
        del frame
    # one Data Docs build for every chunk's result and the suites' pages, as UpdateDataDocsAction builds one
    suite_pages = list(dict.fromkeys(result.expectation_suite_identifier for result in ran))
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[*ran, *suite_pages])
    results = []
    for severity, (expectations, in_sql) in suites.items():
        for expectation in in_sql:
            check = whole_table.check(expectation)
            if not check.success:
                failed[severity].append(check.failure)
        results.append(GateResult(f"{asset}.{severity}", not failed[severity], len(expectations), failed[severity]))
    return results


def _column_of(expectation) -> str:
    kwargs = expectation.configuration.kwargs
    return kwargs.get("column") or ", ".join(kwargs.get("column_list") or []) or "table"


def _arguments_of(expectation) -> str:
    kwargs = expectation.configuration.kwargs
    return ", ".join(f"{name}={value}" for name, value in kwargs.items() if name not in ("column", "column_list"))


def _localize_docs(settings: Settings) -> str:
    try:
        pages = docs_assets.localize(settings.data_docs_dir, docs_assets.node_modules(settings.project_root))
        return f"{pages} pages use vendored assets (render offline)"
    except FileNotFoundError as missing:
        return f"pages still load assets from CDNs: {missing}"


def validate_boundaries(settings: Settings, marts_schema: str, months: list[str] | None = None) -> GateReport:
    """Raw files, the lake, and the marts in `marts_schema` (the audit schema before publishing); of the marts
    only `months` ('YYYY-MM') if given (see `validate_asset`).

    Each asset is read and validated in a child process of its own: the allocator keeps what GX's pandas copies
    took after they are freed, so run one after another in one process, the memory of each stayed with the
    next."""
    report = GateReport()
    for asset in BOUNDARY_ASSETS:
        report.results += in_child_process(validate_asset, settings, marts_schema, asset, months)
    report.docs_note = _localize_docs(settings)
    return report


def validate_asset(settings: Settings, marts_schema: str, asset: str, months: list[str] | None = None,
                   chunk_rows: int = CHUNK_ROWS) -> list[GateResult]:
    """Run one asset's suites. A mart: in the warehouse where it is (SQL datasource) on PostgreSQL, whole (the
    server computes the metrics, `months` is not applied there); on DuckDB in chunks of months (`run_in_chunks`),
    only `months` ('YYYY-MM') if given. The raw files and the lake: on frames, whole, everywhere."""
    context = _context(settings)
    if asset in MART_ASSETS and settings.backend == "postgres":
        return run_asset(context, asset, None, batch_definition=_postgres_table_batch(context, marts_schema, asset))
    if asset in MART_ASSETS:
        with settings.connect_warehouse(read_only=True) as con:
            return run_in_chunks(context, asset, con, f"{marts_schema}.{asset}", columns_checked(asset), months,
                                 chunk_rows=chunk_rows)
    frame = raw_files_frame(settings, settings.warehouse()) if asset == "raw_files" else lake_weather_frame(settings)
    return run_asset(context, asset, frame)


def validate_training_frame(settings: Settings, train: pd.DataFrame, validation_start: date) -> GateReport:
    """The training-frame gate over rows in memory (`validate_training_channel` reads them from the channel)."""
    con = duckdb.connect(":memory:")
    con.register("training_rows", train)
    return _training_gate(settings, con, "training_rows", validation_start)


def validate_training_channel(settings: Settings, channel: Path, validation_start: date,
                              chunk_rows: int = CHUNK_ROWS) -> GateReport:
    """The training-frame gate over the channel folder ml/train.py will read, a chunk of months at a time, the
    flight ids' uniqueness and the row count over the whole channel in SQL."""
    return _training_gate(settings, duckdb.connect(":memory:"), channel_relation(channel), validation_start,
                          chunk_rows)


def _training_gate(settings: Settings, con, relation: str, validation_start: date,
                   chunk_rows: int = CHUNK_ROWS) -> GateReport:
    report = GateReport(run_in_chunks(_context(settings), "ml_training_frame", con, relation, TRAINING_GATE_COLUMNS,
                                      prepare=lambda frame: training_frame(frame, validation_start),
                                      chunk_rows=chunk_rows))
    report.docs_note = _localize_docs(settings)
    return report
