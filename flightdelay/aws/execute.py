"""One executor for every step's plan: it runs exactly the plan's actions, in order, and nothing else."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flightdelay.aws.plan import Action, AwsCall, Command, FromResponse, Sql, StepPlan, Wait
from flightdelay.aws.settings import AwsSettings


def _resolve(value: Any, responses: dict[str, dict]) -> Any:
    if isinstance(value, FromResponse):
        found: Any = responses[value.call]
        for key in value.path:
            found = found[key]
        return found
    if isinstance(value, dict):
        return {key: _resolve(item, responses) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve(item, responses) for item in value]
    return value


def run_call(client, call: AwsCall, responses: dict[str, dict] | None = None) -> dict:
    """`client.<operation>(**request)`; a tolerated error code runs the fallback instead (or nothing)."""
    from botocore.exceptions import ClientError

    responses = {} if responses is None else responses
    try:
        response = getattr(client, call.operation)(**_resolve(call.request, responses))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in call.tolerate:
            raise
        response = run_call(client, call.fallback, responses) if call.fallback else {}
    errors = response.get("Errors") if isinstance(response, dict) else None
    if errors:  # Glue's batch operations answer 200 with per-entry errors
        real = [e for e in errors if e.get("ErrorDetail", {}).get("ErrorCode") not in call.tolerate]
        if real:
            raise RuntimeError(f"{call.service}.{call.operation}: {real[:3]}")
    if call.saves:
        responses[call.saves] = response
    return response


def _sql_error(statement: str, error: Exception, transaction: Sql | None) -> RuntimeError:
    if transaction is None:
        return RuntimeError(f"Redshift statement failed: {statement[:300]}: {error}")
    # a file's transaction begins by deleting its rows: its first statement names the file
    return RuntimeError(f"Redshift transaction rolled back, the previous rows are kept: failed at "
                        f"{statement[:300]}: {error} (the transaction begins with: {transaction.statements[0][:300]})")


def run_sql(connection, sql: Sql) -> int:
    """Run one Sql action on a DB-API connection (redshift_connector; psycopg2 in the tests). A transaction runs
    with autocommit off and commits at its end; any error rolls it back, so the previous state is kept. The
    connection is left in autocommit, as found."""
    connection.autocommit = not sql.transaction
    cursor = connection.cursor()
    ran, statement = 0, ""
    try:
        for statement in sql.statements:
            cursor.execute(statement)
            ran += 1
        if sql.transaction:
            statement = "commit"  # Redshift can refuse the commit itself (serializable isolation)
            connection.commit()
    except Exception as error:
        if sql.transaction:
            connection.rollback()
        connection.autocommit = True
        raise _sql_error(statement, error, sql if sql.transaction else None) from error
    connection.autocommit = True
    return ran


def run_command(command: Command, cwd: Path) -> None:
    subprocess.run(list(command.argv), check=True, cwd=cwd, env={**os.environ, **command.env})


def run_plans(plans: list[StepPlan], aws: AwsSettings, project_root: Path,
              connect: Callable[[], Any] | None = None, say: Callable[[str], None] = print) -> dict[str, object]:
    """Run every action of every plan in order. `connect` opens the warehouse connection (redshift_connector
    from the settings by default), once, when the first SQL action comes."""
    session = aws.session()
    clients: dict[str, Any] = {}
    responses: dict[str, dict] = {}
    connection = None
    facts: dict[str, object] = {}
    try:
        for plan in plans:
            counts = {"calls": 0, "waits": 0, "sql statements": 0, "commands": 0}
            for action in plan.actions:
                say(f"[aws {plan.step}] {_label(action)}")
                if isinstance(action, AwsCall | Wait):
                    client = clients.get(action.service) or clients.setdefault(
                        action.service, aws.client(action.service, session))
                    if isinstance(action, AwsCall):
                        run_call(client, action, responses)
                        counts["calls"] += 1
                    else:
                        client.get_waiter(action.waiter).wait(**_resolve(action.request, responses))
                        counts["waits"] += 1
                elif isinstance(action, Sql):
                    if connection is None:
                        connection = connect() if connect else _redshift(aws)
                    counts["sql statements"] += run_sql(connection, action)
                else:
                    run_command(action, project_root)
                    counts["commands"] += 1
            facts[plan.step] = {name: n for name, n in counts.items() if n}
    finally:
        if connection is not None:
            connection.close()
    return facts


def _label(action: Action) -> str:
    if isinstance(action, AwsCall):
        return f"{action.service}.{action.operation}"
    if isinstance(action, Wait):
        return f"wait {action.service} {action.waiter}"
    if isinstance(action, Sql):
        return f"SQL {action.title or action.statements[0][:60]}"
    return " ".join(action.argv[:4])


def _redshift(aws: AwsSettings):
    import redshift_connector

    return redshift_connector.connect(**aws.redshift_connect_args())
