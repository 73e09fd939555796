"""The BTS On-Time Reporting fields the loader keeps, and how each one's text becomes a typed value.

`FIELDS` is the one definition of the BTS columns: the loader, `ingest`'s format detection and the Redshift load
(flightdelay/aws/redshift_load.py) read it. Header names from older downloads map to it (`canonical_header`);
`typing_rule` writes the SQL that types a field's value or names why it cannot be typed. Only identifiers from
`FIELDS` and fixed patterns reach that SQL, never a name or value taken from a file.
"""

from __future__ import annotations

from dataclasses import dataclass

from raw_contracts.ranges import FLIGHT_RANGES


@dataclass(frozen=True)
class FieldSpec:
    source: str  # BTS header name
    column: str  # raw.flights column
    kind: str  # date | hhmm | int | number | flag | carrier | airport | text
    required: bool = False


FIELDS = (
    FieldSpec("FL_DATE", "fl_date", "date", required=True),
    FieldSpec("OP_UNIQUE_CARRIER", "op_unique_carrier", "carrier", required=True),
    FieldSpec("TAIL_NUM", "tail_num", "text"),
    # Optional: many extracts (course and Kaggle files, the BTS form with few boxes ticked) leave it out;
    # staging then keys the flight by route and scheduled minute (see stg_bts__flights).
    FieldSpec("OP_CARRIER_FL_NUM", "op_carrier_fl_num", "int"),
    FieldSpec("ORIGIN", "origin", "airport", required=True),
    FieldSpec("DEST", "dest", "airport", required=True),
    FieldSpec("CRS_DEP_TIME", "crs_dep_time", "hhmm", required=True),
    FieldSpec("DEP_TIME", "dep_time", "hhmm"),
    FieldSpec("DEP_DELAY", "dep_delay", "number"),
    FieldSpec("DEP_DEL15", "dep_del15", "flag"),
    FieldSpec("CRS_ARR_TIME", "crs_arr_time", "hhmm"),
    FieldSpec("ARR_TIME", "arr_time", "hhmm"),
    FieldSpec("ARR_DELAY", "arr_delay", "number"),
    FieldSpec("CANCELLED", "cancelled", "flag"),
    FieldSpec("DIVERTED", "diverted", "flag"),
    FieldSpec("AIR_TIME", "air_time", "number"),
    FieldSpec("DISTANCE", "distance", "number"),
)

SQL_TYPES = {
    "date": "date",
    "hhmm": "smallint",
    "int": "integer",
    "number": "double precision",
    "flag": "double precision",
    "carrier": "varchar",
    "airport": "varchar",
    "text": "varchar",
}

# Header names of the legacy "On_Time_On_Time_Performance" downloads (and the older UniqueCarrier-era
# names) -> the modern names used above. Matched case-insensitively.
LEGACY_HEADERS = {
    "FLIGHTDATE": "FL_DATE",
    "REPORTING_AIRLINE": "OP_UNIQUE_CARRIER",
    "UNIQUECARRIER": "OP_UNIQUE_CARRIER",
    "UNIQUE_CARRIER": "OP_UNIQUE_CARRIER",
    "TAIL_NUMBER": "TAIL_NUM",
    "TAILNUM": "TAIL_NUM",
    "FLIGHT_NUMBER_REPORTING_AIRLINE": "OP_CARRIER_FL_NUM",
    "FLIGHTNUM": "OP_CARRIER_FL_NUM",
    "FL_NUM": "OP_CARRIER_FL_NUM",
    "CRSDEPTIME": "CRS_DEP_TIME",
    "DEPTIME": "DEP_TIME",
    "DEPDELAY": "DEP_DELAY",
    "DEPDELAYMINUTES": "DEP_DELAY_NEW",
    "DEPDEL15": "DEP_DEL15",
    "CRSARRTIME": "CRS_ARR_TIME",
    "ARRTIME": "ARR_TIME",
    "ARRDELAY": "ARR_DELAY",
    "ARRDELAYMINUTES": "ARR_DELAY_NEW",
    "AIRTIME": "AIR_TIME",
    "ORIGINAIRPORTID": "ORIGIN_AIRPORT_ID",
    "DESTAIRPORTID": "DEST_AIRPORT_ID",
}
# When a download has only the "_NEW" delays (early departures/arrivals set to 0), they stand in for
# the signed delays: the 15-minute label is the same, mean delays are not (recorded in load_audit).
FALLBACK_HEADERS = {"DEP_DELAY": "DEP_DELAY_NEW", "ARR_DELAY": "ARR_DELAY_NEW"}
# Numeric airport ids (BTS AIRPORT_ID) that can stand in for ORIGIN / DEST through a mapping file.
AIRPORT_ID_HEADERS = {"ORIGIN": "ORIGIN_AIRPORT_ID", "DEST": "DEST_AIRPORT_ID"}


def canonical_header(name: str) -> str:
    upper = name.strip().upper()
    return LEGACY_HEADERS.get(upper, upper)


