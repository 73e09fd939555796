"""Write-audit-publish holds when build, validate and publish run as separate commands: publish copies only
the build whose validation passed, and only while the audit schema still holds exactly what that build wrote.

The first tests drive the steps in-process with dbt and the GX gates stood in for (the ledger's rules are
what is tested, in seconds); the integration tests do the same through the CLI with the real engines."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import duckdb
import pytest

from flightdelay.flow import dbt_command, pipeline
from flightdelay.settings import Settings
from flightdelay.warehouse import wap
from flightdelay.warehouse.duckdb_warehouse import DuckDBWarehouse
from tests.conftest import PROJECT_ROOT, FlowRun, copy_of, run_cli

MARTS = ("fct_flights", "ml_flight_delay_features", "dim_airports", "dim_carriers", "dim_dates")


class FakeFlow:
    """dbt writes `version` into every audit mart (or fails half-way); the gates pass or fail as told."""

    def __init__(self, monkeypatch, settings: Settings):
        self.settings = settings
        self.version = 1
        self.dbt_fails = False
        self.gates_fail = False
        self.during_gates = None  # called while the gates run, as someone else writing to the warehouse would
        monkeypatch.setattr(dbt_command, "dbt_invoke", self.dbt)  # where the steps look it up
        monkeypatch.setitem(sys.modules, "flightdelay.quality.gates",
                            types.SimpleNamespace(validate_boundaries=self.gates))

    def dbt(self, settings: Settings, args: list[str], extra_vars: dict | None = None) -> None:
        schema = (extra_vars or {}).get("marts_schema", "marts")
        with duckdb.connect(str(settings.warehouse_path)) as con:
            con.execute(f"create schema if not exists {schema}")
            for number, name in enumerate(MARTS):
                if self.dbt_fails and number == 2:
                    raise pipeline.StepFailed("dbt build failed (exit 1):\nDatabase Error in model dim_airports")
                con.execute(f"create or replace table {schema}.{name} as "
                            "select range as id, ? as version from range(100)", [self.version])

    def gates(self, settings: Settings, schema: str, months: list[str] | None = None):
        if self.during_gates:
            self.during_gates()
        failures = ["fct_flights.critical: expect_column_values_to_not_be_null(flight_id)"] if self.gates_fail else []
        return types.SimpleNamespace(results=[object()] * 4, expectations=40, blocking_failures=failures,
                                     warnings=[], docs_note="")


@pytest.fixture()
def flow(tmp_path, monkeypatch) -> FakeFlow:
    settings = Settings(project_root=PROJECT_ROOT, raw_dir=tmp_path / "raw", lake_dir=tmp_path / "lake",
                        warehouse_path=tmp_path / "warehouse" / "flight_delays.duckdb",
                        artifacts_dir=tmp_path / "artifacts",
                        # the fake dbt changes what it writes without changing any input a step compares, so
                        # every step runs (skipping unchanged steps: tests/test_incremental.py)
                        force=True)
    settings.warehouse_path.parent.mkdir(parents=True)
    return FakeFlow(monkeypatch, settings)


def published_versions(settings: Settings) -> set[int] | None:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        if not con.execute("select count(*) from information_schema.tables where table_schema = 'marts'").fetchone()[0]:
            return None
        return {row[0] for name in MARTS
                for row in con.execute(f"select distinct version from marts.{name}").fetchall()}


def ledger(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def build_validate_publish(flow: FakeFlow) -> None:
    for step in (pipeline.step_build, pipeline.step_validate, pipeline.step_publish):
        step(flow.settings)


def test_publish_refuses_a_build_whose_validation_failed(flow):
    build_validate_publish(flow)
    flow.version, flow.gates_fail = 2, True
    pipeline.step_build(flow.settings)
    with pytest.raises(pipeline.StepFailed, match="quality gates failed"):
        pipeline.step_validate(flow.settings)
    with pytest.raises(pipeline.StepFailed) as refused:
        pipeline.step_publish(flow.settings)
    (build_id,), = ledger(flow.settings, "select build_id from wap.builds order by build_seq desc limit 1")
    assert f"run `flightdelay validate`; the last validation of build {build_id} failed: " in str(refused.value)
    assert "expect_column_values_to_not_be_null(flight_id)" in str(refused.value)
    assert published_versions(flow.settings) == {1}

    flow.gates_fail = False  # the data was fixed: a new pass of the same build lets it through
    pipeline.step_validate(flow.settings)
    assert pipeline.step_publish(flow.settings)["build id"] == build_id
    assert published_versions(flow.settings) == {2}


def test_publish_refuses_a_build_never_validated(flow):
    pipeline.step_build(flow.settings)
    with pytest.raises(pipeline.StepFailed, match="has not been validated; nothing was published. Run `flightdelay "
                                                  "validate`"):
        pipeline.step_publish(flow.settings)
    assert published_versions(flow.settings) is None


def test_audit_schema_changed_after_validation_is_not_published(flow):
    build_validate_publish(flow)
    flow.version = 2
    pipeline.step_build(flow.settings)
    pipeline.step_validate(flow.settings)
    # dbt run by hand into the audit schema after the gates passed: one value in one mart
    with duckdb.connect(str(flow.settings.warehouse_path)) as con:
        con.execute("update marts_audit.dim_carriers set version = 3 where id = 7")
    with pytest.raises(pipeline.StepFailed) as refused:
        pipeline.step_publish(flow.settings)
    assert "dim_carriers: same row count, different content" in str(refused.value)
    assert "Run `flightdelay build`, then `flightdelay validate`" in str(refused.value)
    with pytest.raises(pipeline.StepFailed, match="is not what build .* wrote: dim_carriers"):
        pipeline.step_validate(flow.settings)  # nor is it validated as if it were the build
    assert published_versions(flow.settings) == {1}

    build_validate_publish(flow)
    assert published_versions(flow.settings) == {2}


def test_failed_build_revokes_the_earlier_pass(flow):
    build_validate_publish(flow)
    flow.version, flow.dbt_fails = 2, True
    with pytest.raises(pipeline.StepFailed, match="dbt build failed"):
        pipeline.step_build(flow.settings)  # leaves two of five audit marts at version 2
    failed_build = ledger(flow.settings, "select build_id, status from wap.builds order by build_seq desc limit 1")[0]
    assert failed_build[1] == "failed"
    for step in (pipeline.step_validate, pipeline.step_publish):
        with pytest.raises(pipeline.StepFailed, match=f"the last build {failed_build[0]} failed .*dbt build failed"):
            step(flow.settings)
    assert published_versions(flow.settings) == {1}


def test_interrupted_build_blocks_validate_and_publish(flow):
    build_validate_publish(flow)
    with duckdb.connect(str(flow.settings.warehouse_path)) as con:
        build_id = wap.start_build(con)  # what a build killed with -9 leaves
    for step in (pipeline.step_validate, pipeline.step_publish):
        with pytest.raises(pipeline.StepFailed, match=f"the last build {build_id} .* never finished"):
            step(flow.settings)


def test_change_during_validation_records_no_pass(flow):
    pipeline.step_build(flow.settings)

    def write_by_hand():
        with duckdb.connect(str(flow.settings.warehouse_path)) as con:
            con.execute("delete from marts_audit.fct_flights where id < 10")

    flow.during_gates = write_by_hand
    with pytest.raises(pipeline.StepFailed, match="changed while build .* was being validated: fct_flights: "
                                                  "100 -> 90 rows"):
        pipeline.step_validate(flow.settings)
    assert ledger(flow.settings, "select passed from wap.validations") == [(False,)]
    with pytest.raises(pipeline.StepFailed, match="the last validation of build .* failed: marts_audit changed"):
        pipeline.step_publish(flow.settings)
    assert published_versions(flow.settings) is None


def test_ledger_names_what_was_built_validated_and_published(flow):
    build_validate_publish(flow)
    (build_id, status, fingerprint), = ledger(flow.settings, "select build_id, status, fingerprint from wap.builds")
    assert status == "built"
    assert ledger(flow.settings, "select build_id, passed, fingerprint from wap.validations") == [
        (build_id, True, fingerprint)]
    assert ledger(flow.settings, "select build_id, fingerprint from wap.publications") == [(build_id, fingerprint)]
    with duckdb.connect(str(flow.settings.warehouse_path), read_only=True) as con:
        assert wap.fingerprint(con, "marts", flow.settings.warehouse()).digest == fingerprint


# ---------------------------------------------------------------- the CLI, real engines


@pytest.fixture()
def january_copy(january_run: FlowRun, tmp_path) -> FlowRun:
    return copy_of(january_run, tmp_path / "copy")


def marts_hashes(run: FlowRun) -> dict[str, str]:
    warehouse = DuckDBWarehouse(Path(run.env["FLIGHTDELAY_WAREHOUSE"]))
    with warehouse.connect(read_only=True) as con:
        return {name: table["hash"] for name, table in wap.fingerprint(con, "marts", warehouse).tables.items()}


@pytest.mark.integration
def test_run_records_its_build_validation_and_publication(january_copy):
    with duckdb.connect(january_copy.env["FLIGHTDELAY_WAREHOUSE"], read_only=True) as con:
        build = wap.latest_build(con)
        validation = wap.latest_validation(con, build.build_id)
        published = con.execute("select build_id from wap.publications order by published_at desc limit 1").fetchone()
    assert build.status == "built" and validation.passed and published == (build.build_id,)
    hashes = marts_hashes(january_copy)
    assert {name: hashes[name] for name in build.tables} == {name: t["hash"] for name, t in build.tables.items()}


@pytest.mark.integration
def test_cli_publish_refuses_after_validate_failed(january_copy):
    """The issue's case: `flightdelay validate` exits 1, then `flightdelay publish` used to publish anyway."""
    before = marts_hashes(january_copy)
    path = january_copy.root / "raw" / "bts" / "bts_ontime_2013_01.csv"
    lines = path.read_text().splitlines(keepends=True)
    # every 20th flight with an impossible date: quarantined, over the 1 % a delivery may lose
    path.write_text(lines[0] + "".join("13/45/2013 12:00:00 AM," + line.split(",", 1)[1] if n % 20 == 0 else line
                                       for n, line in enumerate(lines[1:], start=2)))
    for command in ("load", "build"):
        done = run_cli(january_copy.env, command)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    validate = run_cli(january_copy.env, "validate")
    assert validate.returncode == 1 and "raw_files.critical" in validate.stderr, validate.stderr[-2000:]

    publish = run_cli(january_copy.env, "publish")
    assert publish.returncode == 1, publish.stdout[-2000:]
    assert "run `flightdelay validate`; the last validation of build" in publish.stderr
    assert "quarantined_share" in publish.stderr
    assert marts_hashes(january_copy) == before


@pytest.mark.integration
def test_cli_publish_refuses_dbt_run_by_hand_into_the_audit_schema(january_copy):
    before = marts_hashes(january_copy)
    dbt = Path(sys.executable).with_name("dbt")
    # someone rebuilds one audit mart (and the view it reads) by hand, with a calendar a year shorter
    by_hand = subprocess.run(
        [str(dbt), "run", "--select", "+dim_dates", "--target", "prod", "--project-dir", str(PROJECT_ROOT),
         "--profiles-dir", str(PROJECT_ROOT),
         "--vars", '{"marts_schema": "marts_audit", "calendar_end_date": "2029-12-31"}'],
        env={**os.environ, **january_copy.env}, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert by_hand.returncode == 0, by_hand.stdout[-3000:]

    publish = run_cli(january_copy.env, "publish")
    assert publish.returncode == 1, publish.stdout[-2000:]
    assert "dim_dates: 7,670 -> 7,305 rows, different content" in publish.stderr, publish.stderr[-2000:]
    assert marts_hashes(january_copy) == before
    validate = run_cli(january_copy.env, "validate")  # nor does validate pass it off as the build
    assert validate.returncode == 1 and "is not what build" in validate.stderr, validate.stderr[-2000:]
