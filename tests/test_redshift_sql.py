"""The Redshift target, offline: the project parses for Redshift, every compiled model and test parses
with sqlglot's Redshift dialect, and the Spectrum macros render statements Redshift accepts (checked with
sqlglot where it has a grammar for them, structurally where it has none). The aws home's own SQL (load, ledger,
publish, UNLOAD, predictions) is tested in test_redshift_plan.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from spark_prep import lake_schema
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.engine  # compiles the project with dbt

DBT = str(Path(sys.executable).with_name("dbt"))
ROLE = "arn:aws:iam::123456789012:role/flightdelay-redshift-spectrum"


def dbt(*args: str, target_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DBT_PROFILES_DIR": str(PROJECT_ROOT), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "FLIGHTDELAY_LAKE_S3_URI": "s3://example-lake/lake"}
    completed = subprocess.run(
        [DBT, *args, "--target", "redshift", "--target-path", str(target_path), "--project-dir", str(PROJECT_ROOT),
         "--no-populate-cache"],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    return completed


def parse_redshift(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("redshift_target")
    dbt("parse", target_path=target)
    # no warehouse to ask whether the incremental models' tables exist: they render as full refreshes
    dbt("compile", "--vars", "{compile_without_warehouse: true}", target_path=target)
    return target


@pytest.fixture(scope="module")
def compiled_incremental(tmp_path_factory) -> Path:
    """The incremental models as a monthly run renders them: rebuilding from June 2013."""
    target = tmp_path_factory.mktemp("redshift_incremental")
    dbt("compile", "--select", "config.materialized:incremental", "--vars",
        "{compile_without_warehouse: true, rebuild_from_month: '2013-06-01'}", target_path=target)
    return target


def test_every_compiled_model_and_test_parses_as_redshift(compiled: Path):
    files = sorted((compiled / "compiled" / "flight_delays").rglob("*.sql"))
    assert len(files) > 100
    for path in files:
        tree = parse_redshift(path.read_text())
        assert isinstance(tree, exp.Query), f"{path.name}: parsed as {type(tree).__name__}"
    feature_mart = (compiled / "compiled" / "flight_delays" / "models" / "marts" / "ml"
                    / "ml_flight_delay_features.sql").read_text()
    converted = (compiled / "compiled" / "flight_delays" / "models" / "intermediate"
                 / "int_flights_converted_to_utc.sql").read_text()
    # the Redshift variants were picked: convert_timezone for zones, no DuckDB ASOF or Postgres LATERAL
    assert "convert_timezone(" in converted
    assert "asof" not in feature_mart.lower()


def test_the_feature_mart_selects_exactly_its_contract_columns(compiled: Path):
    """The mart's `final` CTE casts the columns its YAML declares (macros/contract.sql), so a column computed in
    `joined` but missing from the YAML would be dropped without a word, and one in the YAML but not computed would
    fail only at build time: `joined` must select exactly the contract's columns, in its order."""
    manifest = json.loads((compiled / "manifest.json").read_text())
    contract = list(manifest["nodes"]["model.flight_delays.ml_flight_delay_features"]["columns"])
    tree = parse_redshift((compiled / "compiled" / "flight_delays" / "models" / "marts" / "ml"
                           / "ml_flight_delay_features.sql").read_text())
    ctes = {cte.alias: cte.this for cte in tree.find_all(exp.CTE)}
    assert ctes["joined"].named_selects == contract
    assert ctes["final"].named_selects == contract


