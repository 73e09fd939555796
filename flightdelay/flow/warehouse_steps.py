"""The write-audit-publish steps: build the marts into the audit schema, validate them, publish them.

Each step records what it did in the ledger (flightdelay/warehouse/wap.py), so `publish` copies only the build
whose validation passed on exactly the content that build wrote."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flightdelay.flow import build_inputs, dbt_command
from flightdelay.flow.errors import StepFailed
from flightdelay.settings import Settings
from flightdelay.warehouse import wap

AUDIT_SCHEMA = "marts_audit"
PUBLISHED_SCHEMA = "marts"


# the marts incremental by month (macros/incremental_by_month.sql)
INCREMENTAL_MARTS = ("fct_flights", "ml_flight_delay_features")


def start_audit_from_published(settings: Settings) -> list[str]:
    """Write-audit-publish with incremental marts: the audit copy of an incremental mart starts as the
    published table, so this run's increment is applied to what is live, never to the leftovers of a
    run whose gates failed."""
    copied = []
    warehouse = settings.warehouse()
    with warehouse.connect() as con:
        published = {row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [PUBLISHED_SCHEMA]).fetchall()}
        con.execute(f"create schema if not exists {AUDIT_SCHEMA}")
        for table in INCREMENTAL_MARTS:
            if table in published:
                con.execute("begin transaction")
                warehouse.replace_table(con, f"{AUDIT_SCHEMA}.{table}", f"select * from {PUBLISHED_SCHEMA}.{table}")
                con.execute("commit")
                copied.append(table)
    return copied


def _audit_fingerprint(con: Any, settings: Settings) -> wap.Fingerprint:
    """The audit schema's fingerprint as of one moment: every table hashed in one snapshot."""
    warehouse = settings.warehouse()
    warehouse.begin_snapshot(con)
    try:
        content = wap.fingerprint(con, AUDIT_SCHEMA, warehouse)
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
    return content


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else text


def _plan_build(con: Any, settings: Settings, inputs: build_inputs.BuildInputs) -> build_inputs.BuildPlan:
    """Incremental from the first month changed since the published build (build_inputs.py says why)."""
    published = wap.published_build(con)
    since = wap.builds_after(con, published.build_id if published else None)
    if published is not None and published.inputs is None or any(b.inputs is None for b in since):
        return build_inputs.BuildPlan(True, None, "a build since the last publish recorded no inputs")
    return build_inputs.plan(inputs, build_inputs.BuildInputs.from_json(published.inputs) if published else None,
                             [build_inputs.BuildInputs.from_json(b.inputs) for b in since], settings.full_refresh)


def _current_build(con: Any, settings: Settings, inputs: build_inputs.BuildInputs) -> wap.Build | None:
    """The current build, if it finished on exactly these inputs and the audit schema is still what it wrote."""
    latest = wap.latest_build(con)
    if (settings.force or settings.full_refresh or latest is None or latest.status != wap.BUILT
            or latest.inputs is None or build_inputs.BuildInputs.from_json(latest.inputs) != inputs):
        return None
    return latest if _audit_fingerprint(con, settings).digest == latest.fingerprint else None


def step_build(settings: Settings) -> dict[str, object]:
    """dbt build (models + data tests) into the audit schema; the published marts are not touched.

    Skipped when the current build was built from exactly these inputs (raw flights and lake weather by month,
    the dbt project); otherwise incremental from the first month that changed since the published build
    (flightdelay/flow/build_inputs.py), or whole.

    The build is recorded in the write-audit-publish ledger (flightdelay/warehouse/wap.py) as started before anything
    writes to the audit schema, so from then on no earlier validation lets `publish` copy it; it is marked
    built, with the fingerprint of what dbt wrote, only after dbt passed."""
    dbt_vars: dict[str, object] = {"marts_schema": AUDIT_SCHEMA}
    with settings.connect_warehouse() as con:
        wap.ensure_ledger(con)
        inputs = build_inputs.read_inputs(
            settings, con, {**dbt_vars, "prediction_horizon_minutes": settings.prediction_horizon_minutes})
        current = _current_build(con, settings, inputs)
        if current is not None:
            return {"skipped": f"build {current.build_id} was built from these inputs (raw flights, lake weather, "
                               "dbt project); --force rebuilds", "build id": current.build_id}
        plan = _plan_build(con, settings, inputs)
        build_id = wap.start_build(con, inputs.to_json(), None if plan.full_refresh else plan.rebuild_from_month)
    try:
        args = ["build"]
        if plan.full_refresh:
            args.append("--full-refresh")
        else:
            start_audit_from_published(settings)
            dbt_vars["rebuild_from_month"] = plan.rebuild_from_month
        dbt_command.dbt_invoke(settings, args, dbt_vars)
    except BaseException as failure:
        try:
            with settings.connect_warehouse() as con:
                wap.fail_build(con, build_id, f"{type(failure).__name__}: {failure}")
        except Exception as unrecorded:  # the build stays `started`, which no validation or publish accepts either
            failure.add_note(f"(could not record build {build_id} as failed: {unrecorded})")
        raise
    with settings.connect_warehouse() as con:
        content = _audit_fingerprint(con, settings)
        wap.finish_build(con, build_id, content)
        counts = {
            f"{AUDIT_SCHEMA}.{name}": con.execute(f"select count(*) from {AUDIT_SCHEMA}.{name}").fetchone()[0]
            for name in ("fct_flights", "ml_flight_delay_features", "dim_airports", "dim_carriers", "dim_dates")
        }
    return {"build id": build_id, "rebuilt": "every month (full refresh)" if plan.full_refresh
            else f"flights from {build_inputs.first_rebuilt_day(settings, plan.rebuild_from_month)} on",
            "why": plan.reason, **counts}


