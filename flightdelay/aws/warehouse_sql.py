"""The Redshift SQL of the flow's warehouse steps, as data: the write-audit-publish ledger (the tables of
flightdelay/warehouse/wap.py), the publish transaction and its guard, the UNLOADs that export the ML channels,
and the COPY of the batch transform's predictions.

Dialect: everything but UNLOAD/COPY and the clock is plain SQL that PostgreSQL runs as well (the tests run it
there). `now` is the clock expression: `getdate()` on Redshift (its `current_timestamp` is a leader-node-only
function, refused in an INSERT ... SELECT from a table), `localtimestamp` on PostgreSQL. A refusal is raised in
SQL by casting its message to an integer: `select cast(case when <refused> then '<why>' end as integer)` fails
with the message in the error, and passes (null) otherwise, on both."""

from __future__ import annotations

from pathlib import Path

from flightdelay.flow.modeling import PREDICTIONS_SCHEMA, predictions_columns_sql
from flightdelay.warehouse import wap

REDSHIFT_NOW = "getdate()"
AUDIT_SCHEMA, PUBLISHED_SCHEMA = "marts_audit", "marts"
FEATURE_MART = "ml_flight_delay_features"
PREDICTIONS_TABLE = "ml.flight_delay_predictions"
TEXT = "varchar(65535)"


def q(value: str) -> str:
    """A string literal. Backslashes are doubled as well as quotes: Redshift reads a backslash in a literal as an
    escape, so a value ending in `\\` would otherwise swallow the closing quote."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def refuse_when(condition: str, message: str) -> str:
    return f"select cast(case when {condition} then {q(message)} end as integer)"


def marts(project_root: Path) -> list[str]:
    """The marts a build writes to the audit schema and publish copies: every model under models/marts/ but the
    predictions model, which the score step builds after publishing."""
    return sorted(path.stem for path in (project_root / "models" / "marts").rglob("*.sql")
                  if "prediction" not in path.stem)


def ledger_ddl() -> list[str]:
    s = wap.SCHEMA
    return [
        f"create schema if not exists {s}",
        f"create table if not exists {s}.builds (build_seq bigint not null, build_id varchar(64) not null, "
        f"status varchar(16) not null, started_at timestamp not null, finished_at timestamp, "
        f"fingerprint {TEXT}, tables {TEXT}, detail {TEXT})",
        f"create table if not exists {s}.validations (validation_seq bigint not null, build_id varchar(64) not null, "
        f"passed boolean not null, fingerprint {TEXT} not null, summary {TEXT} not null, "
        "validated_at timestamp not null, finished_at timestamp)",
        f"create table if not exists {s}.publications (build_id varchar(64) not null, fingerprint {TEXT} not null, "
        f"tables {TEXT} not null, published_at timestamp not null)",
    ]


LATEST_BUILD = f"(select max(build_seq) from {wap.SCHEMA}.builds)"
LATEST_BUILD_ID = f"(select build_id from {wap.SCHEMA}.builds where build_seq = {LATEST_BUILD})"


def content_fingerprint(tables: list[str], schema: str = AUDIT_SCHEMA) -> str:
    """SQL for the audit schema's content as the ledger records it here: each mart's row count. (DuckDB's ledger
    sums row hashes; on Redshift that would scan every column of every mart, so a hand-run dbt that keeps the
    row counts is not caught here.)"""
    parts = [f"'{t}:' || cast((select count(*) from {schema}.{t}) as varchar(20))" for t in tables]
    return " || ';' || ".join(parts)


def start_build(build_id: str, now: str = REDSHIFT_NOW) -> list[str]:
    s = wap.SCHEMA
    return [f"insert into {s}.builds (build_seq, build_id, status, started_at) "
            f"select coalesce(max(build_seq), 0) + 1, {q(build_id)}, {q(wap.STARTED)}, {now} from {s}.builds"]


def finish_build(build_id: str, tables: list[str], now: str = REDSHIFT_NOW) -> list[str]:
    return [f"update {wap.SCHEMA}.builds set status = {q(wap.BUILT)}, finished_at = {now}, "
            f"fingerprint = {content_fingerprint(tables)}, tables = {q(','.join(tables))} "
            f"where build_id = {q(build_id)}"]


def _unchanged_since_build(tables: list[str], action: str) -> str:
    return refuse_when(
        f"coalesce((select fingerprint from {wap.SCHEMA}.builds where build_seq = {LATEST_BUILD}), '') "
        f"<> {content_fingerprint(tables)}",
        f"{action} refused: {AUDIT_SCHEMA} is not what the latest build wrote (or no build finished); "
        "run build, then validate")


def start_validation(tables: list[str], now: str = REDSHIFT_NOW) -> list[str]:
    s = wap.SCHEMA
    return [
        refuse_when(f"coalesce((select status from {s}.builds where build_seq = {LATEST_BUILD}), '') "
                    f"<> {q(wap.BUILT)}", "validate refused: the latest build did not finish; run build"),
        _unchanged_since_build(tables, "validate"),
        f"insert into {s}.validations (validation_seq, build_id, passed, fingerprint, summary, validated_at) "
        f"select coalesce(max(validation_seq), 0) + 1, {LATEST_BUILD_ID}, false, "
        f"(select fingerprint from {s}.builds where build_seq = {LATEST_BUILD}), 'started', {now} "
        f"from {s}.validations",
    ]


def pass_validation(tables: list[str], summary: str, now: str = REDSHIFT_NOW) -> list[str]:
    """After the gates passed: record it, if the audit schema still holds what was validated."""
    s = wap.SCHEMA
    return [
        _unchanged_since_build(tables, "recording the validation"),
        f"update {s}.validations set passed = true, finished_at = {now}, summary = {q(summary)} "
        f"where validation_seq = (select max(validation_seq) from {s}.validations)",
    ]


def publish(tables: list[str], now: str = REDSHIFT_NOW) -> list[str]:
    """One transaction: the ledger check the local publish does (the latest build finished, its latest validation
    passed on the content that build wrote, the audit schema still holds it), then every mart replaced by its
    audited copy, and the publication recorded. Readers see the old marts or the new ones, never a mix."""
    s = wap.SCHEMA
    latest_validation = (f"(select max(validation_seq) from {s}.validations "
                         f"where build_id = {LATEST_BUILD_ID})")
    passed = (f"exists (select 1 from {s}.validations v join {s}.builds b on b.build_id = v.build_id "
              f"where v.validation_seq = {latest_validation} and v.passed and v.finished_at is not null "
              f"and v.fingerprint = b.fingerprint and b.build_seq = {LATEST_BUILD} and b.status = {q(wap.BUILT)})")
    statements = [
        refuse_when(f"not {passed}", "publish refused: the latest build has no passed validation of the content "
                    "it wrote; run build, then validate. The marts are as they were"),
        _unchanged_since_build(tables, "publish"),
        f"create schema if not exists {PUBLISHED_SCHEMA}",
    ]
    for table in tables:
        statements += [f"drop table if exists {PUBLISHED_SCHEMA}.{table}",
                       f"create table {PUBLISHED_SCHEMA}.{table} as select * from {AUDIT_SCHEMA}.{table}"]
    statements.append(f"insert into {s}.publications (build_id, fingerprint, tables, published_at) "
                      f"select build_id, fingerprint, {q(','.join(tables))}, {now} from {s}.builds "
                      f"where build_seq = {LATEST_BUILD}")
    return statements


def unload(query: str, uri: str, role: str, options: str) -> str:
    """UNLOAD of `query` to the `uri` prefix; CLEANPATH first removes what an earlier run left there, so a channel
    never mixes two runs' files."""
    return f"unload ({q(query)}) to {q(uri)} iam_role {q(role)} {options} cleanpath"


