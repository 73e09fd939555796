"""The Redshift BTS load's per-file transaction, run for real on PostgreSQL: the statements `file_transaction`
renders, executed by deploy's own `execute_redshift_sql`, with only what PostgreSQL lacks put in place:

- COPY from S3 becomes psycopg2's `copy_expert` of the same numbered rows (the COPY's own column list);
- `getdate()`, `pg_last_copy_id()` and `sys_load_error_detail` are small stand-ins, the last holding the line
  Redshift's COPY would have refused (an unterminated quote), as COPY with `maxerror` records it;
- the session reads string literals as Redshift does (`standard_conforming_strings = off`: a backslash
  escapes), so the file name's quoting is tested under Redshift's rules, not PostgreSQL's.

They show that a rerun replaces the file's rows instead of adding to them, and that a failure after the
deletes leaves the previous load intact.
"""

from __future__ import annotations

import hashlib
import io
import re

import psycopg2
import pytest

from flightdelay.aws.deploy import execute_redshift_sql
from flightdelay.aws.redshift_load import CopyJob, data_line_count, ddl, file_transaction, numbered_copy

TRICKY = "bts_2021_07 it\\'s; drop table raw.flights; --*\\.csv"
PLAIN = "bts_2021_08.csv"
ROLE = "arn:aws:iam::123456789012:role/flightdelay-redshift"
COPY_ERROR_LINE = 9  # the line Redshift's COPY refuses; recorded in sys_load_error_detail, not in the landing
# Real BTS header and first line (tests/../shared/data/real-samples/bts_ontime_2021_07_one_row.csv), with the
# trailing comma of BTS downloads, then rows each wrong in one way.
FILE = (
    b"FL_DATE,OP_UNIQUE_CARRIER,TAIL_NUM,OP_CARRIER_FL_NUM,ORIGIN,ORIGIN_CITY_NAME,DEST,DEST_CITY_NAME,"
    b"CRS_DEP_TIME,DEP_TIME,DEP_DELAY,CRS_ARR_TIME,CRS_ELAPSED_TIME,DISTANCE,\n"
    b'7/1/2021 12:00:00 AM,9E,N131EV,4979,ATL,"Atlanta, GA",DAY,"Dayton, OH",1632,1632,0.00,1809,97.00,432.00,\n'
    b'7/1/2021 12:00:00 AM,9E,N132EV,4980,DAY,"Dayton, OH",ATL,"Atlanta, GA",1900,1912,12.00,2040,100.00,432.00,\n'
    b'7/2/2021 12:00:00 AM,AA,N653AW,1288,OMA,"Omaha, NE",PHX,"Phoenix, AZ",0606,0603,-3.00,0735,149.00,1037.00,\n'
    b'2021-07-03,AA,N668AW,807,PHX,"Phoenix, AZ",OMA,"Omaha, NE",2009,,,0035,146.00,1037.00,\n'
    b'7/4/2021 12:00:00 AM,AA,N668AW,12.00,PHX,"Phoenix, AZ",OMA,"Omaha, NE",2009,2001,-8.00,0035,146.00,1037.00,\n'
    b'7/5/2021 12:00:00 AM,AA,N668AW,807,PHX,"Phoenix, AZ",OMA,"Omaha, NE",2009,2001,1x5,0035,146.00,1037.00,\n'
    b'7/6/2021 12:00:00 AM,A!,N668AW,807,PHX,"Phoenix, AZ",OMA,"Omaha, NE",2009,2001,1.00,0035,146.00,1037.00,\n'
    b'7/7/2021 12:00:00 AM,AA,N668AW,807,PHX,"Phoenix, AZ,OMA,"Omaha, NE",2009,2001,1.00,0035,146.00,1037.00,\n'
    b'7/8/2021 12:00:00 AM,AA,N668AW,807,,"Phoenix, AZ",OMA,"Omaha, NE",2561,2001,1.00,0035,146.00,1037.00,\n'
    b"\n"
    b'July 9th,AA,N668AW,807,PHX,"Phoenix, AZ",OMA,"Omaha, NE",2009,2001,1.00,0035,146.00,1037.00,\n'
)
LOADED, REJECTED = 5, 4 + 1  # five typed lines; four with bad or missing values, and COPY's refused line


def job_for(name: str, data: bytes) -> CopyJob:
    header = [h.strip().upper() for h in data.decode().splitlines()[0].split(",")]
    return CopyJob(s3_uri=f"s3://bucket/staging/bts_numbered/year=2021/month=07/{name}",
                   manifest_uri=f"s3://bucket/staging/bts_numbered/manifests/year=2021/month=07/{name}.manifest",
                   source_file=name, header=header, file_sha256=hashlib.sha256(data).hexdigest(),
                   rows_read=data_line_count(data))


