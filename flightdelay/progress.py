"""Progress for long steps that run in a child process (Spark, dbt, training): an elapsed-time bar
on a terminal, nothing extra in logs and CI."""

from __future__ import annotations

import subprocess
import sys

from tqdm import tqdm

POLL_SECONDS = 0.5


def run_with_progress(command: list[str], description: str, **popen_kwargs) -> subprocess.CompletedProcess:
    """subprocess.run(command) with output captured as given, showing `description` and elapsed time."""
    show = sys.stderr.isatty()
    with subprocess.Popen(command, **popen_kwargs) as process:
        if not show:
            stdout, stderr = process.communicate()
        else:
            with tqdm(desc=description, bar_format="{desc}: {elapsed} elapsed", file=sys.stderr, leave=False) as bar:
                while True:
                    try:
                        stdout, stderr = process.communicate(timeout=POLL_SECONDS)
                        break
                    except subprocess.TimeoutExpired:
                        bar.update(0)
                        bar.refresh()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