def predictions_copy(transform_output: str, role: str, region: str, split_case: str,
                     now: str = REDSHIFT_NOW) -> list[str]:
    """The batch transform's JSON lines (flight id, probability, model id and reasons: ml/serve.py) replace
    ml.flight_delay_predictions, with the split and the label from the feature mart, in one transaction; every
    flight of the mart must have come back, scored by one model."""
    features = f"{PUBLISHED_SCHEMA}.{FEATURE_MART}"
    from_warehouse = {"split_name": split_case, "is_dep_delayed_15": "f.is_dep_delayed_15", "scored_at": now}
    landed = [name for name in PREDICTIONS_SCHEMA.names if name not in from_warehouse]
    return [
        "create schema if not exists ml",
        f"drop table if exists {PREDICTIONS_TABLE}",  # replaced whole; also a table of an older layout
        f"create table {PREDICTIONS_TABLE} ({predictions_columns_sql()})",
        f"create temp table predictions_landing ({predictions_columns_sql(landed)})",
        f"copy predictions_landing from {q(transform_output)} iam_role {q(role)} region {q(region)} "
        "format as json 'auto'",
        refuse_when(f"(select count(*) from predictions_landing) <> (select count(*) from {features})",
                    "score refused: the batch transform did not return one prediction per flight of the "
                    "feature mart; ml.flight_delay_predictions is as it was"),
        refuse_when("(select count(distinct model_id) from predictions_landing where model_id is not null) <> 1 "
                    "or exists (select 1 from predictions_landing where model_id is null)",
                    "score refused: the batch transform's predictions do not all carry one model id; "
                    "ml.flight_delay_predictions is as it was"),
        f"insert into {PREDICTIONS_TABLE} ({', '.join(PREDICTIONS_SCHEMA.names)}) "
        f"select {', '.join(from_warehouse.get(name, f'p.{name}') for name in PREDICTIONS_SCHEMA.names)} "
        "from predictions_landing as p "
        f"inner join {features} as f on f.flight_id = p.flight_id",
        "drop table predictions_landing",
    ]
