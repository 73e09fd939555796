"""The convention gate (dbt-bouncer.yml, run by scripts/check_conventions.sh): the project passes it, and a
copy of the project with models that each break one house rule fails it, naming each model and its rule."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.engine  # dbt parse and dbt-bouncer in subprocesses

GATE = PROJECT_ROOT / "scripts" / "check_conventions.sh"
# What `dbt parse` and the gate read; target/ is left behind so each copy parses from scratch.
DBT_PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "selectors.yml", "dbt-bouncer.yml", "models", "macros",
                     "seeds", "analyses")


def copy_dbt_project(dest: Path) -> Path:
    """The dbt project alone, to parse it without touching this checkout's target/."""
    for name in DBT_PROJECT_FILES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, dest / name)
    # dbt's test-paths share tests/ with pytest: only its SQL files are dbt's (singular and generic tests)
    for source in (PROJECT_ROOT / "tests").rglob("*.sql"):
        target = dest / source.relative_to(PROJECT_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


def run_gate(project: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run the gate as `make conventions` does, with its failures also written as JSON."""
    results = project / "conventions.json"
    done = subprocess.run(
        ["bash", str(GATE), str(project), "--output-file", str(results), "--output-format", "json",
         "--output-only-failures"],
        capture_output=True, text=True, timeout=600,
    )
    failures = json.loads(results.read_text()) if results.exists() else []
    return done, failures


def test_project_follows_the_house_rules(tmp_path):
    done, failures = run_gate(copy_dbt_project(tmp_path))
    assert done.returncode == 0, "\n".join(f"{f['check_run_id']}: {f['failure_message']}" for f in failures) or (
        done.stdout + done.stderr)


# Each planted model keeps every rule but one; the YAML gives the rest what the rules ask for.
PLANTED_SQL = {
    # staging entity in the singular
    "models/staging/bts/stg_bts__flight.sql": "select source_file, source_line from {{ source('bts', 'flights') }}",
    # a mart reading a source instead of a staging model
    "models/marts/core/fct_planted_raw_flights.sql":
        "select cast(source_line as integer) as source_line from {{ source('bts', 'flights') }}",
    # a mart without a contract
    "models/marts/core/dim_planted_routes.sql": "select 'JFK-LAX' as route_code",
    # a model without a grain test
    "models/intermediate/int_flights_counted_again.sql": "select flight_id from {{ ref('fct_flights') }}",
    # a model without a description
    "models/marts/analytics/delay_rates_by_planted_day.sql": "select cast(1 as integer) as day_number",
}
PLANTED_YAML = """
version: 2
models:
  - name: stg_bts__flight
    description: Planted violation - one row per BTS line, but named in the singular.
    columns:
      - name: source_line
        data_tests: [unique]
  - name: fct_planted_raw_flights
    description: Planted violation - a mart that reads the raw source directly.
    config:
      contract: {enforced: true}
    columns:
      - name: source_line
        data_type: integer
        data_tests: [unique]
  - name: dim_planted_routes
    description: Planted violation - a mart that opts out of the contract its folder enforces.
    config:
      contract: {enforced: false}
    columns:
      - name: route_code
        data_tests: [unique]
  - name: int_flights_counted_again
    description: Planted violation - a model without a test of its grain.
  - name: delay_rates_by_planted_day
    config:
      contract: {enforced: true}
    columns:
      - name: day_number
        data_type: integer
        data_tests: [unique]
"""
EXPECTED = {
    ("check_model_names", "model.flight_delays.stg_bts__flight"),
    ("check_lineage_source_cannot_be_used", "model.flight_delays.fct_planted_raw_flights"),
    # the same model also reads source bts outside its staging folder
    ("check_source_used_by_models_in_same_directory", "source.flight_delays.bts.flights"),
    ("check_model_has_contracts_enforced", "model.flight_delays.dim_planted_routes"),
    ("check_model_has_unique_test", "model.flight_delays.int_flights_counted_again"),
    ("check_model_description_populated", "model.flight_delays.delay_rates_by_planted_day"),
}


def test_gate_fails_naming_each_model_that_breaks_a_rule(tmp_path):
    project = copy_dbt_project(tmp_path)
    for path, sql in PLANTED_SQL.items():
        (project / path).write_text(sql + "\n")
    (project / "models" / "_planted__models.yml").write_text(PLANTED_YAML)

    done, failures = run_gate(project)

    assert done.returncode != 0
    planted = {"model.flight_delays." + Path(path).stem for path in PLANTED_SQL} | {"source.flight_delays.bts.flights"}
    found = {(f["check_run_id"].split(":")[0], f["unique_id"]) for f in failures if f["unique_id"] in planted}
    assert found == EXPECTED
    # and the console output names the model, for whoever reads the failed build
    for _, unique_id in EXPECTED:
        assert unique_id.split(".")[-1] in done.stdout


# PostgreSQL cuts identifiers at 63 bytes and dbt refuses a longer relation name: a unit test runs as a relation
# named after itself, so a long name passes on DuckDB and fails the postgres home's build.
POSTGRES_MAX_IDENTIFIER = 63


def test_every_unit_test_and_model_name_fits_a_postgres_identifier():
    import yaml

    names = [path.stem for path in (PROJECT_ROOT / "models").rglob("*.sql")]
    for path in (PROJECT_ROOT / "models").rglob("*.yml"):
        names += [test["name"] for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])]
    assert len(names) > 40
    assert [name for name in names if len(name.encode()) > POSTGRES_MAX_IDENTIFIER] == []
