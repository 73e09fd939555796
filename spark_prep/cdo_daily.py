"""NOAA Climate Data Online daily summaries (GHCN-Daily CSV export) -> `weather.cdo_daily_summaries`.

The export has STATION (GHCND id, `USW000` + WBAN for airport stations), NAME, DATE (YYYY-MM-DD)
and one column per element the user selected (TMAX, TMIN, TAVG, PRCP, SNOW, AWND, ...), each
optionally followed by `<ELEMENT>_ATTRIBUTES` ("measurement flag,quality flag,source flag[,time]").
Values are in the units chosen when ordering: "standard" (°F, inches, mph) or "metric" (°C, mm, m/s);
the file does not say which, so the caller does (`--cdo-units`). A value whose quality flag is set
failed NOAA's checks: it is nulled and the element named in `qc_failed_elements`.

Pure transforms here; weather_job runs them next to the LCD job and loads with the same staging swap.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_prep import lake_schema

# element -> (output column, standard-units expression, metric-units -> standard conversion)
ELEMENTS: dict[str, tuple[str, str]] = {
    "TMAX": ("tmax_f", "temperature"),
    "TMIN": ("tmin_f", "temperature"),
    "TAVG": ("tavg_f", "temperature"),
    "PRCP": ("precip_in", "depth"),
    "SNOW": ("snowfall_in", "depth"),
    "AWND": ("avg_wind_speed_mph", "speed"),
}
REQUIRED_COLUMNS = ("STATION", "DATE")
# a daily file's rows in the CDO layout, whichever file they came from (GHCN-Daily is turned into it)
LAYOUT_COLUMNS = ("source_file", *REQUIRED_COLUMNS, *[c for e in ELEMENTS for c in (e, f"{e}_ATTRIBUTES")])
UNITS = ("standard", "metric")
DAILY_COLUMNS = lake_schema.column_names("cdo_daily_summaries")


def _to_standard(value: Column, kind: str, units: str) -> Column:
    if units == "standard":
        return value
    if kind == "temperature":
        return F.round(value * 9 / 5 + 32, 1)
    if kind == "depth":
        return F.round(value / 25.4, 2)
    return F.round(value * 2.2369363, 1)  # m/s -> mph


def transform_with_all_columns(raw: DataFrame) -> DataFrame:
    for element in ELEMENTS:
        for column in (element, f"{element}_ATTRIBUTES"):
            if column not in raw.columns:
                raw = raw.withColumn(column, F.lit(None).cast("string"))
    return raw


def transform_parse_daily(raw: DataFrame, stations: DataFrame, units: str) -> DataFrame:
    """Typed daily rows in standard units; `rejection_reason` set for rows that cannot be used."""
    if units not in UNITS:
        raise ValueError(f"CDO units must be one of {UNITS}, got {units!r}")
    station_ref = stations.select(F.col("station_id"), F.col("wban_id").alias("_wban"), "airport_code")
    ghcnd = F.trim(F.col("STATION"))
    # GHCND ids of US first-order stations are USW000 + the five-digit WBAN.
    with_wban = raw.withColumn("_ghcnd", ghcnd).withColumn(
        "_wban_of_file", F.when(ghcnd.rlike("^USW000[0-9]{5}$"), F.substring(ghcnd, 7, 5))
    )
    joined = with_wban.join(station_ref, with_wban["_wban_of_file"] == station_ref["_wban"], "left")

    values, failed = {}, []
    for element, (name, kind) in ELEMENTS.items():
        number = F.trim(F.col(element)).try_cast("double")
        # ANSI mode: get() tolerates attributes with fewer fields than the quality flag's position.
        quality_flag = F.get(F.split(F.coalesce(F.col(f"{element}_ATTRIBUTES"), F.lit("")), ","), 1)
        is_failed = number.isNotNull() & quality_flag.isNotNull() & (F.trim(quality_flag) != "")
        values[name] = F.when(is_failed, F.lit(None)).otherwise(_to_standard(number, kind, units))
        failed.append(F.when(is_failed, F.lit(element)))

    summary_date = F.try_to_date(F.trim(F.col("DATE")), "yyyy-MM-dd")
    # the first element (in ELEMENTS' order) whose value is not a number, named with the value
    unparsed = F.coalesce(*[
        F.when(F.trim(F.col(e)).isNotNull() & (F.trim(F.col(e)) != "") & F.trim(F.col(e)).try_cast("double").isNull(),
               F.concat(F.lit(f"{e}: cannot parse '"), F.trim(F.col(e)), F.lit("' as a number")))
        for e in ELEMENTS])
    typed = joined.select(
        F.col("station_id"),
        F.col("_wban").alias("wban_id"),
        "airport_code",
        F.col("_ghcnd").alias("ghcnd_station_id"),
        *[values[name].alias(name) for name, _ in ELEMENTS.values()],
        F.array_join(F.array_compact(F.array(*failed)), ",").alias("qc_failed_elements"),
        summary_date.alias("summary_date"),
        "source_file",
        F.col("DATE").alias("raw_date"),
        unparsed.alias("_unparsed"),
    )
    reason = (
        F.when(F.col("airport_code").isNull(),
               F.concat(F.lit("STATION: no airport for GHCND id '"), F.coalesce(F.col("ghcnd_station_id"), F.lit("")),
                        F.lit("' (expected USW000 + a WBAN in airport_weather_stations)")))
        .when(F.col("summary_date").isNull(),
              F.concat(F.lit("DATE: cannot parse '"), F.coalesce(F.col("raw_date"), F.lit("")),
                       F.lit("' as yyyy-MM-dd")))
        .when(F.col("_unparsed").isNotNull(), F.col("_unparsed"))
    )
    return typed.withColumn("rejection_reason", reason).drop("_unparsed")


def transform_rank_duplicates(parsed: DataFrame) -> DataFrame:
    """1 for the row to keep per station and day: the one with most values, ties broken on values."""
    from pyspark.sql import Window

    names = [name for name, _ in ELEMENTS.values()]
    completeness = reduce(lambda a, b: a + b, [F.col(n).isNotNull().cast("int") for n in names])
    fingerprint = F.concat_ws("|", *[F.coalesce(F.col(n).cast("string"), F.lit("")) for n in names],
                              F.col("source_file"))
    window = Window.partitionBy("station_id", "summary_date").orderBy(completeness.desc(), fingerprint.desc())
    return parsed.withColumn("duplicate_rank", F.row_number().over(window))


def transform_daily_table(ranked: DataFrame) -> DataFrame:
    return ranked.filter(F.col("duplicate_rank") == 1).select(
        *DAILY_COLUMNS,
        F.date_format("summary_date", "yyyy-MM").alias("observation_month"),
        "station_id",
    )


def transform_quarantine(parsed: DataFrame, ranked: DataFrame) -> DataFrame:
    rejected = parsed.filter(F.col("rejection_reason").isNotNull()).select(
        "source_file", F.col("ghcnd_station_id").alias("station_id"), "raw_date",
        F.lit("CDO daily").alias("report_type"), F.lit("rejected").alias("quarantine_kind"),
        F.col("rejection_reason").alias("quarantine_reason"),
    )
    duplicates = ranked.filter(F.col("duplicate_rank") > 1).select(
        "source_file", F.col("ghcnd_station_id").alias("station_id"), "raw_date",
        F.lit("CDO daily").alias("report_type"), F.lit("duplicate").alias("quarantine_kind"),
        F.concat(F.lit("duplicate: STATION '"), F.col("ghcnd_station_id"), F.lit("' DATE '"), F.col("raw_date"),
                 F.lit("': a more complete row exists for this station and day")).alias("quarantine_reason"),
    )
    return rejected.unionByName(duplicates)
