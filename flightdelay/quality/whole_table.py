"""The expectations no chunk of a table can decide alone (suites.is_per_row is false: a share of rows, a mean,
uniqueness, the row count), computed over the whole table by cheap aggregate queries in DuckDB, with Great
Expectations' own rules for what counts.

Why not GX: on DuckDB the marts are validated a month or a few at a time as pandas frames (gates.py), so that
memory follows the largest chunk rather than the table, and GX judges each frame on its own rows; a share of
late flights or of missing weather, or a duplicated id in two months, is only seen over the whole table. The
warehouse computes these from its columns without handing any to Python.

The rules are GX 1.x's for a column-map expectation: null values (and NaN, as in pandas) are not judged,
except by not-null itself; an expectation holds when (rows judged - unexpected) / rows judged >= mostly, and
vacuously on no rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import great_expectations.expectations as gxe


@dataclass(frozen=True)
class WholeTableCheck:
    """One expectation's outcome over the whole table, in the words gates.py reports failures in."""

    expectation_type: str
    column: str
    success: bool
    observed: str

    @property
    def failure(self) -> str:
        return f"{self.expectation_type} on {self.column} (observed {self.observed}; whole table, in SQL)"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _mostly_holds(judged: int, unexpected: int, mostly: float) -> bool:
    """GX's rule (great_expectations.expectations.expectation._mostly_success), vacuously true on no rows."""
    return judged == 0 or (float(judged) - float(unexpected)) / float(judged) >= mostly


class WholeTable:
    """Aggregate checks on `relation` (a table, a view or a table function) of a DuckDB connection; `where` limits
    the rows every check but uniqueness sees (the months being validated), uniqueness always sees them all."""

    def __init__(self, con: duckdb.DuckDBPyConnection, relation: str, where: str = "true"):
        self.con, self.relation, self.where = con, relation, where
        described = con.execute(f"describe select * from {relation}").fetchall()
        self.types = {name: str(kind).upper() for name, kind, *_ in described}

    def _is_null(self, column: str) -> str:
        """Null as pandas (and so GX on a frame) sees it: a float's NaN too."""
        quoted = _quote(column)
        if self.types.get(column) in ("DOUBLE", "FLOAT", "REAL"):
            return f"({quoted} is null or isnan({quoted}))"
        return f"({quoted} is null)"

    def _count(self, select: str, where: str | None = None) -> tuple:
        return self.con.execute(f"select {select} from {self.relation} where {where or self.where}").fetchone()

    def _map(self, expectation, column: str, unexpected_when: str, judged_all: bool = False) -> WholeTableCheck:
        null = self._is_null(column)
        judged_filter = "true" if judged_all else f"not {null}"
        judged, unexpected = self._count(
            f"count(*) filter (where {judged_filter}), count(*) filter (where {unexpected_when})")
        mostly = getattr(expectation, "mostly", 1.0)
        share = f"{unexpected / judged:.4%}" if judged else "no rows"
        return WholeTableCheck(expectation.expectation_type, column, _mostly_holds(judged, unexpected, mostly),
                               f"{unexpected} unexpected of {judged} ({share}), mostly={mostly}")

    def check(self, expectation) -> WholeTableCheck:
        """The expectation over the whole table. NotImplementedError for a type without its SQL here: a new
        table-wide expectation in suites.py needs its rule written here before it can be checked in chunks."""
        if isinstance(expectation, gxe.ExpectColumnValuesToNotBeNull):
            column = expectation.column
            return self._map(expectation, column, self._is_null(column), judged_all=True)
        if isinstance(expectation, gxe.ExpectColumnValuesToBeInSet):
            column = expectation.column
            values = [v for v in expectation.value_set if v is not None]
            in_set = f"{_quote(column)} in ({', '.join(map(_literal, values))})" if values else "false"
            return self._map(expectation, column, f"not {self._is_null(column)} and not ({in_set})")
        if isinstance(expectation, gxe.ExpectColumnValuesToBeBetween):
            column = expectation.column
            return self._map(expectation, column,
                             f"not {self._is_null(column)} and not ({self._between(expectation, _quote(column))})")
        if isinstance(expectation, gxe.ExpectColumnMeanToBeBetween):
            column = expectation.column
            (mean,) = self._count(f"avg({_quote(column)}) filter (where not {self._is_null(column)})")
            holds = mean is not None and self._within(expectation, float(mean))
            return WholeTableCheck(expectation.expectation_type, column, holds, f"mean {mean}")
        if isinstance(expectation, gxe.ExpectColumnValuesToBeUnique | gxe.ExpectCompoundColumnsToBeUnique):
            return self._unique(expectation)
        if isinstance(expectation, gxe.ExpectTableRowCountToBeBetween):
            (rows,) = self._count("count(*)")
            return WholeTableCheck(expectation.expectation_type, "table", self._within(expectation, rows),
                                   f"{rows} rows")
        raise NotImplementedError(f"{expectation.expectation_type}: no whole-table SQL for it in "
                                  "flightdelay/quality/whole_table.py")

    def _unique(self, expectation) -> WholeTableCheck:
        """Every row whose value (or combination) occurs more than once is unexpected, as in GX, over the whole
        table whatever `where` says: a flight in a new month may duplicate one in an old month."""
        columns = ([expectation.column] if isinstance(expectation, gxe.ExpectColumnValuesToBeUnique)
                   else list(expectation.column_list))
        keys = ", ".join(map(_quote, columns))
        present = " and ".join(f"not {self._is_null(c)}" for c in columns)
        judged, unexpected = self.con.execute(f"""
            select coalesce(sum(occurrences), 0), coalesce(sum(occurrences) filter (where occurrences > 1), 0)
            from (select count(*) as occurrences from {self.relation} where {present} group by {keys})
            """).fetchone()
        mostly = getattr(expectation, "mostly", 1.0)
        examples = self.con.execute(f"""
            select {keys} from {self.relation} where {present} group by {keys} having count(*) > 1
            order by {keys} limit 3""").fetchall()
        detail = f"; e.g. {[row[0] if len(row) == 1 else row for row in examples]}" if examples else ""
        return WholeTableCheck(expectation.expectation_type, ", ".join(columns),
                               _mostly_holds(int(judged), int(unexpected), mostly),
                               f"{int(unexpected)} rows with a duplicated value of {int(judged)}{detail}")

    @staticmethod
    def _within(expectation, value: float) -> bool:
        low, high = expectation.min_value, expectation.max_value
        strict_min, strict_max = getattr(expectation, "strict_min", False), getattr(expectation, "strict_max", False)
        above = low is None or (value > low if strict_min else value >= low)
        below = high is None or (value < high if strict_max else value <= high)
        return above and below

    @staticmethod
    def _between(expectation, column: str) -> str:
        low, high = expectation.min_value, expectation.max_value
        parts = []
        if low is not None:
            parts.append(f"{column} {'>' if expectation.strict_min else '>='} {_literal(low)}")
        if high is not None:
            parts.append(f"{column} {'<' if expectation.strict_max else '<='} {_literal(high)}")
        return " and ".join(parts) or "true"
