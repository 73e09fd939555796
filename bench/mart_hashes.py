"""Fingerprint a finished run's published marts: rows and an order-free hash of each row's values as text, per
mart, plus the test AUC. Two runs over the same raw files should print the same figures, except for the marts
whose run-time columns (load, transform and score times) differ; `--columns MART` hashes one mart column by
column to show which.

    python -m bench.mart_hashes /path/to/project > before.json   # a checkout after `flightdelay run`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import duckdb


def column_names(con: duckdb.DuckDBPyConnection, mart: str) -> list[str]:
    return [row[0] for row in con.execute(
        "select column_name from information_schema.columns where table_schema = 'marts' and table_name = ? "
        "order by ordinal_position", [mart]).fetchall()]


def as_text(column: str) -> str:
    return f"coalesce(cast(\"{column}\" as varchar), '<null>')"


def fingerprint(root: Path) -> dict[str, object]:
    with duckdb.connect(str(root / "warehouse" / "flight_delays.duckdb"), read_only=True) as con:
        marts = [row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1").fetchall()]
        out: dict[str, object] = {}
        for mart in marts:
            row = " || '|' || ".join(as_text(c) for c in column_names(con, mart))
            rows, digest = con.execute(f"select count(*), sum(hash({row})) from marts.\"{mart}\"").fetchone()
            out[mart] = [rows, str(digest)]
    evaluation = json.loads((root / "artifacts" / "ml" / "evaluation.json").read_text())
    out["test_auc"] = evaluation["binary_classification_metrics"]["auc"]["value"]
    return out


def by_column(root: Path, mart: str) -> dict[str, str]:
    with duckdb.connect(str(root / "warehouse" / "flight_delays.duckdb"), read_only=True) as con:
        return {c: str(con.execute(f"select sum(hash({as_text(c)})) from marts.\"{mart}\"").fetchone()[0])
                for c in column_names(con, mart)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="project folder (warehouse/ and artifacts/ under it)")
    parser.add_argument("--columns", metavar="MART", help="hash this mart column by column instead")
    args = parser.parse_args()
    print(json.dumps(by_column(args.root, args.columns) if args.columns else fingerprint(args.root), indent=1))


if __name__ == "__main__":
    main()
