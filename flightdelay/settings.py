"""One typed settings object, built from environment variables, with defaults for the embedded setup.

Every path defaults to a folder of the project checkout, so `flightdelay run` works offline on a
fresh clone; production points the same names at S3 / Redshift / SageMaker through the environment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from pathlib import Path


def _project_root() -> Path:
    """The checkout that holds dbt_project.yml: FLIGHTDELAY_HOME, else the current folder or a parent."""
    explicit = os.environ.get("FLIGHTDELAY_HOME")
    if explicit:
        return Path(explicit).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dbt_project.yml").exists():
            return candidate
    # Installed package used from elsewhere: fall back to the source tree it was installed from.
    return Path(__file__).resolve().parent.parent


def _path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).resolve() if value else default


def _date(env: str, default: str) -> date:
    return date.fromisoformat(os.environ.get(env, default))


HORIZON_WRITTEN = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<minutes>m?)", re.ASCII)
# A day: the feature ranges (config.meta.range in models/marts/ml/_ml__models.yml) bound the previous leg's gap
# by the horizon plus a day.
MAX_HORIZON_MINUTES = 24 * 60


def horizon_minutes(hours: str) -> int:
    """The prediction horizon in whole minutes from a number of hours as written (`2`, `24`, `0.5`), or of minutes
    with an `m` (`40m`: 40 minutes are no finite decimal of hours); ValueError saying what is accepted otherwise."""
    # plain ASCII decimals only: Python's own parsers also take "0_5" (5), "1e1" and other scripts' digits
    written = HORIZON_WRITTEN.fullmatch(hours.strip())
    valid = False
    if written:  # decimal, not float: 1.1 hours is 66 minutes exactly, not 66.00000000000001
        minutes = Decimal(written["number"]) * (1 if written["minutes"] else 60)
        valid = 0 < minutes <= MAX_HORIZON_MINUTES and minutes == minutes.to_integral_value()
    if not valid:
        shown = hours if len(hours) <= 40 else hours[:40] + "..."
        raise ValueError(f"a prediction horizon of {shown!r} hours: expected a positive number of hours, at most "
                         f"{MAX_HORIZON_MINUTES // 60} and in whole minutes, such as 24, 6, 2 or 0.5 (or minutes: 40m)")
    return int(minutes)


def horizon_argument(minutes: int) -> str:
    """What to write for a horizon of `minutes` (FLIGHTDELAY_HORIZON_HOURS, --horizon-hours): hours when exact."""
    hours = Decimal(minutes) / 60
    return format(hours.normalize(), "f") if minutes % 3 == 0 else f"{minutes}m"


def _horizon(env: str, default: str) -> int:
    try:
        return horizon_minutes(os.environ.get(env, default))
    except ValueError as error:
        raise ValueError(f"{env}: {error}") from None


def describe_horizon(minutes: int) -> str:
    """A horizon as people say it: '30 min', '2 h', '1 h 30 min'."""
    hours, rest = divmod(minutes, 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{rest} min" if rest else "") if part)


@dataclass(frozen=True)
class Settings:
    project_root: Path
    raw_dir: Path
    lake_dir: Path
    warehouse_path: Path
    artifacts_dir: Path
    dbt_target: str = "local"
    # Where the flow runs: `local` (DuckDB file), `postgres` (a PostgreSQL server as the warehouse) or `aws`.
    backend: str = "local"
    # libpq connection string of the postgres backend (FLIGHTDELAY_PG_*, the same variables profiles.yml reads)
    postgres_dsn: str = ""
    # features must be known this many minutes before scheduled departure (the as-of time)
    prediction_horizon_minutes: int = 120
    train_start: date = date(2013, 1, 1)
    # Early-stopping period, between training and test; default: the month before test_start.
    validation_start: date | None = None
    test_start: date = date(2013, 11, 1)
    test_end: date = date(2013, 12, 31)
    spark_master: str = "local[2]"
    cdo_units: str = "standard"
    # Rebuild the models incremental by month whole instead of from the first month that changed.
    full_refresh: bool = False
    # rerun a step even when its inputs are those it last ran on (each step says when it skips itself)
    force: bool = False
    # retrain even when the model's training data and code are unchanged (the policy: flow/ml_inputs.py)
    retrain: bool = False
    # CSV airport_id,airport_code for BTS files that carry only numeric airport ids.
    airport_id_map: Path | None = None
    # DuckDB's own default is 80% of RAM; with a cap its joins and sorts spill to disk instead (profiles.yml
    # reads the same variable for dbt).
    duckdb_memory_limit: str = "4GB"
    # Zip bombs: the most a zipped download may expand to, in bytes and as a multiple of its compressed size
    # (a BTS month with every column is about 250 MB, ten times its zip).
    max_unzipped_bytes: int = 4 << 30
    max_zip_ratio: float = 100.0
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def flights_raw_dir(self) -> Path:
        return self.raw_dir / "bts"

    @property
    def weather_raw_dir(self) -> Path:
        return self.raw_dir / "lcd"

    @property
    def cdo_daily_raw_dir(self) -> Path:
        return self.raw_dir / "cdo"

    @property
    def ghcn_daily_raw_dir(self) -> Path:
        return self.raw_dir / "ghcn"

    @property
    def seeds_dir(self) -> Path:
        return self.project_root / "seeds"

    @property
    def ml_dir(self) -> Path:
        return self.artifacts_dir / "ml"

    @property
    def expectations_dir(self) -> Path:
        return self.project_root / "expectations"

    @property
    def data_docs_dir(self) -> Path:
        return self.artifacts_dir / "data_docs"

    @property
    def metastore_dir(self) -> Path:
        return self.lake_dir / "_metastore"

    def warehouse(self):
        """The backend's warehouse (flightdelay/warehouse/engine.py): the DuckDB file or the PostgreSQL server."""
        from flightdelay.warehouse.engine import warehouse_for

        return warehouse_for(self)

    def connect_warehouse(self, read_only: bool = False):
        """A connection to the backend's warehouse (DuckDB's interface on every engine)."""
        return self.warehouse().connect(read_only=read_only)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)

    def with_backend(self, backend: str) -> Settings:
        """These settings on another home; the dbt target follows it unless FLIGHTDELAY_DBT_TARGET names one."""
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        return replace(self, backend=backend,
                       dbt_target=os.environ.get("FLIGHTDELAY_DBT_TARGET") or BACKEND_DBT_TARGETS[backend])

    def dbt_env(self) -> dict[str, str]:
        """Environment variables that profiles.yml and the dbt sources read."""
        return {
            "FLIGHTDELAY_WAREHOUSE": str(self.warehouse_path),
            "FLIGHTDELAY_LAKE": str(self.lake_dir),
            "FLIGHTDELAY_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_PROFILES_DIR": str(self.project_root),
            "DBT_PROJECT_DIR": str(self.project_root),
            **self.extra_env,
        }