def missing_required(header: list[str], airport_ids_stand_in: bool) -> list[str]:
    """The required BTS columns a header (in canonical names) lacks; with `airport_ids_stand_in`, a numeric
    airport id column (ORIGIN_AIRPORT_ID) stands in for its code column (ORIGIN)."""
    return [f.source for f in FIELDS if f.required and f.source not in header
            and not (airport_ids_stand_in and AIRPORT_ID_HEADERS.get(f.source) in header)]


# Date layouts seen in BTS downloads: the form's own, spreadsheet re-saves, ISO.
DATE_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%Y-%m-%d")

NUMBER_SYNTAX = {
    "number": r"(?i)[+-]?(nan|inf|infinity|([0-9]+([.][0-9]*)?|[.][0-9]+)(e[+-]?[0-9]+)?)",
    "int": r"(?i)[+-]?(nan|inf|infinity|[0-9]+([.]0*)?)",
    "flag": r"[0-9]+([.][0-9]*)?",
}
# Plausible flight dates: BTS reporting began in October 1987.
DATE_RANGE = ("1987-10-01", "2099-12-31")


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _shown(value_sql: str) -> str:
    """SQL for a value as a reason shows it: in quotes, cut to 60 characters."""
    return (f"'''' || left({value_sql}, 60) || case when length({value_sql}) > 60 then '...' else '' end "
            "|| ''''")


def typing_rule(field: FieldSpec, label: str | None) -> tuple[str, str]:
    """(typed value expression, reason expression: null when the value is fine) over the temp table
    `landed`, whose columns are named after FIELDS: no name taken from a file reaches this SQL. `label` is
    the column the value came from, as the reason names it (DEP_DELAY_NEW standing in for DEP_DELAY);
    None when the file lacks the field."""
    if label is None:
        reason = f"'{field.source}: required value is missing'" if field.required else "null"
        return f"cast(null as {SQL_TYPES[field.kind]})", reason
    v = f"nullif(trim(\"{field.column}\"), '')"
    shown = _shown(v)
    name = _q(f"{label}: ")
    cannot = f"{name} || 'cannot parse ' || {shown} || ' as {field.kind}'"
    if field.kind == "date":
        parsed = "cast(coalesce(" + ", ".join(f"try_strptime({v}, {_q(fmt)})" for fmt in DATE_FORMATS) + ") as date)"
        low, high = DATE_RANGE
        valid = f"{parsed} between date '{low}' and date '{high}'"
        typed = f"case when {valid} then {parsed} end"
        reason = (f"case when {parsed} is null then {cannot} when not ({valid}) then {name} || {shown} "
                  f"|| ' is outside the plausible range [{low}, {high}]' end")
    elif field.kind == "hhmm":
        as_int = f"try_cast({v} as integer)"
        valid = (f"(regexp_full_match({v}, '[0-9]{{1,4}}') and {as_int} between 0 and 2400 "
                 f"and {as_int} % 100 < 60)")
        typed = f"cast(case when {valid} then {as_int} end as smallint)"
        reason = f"case when not {valid} then {cannot} end"
    elif field.kind in ("int", "number", "flag"):
        # DuckDB's cast also takes 1_000 and trailing no-break spaces: only plain decimals (and the non-finite
        # spellings, to name them) reach it
        parsed = f"case when regexp_full_match({v}, '{NUMBER_SYNTAX[field.kind]}') then try_cast({v} as double) end"
        if field.kind == "flag":
            valid, expected = f"{parsed} in (0, 1)", "0 or 1"
        else:
            low, high = FLIGHT_RANGES.get(field.column, (-1e300, 1e300))
            valid = f"isfinite({parsed}) and {parsed} between {low!r} and {high!r}"
            expected = f"inside the plausible range [{low:g}, {high:g}]"
        if field.kind == "int":
            # BTS writes some integer fields as 12.00; accept a zero fraction only.
            valid = f"{valid} and {parsed} = floor({parsed})"
            expected = f"a whole number {expected}"
        typed = f"case when {valid} then {parsed} end"
        if field.kind == "int":
            typed = f"try_cast({typed} as integer)"
        reason = (f"case when {parsed} is null then {cannot} "
                  f"when not isfinite({parsed}) then {name} || {shown} || ' is not a finite number' "
                  f"when not ({valid}) then {name} || {shown} || ' is not {expected}' end")
    else:
        pattern = {"carrier": "[A-Z0-9]{2,3}", "airport": "[A-Z0-9]{3}", "text": "[!-~]{1,10}"}[field.kind]
        valid = f"regexp_full_match({v}, '{pattern}')"
        typed = f"case when {valid} then {v} end"
        reason = f"case when not {valid} then {cannot} end"
    if field.required:
        reason = f"case when {v} is null then {name} || 'required value is missing' else {reason} end"
    else:
        reason = f"case when {v} is not null then {reason} end"
    return typed, reason
