"""Building blocks of the quality gates, on small explicit inputs."""

from __future__ import annotations

import pandas as pd
import pytest

from flightdelay.quality import gates as quality
from flightdelay.raw.reconciliation import FileCounts, ReconciliationFailed, record
from flightdelay.warehouse.duckdb_warehouse import DuckDBWarehouse


def test_humidity_from_temperatures_matches_reference_values():
    rh = quality.humidity_from_temperatures(pd.Series([68.0, 50.0, 32.0]), pd.Series([50.0, 50.0, 14.0]))
    # 20 °C / 10 °C dew point: 52.5 %; saturated air: 100 %; 0 °C / -10 °C: 46.9 % (over water).
    assert rh.round(1).tolist() == [52.5, 100.0, 46.9]


def test_every_suite_names_its_severity_and_has_expectations():
    names = [f"{asset}.{severity}" for asset, suites in quality.SUITES.items() for severity in suites]
    assert len(names) >= 4 and all(n.endswith((".critical", ".warning")) for n in names)
    total = sum(len(build()) for suites in quality.SUITES.values() for build in suites.values())
    assert total >= 30


def test_reconciliation_refuses_counts_that_do_not_add_up(tmp_path):
    totals = record(DuckDBWarehouse(tmp_path / "wh.duckdb"), "flights", [FileCounts("a.csv", 10, 8, 2)])
    assert totals == {"read": 10, "loaded": 8, "quarantined": 2, "blank": 0}
    with pytest.raises(ReconciliationFailed, match=r"b.csv \(10 != 8 \+ 1 \+ 0\)"):
        record(DuckDBWarehouse(tmp_path / "wh.duckdb"), "flights", [FileCounts("b.csv", 10, 8, 1)])


def test_gate_report_separates_blocking_failures_from_warnings():
    report = quality.GateReport([
        quality.GateResult("fct_flights.critical", False, 3, ["x on y"]),
        quality.GateResult("fct_flights.warning", False, 2, ["z on w"]),
    ])
    assert report.blocking_failures == ["fct_flights.critical: x on y"]
    assert report.warnings == ["fct_flights.warning: z on w"]
    assert report.expectations == 5


@pytest.mark.parametrize(("share_delayed", "critical_holds", "warning_holds"), [
    (0.04, False, False), (0.05, True, False), (0.2, True, True), (0.4, True, True), (0.6, True, False),
    (0.61, False, False),
])
def test_the_label_share_bounds_hold_on_a_boolean_label(share_delayed, critical_holds, warning_holds):
    """The label is a boolean, which SQL cannot average: its share bounds are two in-set shares (suites.py),
    and hold exactly where a mean between the bounds would."""
    import great_expectations as gx

    from flightdelay.quality import suites

    delayed = round(share_delayed * 1000)
    frame = pd.DataFrame({"is_dep_delayed_15": [True] * delayed + [False] * (1000 - delayed)})
    context = gx.get_context(mode="ephemeral")
    batch = (context.data_sources.add_pandas("frames").add_dataframe_asset("features")
             .add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame}))

    def holds(build) -> bool:
        label = [e for e in build() if getattr(e, "column", None) == "is_dep_delayed_15"]
        assert len(label) == 2
        return all(batch.validate(expectation).success for expectation in label)

    assert (holds(suites.features_critical), holds(suites.features_warning)) == (critical_holds, warning_holds)


# ------------------------------------------------------------------ big tables in chunks of months (issue 16)

MART = "ml_flight_delay_features"
MONTHS = ("2013-01", "2013-02", "2013-03")


