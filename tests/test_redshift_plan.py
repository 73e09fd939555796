"""The aws home's Redshift SQL: every statement of the plan parses with sqlglot's Redshift dialect (UNLOAD, for
which sqlglot has no grammar, is checked structurally and its query parsed), and the dialect-neutral ones (the
ledger, the publish transaction and its guard) run on a real PostgreSQL server."""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from flightdelay.aws import execute, steps, warehouse_sql
from flightdelay.aws.plan import Sql
from flightdelay.aws.settings import AwsSettings
from flightdelay.settings import load_settings
from tests.conftest import PROJECT_ROOT

ROLE = "arn:aws:iam::123456789012:role/flightdelay-redshift"
UNLOAD = re.compile(r"unload \((?P<query>'(?:[^']|'')*')\) to 's3://[^']+/' iam_role '[^']+' .+ cleanpath", re.S)


def own_database(server: dict[str, str], name: str) -> str:
    """A database of the test's own: the session's server also holds the postgres home's marts."""
    import psycopg2

    admin = psycopg2.connect(host=server["FLIGHTDELAY_PG_HOST"], port=server["FLIGHTDELAY_PG_PORT"], user="postgres",
                             dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"drop database if exists {name}")
    admin.cursor().execute(f"create database {name}")
    admin.close()
    return name


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    import os

    from flightdelay.raw.sample import write_sample

    raw = tmp_path_factory.mktemp("raw")
    write_sample(raw, PROJECT_ROOT / "seeds", months=[1])  # a fresh clone has no data/raw
    saved = dict(os.environ)
    os.environ.update(FLIGHTDELAY_ARTIFACTS=str(tmp_path_factory.mktemp("artifacts")), FLIGHTDELAY_RAW=str(raw))
    try:
        settings = load_settings()
    finally:  # not left to the tests after this module
        os.environ.clear()
        os.environ.update(saved)
    aws = AwsSettings(bucket="flightdelay-test-bucket", role_arn=ROLE, cluster_id="j-X", run_id="r1")
    return steps.build_plans(settings, aws, ("load", "build", "validate", "publish", "train", "score"))


