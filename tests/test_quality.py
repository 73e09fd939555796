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
