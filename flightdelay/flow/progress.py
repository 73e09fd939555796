"""Progress for long steps that run in a child process (Spark, dbt, training): an elapsed-time bar
on a terminal, nothing extra in logs and CI."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

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


def in_child_process(function: Callable, *args: object) -> object:
    """Call `function` in a forked child and return its result. Whatever memory the call used (pandas frames
    of whole marts: GiBs at scale) goes back to the OS when the child ends, instead of staying with this
    process for the rest of the run; the modules this process has imported are already there."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as pool:
        return pool.submit(function, *args).result()
