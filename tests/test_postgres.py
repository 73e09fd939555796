"""The postgres home on a real PostgreSQL server: `FLIGHTDELAY_BACKEND=postgres flightdelay run` loads the raw
files into PostgreSQL with COPY, builds the marts there into the audit schema, gates them with Great Expectations'
SQL datasource, publishes them in one transaction, trains on channels PostgreSQL exported and scores back into
it. Its published marts must equal the DuckDB run's over the same files, and its gate must hold."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import psycopg2
import pytest

from bench.mart_hashes import compare, fingerprint
from flightdelay.settings import load_settings
from tests.conftest import FlowRun, run_cli

pytestmark = pytest.mark.integration


def settings_for(env: dict[str, str]):
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def pg_rows(server: dict[str, str], sql: str) -> list[tuple]:
    with psycopg2.connect(host=server["FLIGHTDELAY_PG_HOST"], port=int(server["FLIGHTDELAY_PG_PORT"]),
                          user="postgres", dbname=server["FLIGHTDELAY_PG_DATABASE"]) as con, con.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.fixture(scope="module")
def postgres_run(january_run: FlowRun, postgres_server: dict[str, str], tmp_path_factory) -> FlowRun:
    """The flow on the January files of `january_run`, with PostgreSQL as the warehouse."""
    assert january_run.first.returncode == 0, january_run.first.stderr[-2000:]
    root = tmp_path_factory.mktemp("postgres_home")
    shutil.copytree(january_run.root / "raw", root / "raw")
    env = {**january_run.env, **postgres_server, "FLIGHTDELAY_BACKEND": "postgres",
           "FLIGHTDELAY_RAW": str(root / "raw"), "FLIGHTDELAY_LAKE": str(root / "lake"),
           "FLIGHTDELAY_WAREHOUSE": str(root / "warehouse" / "flight_delays.duckdb"),
           "FLIGHTDELAY_ARTIFACTS": str(root / "artifacts")}
    return FlowRun(root, env, january_run.flight_rows, run_cli(env, "run", "--skip-sample"))


def test_the_postgres_home_runs_the_flow_and_publishes_what_duckdb_publishes(postgres_run, january_run,
                                                                              postgres_server):
    assert postgres_run.first.returncode == 0, postgres_run.first.stdout[-4000:] + postgres_run.first.stderr[-4000:]
    # loaded from the raw files into PostgreSQL, with the per-file reconciliation there
    assert pg_rows(postgres_server, "select count(*) from raw.flights") == [(postgres_run.flight_rows,)]
    assert pg_rows(postgres_server, "select sum(rows_read) = sum(rows_loaded + rows_quarantined + blank_lines) "
                                    "from raw.data_quality_summary where source_kind = 'flights'") == [(True,)]
    # built, gated and published there: the ledger names one build, its passing validation and its publication
    [(build_id, passed)] = pg_rows(postgres_server, "select b.build_id, v.passed from wap.builds b "
                                                    "join wap.validations v using (build_id)")
    assert passed and pg_rows(postgres_server, "select build_id from wap.publications") == [(build_id,)]
    # scored back into PostgreSQL
    [(predictions,)] = pg_rows(postgres_server, "select count(*) from marts.fct_flight_delay_predictions")
    assert predictions == pg_rows(postgres_server, "select count(*) from marts.ml_flight_delay_features")[0][0]
    # the DuckDB file of the embedded home was never created
    assert not Path(postgres_run.env["FLIGHTDELAY_WAREHOUSE"]).exists()

    on_postgres = fingerprint(settings_for(postgres_run.env))
    on_duckdb = fingerprint(settings_for(january_run.env))
    assert compare(on_duckdb, on_postgres) == []
    assert set(on_postgres) >= {"fct_flights", "ml_flight_delay_features", "fct_flight_delay_predictions"}
    record = json.loads((postgres_run.root / "artifacts" / "run_summary.json").read_text())
    assert [s["name"] for s in record["steps"]] == ["prep", "load", "build", "validate", "publish", "train",
                                                      "score", "report"]


def test_the_gate_keeps_a_corrupted_month_out_of_the_published_marts(postgres_run, postgres_server):
    """Every flight of the month reported 45 minutes late: loaded (the values are plausible), built, and caught
    by the feature mart's suite running in PostgreSQL; publish refuses and `marts` stays as it was."""
    assert postgres_run.first.returncode == 0
    settings = settings_for(postgres_run.env)
    before = fingerprint(settings)
    path = postgres_run.root / "raw" / "bts" / "bts_ontime_2013_01.csv"
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\r\n").split(",")
    delay, flag = header.index("DEP_DELAY"), header.index("DEP_DEL15")

    def late(line: str) -> str:
        fields = line.rstrip("\r\n").split(",")
        if fields[delay]:
            fields[delay], fields[flag] = "45.00", "1.00"
        return ",".join(fields) + "\n"

    path.write_text(lines[0] + "".join(late(line) for line in lines[1:]))
    for command in ("load", "build"):
        done = run_cli(postgres_run.env, command)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    validate = run_cli(postgres_run.env, "validate")
    assert validate.returncode == 1, validate.stdout[-2000:]
    assert "ml_flight_delay_features.critical" in validate.stderr, validate.stderr[-3000:]
    publish = run_cli(postgres_run.env, "publish")
    assert publish.returncode == 1 and "the last validation of build" in publish.stderr, publish.stderr[-2000:]
    assert fingerprint(settings) == before
    # what was refused is still in the audit schema, for whoever fixes the data to look at
    share = "select avg(case when is_dep_delayed_15 then 1.0 else 0 end) from {}.ml_flight_delay_features"
    [(audit_share,)] = pg_rows(postgres_server, share.format("marts_audit"))
    [(published_share,)] = pg_rows(postgres_server, share.format("marts"))
    assert audit_share == 1 and published_share < 0.5