def _built_build(con: Any, settings: Settings, action: str) -> wap.Build:
    """The current build if it finished; otherwise say why `action` cannot proceed and what to run."""
    build = wap.latest_build(con)
    if build is None:
        raise StepFailed(f"nothing to {action}: no audit build is recorded in {settings.warehouse().description} "
                         f"(table {wap.SCHEMA}.builds); run `flightdelay build`, then `flightdelay validate`")
    if build.status == wap.FAILED:
        raise StepFailed(f"cannot {action}: the last build {build.build_id} failed "
                         f"({_first_line(build.detail or '')}); {AUDIT_SCHEMA} holds what it left. Fix it and run "
                         "`flightdelay build`, then `flightdelay validate`")
    if build.status != wap.BUILT:
        raise StepFailed(f"cannot {action}: the last build {build.build_id} (started "
                         f"{build.started_at:%Y-%m-%d %H:%M:%S} UTC) never finished: it was interrupted, or is still "
                         "running; run `flightdelay build`, then `flightdelay validate`")
    return build


def _changed_since_build(build: wap.Build, content: wap.Fingerprint) -> str:
    return (f"{AUDIT_SCHEMA} is not what build {build.build_id} wrote: "
            + "; ".join(content.differences(build.tables))
            + f" (fingerprint {build.fingerprint[:12]} at build, {content.digest[:12]} now). Something wrote to "
            f"{AUDIT_SCHEMA} after the build (dbt run by hand?)")


# what the gates are made of: the suites (built by flightdelay/quality/suites.py on every validation), the ranges
# and record rules they take their thresholds from, and how the raw files are read for them
GATE_SOURCES = ("flightdelay/quality/*.py", "flightdelay/raw/*.py", "raw_contracts/*.py",
                "flightdelay/flow/feature_contract.py", "models/marts/ml/_ml__models.yml",
                "expectations/great_expectations.yml")


