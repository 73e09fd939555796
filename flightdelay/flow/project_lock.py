"""One writing command at a time per warehouse and per lake.

Two commands at once would otherwise meet in DuckDB's file lock (a traceback, half a step done) or, for two
`prep` runs, in the lake, where each run deletes the folders no committed run uses: the other's, unfinished. Every CLI
command that writes takes this lock first: an exclusive `flock` on `.flightdelay.lock` in the warehouse's
folder and on one in the lake folder, so commands of checkouts whose FLIGHTDELAY_WAREHOUSE / FLIGHTDELAY_LAKE
point elsewhere do not wait for each other, and two checkouts sharing a lake do.

The operating system drops a flock when its holder exits, however it exits (kill -9 too), so the lock never
goes stale. The holder writes its PID, command line and start time into the file for the message a second
command prints; that text may be left over from a holder that died, so it is quoted only while the lock is
actually held.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flightdelay.settings import Settings

LOCK_FILE = ".flightdelay.lock"
WAIT_ENV = "FLIGHTDELAY_LOCK_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 0.0
# Exit code of a command that gave up waiting for the lock (1: a step failed, 2: bad input or refused file).
EXIT_BUSY = 3
POLL_SECONDS = 0.2


class ProjectBusy(RuntimeError):
    """Another command holds the lock; the message names it and says what to do."""


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    started_at: str  # ISO 8601, UTC
    host: str

    def describe(self) -> str:
        started = datetime.fromisoformat(self.started_at)
        running = (datetime.now(UTC) - started).total_seconds()
        host = "" if self.host == socket.gethostname() else f" on {self.host}"
        return (f"PID {self.pid}{host}, `{self.command}`, started {started:%Y-%m-%d %H:%M:%S} UTC "
                f"({running:.0f} s ago)")


def lock_paths(settings: Settings) -> list[Path]:
    """The lock files for the warehouse and the lake the settings point at (one if they share a folder)."""
    paths = []
    for folder in (settings.warehouse_path.parent, settings.lake_dir):
        path = folder.resolve() / LOCK_FILE
        if path not in paths:
            paths.append(path)
    return paths


def wait_seconds_from_env() -> float:
    raw = os.environ.get(WAIT_ENV, "")
    if not raw.strip():
        return DEFAULT_WAIT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise ValueError(f"{WAIT_ENV} must be a number of seconds >= 0 to wait for a busy project lock; "
                         f"found {raw!r}")
    return value


def _read_holder(path: Path) -> Holder | None:
    try:
        record = json.loads(path.read_text() or "null")
        return Holder(int(record["pid"]), str(record["command"]), str(record["started_at"]), str(record["host"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _current_holder(path: Path) -> Holder | None:
    """Who holds the lock, from its file: a new holder writes its record a moment after taking the lock, so
    a record of a process that is gone (or none) is given a short while to be replaced."""
    for _ in range(10):
        holder = _read_holder(path)
        if holder is not None and (holder.host != socket.gethostname() or _alive(holder.pid)):
            return holder
        time.sleep(0.05)
    return None


def _busy_message(path: Path, holder: Holder | None, waited: float) -> str:
    who = holder.describe() if holder else "a process that has not written its details yet"
    waited_text = f"; waited {waited:.0f} s" if waited >= 1 else ""
    return (f"another flightdelay command is writing to this warehouse / lake: {who} holds {path}{waited_text}. "
            f"Run this command again when it has finished, or set {WAIT_ENV}=<seconds> to wait for it; if it "
            "hangs, stop it" + (f" (kill {holder.pid})" if holder else "")
            + ". The operating system releases the lock when its holder exits, so it is never stale.")


def _try_lock_all(paths: list[Path]) -> tuple[list[int], Path | None]:
    """Take every lock or none: a command that waits holds nothing, so two waiting commands cannot deadlock."""
    taken: list[int] = []
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            _release(taken)
            return [], path
        taken.append(fd)
    return taken, None


def _release(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.ftruncate(fd, 0)  # a clean exit leaves no record behind; a killed holder's may stay
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class ProjectLock:
    """The project lock for the settings' warehouse and lake, for the command `flightdelay <argv>`."""

    def __init__(self, settings: Settings, argv: list[str], wait_seconds: float | None = None):
        self.paths = lock_paths(settings)
        self.argv = argv
        self.wait_seconds = wait_seconds
        self._fds: list[int] = []

    def acquire(self) -> Holder:
        """Take the lock; raise ProjectBusy if another command still holds it after the wait (default:
        FLIGHTDELAY_LOCK_WAIT_SECONDS, else 0), ValueError if that variable is not a number."""
        wait = wait_seconds_from_env() if self.wait_seconds is None else self.wait_seconds
        started = time.monotonic()
        announced = False
        while True:
            fds, busy = _try_lock_all(self.paths)
            if busy is None:
                break
            waited = time.monotonic() - started
            if waited >= wait:
                raise ProjectBusy(_busy_message(busy, _current_holder(busy), waited))
            if not announced:
                holder = _current_holder(busy)
                print(f"waiting up to {wait:.0f} s for {holder.describe() if holder else 'another command'} "
                      f"to release {busy} ...", file=sys.stderr, flush=True)
                announced = True
            time.sleep(min(POLL_SECONDS, max(wait - waited, 0.01)))
        self._fds = fds
        me = Holder(os.getpid(), shlex.join(["flightdelay", *self.argv]),
                    datetime.now(UTC).isoformat(timespec="seconds"), socket.gethostname())
        record = json.dumps({"pid": me.pid, "command": me.command, "started_at": me.started_at, "host": me.host})
        for fd in fds:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (record + "\n").encode(), 0)
        return me

    def release(self) -> None:
        fds, self._fds = self._fds, []
        _release(fds)

    def __enter__(self) -> Holder:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
