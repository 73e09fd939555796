"""What a dbt build reads, month by month, and what the next build must therefore redo.

`flightdelay build` records these inputs with every build (wap.builds.inputs). The next build compares the
current inputs with those of the published build and of every build attempted since (whose leftovers the
intermediate tables may hold) and plans:

- nothing: the inputs equal those of the current build, which finished (the audit marts are that build);
- from month M: the first month whose raw flights or lake weather differ; the models incremental by month
  (macros/incremental_by_month.sql) rebuild every flight dated M or later, which equals a full refresh because a
  feature only looks back in time;
- full refresh: no build was published yet, the dbt project or its variables changed, or `--full-refresh`.

A month's flights are summarised from `raw.flights` (rows, first and last load time, files: a re-delivered file
is reloaded with a new load time); its weather by a hash of every lake row of that observation month (the lake is
small next to the flights, and a content hash is what says whether a re-run of the weather job changed a month).
Both are cheap at any scale: the flights by one grouped scan, the weather from its Parquet files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import yaml

from flightdelay.settings import Settings
from spark_prep import lake_schema, lake_snapshots

# what dbt builds and tests from, besides the warehouse: a change to any of it may change every row (tests/ holds
# pytest's files too, so only dbt's own kinds of file count there)
DBT_PROJECT_PATHS = ("models", "macros", "seeds", "tests", "dbt_project.yml", "selectors.yml", "profiles.yml")
DBT_FILE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".md")
LAKE_TABLES = tuple(lake_schema.TABLES)  # every table the lake commits


@dataclass(frozen=True)
class BuildInputs:
    project: str  # digest of the dbt project's files, the dbt target and the variables the flow passes
    flight_months: dict[str, str]  # 'YYYY-MM' -> summary of raw.flights rows dated in it
    weather_months: dict[str, str]  # 'YYYY-MM' -> hash of the lake's rows observed in it

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BuildInputs:
        data = json.loads(text)
        return cls(data["project"], dict(data["flight_months"]), dict(data["weather_months"]))

    def months_changed_since(self, earlier: BuildInputs) -> set[str]:
        """Months whose flights or weather differ from `earlier`'s, including months either side lacks."""
        changed = set()
        for now, then in ((self.flight_months, earlier.flight_months),
                          (self.weather_months, earlier.weather_months)):
            changed |= {month for month in set(now) | set(then) if now.get(month) != then.get(month)}
        return changed


@dataclass(frozen=True)
class BuildPlan:
    full_refresh: bool
    rebuild_from_month: str | None  # 'YYYY-MM-01', when incremental
    reason: str


def first_rebuilt_day(settings: Settings, month_start: str) -> date:
    """The first flight date a rebuild from `month_start` ('YYYY-MM-01') rewrites: dbt_project.yml's
    `rebuild_margin_days` earlier (macros/incremental_by_month.sql says why)."""
    project = yaml.safe_load((settings.project_root / "dbt_project.yml").read_text())
    return date.fromisoformat(month_start) - timedelta(days=int(project["vars"]["rebuild_margin_days"]))


def project_digest(settings: Settings, dbt_vars: dict[str, object]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"target": settings.dbt_target, "vars": dbt_vars}, sort_keys=True).encode())
    root = settings.project_root
    for name in DBT_PROJECT_PATHS:
        path = root / name
        files = (sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in DBT_FILE_SUFFIXES) if path.is_dir()
                 else [path] if path.exists() else [])
        for file in files:
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def flight_months(con) -> dict[str, str]:
    """Per flight month, what raw.flights holds of it (none before the first load)."""
    if not con.execute("select count(*) from information_schema.tables where table_schema = 'raw' "
                       "and table_name = 'flights'").fetchone()[0]:
        return {}
    rows = con.execute(
        "select cast(date_trunc('month', fl_date) as date), count(*), min(loaded_at), max(loaded_at), "
        "count(distinct source_file) from raw.flights group by 1").fetchall()
    return {f"{month:%Y-%m}": f"{n}|{first}|{last}|{files}" for month, n, first, last, files in rows if month}


def weather_months(lake_dir: Path) -> dict[str, str]:
    """Per observation month, a hash of every row of every committed lake table (none before the first prep)."""
    weather_dir = Path(lake_dir) / "weather"
    snapshot = lake_snapshots.read_local(weather_dir)
    if snapshot is None:
        return {}
    tokens: dict[str, list[str]] = {}
    with duckdb.connect(":memory:") as con:
        con.execute("set TimeZone = 'UTC'")
        for table in (name for name in LAKE_TABLES
                      if name in snapshot.tables and lake_snapshots.has_parquet_files(weather_dir, name)):
            files = lake_snapshots.parquet_files(weather_dir, table)
            rows = con.execute(
                "select observation_month, count(*), sum(hash(t)) from read_parquet(?, hive_partitioning = true, "
                "hive_types_autocast = false) as t group by observation_month order by observation_month",
                [files]).fetchall()
            for month, n, content in rows:
                tokens.setdefault(str(month)[:7], []).append(f"{table}:{n}:{content}")
    return {month: hashlib.sha256("|".join(parts).encode()).hexdigest()[:16] for month, parts in tokens.items()}


def read_inputs(settings: Settings, con, dbt_vars: dict[str, object]) -> BuildInputs:
    return BuildInputs(project_digest(settings, dbt_vars), flight_months(con), weather_months(settings.lake_dir))


def plan(current: BuildInputs, published: BuildInputs | None, attempted_since: list[BuildInputs],
         full_refresh: bool = False) -> BuildPlan:
    """What the build must redo, given the published build's inputs and those of every build attempted since."""
    if full_refresh:
        return BuildPlan(True, None, "--full-refresh")
    if published is None:
        return BuildPlan(True, None, "no build was published yet")
    earlier = [published, *attempted_since]
    if any(inputs.project != current.project for inputs in earlier):
        return BuildPlan(True, None, "the dbt project or its variables changed since the published build")
    changed = set().union(*(current.months_changed_since(inputs) for inputs in earlier))
    if not changed:
        months = [*current.flight_months, *current.weather_months]
        if not months:
            return BuildPlan(True, None, "no flights or weather loaded yet")
        # the published months are current; the models delete and insert nothing past the newest of them
        following = _next_month(max(months))
        return BuildPlan(False, f"{following}-01", "no month changed since the published build")
    first = min(changed)
    return BuildPlan(False, f"{first}-01", f"{len(changed)} month(s) changed since the published build, "
                                           f"the first {first}")


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"