def test_every_redshift_statement_of_the_plan_parses(plans):
    checked = 0
    for plan in plans:
        for sql in plan.sql():
            for statement in sql.statements:
                if statement.startswith("unload "):
                    match = UNLOAD.fullmatch(statement)
                    assert match, statement[:200]
                    query = match["query"][1:-1].replace("''", "'")
                    assert isinstance(sqlglot.parse_one(query, read="redshift"), exp.Select)
                else:
                    [tree] = sqlglot.parse(statement, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
                    assert not isinstance(tree, exp.Command), statement[:200]
                checked += 1
    assert checked > 30
    [load] = [p for p in plans if p.step == "load"]
    transactions = [s for s in load.sql() if s.transaction]
    assert transactions and all(t.statements[0].startswith("select cast(case when exists (")  # the duplicate guard
                                and t.statements[1].startswith("delete from raw.flights where source_file = ")
                                for t in transactions)
    copies = [sqlglot.parse_one(s, read="redshift") for t in transactions for s in t.statements
              if s.startswith("copy ")]
    assert all(isinstance(c, exp.Copy) and c.args["files"][0].name.endswith(".manifest") for c in copies)


@pytest.mark.integration
def test_ledger_and_publish_run_on_postgres_and_the_guard_refuses_an_unvalidated_build(postgres_server):
    import psycopg2

    con = psycopg2.connect(host=postgres_server["FLIGHTDELAY_PG_HOST"], port=postgres_server["FLIGHTDELAY_PG_PORT"],
                           user=postgres_server["FLIGHTDELAY_PG_USER"],
                           dbname=own_database(postgres_server, "redshift_plan_ledger"))
    con.autocommit = True
    now = "localtimestamp"
    tables = ["fct_flights", "dim_dates"]

    def run(statements, transaction=True):
        return execute.run_sql(con, Sql(tuple(statements), transaction=transaction))

    run(warehouse_sql.ledger_ddl(), transaction=False)
    run(["create schema if not exists marts_audit", "create table marts_audit.fct_flights as select 1 as flight_id",
         "create table marts_audit.dim_dates as select 2 as date_id", "create schema if not exists marts",
         "create table marts.fct_flights as select 0 as flight_id"])
    run(warehouse_sql.start_build("b1", now))
    with pytest.raises(RuntimeError, match="validate refused: the latest build did not finish"):
        run(warehouse_sql.start_validation(tables, now))
    run(warehouse_sql.finish_build("b1", tables, now))
    with pytest.raises(RuntimeError, match="publish refused: the latest build has no passed validation"):
        run(warehouse_sql.publish(tables, now))
    run(warehouse_sql.start_validation(tables, now))
    run(warehouse_sql.pass_validation(tables, "2 checkpoints passed", now))
    # dbt run by hand into marts_audit after the validation: publish refuses, marts unchanged
    run(["insert into marts_audit.fct_flights values (9)"])
    with pytest.raises(RuntimeError, match="publish refused: marts_audit is not what the latest build wrote"):
        run(warehouse_sql.publish(tables, now))
    run(["delete from marts_audit.fct_flights where flight_id = 9"])
    run(warehouse_sql.publish(tables, now))
    with con.cursor() as cursor:
        cursor.execute("select flight_id from marts.fct_flights")
        assert cursor.fetchall() == [(1,)]
        cursor.execute("select build_id, tables from wap.publications")
        assert cursor.fetchall() == [("b1", "fct_flights,dim_dates")]
    con.close()


@pytest.mark.integration
def test_a_file_whose_bytes_were_loaded_under_another_name_is_refused(postgres_server, tmp_path):
    """The aws load's guard, run on PostgreSQL: the same bytes under a second name would double every flight."""
    import psycopg2

    from flightdelay.aws import redshift_load

    con = psycopg2.connect(host=postgres_server["FLIGHTDELAY_PG_HOST"], port=postgres_server["FLIGHTDELAY_PG_PORT"],
                           user="postgres", dbname=own_database(postgres_server, "redshift_plan_guard"))
    con.autocommit = True
    con.cursor().execute("create schema if not exists dup; create table dup.load_audit (source_file text, "
                         "file_sha256 text, status text); "
                         "insert into dup.load_audit values ('a.csv', 'f00d', 'loaded')")
    staged = redshift_load.StagedFile(**{**{name: 0 for name in redshift_load.StagedFile.__dataclass_fields__},
                                         "source_file": "b.csv", "file_sha256": "f00d"})
    guard = redshift_load.file_transaction(staged, "s3://b/m", None, ROLE)[0]
    guard = guard.replace("raw.load_audit", "dup.load_audit")
    with pytest.raises(psycopg2.Error, match="b.csv refused: the same bytes were loaded before under another name"):
        con.cursor().execute(guard)
    con.cursor().execute("insert into dup.load_audit values ('b.csv', 'f00d', 'loaded')")  # a reload of b.csv itself
    con.cursor().execute(guard)


def test_the_aws_home_registers_a_model_with_bound_values_and_replaces_its_row(postgres_server, tmp_path):
    """flightdelay.aws.model_registry.register on a real server: the row modeling.registry_row makes, once per
    model id however often it is registered; a hostile string in the evaluation stays a value."""
    import json

    import psycopg2

    from flightdelay.aws.model_registry import register
    from flightdelay.flow.modeling import MODEL_REGISTRY_DDL, registry_row
    from tests.serving.helpers import train_small_model

    trained = train_small_model(tmp_path / "training")
    evaluation = json.loads((trained.parent / "output" / "evaluation.json").read_text())
    con = psycopg2.connect(host=postgres_server["FLIGHTDELAY_PG_HOST"], port=postgres_server["FLIGHTDELAY_PG_PORT"],
                           user=postgres_server["FLIGHTDELAY_PG_USER"],
                           dbname=own_database(postgres_server, "redshift_model_registry"))
    with con.cursor() as old:  # a registry written while horizons were whole hours: migrated by the next row
        old.execute("create schema ml")
        old.execute(MODEL_REGISTRY_DDL.replace("prediction_horizon_minutes", "prediction_horizon_hours"))
        row = ["old", *registry_row(evaluation, 6)[1:]]
        old.execute(f"insert into ml.model_registry values ({', '.join(['%s'] * len(row))})", row)
    con.commit()
    register(con, evaluation, 120)
    register(con, evaluation, 120)
    register(con, {**evaluation, "model_id": "x'); drop table ml.model_registry; --"}, 30)
    cursor = con.cursor()
    cursor.execute("select model_id, prediction_horizon_minutes, train_first_date::text, test_roc_auc, data_id "
                   "from ml.model_registry order by prediction_horizon_minutes")
    rows = cursor.fetchall()
    con.close()
    metrics = evaluation["binary_classification_metrics"]
    assert rows == [("x'); drop table ml.model_registry; --", 30, evaluation["dataset"]["train"]["first_date"],
                     metrics["auc"]["value"], None),
                    (evaluation["model_id"], 120, evaluation["dataset"]["train"]["first_date"], metrics["auc"]["value"],
                     None),
                    ("old", 360, evaluation["dataset"]["train"]["first_date"], metrics["auc"]["value"], None)]