def gates_digest(settings: Settings) -> str:
    """A validation passed by other gates does not count for these."""
    package_root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for pattern in GATE_SOURCES:
        root = settings.project_root if pattern.startswith("expectations") else package_root
        for file in sorted(root.glob(pattern)):
            digest.update(pattern.encode() + file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _rebuilt_months(con: Any, settings: Settings, build: wap.Build, gates: str) -> list[str] | None:
    """The months ('YYYY-MM') of the marts to validate: those an incremental build rebuilt. The audit marts' earlier
    months are the published rows, which passed these same gates when they were published; when the gates changed
    since, or the build was a full refresh, every month (None)."""
    published = wap.published_build(con)
    passed = wap.latest_validation(con, published.build_id) if published else None
    if build.rebuilt_from is None or build.inputs is None or passed is None or passed.gates != gates:
        return None
    first = f"{build_inputs.first_rebuilt_day(settings, build.rebuilt_from):%Y-%m}"
    months = sorted(m for m in build_inputs.BuildInputs.from_json(build.inputs).flight_months if m >= first)
    return months or None


def step_validate(settings: Settings) -> dict[str, object]:
    """GX gates on raw files, the lake and the audit marts; critical failures stop the run.

    Records in the ledger whether the gates passed on exactly the content the current build wrote: its
    fingerprint is checked before the gates run and again after, and a pass is recorded only if both match."""
    gates = gates_digest(settings)
    with settings.connect_warehouse() as con:
        wap.ensure_ledger(con)
        build = _built_build(con, settings, "validate")
        last = wap.latest_validation(con, build.build_id)
        before = _audit_fingerprint(con, settings)
        # skipped only while the audit schema is still what the build wrote (dbt run by hand since is caught below)
        if (not settings.force and last is not None and last.passed and last.finished_at is not None
                and last.fingerprint == build.fingerprint and last.gates == gates
                and before.digest == build.fingerprint):
            return {"skipped": f"build {build.build_id} passed these gates at {last.finished_at:%Y-%m-%d %H:%M:%S} "
                               "UTC; --force revalidates", "build id": build.build_id}
        validation = wap.start_validation(con, build.build_id, before.digest, gates)
        months = None if settings.force else _rebuilt_months(con, settings, build, gates)
        if before.digest != build.fingerprint:
            problem = _changed_since_build(build, before)
            wap.finish_validation(con, validation, False, problem)
            raise StepFailed(f"{problem}; nothing was validated. Run `flightdelay build`, then `flightdelay validate`")
    from flightdelay.quality.gates import validate_boundaries  # Great Expectations takes seconds to import

    try:
        report = validate_boundaries(settings, AUDIT_SCHEMA, months)
    except BaseException as failure:
        try:
            with settings.connect_warehouse() as con:
                wap.finish_validation(con, validation, False,
                                      f"validation did not finish: {type(failure).__name__}: {failure}")
        except Exception as unrecorded:  # left unfinished, which publish refuses as well
            failure.add_note(f"(could not record the validation as failed: {unrecorded})")
        raise
    with settings.connect_warehouse() as con:
        current = wap.latest_build(con)
        after = _audit_fingerprint(con, settings)
        problem = None
        if current is None or current.build_id != build.build_id:
            problem = (f"{AUDIT_SCHEMA} changed while build {build.build_id} was being validated: build "
                       f"{current.build_id if current else '(none)'} started meanwhile")
        elif after.digest != before.digest:
            problem = (f"{AUDIT_SCHEMA} changed while build {build.build_id} was being validated: "
                       + "; ".join(after.differences(before.tables)))
        if problem:
            wap.finish_validation(con, validation, False, problem)
            raise StepFailed(f"{problem}; no pass was recorded. Run `flightdelay build`, then `flightdelay validate`")
        summary = (f"{len(report.results)} suites, {report.expectations} expectations, "
                   f"{len(report.blocking_failures)} critical failures, {len(report.warnings)} warnings")
        if report.blocking_failures:
            summary += ": " + "; ".join(report.blocking_failures)
        wap.finish_validation(con, validation, not report.blocking_failures, summary)
    facts = {
        "build id": build.build_id,
        "months of the marts validated": f"{months[0]} to {months[-1]} (rebuilt)" if months else "all",
        "suites": len(report.results),
        "expectations": report.expectations,
        "critical failures": len(report.blocking_failures),
        "warnings": report.warnings or 0,
        "data docs": str(settings.data_docs_dir / "index.html"),
        "data docs assets": report.docs_note,
    }
    if report.blocking_failures:
        raise StepFailed(
            "quality gates failed; nothing was published (the marts are as they were):\n  - "
            + "\n  - ".join(report.blocking_failures)
            + f"\nData Docs: {settings.data_docs_dir / 'index.html'}"
        )
    return facts


def _publishable(con: Any, settings: Settings) -> tuple[wap.Build, wap.Fingerprint]:
    """The current build and its content, if a validation of exactly that content passed."""
    build = _built_build(con, settings, "publish")
    validation = wap.latest_validation(con, build.build_id)
    if validation is None:
        raise StepFailed(f"build {build.build_id} has not been validated; nothing was published. "
                         "Run `flightdelay validate`, then `flightdelay publish`")
    if validation.finished_at is None:
        raise StepFailed(f"the last validation of build {build.build_id} (started "
                         f"{validation.validated_at:%Y-%m-%d %H:%M:%S} UTC) never finished; nothing was published. "
                         "Run `flightdelay validate`")
    if not validation.passed:
        raise StepFailed(f"run `flightdelay validate`; the last validation of build {build.build_id} failed: "
                         f"{validation.summary}\nNothing was published (the marts are as they were); fix the data, "
                         "then `flightdelay build` and `flightdelay validate` (or `flightdelay run`)")
    content = wap.fingerprint(con, AUDIT_SCHEMA, settings.warehouse())
    if content.digest != build.fingerprint or validation.fingerprint != build.fingerprint:
        raise StepFailed(f"{_changed_since_build(build, content)}; nothing was published. "
                         "Run `flightdelay build`, then `flightdelay validate`")
    if not content.tables:
        raise StepFailed(f"nothing to publish: schema {AUDIT_SCHEMA} is empty; run `flightdelay build` first")
    return build, content


def step_publish(settings: Settings) -> dict[str, object]:
    """Copy every audited mart to the published schema in one transaction: all or nothing, and only the build
    whose validation passed, checked inside that same transaction."""
    warehouse = settings.warehouse()
    with warehouse.connect() as con:
        wap.ensure_ledger(con)
        warehouse.begin_snapshot(con)
        try:
            latest, published = wap.latest_build(con), wap.published_build(con)
            # skipped only while the audit schema is still what the build wrote; otherwise _publishable says why not
            if not settings.force and latest is not None and published is not None \
                    and latest.build_id == published.build_id \
                    and wap.fingerprint(con, AUDIT_SCHEMA, warehouse).digest == latest.fingerprint:
                con.execute("rollback")
                return {"skipped": f"build {latest.build_id} is what {PUBLISHED_SCHEMA} holds; --force publishes it "
                                   "again", "build id": latest.build_id}
            build, content = _publishable(con, settings)
            con.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
            for table in content.tables:
                warehouse.replace_table(con, f"{PUBLISHED_SCHEMA}.{table}", f"select * from {AUDIT_SCHEMA}.{table}")
            wap.record_publication(con, build.build_id, content)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return {"build id": build.build_id,
                **{f"{PUBLISHED_SCHEMA}.{t}": con.execute(f"select count(*) from {PUBLISHED_SCHEMA}.{t}").fetchone()[0]
                   for t in content.tables}}


