"""Fingerprint the published marts of the warehouse the settings name (FLIGHTDELAY_BACKEND and FLIGHTDELAY_*,
as for `flightdelay run`): rows and an order-free hash of each row's values as text, per mart, plus the test
AUC. Two runs over the same raw files print the same figures, on one engine or on two: each mart is read into
Arrow from its warehouse and hashed by one in-memory DuckDB, each row as a list of its values as text: whole
numbers exactly whatever their type, other numbers to 10 significant digits (the engines' floating-point sums and
averages may differ in the last bits). Columns that record when a step ran (`RUN_TIME_COLUMNS`) are left out.
`--columns MART` hashes one mart column by column to show which differ; `--compare A B` compares two saved
fingerprints.

    FLIGHTDELAY_BACKEND=postgres python -m bench.mart_hashes > postgres.json
    python -m bench.mart_hashes > duckdb.json      # FLIGHTDELAY_WAREHOUSE / FLIGHTDELAY_ARTIFACTS of that run
    python -m bench.mart_hashes --compare duckdb.json postgres.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb
import pyarrow as pa

from flightdelay.settings import Settings, load_settings

# when a row was loaded, transformed or scored: differs between any two runs
RUN_TIME_COLUMNS = {"loaded_at", "loaded_at_utc", "source_loaded_at", "scored_at", "scored_at_utc",
                    "transformed_at_utc", "dbt_updated_at", "built_at_utc"}


def _as_text(name: str, kind: pa.DataType) -> str:
    """A value as text both engines agree on: a whole number exactly (whatever its type: PostgreSQL's numeric
    sums arrive as floats), other numbers to 10 significant digits, NULL as NULL (never equal to any text)."""
    column = '"' + name.replace('"', '""') + '"'
    if pa.types.is_integer(kind):
        return f"cast({column} as varchar)"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        number = f"cast({column} as double)"
        return (f"case when isfinite({number}) and {number} = trunc({number}) and abs({number}) < 9e15 "
                f"then cast(cast({number} as bigint) as varchar) else printf('%.10g', {number}) end")
    return f"cast({column} as varchar)"


def _marts(settings: Settings) -> dict[str, pa.Table]:
    warehouse = settings.warehouse()
    with warehouse.connect(read_only=True) as con:
        names = [row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' "
            "and table_type = 'BASE TABLE' order by 1").fetchall()]
        return {name: warehouse.query_arrow(con, f'select * from marts."{name}"') for name in names}


def _hashes(table: pa.Table, columns: list[str]) -> tuple[int, str]:
    with duckdb.connect(":memory:") as con:
        con.execute("set TimeZone = 'UTC'")
        con.register("mart", table)
        # a list, not a joined string: ('a|b', 'c') and ('a', 'b|c') are different rows, and NULL stays NULL
        row = "list_value(" + ", ".join(_as_text(c, table.schema.field(c).type) for c in columns) + ")"
        rows, digest = con.execute(f"select count(*), coalesce(sum(hash({row})), 0) from mart").fetchone()
    return int(rows), str(digest)


def fingerprint(settings: Settings) -> dict[str, object]:
    out: dict[str, object] = {}
    for mart, table in _marts(settings).items():
        out[mart] = list(_hashes(table, [c for c in table.column_names if c not in RUN_TIME_COLUMNS]))
    evaluation = json.loads((settings.ml_dir / "evaluation.json").read_text())
    out["test_auc"] = evaluation["binary_classification_metrics"]["auc"]["value"]
    return out


def by_column(settings: Settings, mart: str) -> dict[str, str]:
    table = _marts(settings)[mart]
    return {c: _hashes(table, [c])[1] for c in table.column_names}


def compare(first: dict[str, object], second: dict[str, object], auc_tolerance: float = 0.002) -> list[str]:
    """What differs between two fingerprints (empty: the same marts and an AUC within the tolerance)."""
    problems = [f"{name}: {first.get(name)} vs {second.get(name)}" for name in sorted(set(first) | set(second))
                if name != "test_auc" and first.get(name) != second.get(name)]
    if abs(float(first["test_auc"]) - float(second["test_auc"])) > auc_tolerance:
        problems.append(f"test AUC {first['test_auc']} vs {second['test_auc']} (tolerance {auc_tolerance})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--columns", metavar="MART", help="hash this mart column by column instead")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two saved fingerprints")
    args = parser.parse_args()
    if args.compare:
        first, second = (json.loads(path.read_text()) for path in args.compare)
        problems = compare(first, second)
        print("\n".join(problems) if problems else
              f"same: {len(first) - 1} marts equal, test AUC {first['test_auc']:.6f} vs {second['test_auc']:.6f}")
        return 1 if problems else 0
    settings = load_settings()
    print(json.dumps(by_column(settings, args.columns) if args.columns else fingerprint(settings), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
