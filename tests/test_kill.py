"""`kill -9` at random points of `load`, `prep` and `publish`: the published marts, the raw tables and the
lake are each found either as they were or completely new, never half-updated, and the next run heals.

Each command runs through the CLI in a session of its own and its whole process group is killed (Spark's JVM
and Python workers with it), as a crash or the OOM killer would. The delays come from a fixed seed and take
turns between kinds, so that the short moments that matter are hit on every run, not by luck: `anywhere`
(uniform over a normal run's duration), `in step` (uniform from the step's start line to the normal run's
end), and from the moment the command starts to commit (DuckDB's write-ahead log appears): `in commit`,
uniform over the rest of a normal run, and `at commit`, uniform over the next 50 ms. For `prep`: `in stage`,
uniform from when its first run folder appears, and `at commit`, within 50 ms of its last staged output
(the quarantine) being complete, which the pointer's replacement follows. Each test prints where its kills
landed and what they left.

Longer than 350 lines on purpose: the three commands' scenarios share one harness (the process-group kill, the
seeded delay kinds, the before/after states) and read as one specification of crash safety.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from flightdelay.warehouse import wap
from flightdelay.warehouse.duckdb_warehouse import DuckDBWarehouse
from spark_prep import lake_snapshots
from tests.conftest import PROJECT_ROOT, FlowRun

pytestmark = pytest.mark.integration

SEED = 20130101
KILLS = {"publish": 12, "load": 12, "prep": 10}
# "at commit" / "at swap": within this long of the marker's first sight, where the renames or the WAL write are
AT_MARK_SECONDS = 0.05


# ---------------------------------------------------------------- processes


@dataclass
class Finished:
    returncode: int
    seconds: float
    step_started: float | None  # seconds from launch to the step's "[1/1] <step> ..." line
    marked: float | None  # seconds from launch to when the watched marker (WAL, ready-to-swap) first showed
    stdout: str
    stderr: str


class Command:
    """`flightdelay ARGS` in a new session (so its children can be killed with it), output to files."""

    def __init__(self, env: dict[str, str], work: Path, *args: str):
        work.mkdir(parents=True, exist_ok=True)
        self.out, self.err = work / "stdout.txt", work / "stderr.txt"
        self.step_line = f"[1/1] {args[0]} ..."
        self.started = time.monotonic()
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "flightdelay.cli", *args],
                                            env={**os.environ, **env}, cwd=PROJECT_ROOT, stdout=out, stderr=err,
                                            start_new_session=True)

    def stdout(self) -> str:
        return self.out.read_text()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait_for(self, marker: Callable[[], bool]) -> float | None:
        """Seconds from launch until `marker()` holds; None if the command ends first."""
        while self.process.poll() is None:
            if marker():
                return self.elapsed()
            time.sleep(0.005)
        return None

    def finish(self, marker: Callable[[], bool] = lambda: False, timeout: float = 600) -> Finished:
        step_started = marked = None
        while self.process.poll() is None:
            if step_started is None and self.step_line in self.stdout():
                step_started = self.elapsed()
            if marked is None and marker():
                marked = self.elapsed()
            if self.elapsed() > timeout:
                self.kill()
                raise AssertionError(f"{self.process.args} did not finish in {timeout} s")
            time.sleep(0.005)
        return Finished(self.process.returncode, self.elapsed(), step_started, marked, self.stdout(),
                        self.err.read_text())

    def kill(self) -> float:
        """kill -9 the whole process group; wait until none of it runs. Returns seconds since launch."""
        at = self.elapsed()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=60)
        wait_until_group_gone(self.process.pid)
        return at

    def landed(self) -> str:
        out = self.stdout()
        if "done in" in out:
            return "after the step"
        return "in the step" if self.step_line in out else "before the step"


def wait_until_group_gone(group: int, timeout: float = 60) -> None:
    """Orphaned members (the JVM, Python workers) may outlive the leader for a moment; zombies do not count."""
    deadline = time.monotonic() + timeout
    while True:
        running = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                state, _, process_group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            except (OSError, ValueError):
                continue
            if int(process_group) == group and state != "Z":
                running.append(stat.parent.name)
        if not running:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes {running} of killed group {group} still run after {timeout} s")
        time.sleep(0.05)


def run(env: dict[str, str], work: Path, *args: str, marker: Callable[[], bool] = lambda: False) -> Finished:
    done = Command(env, work, *args).finish(marker)
    assert done.returncode == 0, f"flightdelay {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def kill_at_random_point(command: Command, kind: str, rng: random.Random, normal: Finished,
                         marker: Callable[[], bool]) -> float:
    """Kill `command` at a point of the given kind (see the module's docstring); returns seconds from launch."""
    if kind == "anywhere":
        delay = rng.uniform(0, normal.seconds)
    elif kind == "in step":
        delay = rng.uniform(normal.step_started or 0, normal.seconds)
    else:
        assert normal.marked is not None, "the normal run never showed the marker"
        marked = command.wait_for(marker)
        rest = AT_MARK_SECONDS if kind.startswith("at ") else normal.seconds - normal.marked
        delay = (marked or command.elapsed()) + rng.uniform(0, rest)
    time.sleep(max(0.0, delay - command.elapsed()))
    return command.kill()


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchone()[0]


def wal_of(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".wal")


# ---------------------------------------------------------------- publish


def table_sums(warehouse: Path, schema: str, tables: list[str]) -> dict[str, tuple[int, int]]:
    """Row count and sum of row hashes per table: equal sums, equal content (in any order)."""
    with duckdb.connect(str(warehouse)) as con:  # read-write: replays what a killed writer left in the WAL
        return {table: con.execute(f"select count(*), coalesce(sum(hash(t)), 0) from {schema}.{table} as t").fetchone()
                for table in tables}


def publications(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return scalar(con, "select count(*) from wap.publications")


def isolated_env(flow: FlowRun, root: Path, warehouse: Path) -> dict[str, str]:
    return {**flow.env, "FLIGHTDELAY_WAREHOUSE": str(warehouse), "FLIGHTDELAY_LAKE": str(root / "lake"),
            "FLIGHTDELAY_ARTIFACTS": str(root / "artifacts")}


def fresh_copy(flow: FlowRun, template: Path, root: Path) -> tuple[dict[str, str], Path]:
    """A copy of the warehouse `template` in a flow home of its own under `root`: one per killed process."""
    warehouse = root / "warehouse" / "flight_delays.duckdb"
    warehouse.parent.mkdir(parents=True)
    shutil.copyfile(template, warehouse)
    return isolated_env(flow, root, warehouse), warehouse


def test_kill_publish(january_run: FlowRun, tmp_path):
    assert january_run.first.returncode == 0, january_run.first.stderr[-2000:]
    template = tmp_path / "template" / "flight_delays.duckdb"
    template.parent.mkdir()
    shutil.copyfile(january_run.env["FLIGHTDELAY_WAREHOUSE"], template)
    with duckdb.connect(str(template)) as con:
        tables = [row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts_audit' "
            "and table_type = 'BASE TABLE' order by table_name").fetchall()]
        # A new audit build that differs from what is published in every table, and bigger, so the copy
        # takes long enough (and writes enough to the WAL to checkpoint) to be killed in the middle of.
        for table in tables:
            copies = 8 if table in ("fct_flights", "ml_flight_delay_features") else 2
            con.execute(f"create or replace table marts_audit.{table} as "
                        f"select t.* from marts_audit.{table} as t, range({copies})")
        wap.ensure_ledger(con)  # recorded as built and validated through the ledger, as build + validate would
        build_id = wap.start_build(con)
        content = wap.fingerprint(con, "marts_audit", DuckDBWarehouse(template))
        wap.finish_build(con, build_id, content)
        wap.finish_validation(con, wap.start_validation(con, build_id, content.digest), True, "kill test")
        old_publications = scalar(con, "select count(*) from wap.publications")
    old, new = table_sums(template, "marts", tables), table_sums(template, "marts_audit", tables)
    assert all(old[t] != new[t] for t in tables)

    env, warehouse = fresh_copy(january_run, template, tmp_path / "normal")
    normal = run(env, tmp_path / "normal", "publish", marker=wal_of(warehouse).exists)
    assert table_sums(warehouse, "marts", tables) == new

    rng = random.Random(SEED)
    kinds = ("anywhere", "in step", "in commit", "at commit")
    outcomes = Counter()
    for number in range(KILLS["publish"]):
        env, warehouse = fresh_copy(january_run, template, tmp_path / f"kill{number}")
        command = Command(env, tmp_path / f"kill{number}", "publish")
        kind = kinds[number % len(kinds)]
        at = kill_at_random_point(command, kind, rng, normal, wal_of(warehouse).exists)
        wal_left = wal_of(warehouse).exists()
        found = table_sums(warehouse, "marts", tables)
        recorded = publications(warehouse) - old_publications
        state = "old" if found == old else "new" if found == new else "mixed"
        point = f"kill {number} ({kind}, at {at:.2f} s, {command.landed()}{', WAL left' if wal_left else ''})"
        assert state != "mixed", (
            f"{point}: marts half-published: "
            + ", ".join(t for t in tables if found[t] not in (old[t], new[t]))
            + " match neither the old nor the new version")
        assert recorded == (1 if state == "new" else 0), f"{point}: marts {state} but {recorded} publications"
        outcomes[f"{command.landed()}{', WAL left' if wal_left else ''}: marts {state}"] += 1
        print(f"publish {point}: marts {state}")

        healed = run(env, tmp_path / f"kill{number}" / "heal", "publish")
        assert table_sums(warehouse, "marts", tables) == new, healed.stdout[-2000:]
    print(f"publish: normal run {normal.seconds:.2f} s (step from {normal.step_started:.2f} s, WAL from "
          f"{normal.marked:.2f} s); kills: {dict(outcomes)}")


# ---------------------------------------------------------------- load


def file_state(warehouse: Path, name: str) -> tuple[int, int, int]:
    """Rows of one file in raw.flights, raw.flights_rejected and raw.load_audit."""
    with duckdb.connect(str(warehouse)) as con:
        return tuple(scalar(con, f"select count(*) from raw.{table} where source_file = ?", [name])
                     for table in ("flights", "flights_rejected", "load_audit"))


def quality_summary(warehouse: Path, name: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select rows_read, rows_loaded, rows_quarantined from raw.data_quality_summary "
                           "where source_kind = 'flights' and source_file = ?", [name]).fetchall()


def test_kill_load(january_run: FlowRun, tmp_path):
    from flightdelay.raw.sample import write_sample

    assert january_run.first.returncode == 0, january_run.first.stderr[-2000:]
    delivery = tmp_path / "delivery"
    write_sample(tmp_path / "february", PROJECT_ROOT / "seeds", months=[2])
    delivery.mkdir()
    february, january = delivery / "bts_ontime_2013_02.csv", delivery / "bts_ontime_2013_01.csv"
    shutil.copyfile(tmp_path / "february" / "bts" / february.name, february)
    # a re-delivered January: every 50th flight gone, every 97th with an impossible date (rejected)
    lines = (january_run.root / "raw" / "bts" / january.name).read_text().splitlines(keepends=True)
    january.write_text(lines[0] + "".join(
        "13/45/2013 12:00:00 AM," + line.split(",", 1)[1] if n % 97 == 0 else line
        for n, line in enumerate(lines[1:], start=2) if n % 50))
    files = [str(february), str(january)]  # a new file and a replacement

    template = tmp_path / "template.duckdb"
    shutil.copyfile(january_run.env["FLIGHTDELAY_WAREHOUSE"], template)
    old = {path.name: file_state(template, path.name) for path in (february, january)}

    env, warehouse = fresh_copy(january_run, template, tmp_path / "normal")
    normal = run(env, tmp_path / "normal", "load", *files, marker=wal_of(warehouse).exists)
    new = {path.name: file_state(warehouse, path.name) for path in (february, january)}
    summary = {path.name: quality_summary(warehouse, path.name) for path in (february, january)}
    assert all(old[name] != new[name] for name in new) and new[february.name][0] > 20000

    rng = random.Random(SEED + 1)
    kinds = ("anywhere", "in step", "in commit", "at commit")
    outcomes = Counter()
    for number in range(KILLS["load"]):
        env, warehouse = fresh_copy(january_run, template, tmp_path / f"kill{number}")
        command = Command(env, tmp_path / f"kill{number}", "load", *files)
        kind = kinds[number % len(kinds)]
        at = kill_at_random_point(command, kind, rng, normal, wal_of(warehouse).exists)
        wal_left = wal_of(warehouse).exists()
        point = f"kill {number} ({kind}, at {at:.2f} s, {command.landed()}{', WAL left' if wal_left else ''})"
        found = {}
        for name in new:
            state = file_state(warehouse, name)
            found[name] = "old" if state == old[name] else "new" if state == new[name] else f"partial {state}"
            assert found[name] in ("old", "new"), (
                f"{point}: {name} has {state} rows in raw.flights / raw.flights_rejected / raw.load_audit: "
                f"neither as before {old[name]} nor loaded completely {new[name]}")
        outcomes[f"February {found[february.name]}, January {found[january.name]}"] += 1
        print(f"load {point}: {found}")

        run(env, tmp_path / f"kill{number}" / "heal", "load", *files)
        for name in new:
            flights, rejected, audits = file_state(warehouse, name)
            assert (flights, rejected) == new[name][:2] and audits >= new[name][2], (point, name)
            assert quality_summary(warehouse, name) == summary[name], (point, name)
    print(f"load: normal run {normal.seconds:.2f} s (step from {normal.step_started:.2f} s, WAL from "
          f"{normal.marked:.2f} s); kills: {dict(outcomes)}")


# ---------------------------------------------------------------- prep

STATION = "74486094789"  # JFK: one LCD file ...
MONTHS = ("2013-01", "2013-02", "2013-03")  # ... of three months: three partitions per table, a quick Spark job
# lake table -> (key of a row besides the station, a value that moves with the raw temperatures)
LAKE_TABLES = {"hourly_observations": ("observed_at_utc", "temp_f"), "daily_summaries": ("summary_date", "tmax_f")}


def write_lcd_version(source: str, target: Path, version: int) -> None:
    """The LCD file (three months of it) with every dry-bulb temperature raised by `version` whole degrees:
    each lake row then says which run wrote it (its temperature minus the first run's), so a table mixing
    two runs, or missing a partition, shows."""
    rows = list(csv.reader(io.StringIO(source)))
    date, column = rows[0].index("DATE"), rows[0].index("HourlyDryBulbTemperature")
    kept = [rows[0]]
    for row in rows[1:]:
        if not row[date].startswith(MONTHS):
            continue
        match = re.fullmatch(r"(-?\d+)(.*)", row[column])
        if match:
            row[column] = f"{int(match[1]) + version}{match[2]}"
        kept.append(row)
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(kept)
    target.write_text(buffer.getvalue())


def parquet(lake: Path, table: str) -> str:
    """A lake table as every reader sees it: its committed copy, through the lake's pointer."""
    return (f"read_parquet('{lake_snapshots.table_dir(lake / 'weather', table)}/*/*/*.parquet', "
            "hive_partitioning = true)")


def remember_first_run(lake: Path, con: duckdb.DuckDBPyConnection) -> None:
    for table, (key, value) in LAKE_TABLES.items():
        con.execute(f"create table base_{table} as select cast(station_id as varchar) as station_id, {key}, {value} "
                    f"from {parquet(lake, table)}")


@dataclass
class LakeState:
    versions: dict[str, dict[str, set[int]]]  # table -> partition -> runs its rows come from, as readers see it
    rows: dict[str, int]
    leftovers: list[str]  # run folders no committed run uses: what a killed prep left, for the next one to delete

    def table_complete(self, table: str, version: int, base_rows: dict[str, int]) -> bool:
        return self.rows[table] == base_rows[table] and all(runs == {version} for runs in self.versions[table].values())

    def complete(self, version: int, base_rows: dict[str, int]) -> bool:
        return all(self.table_complete(table, version, base_rows) for table in LAKE_TABLES)

    def describe(self) -> str:
        tables = "; ".join(
            f"{table}: {self.rows[table]} rows, " + ", ".join(f"{p} from run {sorted(v)}" for p, v in parts.items())
            for table, parts in self.versions.items())
        return tables + (f"; left by a killed run: {self.leftovers}" if self.leftovers else "")


def lake_state(lake: Path, con: duckdb.DuckDBPyConnection) -> LakeState:
    versions, rows = {}, {}
    snapshot = lake_snapshots.read_local(lake / "weather")
    for table, (key, value) in LAKE_TABLES.items():
        if snapshot is None or table not in snapshot.tables:
            versions[table], rows[table] = {}, 0
            continue
        found = con.execute(f"""
            select l.observation_month, list(distinct cast(l.{value} - b.{value} as integer)), count(*)
            from {parquet(lake, table)} as l
            left join base_{table} as b on b.station_id = cast(l.station_id as varchar) and b.{key} = l.{key}
            where l.{value} is not null and b.{value} is not null
            group by all order by all""").fetchall()
        versions[table] = {str(month): set(runs) for month, runs, _ in found}
        rows[table] = con.execute(f"select count(*) from {parquet(lake, table)}").fetchone()[0]
    kept = snapshot.kept_folders() if snapshot else set()
    leftovers = sorted(f"{folder.parent.name}/{folder.name}" for folder in (lake / "weather").glob("*/run-*")
                       if f"{folder.parent.name}/{folder.name}" not in kept)
    return LakeState(versions, rows, leftovers)


@dataclass
class PrepKills:
    table_findings: list[str]  # kills after which a lake table, as readers see it, mixed two runs or missed rows
    lake_findings: list[str]  # kills after which the lake's tables were each complete, but from different runs


@pytest.fixture(scope="module")
def prep_kills(tmp_path_factory) -> PrepKills:
    """Kill `prep` KILLS["prep"] times; after each kill, note which run each lake table holds as readers see it
    (through the lake's pointer), and let the next prep (the next kill's, or the last one, which must leave
    the lake complete with no leftovers) heal it."""
    from flightdelay.raw.sample import write_sample

    tmp_path = tmp_path_factory.mktemp("kill_prep")
    root = tmp_path / "project"
    write_sample(root / "sample", PROJECT_ROOT / "seeds", months=[1])
    source = (root / "sample" / "lcd" / f"LCD_{STATION}_2013.csv").read_text()
    lcd = root / "raw" / "lcd" / f"LCD_{STATION}_2013.csv"
    lcd.parent.mkdir(parents=True)
    lake = root / "lake"
    env = {"FLIGHTDELAY_RAW": str(root / "raw"), "FLIGHTDELAY_LAKE": str(lake),
           "FLIGHTDELAY_WAREHOUSE": str(root / "warehouse" / "flight_delays.duckdb"),
           "FLIGHTDELAY_ARTIFACTS": str(root / "artifacts")}

    def run_folders() -> set[Path]:
        return set((lake / "weather" / "hourly_observations").glob("run-*"))

    def staged_quarantines() -> set[Path]:  # the last thing a run stages; its commit follows at once
        return set((lake / "weather" / "_quarantine").glob("run-*/_SUCCESS"))

    write_lcd_version(source, lcd, 0)
    normal = run(env, tmp_path / "first", "prep", marker=lambda: bool(run_folders()))
    con = duckdb.connect()
    remember_first_run(lake, con)
    base_rows = {table: scalar(con, f"select count(*) from base_{table}") for table in LAKE_TABLES}
    first = lake_state(lake, con)
    assert normal.marked is not None and first.complete(0, base_rows) and not first.leftovers, first.describe()
    assert all(len(parts) == len(MONTHS) for parts in first.versions.values())

    rng = random.Random(SEED + 2)
    holds = dict.fromkeys(LAKE_TABLES, 0)  # the run each table holds
    kills = PrepKills([], [])
    where, healed_after, leftovers_seen = Counter(), [], 0
    for number in range(1, KILLS["prep"] + 1):
        write_lcd_version(source, lcd, number)
        folders_before, quarantines_before = run_folders(), staged_quarantines()
        command = Command(env, tmp_path / f"kill{number}", "prep")
        kind = ("at commit", "anywhere", "in stage")[number % 3]  # the step starts at once: no "in step"
        marker = (lambda before=quarantines_before: bool(staged_quarantines() - before)) if kind == "at commit" \
            else (lambda before=folders_before: bool(run_folders() - before))
        at = kill_at_random_point(command, kind, rng, normal, marker)
        where[kind] += 1
        state = lake_state(lake, con)
        leftovers_seen += bool(state.leftovers)
        point = f"kill {number} ({kind}, at {at:.2f} s)"
        print(f"prep {point}: {state.describe()}")
        broken, held = [], dict(holds)
        for table in LAKE_TABLES:
            acceptable = sorted({holds[table], number})  # as before, or this run's
            complete = [v for v in acceptable if state.table_complete(table, v, base_rows)]
            if complete:
                holds[table] = complete[0]
            else:
                broken.append(table)
                kills.table_findings.append(
                    f"{point}: {table} half-updated (expected every row from one of the runs {acceptable}): "
                    f"{state.describe()}")
        if not broken and len(set(holds.values())) > 1 and holds != held:  # this kill left them apart
            kills.lake_findings.append(f"{point}: the lake's tables are from different runs ({holds}): "
                                       f"{state.describe()}")
        if broken:  # the next prep must heal it; run it now, so the next kill starts from tables it can name
            healed = run(env, tmp_path / f"kill{number}" / "heal", "prep")
            state = lake_state(lake, con)
            assert state.complete(number, base_rows) and not state.leftovers, (
                f"{point}: the next prep did not heal the lake: {state.describe()}\n{healed.stdout[-2000:]}")
            healed_after.append(number)
            holds = dict.fromkeys(LAKE_TABLES, number)

    final = run(env, tmp_path / "final", "prep")
    state = lake_state(lake, con)
    assert state.complete(KILLS["prep"], base_rows) and not state.leftovers, (
        f"the prep after the last kill did not heal the lake: {state.describe()}")
    print(f"prep: normal run {normal.seconds:.1f} s, its first run folder at {normal.marked:.1f} s, final run "
          f"{final.seconds:.1f} s; kills {dict(where)}; tables from different runs after "
          f"{len(kills.lake_findings)} kills; kills that left folders for the next prep to delete: {leftovers_seen}; "
          f"extra prep to heal a broken table after kills {healed_after}")
    return kills


def test_kill_prep_each_lake_table_is_old_or_new(prep_kills):
    """Readers resolve tables through the lake's pointer, which a run replaces in one step after staging
    everything: whatever the kill point, each table is wholly the previous run's or wholly the new one's."""
    assert prep_kills.table_findings == [], "\n".join(prep_kills.table_findings)


def test_kill_prep_lake_tables_are_from_one_run(prep_kills):
    """One pointer for all tables: never the hourly table of one run with the daily summaries of another."""
    assert prep_kills.lake_findings == [], "\n".join(prep_kills.lake_findings)
