"""A throwaway PostgreSQL server for the postgres backend: `start` creates a cluster in a folder, starts it on
127.0.0.1 and creates the database `flight_delays`; `stop` stops it. The tests start their own with it; by hand:

    .venv/bin/python scripts/local_postgres.py start /tmp/flightdelay-pg     # prints the FLIGHTDELAY_PG_* exports
    eval "$(.venv/bin/python scripts/local_postgres.py start /tmp/flightdelay-pg)"
    FLIGHTDELAY_BACKEND=postgres .venv/bin/flightdelay run
    .venv/bin/python scripts/local_postgres.py stop /tmp/flightdelay-pg

initdb refuses to run as root, so as root the server runs as the `postgres` user (Debian's package creates it).
Authentication is `trust` on 127.0.0.1: a server for tests and trials, not for data anyone else can reach.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
from pathlib import Path


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise SystemExit(f"{name} not found: install Debian's postgresql package (scripts/install_system_packages.sh)")
    return found


def _run_as() -> list[str]:
    if os.geteuid() != 0:
        return []
    return [shutil.which("runuser") or "runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(args: list[str]) -> None:
    done = subprocess.run([*_run_as(), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")


def start(cluster_dir: Path) -> dict[str, str]:
    """Start a server in `cluster_dir` (created; it must be reachable by `postgres` when run as root); returns the
    FLIGHTDELAY_PG_* settings that reach it."""
    import psycopg2

    cluster_dir = Path(cluster_dir).resolve()
    cluster_dir.mkdir(parents=True, exist_ok=True)
    cluster_dir.chmod(0o755)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(cluster_dir, user.pw_uid, user.pw_gid)
    data_dir = cluster_dir / "data"
    port = _free_port()
    _run([_binary("initdb"), "-D", str(data_dir), "--auth=trust", "-U", "postgres", "--encoding=UTF8", "--locale=C"])
    _run([_binary("pg_ctl"), "-D", str(data_dir), "-l", str(cluster_dir / "server.log"),
          "-o", f"-p {port} -k {cluster_dir} -c listen_addresses=127.0.0.1 -c fsync=off", "-w", "start"])
    con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    con.autocommit = True  # CREATE DATABASE cannot run in a transaction block
    con.cursor().execute("create database flight_delays")
    con.close()
    return {"FLIGHTDELAY_PG_HOST": "127.0.0.1", "FLIGHTDELAY_PG_PORT": str(port), "FLIGHTDELAY_PG_USER": "postgres",
            "FLIGHTDELAY_PG_DATABASE": "flight_delays"}


def stop(cluster_dir: Path, remove: bool = True) -> None:
    """Stop the server `start` made in `cluster_dir` and delete the folder; a folder without one is left alone."""
    data_dir = Path(cluster_dir) / "data"
    if not (data_dir / "PG_VERSION").is_file():
        if Path(cluster_dir).exists() and any(Path(cluster_dir).iterdir()):
            raise SystemExit(f"{cluster_dir} holds no cluster made by `start` (no data/PG_VERSION): left as it is")
        shutil.rmtree(cluster_dir, ignore_errors=True)  # an empty folder start made before initdb failed
        return
    if data_dir.exists():
        subprocess.run([*_run_as(), _binary("pg_ctl"), "-D", str(data_dir), "-m", "fast", "stop"], capture_output=True)
    if remove:
        shutil.rmtree(cluster_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__)
        return 2
    if argv[0] == "start":
        if (Path(argv[1]) / "data").exists():
            print(f"{argv[1]} already holds a cluster: stop it first (`{Path(__file__).name} stop {argv[1]}`)",
                  file=sys.stderr)
            return 1
        try:
            settings = start(Path(argv[1]))
        except (RuntimeError, OSError) as failure:
            print(f"could not start PostgreSQL in {argv[1]}: {failure}", file=sys.stderr)
            return 1
        for name, value in settings.items():
            print(f"export {name}={value}")
    else:
        stop(Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
