"""The US federal holidays seed: each holiday's date and the weekday it is observed on (5 U.S.C. 6103)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """n-th (1-based) weekday (Mon=0) of a month; n=-1 is the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = (date(year, month % 12 + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def us_federal_holidays(first_year: int, last_year: int) -> pd.DataFrame:
    """US federal holidays (5 U.S.C. 6103) with the weekday they are observed on."""
    rows = []
    for year in range(first_year, last_year + 1):
        holidays = [
            ("New Year's Day", date(year, 1, 1)),
            ("Birthday of Martin Luther King, Jr.", _nth_weekday(year, 1, 0, 3)),
            ("Washington's Birthday", _nth_weekday(year, 2, 0, 3)),
            ("Memorial Day", _nth_weekday(year, 5, 0, -1)),
            ("Juneteenth National Independence Day", date(year, 6, 19)) if year >= 2021 else None,
            ("Independence Day", date(year, 7, 4)),
            ("Labor Day", _nth_weekday(year, 9, 0, 1)),
            ("Columbus Day", _nth_weekday(year, 10, 0, 2)),
            ("Veterans Day", date(year, 11, 11)),
            ("Thanksgiving Day", _nth_weekday(year, 11, 3, 4)),
            ("Christmas Day", date(year, 12, 25)),
        ]
        for entry in holidays:
            if entry is None:
                continue
            name, day = entry
            shift = {5: -1, 6: 1}.get(day.weekday(), 0)  # Saturday -> Friday, Sunday -> Monday
            rows.append((day.isoformat(), (day + timedelta(days=shift)).isoformat(), name))
    return pd.DataFrame(rows, columns=["holiday_date", "observed_date", "holiday_name"])
