"""Per-run data-quality summary: for every raw file, rows read = rows loaded + rows quarantined + blank lines.

Both loaders report here (flights from the warehouse loader, weather from the Spark job) into
`raw.data_quality_summary`, which the run report and the raw-file expectation suite read.
"""

from __future__ import annotations

from dataclasses import dataclass

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
alter table raw.data_quality_summary add column if not exists blank_lines bigint default 0;
"""


class ReconciliationFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class FileCounts:
    source_file: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    blank_lines: int = 0

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.blank_lines


def _check(files: list[FileCounts]) -> None:
    broken = [f for f in files if not f.reconciles]
    if broken:
        raise ReconciliationFailed(
            "rows read != loaded + quarantined + blank for "
            + ", ".join(f"{f.source_file} ({f.rows_read} != {f.rows_loaded} + {f.rows_quarantined} + {f.blank_lines})"
                        for f in broken)
        )


def write(con, source_kind: str, files: list[FileCounts]) -> None:
    """Replace these files' rows inside the caller's transaction (a loader records its counts in the same
    transaction as the rows, so no path that loads can leave a stale summary behind). The table must exist (DDL,
    run outside the transaction: on PostgreSQL its ALTER TABLE would lock every reader out until commit)."""
    _check(files)
    con.executemany(
        "delete from raw.data_quality_summary where source_kind = ? and source_file = ?",
        [[source_kind, f.source_file] for f in files],
    )
    con.executemany(
        "insert into raw.data_quality_summary (source_kind, source_file, rows_read, rows_loaded, rows_quarantined, "
        "checked_at, blank_lines) values (?, ?, ?, ?, ?, now()::timestamp, ?)",
        [[source_kind, f.source_file, f.rows_read, f.rows_loaded, f.rows_quarantined, f.blank_lines] for f in files],
    )


def totals(files: list[FileCounts]) -> dict[str, int]:
    return {
        "read": sum(f.rows_read for f in files),
        "loaded": sum(f.rows_loaded for f in files),
        "quarantined": sum(f.rows_quarantined for f in files),
        "blank": sum(f.blank_lines for f in files),
    }


def record(warehouse, source_kind: str, files: list[FileCounts]) -> dict[str, int]:
    """Replace these files' rows with this run's counts in `warehouse` (flightdelay/warehouse/engine.py);
    raise if any file does not reconcile."""
    _check(files)
    if files:
        with warehouse.connect() as con:
            con.execute(DDL)
            con.execute("begin transaction")
            write(con, source_kind, files)
            con.execute("commit")
    return totals(files)


def summary_line(totals: dict[str, int], kind: str) -> str:
    blank = f" + blank {totals['blank']:,}" if totals.get("blank") else ""
    return (f"{kind}: read {totals['read']:,} = loaded {totals['loaded']:,} + quarantined "
            f"{totals['quarantined']:,}{blank} (reconciled)")


def per_file_lines(files: list[FileCounts]) -> list[str]:
    return [f"{f.source_file}: read {f.rows_read:,} = loaded {f.rows_loaded:,} + quarantined {f.rows_quarantined:,}"
            + (f" + blank {f.blank_lines:,}" if f.blank_lines else "") for f in files]