def landing_rows(data: bytes) -> bytes:
    """The numbered copy without the line COPY refuses: what Redshift's COPY would leave in the landing table."""
    lines = numbered_copy(data).decode().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith(f"{COPY_ERROR_LINE},")).encode()


class LandingFromRows:
    """The connection `execute_redshift_sql` is given: the one COPY from S3 is replaced by `copy_expert` of
    `rows` into the landing table with the COPY's own column list; every other statement runs as rendered.
    `executed` keeps the statements the server accepted, in order."""

    def __init__(self, connection, rows: bytes):
        self.connection, self.rows, self.executed = connection, rows, []

    @property
    def autocommit(self) -> bool:
        return self.connection.autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self.connection.autocommit = value

    def cursor(self) -> LandingFromRows:
        return self

    def execute(self, statement: str) -> None:
        with self.connection.cursor() as cursor:
            copy = re.match(r"copy flights_landing \(([^)]*)\) from ", statement)
            if copy:
                cursor.copy_expert(f"copy flights_landing ({copy[1]}) from stdin with (format csv, header true)",
                                   io.BytesIO(self.rows))
            else:
                cursor.execute(statement)
        self.executed.append(statement)

    def commit(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()


@pytest.fixture(scope="module")
def pg(postgres_server: dict[str, str]):
    port = int(postgres_server["FLIGHTDELAY_PG_PORT"])
    admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    admin.autocommit = True  # CREATE DATABASE cannot run in a transaction block
    with admin.cursor() as cursor:
        cursor.execute("drop database if exists redshift_load_tx")
        cursor.execute("create database redshift_load_tx")
    admin.close()
    connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="redshift_load_tx",
                                  options="-c standard_conforming_strings=off -c escape_string_warning=off")
    # the tables as ddl() renders them, less Redshift's physical design clauses
    execute_redshift_sql(connection, [re.sub(r"\s+diststyle\s.*$", "", s) for s in ddl()])
    execute_redshift_sql(connection, [
        "create function getdate() returns timestamp language sql as $$select localtimestamp$$",
        "create function pg_last_copy_id() returns bigint language sql as $$select 42::bigint$$",
        "create table sys_load_error_detail (query_id bigint, file_name char(256), line_number bigint, "
        "column_value varchar(1024), error_message char(512))",
    ])
    yield connection
    connection.close()


@pytest.fixture
def db(pg):
    """Empty raw tables, and COPY's refused line of each test file recorded as Redshift records it."""
    pg.autocommit = True
    with pg.cursor() as cursor:
        cursor.execute("truncate raw.flights, raw.flights_rejected, raw.load_audit, sys_load_error_detail")
        for name in (TRICKY, PLAIN):
            cursor.execute("insert into sys_load_error_detail values (42, %s, %s, %s, %s)",
                           (job_for(name, FILE).s3_uri, COPY_ERROR_LINE, "AZ,OMA,", "Missing newline: Unexpected "
                            "character 0x22 found at location 38"))
    return pg


def load(connection, name: str, rows: bytes | None = None) -> LandingFromRows:
    proxy = LandingFromRows(connection, landing_rows(FILE) if rows is None else rows)
    execute_redshift_sql(proxy, file_transaction(job_for(name, FILE), ROLE, "us-east-1"))
    return proxy


def counts(connection) -> dict[str, tuple]:
    with connection.cursor() as cursor:
        cursor.execute("""
            select 'flights', source_file, count(*) from raw.flights group by source_file
            union all select 'rejected', source_file, count(*) from raw.flights_rejected group by source_file
            union all select 'audit', source_file, count(*) from raw.load_audit group by source_file""")
        return {f"{table} {name}": n for table, name, n in cursor.fetchall()}


