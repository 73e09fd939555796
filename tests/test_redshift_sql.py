"""The Redshift target, offline: the project parses for Redshift, every compiled model and test parses
with sqlglot's Redshift dialect, the Spectrum macros render statements Redshift accepts
(checked with sqlglot where it has a grammar for them, structurally where it has none), and the BTS load
renders one transaction per file in which a file name is only ever a string literal."""

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

from flightdelay.aws.redshift_load import CopyJob, copy_manifest, file_transaction
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
    # fct_flights is left out: is_incremental() asks the live warehouse whether the table exists
    dbt("compile", "--exclude", "fct_flights", target_path=target)
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


def test_marts_carry_redshift_physical_design(compiled: Path):
    import json

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
    assert kinds.count("create external table") == 2
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
        assert re.search(r"location 's3://example-lake/lake/weather/(hourly_observations|daily_summaries)/run-3f2a9c01b7de/'",
                         table), table
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


# ---------------------------------------------------------------- the BTS load (flightdelay.aws.redshift_load)

BTS_HEADER = ["FL_DATE", "OP_UNIQUE_CARRIER", "TAIL_NUM", "OP_CARRIER_FL_NUM", "ORIGIN", "ORIGIN_CITY_NAME", "DEST",
              "DEST_CITY_NAME", "CRS_DEP_TIME", "DEP_TIME", "DEP_DELAY", "CRS_ARR_TIME", "DISTANCE", ""]
# with quotes doubled but backslashes kept, the SQL would say `it\''s;`: Redshift reads `\'` as a quote and the
# next `'` as the end of the literal, and `; drop table raw.flights` would be SQL
TRICKY_NAME = "bts_2013_01 it\\'s; drop table raw.flights; --*\\.csv"


def load_transaction(name: str):
    """The statements for one BTS file as plan_redshift renders them, and the job they were rendered from."""
    from flightdelay.aws.deploy import DeployConfig, _numbered_keys

    config = DeployConfig(bucket="flightdelay-test-bucket", cluster_id=None, role_arn=ROLE)
    numbered_key, manifest_key = _numbered_keys(name)
    job = CopyJob(s3_uri=config.uri(numbered_key), manifest_uri=config.uri(manifest_key), source_file=name,
                  header=BTS_HEADER, file_sha256="0" * 64, rows_read=12)
    return file_transaction(job, config.copy_role, config.region), job


def parse_statement(sql: str) -> exp.Expression:
    """Exactly one statement, parsed by sqlglot's Redshift grammar (not kept as an opaque Command)."""
    trees = sqlglot.parse(sql, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
    assert len(trees) == 1, f"expected one statement, found {len(trees)} in: {sql[:200]}"
    assert not isinstance(trees[0], exp.Command), f"expected a parsed statement, found a Command: {sql[:200]}"
    return trees[0]


def table_name(node: exp.Expression) -> str:
    table = node if isinstance(node, exp.Table) else node.find(exp.Table)
    return ".".join(part for part in (table.db, table.name) if part)


@pytest.mark.parametrize("name", ["bts_ontime_2013_01.csv", TRICKY_NAME])
def test_each_file_loads_in_one_transaction_that_first_deletes_its_rows(name: str):
    statements, job = load_transaction(name)
    trees = [parse_statement(s) for s in statements]
    assert isinstance(trees[0], exp.Transaction) and isinstance(trees[-1], exp.Commit)
    inner = trees[1:-1]
    assert not [t for t in inner if isinstance(t, exp.Transaction | exp.Commit | exp.Rollback)]

    deleted: dict[str, int] = {}  # table -> position of the delete of this file's rows
    created: dict[str, int] = {}  # temp table -> position of its create
    written: dict[str, int] = {}  # table -> position of the first statement putting rows into it
    for position, tree in enumerate(inner):
        if isinstance(tree, exp.Delete):
            condition = tree.args["where"].this
            assert isinstance(condition, exp.EQ) and condition.this.name == "source_file", tree.sql("redshift")
            assert condition.expression.is_string and condition.expression.this == name
            deleted.setdefault(table_name(tree.this), position)
        elif isinstance(tree, exp.Create) and tree.find(exp.TemporaryProperty):
            created.setdefault(table_name(tree.this), position)
            if tree.expression is not None:  # create ... as select
                written.setdefault(table_name(tree.this), position)
        elif isinstance(tree, exp.Insert | exp.Copy):
            written.setdefault(table_name(tree.this), position)
    assert set(written) == {"raw.flights", "raw.flights_rejected", "raw.load_audit", "flights_landing",
                            "flights_parsed"}
    # it starts by deleting the file's rows from every lasting table it puts rows into; raw.load_audit is a
    # history that gets one row per load; the temp tables are created inside, so hold nothing from before
    assert sorted(deleted.values()) == [0, 1]
    for table, position in written.items():
        if table in created:
            assert created[table] <= position, table  # <=: create ... as select makes and fills it
        elif table != "raw.load_audit":
            assert table in deleted and deleted[table] < position, table
    drops = [table_name(table) for t in inner if isinstance(t, exp.Drop) for table in t.args["tables"]]
    assert sorted(drops) == sorted(created)  # and dropped again before the commit

    # COPY reads a manifest naming the one numbered copy: a bare S3 key would load every key it prefixes
    [copy] = [t for t in inner if isinstance(t, exp.Copy)]
    assert [f.this for f in copy.args["files"]] == [job.manifest_uri]
    assert any(p.this.name.lower() == "manifest" for p in copy.args["params"])
    assert job.manifest_uri.startswith("s3://flightdelay-test-bucket/staging/bts_numbered/")  # the role may read it
    # the manifest as staged: JSON keeps any character of the key as it is
    assert json.loads(copy_manifest(job.s3_uri)) == {"entries": [{"url": job.s3_uri, "mandatory": True}]}


def test_a_file_name_reaches_the_sql_only_as_a_literal():
    """`'`, `;`, `*`, `--` and `\\` in a file name change nothing but the values of string literals: each statement
    is still one statement with the same tree as for a plain name, and the name comes back exact."""
    plain = "bts_2013_01.csv"
    tricky_statements, tricky_job = load_transaction(TRICKY_NAME)
    plain_statements, _ = load_transaction(plain)
    assert len(tricky_statements) == len(plain_statements)

    def strings(tree: exp.Expression) -> list[str]:
        return [node.this for node in tree.find_all(exp.Literal) if node.is_string]

    def masked(tree: exp.Expression) -> exp.Expression:
        return tree.transform(lambda n: exp.Literal.string("") if isinstance(n, exp.Literal) and n.is_string else n)

    found = set()
    for tricky_sql, plain_sql in zip(tricky_statements, plain_statements, strict=True):
        tricky, plain_tree = parse_statement(tricky_sql), parse_statement(plain_sql)
        assert masked(tricky) == masked(plain_tree), tricky_sql[:300]
        assert [value.replace(TRICKY_NAME, plain) for value in strings(tricky)] == strings(plain_tree)
        found.update(value for value in strings(tricky) if TRICKY_NAME in value)
    # as the source_file value, in the S3 URI of the COPY errors' file, in the manifest COPY reads
    assert found == {TRICKY_NAME, tricky_job.s3_uri, tricky_job.manifest_uri}


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