def feature_rows(rows_per_month: int = 100) -> pd.DataFrame:
    """Feature-mart rows over three months that pass every expectation of the mart's suites: a fifth delayed,
    every value in the middle of its plausible range."""
    from flightdelay.quality.suites import WEATHER_RANGES

    frames = []
    for month in MONTHS:
        frame = pd.DataFrame({
            "flight_id": [f"{month}-{i}" for i in range(rows_per_month)],
            "flight_date": pd.to_datetime([f"{month}-{1 + i % 28:02d}" for i in range(rows_per_month)]).date,
            "is_dep_delayed_15": [i % 5 == 0 for i in range(rows_per_month)],
            "scheduled_dep_hour_local": [6 + i % 17 for i in range(rows_per_month)],
            "weather_age_minutes": 30.0,
            "previous_day_tmax_f": 50.0,
        })
        for column, (low, high) in WEATHER_RANGES.items():
            frame[column] = (low + high) / 2
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def gate_settings(tmp_path):
    """Settings in `tmp_path` with a GX context of their own (the project's context config, no stored results:
    Data Docs index every result in the store, and the checkout's grows with every run)."""
    import shutil

    from flightdelay.settings import Settings
    from tests.conftest import PROJECT_ROOT

    project = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "expectations", project / "expectations", ignore=shutil.ignore_patterns(
        "uncommitted", "expectations", "checkpoints", "validation_definitions"))
    return Settings(project_root=project, raw_dir=tmp_path / "raw", lake_dir=tmp_path / "lake",
                    warehouse_path=tmp_path / "wh.duckdb", artifacts_dir=tmp_path / "artifacts")