def test_incremental_models_parse_as_redshift_and_read_back_only_their_lookback(compiled_incremental: Path):
    manifest = json.loads((compiled_incremental / "manifest.json").read_text())
    files = [compiled_incremental / "compiled" / "flight_delays" / node["original_file_path"]
             for node in manifest["nodes"].values()
             if node["resource_type"] == "model" and node["config"]["materialized"] == "incremental"]
    assert len(files) >= 9, [path.name for path in files]
    for path in files:
        sql = path.read_text()
        tree = parse_redshift(sql)
        assert isinstance(tree, exp.Query), f"{path.name}: parsed as {type(tree).__name__}"
        # the first rebuilt day is the margin (2 days) before the month; the drift monitor's counts are kept by
        # month, so they recount that day's month whole, and its deciles (the training window's) stay as they are
        expected = {"int_feature_values_bucketed_by_month": "where flight_date >= cast('2013-05-01' as date)",
                    "int_training_values_ranked_into_deciles": "where false"}.get(path.stem,
                                                                               "cast('2013-05-30' as date)")
        assert expected in sql, f"{path.name} does not rebuild as a monthly run from 2013-05-30 does ({expected})"


def test_compiling_without_a_warehouse_is_refused_for_a_run(tmp_path):
    completed = subprocess.run(
        [DBT, "run", "--select", "fct_flights", "--vars", "{compile_without_warehouse: true}", "--target", "redshift",
         "--target-path", str(tmp_path), "--project-dir", str(PROJECT_ROOT)],
        env={**os.environ, "DBT_PROFILES_DIR": str(PROJECT_ROOT), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
             "FLIGHTDELAY_LAKE_S3_URI": "s3://example-lake/lake"},
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode != 0
    assert "compile_without_warehouse is for `dbt compile` only, not `dbt run`" in completed.stdout


@pytest.mark.parametrize(("variables", "refusal"), [
    ("{rebuild_from_month: '2013-13-01'}", "var rebuild_from_month must be the first day of a month"),
    ("{rebuild_from_month: \"2013-01-01' as date) or (1=1\"}", "var rebuild_from_month must be the first day"),
    ("{rebuild_from_month: '2013-02-01', rebuild_margin_days: abc}", "var rebuild_margin_days must be a whole number"),
    ("{rebuild_from_month: '2013-02-01', rebuild_margin_days: -40}", "var rebuild_margin_days must be a whole number"),
])
def test_rebuild_vars_are_checked_before_they_reach_sql(tmp_path, variables, refusal):
    completed = subprocess.run(
        [DBT, "compile", "--select", "int_flights_converted_to_utc", "--no-populate-cache", "--vars",
         "{compile_without_warehouse: true, " + variables.strip("{}") + "}", "--target", "redshift",
         "--target-path", str(tmp_path), "--project-dir", str(PROJECT_ROOT)],
        env={**os.environ, "DBT_PROFILES_DIR": str(PROJECT_ROOT), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
             "FLIGHTDELAY_LAKE_S3_URI": "s3://example-lake/lake"},
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode != 0 and refusal in completed.stdout, completed.stdout[-2000:]


def test_marts_carry_redshift_physical_design(compiled: Path):

    manifest = json.loads((compiled / "manifest.json").read_text())
    nodes = {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    assert nodes["fct_flights"]["config"]["dist"] == "flight_id"
    assert nodes["fct_flights"]["config"]["sort"] == ["flight_date"]
    assert nodes["dim_airports"]["config"]["dist"] == "all"
    for name, node in nodes.items():
        if node["config"]["materialized"] == "view":
            assert node["config"]["bind"] is False, f"{name} must be a late-binding view on Redshift"


def render_spectrum(tmp_path: Path, partitions: int, create_tables: bool = True) -> list[str]:
    stations = ["72502014734", "74486094789", "72503014732"]
    spec = [{"station_id": stations[i % 3], "observation_month": f"{2000 + i // 36}-{(i // 3) % 12 + 1:02d}"}
            for i in range(partitions)]
    inline = ("{% for s in flight_delays.spectrum_setup_statements('flightdelay_lake', '" + ROLE + "', 'us-east-1', "
              + ("true" if create_tables else "false") + ", {'hourly_observations': " + repr(spec) + "}, "
              "'3f2a9c01b7de') %}"
              "{{ s }};\n-- end --\n{% endfor %}")
    out = dbt("compile", "--inline", inline, "--quiet", target_path=tmp_path).stdout
    return [part.strip().rstrip(";").strip() for part in out.split("-- end --") if part.strip()]


def test_spectrum_statements_render_and_parse(tmp_path):
    statements = render_spectrum(tmp_path, partitions=250)
    kinds = [" ".join(s.split()[:3]).lower() for s in statements]
    assert kinds[0] == "create external schema"
    assert kinds.count("create external table") == len(lake_schema.TABLES)
    adds = [s for s in statements if s.lower().startswith("alter table")]
    assert [len(re.findall(r"^\s*partition \(", s, flags=re.M)) for s in adds] == [100, 100, 50]

    # schema over the Glue database: sqlglot has no grammar for it, so check its clauses one by one
    schema = statements[0]
    assert re.fullmatch(
        r"create external schema if not exists weather\s+from data catalog\s+database 'flightdelay_lake'\s+"
        r"iam_role '" + re.escape(ROLE) + r"'\s+region 'us-east-1'\s+create external database if not exists",
        schema)

    # external tables: a real parse, with typed columns, partition columns and the S3 location
    for table in (s for s in statements if s.lower().startswith("create external table")):
        tree = parse_redshift(table)
        assert isinstance(tree, exp.Create) and tree.args["kind"] == "TABLE"
        columns = [column.name for column in tree.this.expressions]
        assert "station_id" not in columns and ("observed_at_utc" in columns or "summary_date" in columns)
        tables = "|".join(lake_schema.TABLES)
        assert re.search(rf"location 's3://example-lake/lake/weather/({tables})/run-3f2a9c01b7de/'", table), table
        assert "partitioned by (\n    station_id varchar(11),\n    observation_month varchar(7)\n)" in table
    for drop in (s for s in statements if s.lower().startswith("drop table")):
        assert isinstance(parse_redshift(drop), exp.Drop)

    # partitions: each clause's key/value list parses as a Redshift tuple, each location is its Hive path
    clause = re.compile(r"partition \((?P<values>[^)]*)\) location '(?P<location>[^']*)'")
    for statement in adds:
        assert statement.startswith("alter table weather.hourly_observations add if not exists")
        for match in clause.finditer(statement):
            values = parse_redshift(f"select ({match['values']})").selects[0]
            pairs = {eq.this.name: eq.expression.name for eq in values.find_all(exp.EQ)}
            assert set(pairs) == {"station_id", "observation_month"}
            assert match["location"] == ("s3://example-lake/lake/weather/hourly_observations/run-3f2a9c01b7de/"
                                         f"station_id={pairs['station_id']}/observation_month={pairs['observation_month']}/")


def test_spectrum_schema_only_when_the_catalog_is_kept_by_spark(tmp_path):
    statements = render_spectrum(tmp_path, partitions=0, create_tables=False)
    assert len(statements) == 1 and statements[0].startswith("create external schema")


def test_spectrum_values_with_quotes_stay_inside_their_strings(tmp_path):
    hostile = "X'/ ; drop table weather.daily_summaries; --"
    spec = [{"station_id": hostile, "observation_month": "2013-01"}]
    inline = ("{% for s in flight_delays.spectrum_setup_statements('lake\\'s db', '" + ROLE + "', 'us-east-1', false, "
              "{'hourly_observations': " + repr(spec) + "}, 'abc') %}{{ s }};\n-- end --\n{% endfor %}")
    out = dbt("compile", "--inline", inline, "--quiet", target_path=tmp_path).stdout
    statements = [part.strip().rstrip(";").strip() for part in out.split("-- end --") if part.strip()]
    assert "database 'lake''s db'" in statements[0]
    [add] = [s for s in statements if s.lower().startswith("alter table")]
    tree = parse_redshift(add)  # one statement: the value never closed its string
    assert "X''/ ; drop table" in add and "drop table weather.daily_summaries" not in add.replace(hostile.replace(
        "'", "''"), "")
    assert tree is not None
