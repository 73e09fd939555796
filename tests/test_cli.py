"""The command line: help on every command, `doctor` checks with fixes, clear failures."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from flightdelay import cli
from flightdelay.flow import doctor
from flightdelay.settings import load_settings
from tests.conftest import PROJECT_ROOT

COMMANDS = [*cli.STEP_HELP, *cli.OTHER_HELP]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps long descriptions
    assert f"flightdelay {command}" in out
    assert {**cli.STEP_HELP, **cli.OTHER_HELP}[command] in out


def test_doctor_reports_a_busy_port_with_the_fix():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        check = doctor.check_port(busy.getsockname()[1])
    assert not check.ok and "in use" in check.detail and "make docs" in check.fix


@pytest.mark.engine  # the CLI in a subprocess
def test_doctor_passes_on_this_machine():
    completed = subprocess.run([sys.executable, "-m", "flightdelay.cli", "doctor"], capture_output=True, text=True)
    checks = doctor.run_checks(load_settings())
    assert {c.name for c in checks} >= {"python", "java", "disk", "duckdb", "pyspark"}
    failing = [c for c in checks if not c.ok and not c.name.startswith("port")]
    assert failing == [], doctor.render(failing)
    assert "[ok  ] java" in completed.stdout


def test_missing_raw_files_fail_with_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLIGHTDELAY_RAW", str(tmp_path / "nothing"))
    monkeypatch.setenv("FLIGHTDELAY_WAREHOUSE", str(tmp_path / "wh.duckdb"))
    assert cli.main(["load"]) == 1
    assert "run `flightdelay sample` first" in capsys.readouterr().err


def test_child_process_output_and_exit_code_pass_through_the_progress_wrapper():
    from flightdelay.flow.progress import run_with_progress

    completed = run_with_progress([sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], "child",
                                  stdout=subprocess.PIPE, text=True)
    assert (completed.returncode, completed.stdout) == (3, "out\n")


def test_the_backend_is_a_setting_and_the_dbt_target_follows_it(monkeypatch):
    monkeypatch.delenv("FLIGHTDELAY_DBT_TARGET", raising=False)
    monkeypatch.setenv("FLIGHTDELAY_BACKEND", "postgres")
    monkeypatch.setenv("FLIGHTDELAY_PG_PASSWORD", "it's a \\ secret")
    settings = load_settings()
    assert (settings.backend, settings.dbt_target) == ("postgres", "postgres")
    from psycopg2.extensions import parse_dsn

    assert parse_dsn(settings.postgres_dsn)["password"] == "it's a \\ secret"  # quoted for libpq, one value
    assert "secret" not in settings.warehouse().description
    assert settings.with_backend("local").dbt_target == "local"
    monkeypatch.setenv("FLIGHTDELAY_DBT_TARGET", "redshift")
    assert settings.with_backend("local").dbt_target == "redshift"  # named explicitly: kept
    monkeypatch.setenv("FLIGHTDELAY_BACKEND", "sqlite")
    with pytest.raises(ValueError, match="FLIGHTDELAY_BACKEND is 'sqlite'; expected one of local, postgres, aws"):
        load_settings()


def test_a_dry_run_is_refused_where_there_is_no_plan_to_print(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLIGHTDELAY_WAREHOUSE", str(tmp_path / "w.duckdb"))
    assert cli.main(["run", "--backend", "postgres", "--dry-run"]) == 2
    assert "--dry-run prints the aws home's plan; the postgres home runs its steps here" in capsys.readouterr().err
    assert not (tmp_path / "w.duckdb").exists()


def test_single_steps_refuse_the_aws_backend_instead_of_running_locally(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLIGHTDELAY_BACKEND", "aws")
    monkeypatch.setenv("FLIGHTDELAY_WAREHOUSE", str(tmp_path / "w.duckdb"))
    assert cli.main(["load"]) == 2
    assert "Run `flightdelay deploy --only STEP`" in capsys.readouterr().err
    assert not (tmp_path / "w.duckdb").exists()


def test_stopping_a_local_postgres_leaves_a_folder_it_did_not_make(tmp_path):
    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    import local_postgres

    keep = tmp_path / "not a cluster" / "keep"
    keep.mkdir(parents=True)
    with pytest.raises(SystemExit, match="holds no cluster made by `start`"):
        local_postgres.stop(keep.parent)
    assert keep.exists()


# 1.1 and 0.1 hours are whole minutes only in decimal arithmetic (1.1 * 60 = 66.00000000000001 in binary)
@pytest.mark.parametrize(("hours", "minutes"), [("2", 120), ("24", 1440), ("6", 360), ("0.5", 30), ("1.25", 75),
                                                ("1.1", 66), ("0.1", 6)])
def test_a_horizon_is_given_in_hours_and_kept_in_minutes(hours, minutes, monkeypatch):
    from flightdelay.settings import describe_horizon

    monkeypatch.setenv("FLIGHTDELAY_HORIZON_HOURS", hours)
    assert load_settings().prediction_horizon_minutes == minutes
    assert cli.build_parser().parse_args(["--horizon-hours", hours, "build"]).horizon_hours == minutes
    assert describe_horizon(minutes) == {120: "2 h", 1440: "24 h", 360: "6 h", 30: "30 min", 75: "1 h 15 min",
                                        66: "1 h 6 min", 6: "6 min"}[minutes]


@pytest.mark.parametrize("hours", ["0", "-2", "25", "0.01", "two", "nan", "inf", "", "-0", "1/60", "0.0166666667",
                                   "0_5", "1e1", "\uff12", "2h", ".5", "1441m", "2.5m"])
def test_a_horizon_out_of_range_is_refused_naming_it(hours, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLIGHTDELAY_HOME", str(tmp_path))
    monkeypatch.setenv("FLIGHTDELAY_HORIZON_HOURS", hours)
    assert cli.main(["build"]) == 2
    assert f"FLIGHTDELAY_HORIZON_HOURS: a prediction horizon of {hours!r} hours" in capsys.readouterr().err
    monkeypatch.delenv("FLIGHTDELAY_HORIZON_HOURS")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--horizon-hours", hours, "build"])
    assert exit_info.value.code == 2
    assert f"a prediction horizon of {hours!r} hours" in capsys.readouterr().err


def test_the_horizon_flag_wins_over_a_bad_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLIGHTDELAY_HOME", str(tmp_path))
    monkeypatch.setenv("FLIGHTDELAY_HORIZON_HOURS", "abc")
    assert cli.main(["--horizon-hours", "0.5", "doctor"]) in (0, 1)  # doctor ran: its checks decide
    assert "FLIGHTDELAY_HORIZON_HOURS" not in capsys.readouterr().err
    assert load_settings(prediction_horizon_minutes=30).prediction_horizon_minutes == 30
    monkeypatch.setenv("FLIGHTDELAY_HORIZON_HOURS", "40m")  # minutes no decimal of hours can write
    assert load_settings().prediction_horizon_minutes == 40
