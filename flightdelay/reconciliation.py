"""Per-run data-quality summary: for every raw file, rows read = rows loaded + rows quarantined.

Both loaders report here (flights from the warehouse loader, weather from the Spark job) into
`raw.data_quality_summary`, which the run report and the raw-file expectation suite read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

DDL = """
create schema if not exists raw;
create table if not exists raw.data_quality_summary (
    source_kind varchar not null,
    source_file varchar not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    checked_at timestamp not null
);
"""


class ReconciliationFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class FileCounts:
    source_file: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined


def record(warehouse: Path, source_kind: str, files: list[FileCounts]) -> dict[str, int]:
    """Replace these files' rows with this run's counts; raise if any file does not reconcile."""
    broken = [f for f in files if not f.reconciles]
    if broken:
        raise ReconciliationFailed(
            "rows read != loaded + quarantined for "
            + ", ".join(f"{f.source_file} ({f.rows_read} != {f.rows_loaded} + {f.rows_quarantined})" for f in broken)
        )
    warehouse.parent.mkdir(parents=True, exist_ok=True)  # the weather job can run before any load
    if not files:
        return {"read": 0, "loaded": 0, "quarantined": 0}
    with duckdb.connect(str(warehouse)) as con:
        con.execute(DDL)
        con.execute("begin transaction")
        con.executemany(
            "delete from raw.data_quality_summary where source_kind = ? and source_file = ?",
            [[source_kind, f.source_file] for f in files],
        )
        con.executemany(
            "insert into raw.data_quality_summary values (?, ?, ?, ?, ?, now()::timestamp)",
            [[source_kind, f.source_file, f.rows_read, f.rows_loaded, f.rows_quarantined] for f in files],
        )
        con.execute("commit")
    return {
        "read": sum(f.rows_read for f in files),
        "loaded": sum(f.rows_loaded for f in files),
        "quarantined": sum(f.rows_quarantined for f in files),
    }


def summary_line(totals: dict[str, int], kind: str) -> str:
    return (f"{kind}: read {totals['read']:,} = loaded {totals['loaded']:,} + quarantined "
            f"{totals['quarantined']:,} (reconciled)")


def per_file_lines(files: list[FileCounts]) -> list[str]:
    return [f"{f.source_file}: read {f.rows_read:,} = loaded {f.rows_loaded:,} + quarantined {f.rows_quarantined:,}"
            for f in files]