def test_a_rerun_replaces_the_files_rows(db):
    load(db, TRICKY)
    load(db, PLAIN)
    first = counts(db)
    assert first == {f"flights {TRICKY}": LOADED, f"rejected {TRICKY}": REJECTED, f"audit {TRICKY}": 1,
                     f"flights {PLAIN}": LOADED, f"rejected {PLAIN}": REJECTED, f"audit {PLAIN}": 1}

    load(db, TRICKY)
    assert counts(db) == {**first, f"audit {TRICKY}": 2}  # the audit is a history: one row per load

    with db.cursor() as cursor:
        cursor.execute("select status, rows_read, rows_loaded, rows_rejected, file_sha256 from raw.load_audit "
                       "where source_file = %s", (TRICKY,))
        audits = cursor.fetchall()
        cursor.execute("select source_line, rejection_reason from raw.flights_rejected where source_file = %s "
                       "order by source_line", (TRICKY,))
        reasons = dict(cursor.fetchall())
        cursor.execute("select source_line, fl_date::text, op_carrier_fl_num, dep_delay from raw.flights "
                       "where source_file = %s order by source_line", (TRICKY,))
        flights = cursor.fetchall()
    # 11 lines after the header, one blank: read = loaded + rejected, checked in SQL against the file's count
    assert audits == [("loaded", 10, LOADED, REJECTED, hashlib.sha256(FILE).hexdigest())] * 2
    assert reasons == {
        7: "DEP_DELAY: cannot parse '1x5' as number",  # `\.` in a Redshift literal would have matched the x
        8: "OP_UNIQUE_CARRIER: cannot parse 'A!' as carrier",
        COPY_ERROR_LINE: "CSV: Missing newline: Unexpected character 0x22 found at location 38",
        10: "ORIGIN: required value is missing; CRS_DEP_TIME: cannot parse '2561' as hhmm",
        12: "FL_DATE: cannot parse 'July 9th' as date",  # line 11 is blank: physical line numbers
    }
    assert flights == [(2, "2021-07-01", 4979, 0.0), (3, "2021-07-01", 4980, 12.0), (4, "2021-07-02", 1288, -3.0),
                       (5, "2021-07-03", 807, None), (6, "2021-07-04", 12, -8.0)]


@pytest.mark.parametrize("failure", ["copy", "audit", "commit"])
def test_a_failure_after_the_deletes_keeps_the_previous_load(db, failure):
    load(db, TRICKY)
    load(db, PLAIN)
    before = counts(db)
    rows = landing_rows(FILE)
    if failure == "copy":  # a row with a column too many: PostgreSQL's COPY fails, as a Redshift COPY can
        rows += b"13,7/9/2021 12:00:00 AM,AA,N1,1,PHX,x,OMA,y,2009,2001,1.00,0035,146.00,1037.00,,extra\n"
    elif failure == "audit":  # the last statement before the commit fails
        with db.cursor() as cursor:
            cursor.execute("alter table raw.load_audit add constraint no_more_loads check (false) not valid")
    else:  # the commit fails, as Redshift's can on a serializable isolation violation
        with db.cursor() as cursor:
            cursor.execute("alter table raw.load_audit add constraint no_more_loads unique (source_file) "
                           "deferrable initially deferred")
    try:
        with pytest.raises(RuntimeError, match="rolled back") as failed:
            proxy = LandingFromRows(db, rows)
            execute_redshift_sql(proxy, file_transaction(job_for(TRICKY, FILE), ROLE, "us-east-1"))
    finally:
        if failure != "copy":
            db.autocommit = True
            with db.cursor() as cursor:
                cursor.execute("alter table raw.load_audit drop constraint no_more_loads")
    # the deletes had run when it failed, and the error names the file through the first of them
    assert ("failed at commit" in str(failed.value)) == (failure == "commit")
    assert [s.split(" where ")[0] for s in proxy.executed[:2]] == [
        "delete from raw.flights", "delete from raw.flights_rejected"]
    assert "drop table raw.flights; --*" in str(failed.value)
    assert counts(db) == before

    # the rollback dropped the temp tables too: the same session loads the file again
    load(db, TRICKY)
    assert counts(db) == {**before, f"audit {TRICKY}": 2}


def test_statements_outside_begin_commit_run_in_autocommit_and_brackets_must_pair(db):
    with pytest.raises(ValueError, match="expected `commit` to close the `begin` of statement 1, found another"):
        execute_redshift_sql(db, ["begin", "select 1", "begin", "select 2", "commit"])
    with pytest.raises(ValueError, match="found `commit` with no `begin` open"):
        execute_redshift_sql(db, ["select 1", "commit"])
    with pytest.raises(ValueError, match="expected `commit` for the `begin` of statement 2, found the end"):
        execute_redshift_sql(db, ["select 1", "begin", "select 2"])
    # an autocommit statement that fails leaves the ones before it done
    with pytest.raises(RuntimeError, match="Redshift statement failed: select 1/0"):
        execute_redshift_sql(db, ["create table raw.autocommitted (x int)", "select 1/0"])
    with db.cursor() as cursor:
        cursor.execute("select to_regclass('raw.autocommitted') is not null")
        assert cursor.fetchone() == (True,)
        cursor.execute("drop table raw.autocommitted")
