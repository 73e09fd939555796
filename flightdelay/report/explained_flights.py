"""A few scored flights explained in words: each prediction's largest reasons (ml.flight_delay_predictions, from
XGBoost's feature contributions: ml/explain.py) told with the feature's readable sentence, which is kept next to
the feature's definition in the feature mart's contract (`config.meta.reason` in models/marts/ml/_ml__models.yml)."""

from __future__ import annotations

import html
import math
import numbers
import re
import string
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from flightdelay.flow.feature_contract import feature_meta
from flightdelay.settings import Settings

FEATURE_MART, PREDICTIONS_MART = "marts.ml_flight_delay_features", "marts.fct_flight_delay_predictions"
REASONS_SHOWN = 3


@dataclass(frozen=True)
class Label:
    reason: str  # a format string of `value`: "the aircraft's previous flight is {value:.0f} minutes late"
    reason_unknown: str | None  # what to say when the value is missing
    reason_below_zero: str | None = None  # for a value below zero, formatted with its size ("minutes early")


def reason_labels(project_root: Path) -> dict[str, Label]:
    """Every feature's sentence, from the feature mart's contract."""
    labels = {}
    for name, meta in feature_meta(project_root).items():
        if "reason" in meta:
            labels[name] = Label(meta["reason"], meta.get("reason_unknown"), meta.get("reason_below_zero"))
    return labels


# "1 minutes" -> "1 minute": the counted nouns of the contract's sentences
_ONE_COUNTED = re.compile(r"(?<![\d.,])1 (minute|flight|departure|engine|seat|day|year|time|mile)s\b")


def _as_shown(template: str, value: float) -> float:
    """The value rounded as the sentence shows it, so that the sentence is chosen by the number it shows:
    -0.4 at {value:.0f} is 0 minutes late, not 0 minutes early (and never -0)."""
    for _, field, spec, _ in string.Formatter().parse(template):
        match = re.search(r"\.(\d+)([f%])$", spec or "") if field == "value" else None
        if match:
            digits = int(match.group(1)) + (2 if match.group(2) == "%" else 0)
            return round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return value


def in_words(label: Label | None, feature: str, value: object) -> str:
    """The sentence for one feature's value; the column name and the value when the contract has no sentence for
    it or the sentence cannot show the value."""
    if isinstance(value, numbers.Real | Decimal) and not isinstance(value, bool):
        try:
            value = float(value)  # a Decimal from a NUMERIC column reads as the number it is
        except OverflowError:
            pass
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if label is not None and missing:
        return label.reason_unknown or f"{feature} is not known"
    try:
        if label is not None and isinstance(value, float):
            shown = _as_shown(label.reason, value)
            if label.reason_below_zero and shown < 0:
                return _ONE_COUNTED.sub(r"1 \1", label.reason_below_zero.format(value=-shown))
            return _ONE_COUNTED.sub(r"1 \1", label.reason.format(value=shown))
        if label is not None:
            return label.reason.format(value=value)
    except (ValueError, TypeError, OverflowError):  # a value the sentence cannot format: say it plainly
        pass
    return f"{feature} = {'unknown' if missing else value}"


@dataclass(frozen=True)
class ExplainedFlight:
    title: str
    probability: float
    delayed: bool | None
    reasons: list[tuple[str, float]]  # sentence, signed log-odds


def explained_flights(settings: Settings) -> list[ExplainedFlight]:
    """The test period's flights with the highest, the median and the lowest delay probability, each with its
    largest reasons in words."""
    labels = reason_labels(settings.project_root)
    reason_columns = ", ".join(f"reason_{rank}_feature, reason_{rank}_log_odds" for rank in range(1, REASONS_SHOWN + 1))
    picked = f"""
        with ranked as (
            select *, row_number() over (order by delay_15_probability desc, flight_id) as from_top,
                   count(*) over () as flights
            from {PREDICTIONS_MART}
            where split_name = 'test'
        )
        select flight_id, carrier_code, flight_number, origin_airport_code, dest_airport_code,
               scheduled_departure_at_local, delay_15_probability, is_dep_delayed_15, {reason_columns}, from_top
        from ranked
        where from_top in (1, floor((flights + 1) / 2.0), flights)
        order by from_top"""
    flights = []
    with settings.connect_warehouse(read_only=True) as con:
        for row in con.execute(picked).fetchall():
            flight_id, carrier, number, origin, dest, departs, probability, delayed = row[:8]
            reasons = [(row[8 + 2 * i], row[9 + 2 * i]) for i in range(REASONS_SHOWN) if row[8 + 2 * i]]
            # only features the contract defines reach the SQL, as identifiers it knows
            known = [feature for feature, _ in reasons if feature in labels]
            values = dict(zip(known, con.execute(
                f"select {', '.join(known)} from {FEATURE_MART} where flight_id = ?", [flight_id]).fetchone() or (),
                strict=False)) if known else {}
            flights.append(ExplainedFlight(
                title=f"{carrier} {number}, {origin} to {dest}, scheduled {departs:%Y-%m-%d %H:%M}",
                probability=float(probability), delayed=delayed,
                reasons=[(in_words(labels.get(feature), feature, values.get(feature)), float(log_odds))
                         for feature, log_odds in reasons]))
    return flights


def _effect(log_odds: float) -> str:
    return "raises the chance" if log_odds > 0 else "lowers the chance" if log_odds < 0 else "leaves the chance as is"


def explained_flights_html(flights: list[ExplainedFlight]) -> str:
    if not flights:
        return "<p>No scored flights in the test period.</p>"
    items = []
    for flight in flights:
        outcome = "unknown" if flight.delayed is None else "left 15+ minutes late" if flight.delayed else "left on time"
        reasons = "".join(
            f"<li>{html.escape(sentence)}: {_effect(log_odds)} ({log_odds:+.2f} log-odds)</li>"
            for sentence, log_odds in flight.reasons)
        items.append(f'<div class="explained"><h3>{html.escape(flight.title)}</h3>'
                     f"<p>{flight.probability:.0%} chance of leaving 15+ minutes late (it {outcome}). "
                     "Mostly because:</p>"
                     f"<ul>{reasons}</ul></div>")
    return "".join(items)
