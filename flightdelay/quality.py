"""Great Expectations gates on the marts, defined as code and run through a file context in
`expectations/`. Data Docs are built to `artifacts/data_docs/`.

GX's SQL datasource cannot read DuckDB here (it closes the connection before fetching), so each
asset is read into pandas by DuckDB and validated through GX's pandas dataframe datasource.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import duckdb  # noqa: E402
import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: E402

from flightdelay import docs_assets  # noqa: E402
from flightdelay.settings import Settings  # noqa: E402

DATASOURCE = "warehouse_frames"
DOCS_SITE = "local_site"


@dataclass(frozen=True)
class GateResult:
    suite: str
    success: bool
    evaluated: int
    failed: list[str]
    docs_note: str = ""


def feature_mart_suite() -> gx.ExpectationSuite:
    """Critical contract of marts.ml_flight_delay_features: a failure stops the run.

    `departed_flights` is a suite parameter: the count of departed flights in fct_flights, so the
    feature mart must reconcile with the fact table exactly."""
    weather_ranges = {
        "temp_f": (-60, 130),
        "dew_point_f": (-80, 100),
        "relative_humidity_pct": (0, 100),
        "wind_direction_deg": (0, 360),
        "wind_speed_mph": (0, 150),
        "wind_gust_mph": (0, 200),
        "precip_in": (0, 10),
        "sea_level_pressure_inhg": (27, 32),
        "visibility_mi": (0, 10),
        "weather_age_minutes": (0, 180),
    }
    expectations = [
        gxe.ExpectTableRowCountToEqual(value={"$PARAMETER": "departed_flights"}),
        gxe.ExpectColumnValuesToBeUnique(column="flight_id"),
        *[
            gxe.ExpectColumnValuesToNotBeNull(column=c)
            for c in ("flight_id", "is_dep_delayed_15", "carrier_code", "origin_airport_code",
                      "dest_airport_code", "scheduled_dep_hour_local", "flight_date", "as_of_at_utc")
        ],
        gxe.ExpectColumnValuesToBeInSet(column="is_dep_delayed_15", value_set=[0, 1]),
        gxe.ExpectColumnValuesToBeBetween(column="scheduled_dep_hour_local", min_value=0, max_value=24),
        gxe.ExpectColumnMeanToBeBetween(column="is_dep_delayed_15", min_value=0.05, max_value=0.6),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="scheduled_departure_at_utc", column_B="as_of_at_utc", or_equal=False
        ),
        *[
            gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi)
            for c, (lo, hi) in weather_ranges.items()
        ],
        # Most flights must have weather: a broken join or an empty lake shows up here.
        gxe.ExpectColumnValuesToNotBeNull(column="temp_f", mostly=0.95),
    ]
    return gx.ExpectationSuite(name="ml_flight_delay_features.critical", expectations=expectations)


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
                column = config.kwargs.get("column") or config.kwargs.get("column_A") or "table"
                observed = item.result.get("observed_value", item.result.get("unexpected_count"))
                failed.append(f"{config.type} on {column} (observed {observed})")
    return failed


def validate_feature_mart(settings: Settings) -> GateResult:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        frame = con.execute("select * from marts.ml_flight_delay_features").df()
        departed_flights = con.execute(
            "select count(*) from marts.fct_flights where has_departed"
        ).fetchone()[0]
    context = _context(settings)
    suite = feature_mart_suite()
    checkpoint = _checkpoint(context, "ml_flight_delay_features", suite)
    result = checkpoint.run(batch_parameters={"dataframe": frame},
                            expectation_parameters={"departed_flights": departed_flights})
    failed = _failures(result)
    try:
        pages = docs_assets.localize(settings.data_docs_dir, docs_assets.node_modules(settings.project_root))
        note = f"{pages} pages use vendored assets (render offline)"
    except FileNotFoundError as missing:
        note = f"pages still load assets from CDNs: {missing}"
    return GateResult(suite.name, bool(result.success), len(suite.expectations), failed, note)