BACKENDS = ("local", "postgres", "aws")
# the dbt target each backend builds, unless FLIGHTDELAY_DBT_TARGET names another
BACKEND_DBT_TARGETS = {"local": "local", "postgres": "postgres", "aws": "redshift"}


def postgres_dsn_from_env() -> str:
    """libpq connection string from FLIGHTDELAY_PG_* (profiles.yml's postgres target reads the same)."""
    parts = {
        "host": os.environ.get("FLIGHTDELAY_PG_HOST", "127.0.0.1"),
        "port": os.environ.get("FLIGHTDELAY_PG_PORT", "5432"),
        "user": os.environ.get("FLIGHTDELAY_PG_USER", "postgres"),
        "dbname": os.environ.get("FLIGHTDELAY_PG_DATABASE", "flight_delays"),
        "password": os.environ.get("FLIGHTDELAY_PG_PASSWORD", ""),
    }

    def value(text: str) -> str:  # libpq quoting: a value in single quotes, \ and ' escaped
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{key}={value(text)}" for key, text in parts.items() if text)


def _backend() -> str:
    backend = os.environ.get("FLIGHTDELAY_BACKEND", "local")
    if backend not in BACKENDS:
        raise ValueError(f"FLIGHTDELAY_BACKEND is {backend!r}; expected one of {', '.join(BACKENDS)}")
    return backend


def load_settings(prediction_horizon_minutes: int | None = None) -> Settings:
    """Settings from the environment; a horizon given (the CLI's --horizon-hours) replaces FLIGHTDELAY_HORIZON_HOURS."""
    root = _project_root()
    backend = _backend()
    return Settings(
        project_root=root,
        raw_dir=_path("FLIGHTDELAY_RAW", root / "data" / "raw"),
        lake_dir=_path("FLIGHTDELAY_LAKE", root / "lake"),
        warehouse_path=_path("FLIGHTDELAY_WAREHOUSE", root / "warehouse" / "flight_delays.duckdb"),
        artifacts_dir=_path("FLIGHTDELAY_ARTIFACTS", root / "artifacts"),
        backend=backend,
        postgres_dsn=postgres_dsn_from_env(),
        dbt_target=os.environ.get("FLIGHTDELAY_DBT_TARGET", BACKEND_DBT_TARGETS[backend]),
        airport_id_map=Path(os.environ["FLIGHTDELAY_AIRPORT_ID_MAP"]) if os.environ.get("FLIGHTDELAY_AIRPORT_ID_MAP")
        else None,
        prediction_horizon_minutes=prediction_horizon_minutes or _horizon("FLIGHTDELAY_HORIZON_HOURS", "2"),
        train_start=_date("FLIGHTDELAY_TRAIN_START", "2013-01-01"),
        validation_start=(
            _date("FLIGHTDELAY_VALIDATION_START", "") if os.environ.get("FLIGHTDELAY_VALIDATION_START") else None
        ),
        test_start=_date("FLIGHTDELAY_TEST_START", "2013-11-01"),
        test_end=_date("FLIGHTDELAY_TEST_END", "2013-12-31"),
        spark_master=os.environ.get("FLIGHTDELAY_SPARK_MASTER", "local[2]"),
        cdo_units=os.environ.get("FLIGHTDELAY_CDO_UNITS", "standard"),
        duckdb_memory_limit=os.environ.get("FLIGHTDELAY_DUCKDB_MEMORY_LIMIT", "4GB"),
        max_unzipped_bytes=int(os.environ.get("FLIGHTDELAY_MAX_UNZIPPED_BYTES", str(4 << 30))),
        max_zip_ratio=float(os.environ.get("FLIGHTDELAY_MAX_ZIP_RATIO", "100")),
    )
