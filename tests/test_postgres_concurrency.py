"""A server warehouse is shared: two machines can load, or a person can write to the audit schema, while a step
runs. On a real PostgreSQL server (each test in a database of its own): publish copies exactly what it checked,
two loads of one file leave its rows once, and a record PostgreSQL cannot store as text is quarantined, not fatal.
"""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from flightdelay.flow import warehouse_steps
from flightdelay.raw.load import FlightLoader
from flightdelay.settings import Settings, postgres_dsn_from_env
from flightdelay.warehouse import wap
from flightdelay.warehouse.postgres_warehouse import PostgresWarehouse
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration

HEADER = ("FL_DATE,OP_UNIQUE_CARRIER,TAIL_NUM,OP_CARRIER_FL_NUM,ORIGIN,DEST,CRS_DEP_TIME,DEP_TIME,DEP_DELAY,"
          "DEP_DEL15,CRS_ARR_TIME,ARR_TIME,ARR_DELAY,CANCELLED,DIVERTED,AIR_TIME,DISTANCE\n")


def row(day: int, tail: str = "N14228") -> str:
    return (f"1/{day}/2013 12:00:00 AM,UA,{tail},{1000 + day},EWR,IAH,0515,0517,2.00,0.00,0819,0830,11.00,0.00,0.00,"
            "227.00,1400.00\n")


@pytest.fixture()
def database(postgres_server, monkeypatch, request) -> PostgresWarehouse:
    name = "t_" + request.node.name.lower()[:50]
    admin = psycopg2.connect(host="127.0.0.1", port=int(postgres_server["FLIGHTDELAY_PG_PORT"]), user="postgres",
                             dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'drop database if exists "{name}"')
    admin.cursor().execute(f'create database "{name}"')
    admin.close()
    for key, value in {**postgres_server, "FLIGHTDELAY_PG_DATABASE": name}.items():
        monkeypatch.setenv(key, value)
    return PostgresWarehouse(postgres_dsn_from_env())


def settings_on(warehouse: PostgresWarehouse, tmp_path) -> Settings:
    return Settings(project_root=PROJECT_ROOT, raw_dir=tmp_path / "raw", lake_dir=tmp_path / "lake",
                    warehouse_path=tmp_path / "unused.duckdb", artifacts_dir=tmp_path / "artifacts",
                    dbt_target="postgres", backend="postgres", postgres_dsn=warehouse.dsn)


def wait_until_blocked(warehouse: PostgresWarehouse, count: int = 1) -> None:
    """Until `count` sessions wait for a lock (the step under test reached the point the test holds)."""
    deadline = time.monotonic() + 60
    with warehouse.connect() as con:
        while con.execute("select count(*) from pg_locks where not granted").fetchone()[0] < count:
            assert time.monotonic() < deadline, "the step never reached the lock the test holds"
            time.sleep(0.1)


def test_publish_copies_exactly_the_content_it_checked(database, tmp_path):
    with database.connect() as con:
        con.execute("create schema marts_audit")
        for table in ("a_mart", "z_mart"):
            con.execute(f"create table marts_audit.{table} (v text)")
            con.execute(f"insert into marts_audit.{table} values ('validated')")
        wap.ensure_ledger(con)
        build = wap.start_build(con)
        content = wap.fingerprint(con, "marts_audit", database)
        wap.finish_build(con, build, content)
        wap.finish_validation(con, wap.start_validation(con, build, content.digest), True, "passed")
    someone = psycopg2.connect(database.dsn)
    cursor = someone.cursor()
    cursor.execute("lock table marts_audit.z_mart in access exclusive mode")  # publish's fingerprint waits here
    outcome: list[object] = []
    publishing = threading.Thread(target=lambda: outcome.append(warehouse_steps.step_publish(settings_on(database,
                                                                                                          tmp_path))))
    publishing.start()
    wait_until_blocked(database)
    cursor.execute("update marts_audit.a_mart set v = 'written after validation'")  # a_mart was already hashed
    someone.commit()
    publishing.join(timeout=120)
    someone.close()
    assert outcome, "publish failed"
    with database.connect() as con:
        # what was validated, not the row written between publish's check and its copy
        assert con.execute("select v from marts.a_mart").fetchall() == [("validated",)]


def test_two_loads_of_one_file_at_once_leave_its_rows_once(database, tmp_path):
    path = tmp_path / "flights_2013_01.csv"
    path.write_text(HEADER + "".join(row(day) for day in range(1, 11)))
    FlightLoader(database).close()  # the raw tables
    blocker = psycopg2.connect(database.dsn)
    blocker.cursor().execute("lock table raw.flights_rejected in exclusive mode")  # both loads line up behind it
    loads = []

    def load() -> None:
        with FlightLoader(database) as loader:
            loads.append(loader.load_file(path, force=True))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    wait_until_blocked(database, 2)
    blocker.commit()
    for thread in threads:
        thread.join(timeout=120)
    blocker.close()
    assert [load.rows_loaded for load in loads] == [10, 10]
    with database.connect() as con:
        assert con.execute("select count(*), count(distinct source_line) from raw.flights").fetchone() == (10, 10)
        assert con.execute("select rows_read, rows_loaded from raw.data_quality_summary").fetchall() == [(10, 10)]


def test_a_nul_byte_is_quarantined_spelled_out_on_postgres_as_on_duckdb(database, tmp_path):
    path = tmp_path / "flights_2013_02.csv"
    path.write_text(HEADER + row(1) + row(2, tail="N1\x002") + row(3))
    with FlightLoader(database) as loader:
        on_postgres = loader.load_file(path)
    with FlightLoader(tmp_path / "w.duckdb") as loader:
        on_duckdb = loader.load_file(path)
    assert (on_postgres.rows_loaded, on_postgres.rows_rejected) == (2, 1) == (on_duckdb.rows_loaded,
                                                                             on_duckdb.rows_rejected)
    sql = "select source_line, rejection_reason, raw_record from raw.flights_rejected"
    with database.connect() as con:
        [(line, reason, record)] = con.execute(sql).fetchall()
    assert line == 3 and "N1\\x002" in reason and "N1\\x002" in record
    import duckdb

    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert con.execute(sql).fetchall() == [(line, reason, record)]


def test_an_empty_result_comes_out_typed_and_empty(database, tmp_path):
    """No rows (an empty channel, a table nothing was loaded into yet) is a typed empty result, not an error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    query = "select 1 as flight_count, 'x' as flight_id where false"
    with database.connect() as con:
        empty = database.query_arrow(con, query)
        rows = database.export_parquet(con, query, tmp_path / "empty.parquet")
    assert (empty.num_rows, empty.schema.types) == (0, [pa.int32(), pa.string()])
    assert rows == 0 and pq.read_table(tmp_path / "empty.parquet").num_rows == 0
