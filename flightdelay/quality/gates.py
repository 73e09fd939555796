"""Great Expectations gates at each boundary, defined as code and run through the file context in
`expectations/`. Data Docs are built to `artifacts/data_docs/`.

Suites are named `<asset>.critical` (a failure stops the run before anything is published) and
`<asset>.warning` (reported, never blocking). GX's SQL datasource cannot read DuckDB here (it closes
the connection before fetching), so each asset is read into pandas by DuckDB and validated through
GX's pandas dataframe datasource.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import duckdb  # noqa: E402
import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: E402

from flightdelay.flow.progress import in_child_process  # noqa: E402
from flightdelay.quality import docs_assets  # noqa: E402
from flightdelay.raw.load import count_lines  # noqa: E402
from flightdelay.settings import Settings  # noqa: E402

DATASOURCE = "warehouse_frames"
DOCS_SITE = "local_site"
CRITICAL = "critical"
WARNING = "warning"
# A month with more than this share of its lines quarantined is a broken delivery, not noise.
MAX_QUARANTINED_SHARE = 0.01
# A new version of a file may correct rows, not lose a twentieth of them.
MIN_ROWS_VS_PREVIOUS_LOAD = 0.95


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


# ---------------------------------------------------------------- suites


def _not_null(*columns: str, mostly: float = 1.0) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=mostly) for c in columns]


def _between(ranges: dict[str, tuple[float, float]], mostly: float = 1.0) -> list:
    return [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi, mostly=mostly)
            for c, (lo, hi) in ranges.items()]


# The ranges the Spark weather job nulls values outside of: defined once, in raw_contracts.ranges.
from raw_contracts.ranges import FLIGHT_RANGES, WEATHER_RANGES  # noqa: E402
from raw_contracts.records import CsvRecords  # noqa: E402
from spark_prep import lake_snapshots  # noqa: E402


def raw_files_critical() -> list:
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *_not_null("source_kind", "source_file", "rows_read"),
        gxe.ExpectColumnValuesToBeInSet(column="source_kind", value_set=["flights", "weather", "weather_daily"]),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["source_kind", "source_file"]),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="rows_read", column_B="rows_accounted_for"),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="rows_read", column_B="file_data_lines"),
        gxe.ExpectColumnValuesToBeBetween(column="quarantined_share", min_value=0, max_value=MAX_QUARANTINED_SHARE),
        # A redelivered file that shrank (a truncated download) would silently drop flights.
        gxe.ExpectColumnValuesToBeBetween(column="rows_vs_previous_load", min_value=MIN_ROWS_VS_PREVIOUS_LOAD),
    ]


def raw_files_warning() -> list:
    return [
        # Freshness: every file was checked in this run or the one before it.
        gxe.ExpectColumnValuesToBeBetween(column="hours_since_checked", min_value=0, max_value=48),
        gxe.ExpectColumnValuesToBeBetween(column="quarantined_share", min_value=0, max_value=0.001),
    ]


def lake_weather_critical() -> list:
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *_not_null("station_id", "observed_at_utc", "airport_code"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["station_id", "observed_at_utc"]),
        *_between(WEATHER_RANGES),
        # Temperature, dew point and humidity must agree (Magnus formula). A file in °C labelled °F
        # passes every range check but not this one: on the sample the median disagreement per
        # station-month is 0.25-0.32 points of humidity; the same data in °C gives 6.9-13.9.
        gxe.ExpectColumnValuesToBeBetween(column="station_month_humidity_error_pct", min_value=0, max_value=5),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="temp_f", column_B="dew_point_f", or_equal=True,
                                                    mostly=0.99),
    ]


def lake_weather_warning() -> list:
    return [
        # Completeness per station-day: a routine report every hour.
        gxe.ExpectColumnValuesToBeBetween(column="reports_that_day", min_value=20, max_value=30, mostly=0.95),
        gxe.ExpectColumnValuesToBeInSet(column="implausible_fields", value_set=["", None], mostly=0.999),
        gxe.ExpectColumnMeanToBeBetween(column="temp_f", min_value=-10, max_value=95),
        gxe.ExpectColumnValuesToBeBetween(column="humidity_consistency_error_pct", min_value=0, max_value=10,
                                          mostly=0.95),
    ]


def fct_flights_critical() -> list:
    return [
        gxe.ExpectTableRowCountToEqual(value={"$PARAMETER": "raw_flights"}),
        gxe.ExpectColumnValuesToBeUnique(column="flight_id"),
        *_not_null("flight_id", "carrier_code", "origin_airport_code", "dest_airport_code", "flight_date",
                   "scheduled_departure_at_utc"),
        gxe.ExpectColumnValuesToBeInSet(column="is_cancelled", value_set=[True, False]),
        # the loader's own ranges: a value outside them was quarantined, so one here means a model broke it
        *_between({"dep_delay_minutes": FLIGHT_RANGES["dep_delay"], "arr_delay_minutes": FLIGHT_RANGES["arr_delay"],
                   "distance_miles": FLIGHT_RANGES["distance"]}),
        gxe.ExpectColumnValuesToMatchRegex(column="origin_airport_code", regex=r"^[A-Z0-9]{3}$"),
    ]


def fct_flights_warning() -> list:
    return [
        gxe.ExpectColumnMeanToBeBetween(column="is_cancelled", min_value=0, max_value=0.1),
    ]


def features_critical() -> list:
    """Critical contract of the feature mart; `departed_flights` (a suite parameter) is the count of
    departed flights in fct_flights, so the mart must reconcile with the fact table exactly."""
    return [
        gxe.ExpectTableRowCountToEqual(value={"$PARAMETER": "departed_flights"}),
        gxe.ExpectColumnValuesToBeUnique(column="flight_id"),
        *_not_null("flight_id", "is_dep_delayed_15", "carrier_code", "origin_airport_code", "dest_airport_code",
                   "scheduled_dep_hour_local", "flight_date", "as_of_at_utc"),
        gxe.ExpectColumnValuesToBeInSet(column="is_dep_delayed_15", value_set=[0, 1]),
        gxe.ExpectColumnValuesToBeBetween(column="scheduled_dep_hour_local", min_value=0, max_value=24),
        gxe.ExpectColumnMeanToBeBetween(column="is_dep_delayed_15", min_value=0.05, max_value=0.6),
        # ignore_row_if="neither": a missing time fails the check instead of being skipped (and GX need not copy
        # the frame to drop such rows first)
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="scheduled_departure_at_utc", column_B="as_of_at_utc",
                                                    or_equal=False, ignore_row_if="neither"),
        *_between({**WEATHER_RANGES, "weather_age_minutes": (0, 180)}),
        # Most flights must have weather: a broken join or an empty lake shows up here.
        gxe.ExpectColumnValuesToNotBeNull(column="temp_f", mostly=0.95),
    ]


def features_warning() -> list:
    return [
        gxe.ExpectColumnMeanToBeBetween(column="is_dep_delayed_15", min_value=0.1, max_value=0.4),
        gxe.ExpectColumnValuesToNotBeNull(column="previous_day_tmax_f", mostly=0.98),
    ]


def training_frame_critical() -> list:
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=100),
        gxe.ExpectColumnValuesToBeUnique(column="flight_id"),
        gxe.ExpectColumnValuesToBeInSet(column="is_dep_delayed_15", value_set=[0, 1]),
        # No row from the validation or test period may leak into the training channel.
        gxe.ExpectColumnValuesToBeBetween(column="days_before_validation_start", min_value=1),
        gxe.ExpectColumnDistinctValuesToBeInSet(column="channel", value_set=["train"]),
    ]


SUITES: dict[str, dict[str, Callable[[], list]]] = {
    "raw_files": {CRITICAL: raw_files_critical, WARNING: raw_files_warning},
    "lake_weather": {CRITICAL: lake_weather_critical, WARNING: lake_weather_warning},
    "fct_flights": {CRITICAL: fct_flights_critical, WARNING: fct_flights_warning},
    "ml_flight_delay_features": {CRITICAL: features_critical, WARNING: features_warning},
    "ml_training_frame": {CRITICAL: training_frame_critical},
}


# ---------------------------------------------------------------- frames


def _count_data_lines(path) -> int | None:
    if not path.exists():
        return None
    with path.open("rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
        handle.seek(max(path.stat().st_size - 1, 0))
        ends_with_newline = handle.read(1) == b"\n"
    return lines + (0 if ends_with_newline else 1) - 1  # minus the header


def _count_records(path: Path) -> int | None:
    """Records and blank lines after the header as the LCD reader splits them (a quoted line break joins two
    lines into one record), read again from the landed file."""
    if not path.exists():
        return None
    with path.open("rb") as handle:
        reader = CsvRecords(handle)
        for _ in reader:
            pass
    return reader.counts.rows_read


def raw_files_frame(settings: Settings, con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    frame = con.execute("""
        with loads as (
            select source_file, file_sha256, rows_read, lines_read, loaded_at
            from raw.load_audit where status = 'loaded'
        ),
        latest as (
            select source_file, arg_max(file_sha256, loaded_at) as file_sha256, max(loaded_at) as loaded_at,
                   arg_max(lines_read, loaded_at) as lines_read
            from loads group by source_file
        ),
        previous as (
            -- the last load of an earlier version (other bytes) of the same file
            select loads.source_file, arg_max(loads.rows_read, loads.loaded_at) as previous_rows_read
            from loads join latest using (source_file)
            where loads.file_sha256 <> latest.file_sha256
            group by loads.source_file
        )
        select s.source_kind, s.source_file, s.rows_read, s.rows_loaded, s.rows_quarantined,
               s.rows_loaded + s.rows_quarantined + coalesce(s.blank_lines, 0) as rows_accounted_for,
               l.lines_read,
               s.rows_quarantined / greatest(s.rows_read, 1) as quarantined_share,
               case when s.source_kind = 'flights' and p.previous_rows_read > 0
                    then s.rows_read / p.previous_rows_read else 1.0 end as rows_vs_previous_load,
               date_diff('minute', s.checked_at, now()::timestamp) / 60.0 as hours_since_checked
        from raw.data_quality_summary as s
        left join previous as p on s.source_kind = 'flights' and s.source_file = p.source_file
        left join latest as l on s.source_kind = 'flights' and s.source_file = l.source_file
        order by s.source_kind, s.source_file""").df()
    folders = {"flights": settings.flights_raw_dir, "weather": settings.weather_raw_dir,
               "weather_daily": settings.cdo_daily_raw_dir}
    # The loader recorded how many physical lines the file had when it read it (a quoted line break makes two
    # lines one record); recounting the landed file checks it was read to the end and is the file loaded.
    frame["file_data_lines"] = [
        (_count_records(folders[kind] / name) if kind == "weather" else _count_data_lines(folders[kind] / name))
        if pd.isna(lines)
        else count_lines(folders[kind] / name) - int(lines - rows) if (folders[kind] / name).exists() else None
        for kind, name, lines, rows in zip(frame.source_kind, frame.source_file, frame.lines_read, frame.rows_read,
                                           strict=True)
    ]
    # A file no longer on disk cannot be recounted: compare it with itself rather than fail.
    frame["file_data_lines"] = frame["file_data_lines"].fillna(frame["rows_read"]).astype("int64")
    return frame.drop(columns=["lines_read"])


def humidity_from_temperatures(temp_f: pd.Series, dew_point_f: pd.Series) -> pd.Series:
    """Relative humidity (%) from temperature and dew point (Magnus formula, Alduchov & Eskridge)."""
    t = (temp_f - 32) * 5 / 9
    td = (dew_point_f - 32) * 5 / 9
    return 100 * np.exp(17.625 * td / (243.04 + td)) / np.exp(17.625 * t / (243.04 + t))


def lake_weather_frame(settings: Settings, con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    files = str(lake_snapshots.table_dir(settings.lake_dir / "weather", "hourly_observations") / "*/*/*.parquet")
    frame = con.execute("""
        select *, count(*) over (partition by station_id, cast(observed_at_lst as date)) as reports_that_day
        from read_parquet($files, hive_partitioning = true, hive_types_autocast = false)
        """, {"files": files}).df()
    computed = humidity_from_temperatures(frame["temp_f"], frame["dew_point_f"])
    frame["humidity_consistency_error_pct"] = (computed - frame["relative_humidity_pct"]).abs()
    frame["station_month_humidity_error_pct"] = frame.groupby(
        ["station_id", "observation_month"])["humidity_consistency_error_pct"].transform("median").fillna(0.0)
    return frame


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


def _checkpoint(context, asset_name: str, suite: gx.ExpectationSuite) -> gx.Checkpoint:
    try:
        datasource = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas(name=DATASOURCE)
    try:
        asset = datasource.get_asset(asset_name)
    except LookupError:
        asset = datasource.add_dataframe_asset(name=asset_name)
    try:
        batch_definition = asset.get_batch_definition(f"{asset_name}_whole")
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_dataframe(f"{asset_name}_whole")
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


def arrow_backed_frame(table: pa.Table) -> pd.DataFrame:
    """Strings stay in Arrow buffers (pandas' pyarrow string dtype): millions of ids as Python str objects
    take ten times the memory, and the allocator keeps it after the frame is gone."""
    strings = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}
    return table.to_pandas(types_mapper=strings.get, self_destruct=True, split_blocks=True)


def columns_checked(asset: str) -> list[str]:
    """The columns the asset's suites read: the marts are loaded with only these, because pandas holds
    every loaded column in memory and the marts are wide."""
    names = []
    for build in SUITES[asset].values():
        for expectation in build():
            config = expectation.configuration.kwargs
            for key in ("column", "column_A", "column_B"):
                if config.get(key):
                    names.append(config[key])
            names += config.get("column_list") or []
    return list(dict.fromkeys(names))


def run_asset(context, asset: str, frame: pd.DataFrame, parameters: dict | None = None) -> list[GateResult]:
    results = []
    for severity, build in SUITES[asset].items():
        suite = gx.ExpectationSuite(name=f"{asset}.{severity}", expectations=build())
        checkpoint = _checkpoint(context, asset, suite)
        outcome = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters or {})
        results.append(GateResult(suite.name, bool(outcome.success), len(suite.expectations), _failures(outcome)))
    return results


def _localize_docs(settings: Settings) -> str:
    try:
        pages = docs_assets.localize(settings.data_docs_dir, docs_assets.node_modules(settings.project_root))
        return f"{pages} pages use vendored assets (render offline)"
    except FileNotFoundError as missing:
        return f"pages still load assets from CDNs: {missing}"


BOUNDARY_ASSETS = ("raw_files", "lake_weather", "fct_flights", "ml_flight_delay_features")


def validate_boundaries(settings: Settings, marts_schema: str) -> GateReport:
    """Raw files, the lake, and the marts in `marts_schema` (the audit schema before publishing).

    Each asset is read and validated in a child process of its own: GX works on pandas copies of the frame,
    and at 10M flights the feature mart's alone peaks at several GiB; run one after another in one process,
    the memory of each stayed with the next."""
    with settings.connect_warehouse(read_only=True) as con:
        raw_flights = con.execute("select count(*) from raw.flights").fetchone()[0]
        departed = con.execute(f"select count(*) from {marts_schema}.fct_flights where has_departed").fetchone()[0]
    parameters = {"fct_flights": {"raw_flights": raw_flights},
                  "ml_flight_delay_features": {"departed_flights": departed}}
    report = GateReport()
    for asset in BOUNDARY_ASSETS:
        report.results += in_child_process(validate_asset, settings, marts_schema, asset, parameters.get(asset, {}))
    report.docs_note = _localize_docs(settings)
    return report


def validate_asset(settings: Settings, marts_schema: str, asset: str, parameters: dict) -> list[GateResult]:
    """Read one asset's frame (only the columns its suites check) and run its suites."""
    with settings.connect_warehouse(read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        if asset == "raw_files":
            frame = raw_files_frame(settings, con)
        elif asset == "lake_weather":
            frame = lake_weather_frame(settings, con)
        else:
            table = con.execute(f"select {', '.join(columns_checked(asset))} from {marts_schema}.{asset}")
            frame = arrow_backed_frame(table.fetch_arrow_table())
    return run_asset(_context(settings), asset, frame, parameters)


def validate_training_frame(settings: Settings, train: pd.DataFrame, validation_start: date) -> GateReport:
    frame = train.assign(
        channel="train",
        days_before_validation_start=(pd.Timestamp(validation_start) - pd.to_datetime(train["flight_date"])).dt.days,
    )
    report = GateReport(run_asset(_context(settings), "ml_training_frame", frame))
    report.docs_note = _localize_docs(settings)
    return report


# What the training-channel gate reads; the wide feature columns stay on disk for ml/train.py.
TRAINING_GATE_COLUMNS = ["flight_id", "flight_date", "is_dep_delayed_15"]


def validate_training_channel(settings: Settings, channel: Path, validation_start: date) -> GateReport:
    """The training-frame gate over the channel folder ml/train.py will read."""
    import pyarrow.parquet as pq

    train = arrow_backed_frame(pq.read_table(channel, columns=TRAINING_GATE_COLUMNS))
    return validate_training_frame(settings, train, validation_start)