def mart_settings(tmp_path, rows: pd.DataFrame):
    """Settings whose DuckDB warehouse holds `rows` as marts_audit.ml_flight_delay_features."""
    import duckdb

    settings = gate_settings(tmp_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema marts_audit")
        con.register("frame", rows)
        con.execute(f"create table marts_audit.{MART} as select * from frame")
    return settings


def outcome(results) -> dict[str, bool]:
    return {result.severity: result.success for result in results}


def failures(results, severity: str) -> list[str]:
    return [failure for result in results if result.severity == severity for failure in result.failed]


def month_of(rows: pd.DataFrame, month: str) -> pd.Series:
    return pd.to_datetime(rows["flight_date"]).dt.strftime("%Y-%m") == month


@pytest.mark.parametrize("chunk_rows", [100, 1_000_000])  # a month per chunk; the whole table in one chunk
def test_a_bad_row_in_one_month_fails_the_mart_naming_that_month(tmp_path, chunk_rows):
    rows = feature_rows()
    rows.loc[month_of(rows, "2013-02").idxmax(), "temp_f"] = 200.0  # hotter than any station ever reported
    results = quality.validate_asset(mart_settings(tmp_path, rows), "marts_audit", MART, chunk_rows=chunk_rows)
    assert outcome(results) == {"critical": False, "warning": True}
    [failure] = failures(results, "critical")
    assert failure.startswith("2013-02: expect_column_values_to_be_between on temp_f")


@pytest.mark.parametrize("plant", ["clean", "bad_range", "nulls_in_one_month", "nulls_in_two_months",
                                   "late_month", "late_quarter"])
def test_chunked_validation_decides_as_gx_on_the_whole_mart(tmp_path, plant):
    """Per suite, validating a month per chunk (shares in SQL) passes or fails exactly where GX on one frame of the
    whole mart does, including shares a single month would decide the other way."""
    rows = feature_rows()
    january, february = month_of(rows, "2013-01"), month_of(rows, "2013-02")
    if plant == "bad_range":
        rows.loc[january.idxmax(), "wind_speed_mph"] = -1.0
    if plant in ("nulls_in_one_month", "nulls_in_two_months"):
        # 12 of 100 in a month fail `mostly=0.95` there, 12 of 300 pass it over the table; 24 of 300 do not
        for month in (january, february)[: 1 if plant == "nulls_in_one_month" else 2]:
            rows.loc[rows[month].index[:12], "temp_f"] = None
    if plant == "late_month":  # 70% late in January, 37% over the quarter: only the month breaks the bounds
        rows.loc[january, "is_dep_delayed_15"] = [i % 10 < 7 for i in range(january.sum())]
    if plant == "late_quarter":
        rows["is_dep_delayed_15"] = [i % 10 < 7 for i in range(len(rows))]
    settings = mart_settings(tmp_path, rows)
    chunked = quality.validate_asset(settings, "marts_audit", MART, chunk_rows=100)
    whole = quality.run_asset(quality._context(settings), MART, rows[quality.columns_checked(MART)])
    assert outcome(chunked) == outcome(whole)
    expected = {"clean": (True, True), "bad_range": (False, True), "nulls_in_one_month": (True, True),
                "nulls_in_two_months": (False, True), "late_month": (True, True), "late_quarter": (False, False)}
    assert (outcome(chunked)["critical"], outcome(chunked)["warning"]) == expected[plant]
    if plant in ("nulls_in_two_months", "late_quarter"):
        assert all(failure.endswith("whole table, in SQL)") for failure in failures(chunked, "critical"))


def test_only_the_months_asked_for_are_validated(tmp_path):
    rows = feature_rows()
    rows.loc[month_of(rows, "2013-02").idxmax(), "precip_in"] = 99.0
    settings = mart_settings(tmp_path, rows)
    assert outcome(quality.validate_asset(settings, "marts_audit", MART, months=["2013-01", "2013-03"])) == {
        "critical": True, "warning": True}
    results = quality.validate_asset(settings, "marts_audit", MART, months=["2013-02"])
    assert [f.split(":")[0] for f in failures(results, "critical")] == ["2013-02"]
    with pytest.raises(ValueError, match="YYYY-MM"):
        quality.validate_asset(settings, "marts_audit", MART, months=["2013-2"])


def test_the_training_channel_gate_catches_an_id_in_two_months_and_names_a_leaked_month(tmp_path):
    from datetime import date

    rows = feature_rows()[["flight_id", "flight_date", "is_dep_delayed_15"]]
    channel = tmp_path / "train"
    channel.mkdir()
    rows.iloc[:150].to_parquet(channel / "part-0000.parquet")
    rows.iloc[150:].to_parquet(channel / "part-0001.parquet")
    settings = gate_settings(tmp_path)
    # validation starts in March: March's rows leak into training
    leaked = quality.validate_training_channel(settings, channel, date(2013, 3, 1), chunk_rows=100)
    assert leaked.blocking_failures and all(f.startswith("ml_training_frame.critical: 2013-03: ")
                                            for f in leaked.blocking_failures)
    assert not quality.validate_training_channel(settings, channel, date(2013, 4, 1), chunk_rows=100).blocking_failures
    # a flight of January again in February: each month alone has unique ids, the channel does not
    duplicated = rows.copy()
    duplicated.loc[month_of(rows, "2013-02").idxmax(), "flight_id"] = rows["flight_id"].iloc[0]
    for part in channel.iterdir():
        part.unlink()
    duplicated.to_parquet(channel / "part-0000.parquet")
    report = quality.validate_training_channel(settings, channel, date(2013, 4, 1), chunk_rows=100)
    [failure] = report.blocking_failures
    assert "expect_column_values_to_be_unique on flight_id (observed 2 rows with a duplicated value" in failure
    assert "'2013-01-0'" in failure and failure.endswith("whole table, in SQL)")


@pytest.mark.parametrize("share_delayed", [0.04, 0.05, 0.2, 0.6, 0.61])
def test_shares_in_sql_hold_exactly_where_gx_says(share_delayed):
    """The whole-table SQL of a share follows GX's rule to the boundary (the cases of the test above)."""
    import duckdb
    import great_expectations as gx

    from flightdelay.quality import suites
    from flightdelay.quality.whole_table import WholeTable

    delayed = round(share_delayed * 1000)
    frame = pd.DataFrame({"is_dep_delayed_15": [True] * delayed + [False] * (1000 - delayed) + [None] * 30})
    con = duckdb.connect(":memory:")
    con.register("frame", frame)
    batch = (gx.get_context(mode="ephemeral").data_sources.add_pandas("frames").add_dataframe_asset("features")
             .add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame}))
    for build in (suites.features_critical, suites.features_warning):
        for expectation in (e for e in build() if not suites.is_per_row(e)):
            if getattr(expectation, "column", None) == "is_dep_delayed_15":
                assert WholeTable(con, "frame").check(expectation).success == batch.validate(expectation).success


def test_every_table_wide_expectation_of_a_chunked_asset_has_its_sql():
    import duckdb

    from flightdelay.quality import suites
    from flightdelay.quality.whole_table import WholeTable

    con = duckdb.connect(":memory:")
    for asset in ("fct_flights", MART, "ml_training_frame"):
        columns = suites.columns_checked(asset)
        con.execute(f"create or replace table t as select {', '.join(f'1.0 as {c}' for c in columns)}")
        for build in suites.SUITES[asset].values():
            for expectation in build():
                if not suites.is_per_row(expectation):
                    WholeTable(con, "t").check(expectation)  # NotImplementedError if not
