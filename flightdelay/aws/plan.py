"""The plan is data: every action of the aws home is one of these frozen records, `--dry-run` prints them and
execute.py runs exactly them.

- `AwsCall(service, operation, request)`: `boto3.client(service).<operation>(**request)`. A value of the request
  may be a `FromResponse`, taken from the response of an earlier call of the same run (an EMR step's id).
- `Wait(service, waiter, request)`: a boto3 waiter (it polls the matching Describe* operation).
- `Sql(statements, transaction)`: Redshift SQL over redshift_connector; a transaction runs as one (commit at its
  end, rollback on any error), other statements in autocommit (Redshift refuses external DDL in a transaction).
- `Command(argv, env)`: a process (dbt, the GX run), with settings-only environment variables.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FromResponse:
    call: str  # the `saves` name of an earlier AwsCall
    path: tuple[str | int, ...]  # keys into its response: ("StepIds", 0)

    def __str__(self) -> str:
        return f"<{self.call} response {'/'.join(map(str, self.path))}>"


@dataclass(frozen=True)
class AwsCall:
    service: str
    operation: str
    request: dict[str, Any]
    tolerate: tuple[str, ...] = ()  # error codes that mean "already so" (BucketAlreadyOwnedByYou, ...)
    fallback: AwsCall | None = None  # run instead when a tolerated error happens (create -> update)
    saves: str | None = None  # name under which later requests find its response


@dataclass(frozen=True)
class Wait:
    service: str
    waiter: str
    request: dict[str, Any]


@dataclass(frozen=True)
class Sql:
    statements: tuple[str, ...]
    transaction: bool = False
    title: str = ""


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)  # added to the environment; never a secret


Action = AwsCall | Wait | Sql | Command


@dataclass(frozen=True)
class StepPlan:
    step: str  # a name of flightdelay.flow.pipeline.STEPS
    actions: tuple[Action, ...]
    notes: tuple[str, ...] = ()

    def calls(self) -> list[AwsCall]:
        return [a for a in self.actions if isinstance(a, AwsCall)]

    def sql(self) -> list[Sql]:
        return [a for a in self.actions if isinstance(a, Sql)]

    def commands(self) -> list[Command]:
        return [a for a in self.actions if isinstance(a, Command)]


def _shown(value: Any) -> Any:
    """Request values as printed: bytes by size and SHA-256, references by where they come from."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:16]}...>"
    if isinstance(value, FromResponse | Path):
        return str(value)
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_shown(item) for item in value]
    return value


def render_action(action: Action) -> str:
    if isinstance(action, AwsCall):
        head = f"# {action.service}.{action.operation}"
        if action.tolerate:
            head += f"  (already so if {', '.join(action.tolerate)}"
            head += f"; then {action.fallback.service}.{action.fallback.operation})" if action.fallback else ")"
        return head + "\n" + json.dumps(_shown(action.request), indent=2, default=str)
    if isinstance(action, Wait):
        return f"# wait: {action.service} {action.waiter}\n" + json.dumps(_shown(action.request), default=str)
    if isinstance(action, Sql):
        head = f"# Redshift SQL{': ' + action.title if action.title else ''}"
        body = [statement + ";" for statement in action.statements]
        return "\n".join([head, *(["begin;", *body, "commit;"] if action.transaction else body)])
    env = " ".join(f"{name}={value}" for name, value in action.env.items())
    return "# command\n" + (env + " " if env else "") + " ".join(action.argv)


def render(plans: list[StepPlan]) -> str:
    out = []
    for plan in plans:
        out.append(f"\n## step: {plan.step}")
        out += [f"# note: {note}" for note in plan.notes]
        out += [render_action(action) for action in plan.actions]
    return "\n".join(out)
