"""The validate step on Redshift: the Great Expectations suites of flightdelay/quality/suites.py run against the
audit marts where they are, through a GX SQL datasource (Redshift speaks PostgreSQL's protocol; GX's
`add_postgres` with psycopg2). `gx_run` is the plan's data (datasource without secrets, one checkpoint per
suite); `python -m flightdelay.aws.gx_redshift` runs it, taking the password from FLIGHTDELAY_REDSHIFT_PASSWORD,
and exits 1 on a critical failure.

Assets: the marts in the warehouse (fct_flights, ml_flight_delay_features). `raw_files` and `lake_weather` are
frames built in Python from local files and the lake (flightdelay/quality/frames.py), not tables: on AWS the
load step's per-file reconciliation guards what raw_files' critical suite checks, and lake_weather is not run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass

WAREHOUSE_ASSETS = ("fct_flights", "ml_flight_delay_features")
NOT_ON_REDSHIFT = {"raw_files": "a frame of local files; the load step's reconciliation covers its counts",
                   "lake_weather": "a frame built from the lake in Python; not run on AWS",
                   "ml_training_frame": "checked by the train step's local gate only"}


@dataclass(frozen=True)
class Checkpoint:
    name: str  # <asset>.<severity>.checkpoint
    suite: str  # <asset>.<severity>, as in flightdelay/quality/suites.py SUITES
    table: str  # schema.table


@dataclass(frozen=True)
class GxRun:
    datasource: str
    connection_string: str  # with ${FLIGHTDELAY_REDSHIFT_PASSWORD}, never the password
    checkpoints: tuple[Checkpoint, ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def gx_run(connection_string: str, schema: str) -> GxRun:
    from flightdelay.quality.suites import SUITES

    checkpoints = tuple(Checkpoint(f"{asset}.{severity}.checkpoint", f"{asset}.{severity}", f"{schema}.{asset}")
                        for asset in WAREHOUSE_ASSETS for severity in SUITES[asset])
    return GxRun("redshift_marts", connection_string, checkpoints)


def run(spec: GxRun, password: str) -> tuple[list[str], list[str]]:
    """(critical failures, warnings), each naming the suite and the expectation."""
    import great_expectations as gx

    from flightdelay.quality.suites import CRITICAL, SUITES

    context = gx.get_context(mode="ephemeral")
    datasource = context.data_sources.add_postgres(
        name=spec.datasource, connection_string=spec.connection_string.replace(
            "${FLIGHTDELAY_REDSHIFT_PASSWORD}", password))
    critical, warnings = [], []
    for checkpoint in spec.checkpoints:
        asset_name, severity = checkpoint.suite.split(".")
        schema, table = checkpoint.table.split(".")
        try:
            asset = datasource.get_asset(asset_name)
        except LookupError:
            asset = datasource.add_table_asset(name=asset_name, table_name=table, schema_name=schema)
        try:
            batch = asset.get_batch_definition("whole_table")
        except KeyError:
            batch = asset.add_batch_definition_whole_table("whole_table")
        suite = context.suites.add(gx.ExpectationSuite(name=checkpoint.suite,
                                                       expectations=SUITES[asset_name][severity]()))
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{checkpoint.suite}.validation", data=batch, suite=suite))
        result = context.checkpoints.add(gx.Checkpoint(name=checkpoint.name, validation_definitions=[validation])).run()
        for run_result in result.run_results.values():
            for outcome in run_result.results:
                if not outcome.success:
                    config = outcome.expectation_config
                    found = (f"{checkpoint.suite}: {config.type} "
                             f"{ {k: v for k, v in config.kwargs.items() if k != 'batch_id'} }")
                    (critical if severity == CRITICAL else warnings).append(found)
    return critical, warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="the GxRun as JSON (what the plan prints)")
    args = parser.parse_args(argv)
    raw = json.loads(args.spec)
    spec = GxRun(raw["datasource"], raw["connection_string"], tuple(Checkpoint(**c) for c in raw["checkpoints"]))
    critical, warnings = run(spec, os.environ.get("FLIGHTDELAY_REDSHIFT_PASSWORD", ""))
    for line in warnings:
        print(f"warning: {line}")
    for line in critical:
        print(f"CRITICAL: {line}", file=sys.stderr)
    print(f"{len(spec.checkpoints)} checkpoints, {len(critical)} critical failures, {len(warnings)} warnings")
    return 1 if critical else 0


if __name__ == "__main__":
    sys.exit(main())
