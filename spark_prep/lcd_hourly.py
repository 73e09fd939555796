"""NOAA LCD records -> typed hourly observations (`weather.hourly_observations`) and their daily
summaries (`weather.daily_summaries`): pure `DataFrame -> DataFrame` transforms, no I/O, no SparkSession.

LCD report types: routine hourly reports (FM-15) are used; a special report (FM-16) stands in for an
hour without a routine one; daily and monthly summaries (SOD, SOM) and anything else are quarantined
(spark_prep/lcd_quarantine.py). Files cut down to STATION, DATE and some Hourly* columns have no
REPORT_TYPE: of their observations, the one nearest to the hour's 51st minute is taken as the routine one
(see transform_choose_hourly_reports).

The input is the raw rows of spark_prep/lcd_records.py (every record with its file and line); weather_job
extracts them, runs these transforms in order (records -> hourly reports -> parse -> choose -> rank
duplicates -> hourly table -> daily summaries) and loads the result.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from raw_contracts.ranges import WEATHER_RANGES
from spark_prep import lake_schema, lcd_records

# LCD columns the weather job reads, mapped to the names (with units) it writes.
MEASUREMENTS: dict[str, str] = {
    "HourlyDryBulbTemperature": "temp_f",
    "HourlyDewPointTemperature": "dew_point_f",
    "HourlyRelativeHumidity": "relative_humidity_pct",
    "HourlyWindDirection": "wind_direction_deg",
    "HourlyWindSpeed": "wind_speed_mph",
    "HourlyWindGustSpeed": "wind_gust_mph",
    "HourlyPrecipitation": "precip_in",
    "HourlySeaLevelPressure": "sea_level_pressure_inhg",
    "HourlyVisibility": "visibility_mi",
}
# A measured value outside its plausible range (raw_contracts.ranges, in the units above) or not a finite
# number is an encoding or sensor error: nulled and named in `implausible_fields` rather than passed on.
REQUIRED_COLUMNS = ("STATION", "DATE")  # REPORT_TYPE and the Hourly* columns are optional
LCD_COLUMNS = (*REQUIRED_COLUMNS, "REPORT_TYPE", *MEASUREMENTS)  # the columns read; the rest are ignored
HOURLY_REPORT_TYPE = "FM-15"  # routine hourly METAR
SPECIAL_REPORT_TYPE = "FM-16"  # special report (SPECI), used only for hours without a routine one
HOURLY_REPORT_TYPES = (HOURLY_REPORT_TYPE, SPECIAL_REPORT_TYPE)
# Routine METARs are issued at minute 51 of the hour at most US ASOS stations.
ROUTINE_MINUTE = 51

# the columns of the lake's tables, defined once in lake_schema.py
HOURLY_COLUMNS = lake_schema.column_names("hourly_observations")
DAILY_COLUMNS = lake_schema.column_names("daily_summaries")


def _clean(column: Column) -> Column:
    """LCD value with its quality suffixes removed: 's' marks a suspect value, '*' an amended one."""
    return F.regexp_replace(F.trim(column), r"[s*]+$", "")


def _number(column: Column) -> Column:
    cleaned = _clean(column)
    return F.when(cleaned.isin("", "M"), F.lit(None)).otherwise(cleaned.try_cast("double"))


def _is_unparsed(raw_value: Column, parsed: Column) -> Column:
    cleaned = _clean(raw_value)
    return raw_value.isNotNull() & ~cleaned.isin("", "M", "T", "VRB") & parsed.isNull()


def _is_implausible(value: Column, bounds: tuple[float, float]) -> Column:
    # try_cast gives a number, not null, for 'NaN', 'Infinity' and '1e309': a non-finite value is named too.
    # (`between` alone would catch them only because Spark orders NaN above every number.)
    finite = ~F.isnan(value) & (F.abs(value) != F.lit(float("inf")))
    return value.isNotNull() & ~(finite & value.between(*bounds))


def _completeness() -> Column:
    """How many measurements an observation has."""
    return reduce(lambda a, b: a + b, [F.col(name).isNotNull().cast("int") for name in MEASUREMENTS.values()])


def transform_records(raw: DataFrame, files_with_report_type: list[str]) -> DataFrame:
    """The readable LCD records of the raw rows (see lcd_records), each marked with whether its file has a
    REPORT_TYPE column (a cut-down file without one is chosen from by transform_choose_hourly_reports)."""
    return raw.filter(F.col("row_kind") == lcd_records.RECORD).select(
        "source_file", "source_line", *LCD_COLUMNS,
        F.col("source_file").isin(list(files_with_report_type)).alias("has_report_type"),
    )


def transform_hourly_reports(records: DataFrame) -> DataFrame:
    """Routine hourly (FM-15) and special (FM-16) reports, and every observation of a file without a
    REPORT_TYPE column; daily/monthly summaries (SOD, SOM) and other types are out of scope (see
    lcd_quarantine.transform_quarantine)."""
    return records.filter(F.trim(F.col("REPORT_TYPE")).isin(*HOURLY_REPORT_TYPES) | ~F.col("has_report_type"))


def transform_choose_hourly_reports(parsed: DataFrame) -> DataFrame:
    """`superseded_reason` null for the observations to keep, per station and UTC hour:

    - every routine report (FM-15);
    - in an hour without one, the routine observation of the files without REPORT_TYPE (`report_type`
      null): the one nearest to minute 51 (ROUTINE_MINUTE: routine METARs are issued at :51 at most US
      ASOS stations), a tie broken by the most measurements, then the latest, then file and line;
    - in an hour with neither, the latest special report (FM-16).

    Every other observation of the hour gets the reason instead (field and value named)."""
    hour_key = ["station_id", F.date_trunc("hour", "observed_at_utc")]
    hour = Window.partitionBy(*hour_key)

    def hour_has(condition: Column) -> Column:
        return F.max(F.coalesce(condition, F.lit(False)).cast("int")).over(hour) == 1

    is_routine = F.col("report_type") == HOURLY_REPORT_TYPE
    is_untyped = F.col("report_type").isNull()
    same_kind = Window.partitionBy(*hour_key, F.coalesce(F.col("report_type"), F.lit("")))
    seconds_from_routine = F.abs(F.minute("observed_at_utc") * 60 + F.second("observed_at_utc") - ROUTINE_MINUTE * 60)
    untyped_order = same_kind.orderBy(seconds_from_routine.asc(), _completeness().desc(),
                                      F.col("observed_at_utc").desc(), F.col("source_file").desc(),
                                      F.col("source_line").desc())
    special_order = same_kind.orderBy(F.col("observed_at_utc").desc(), F.col("source_file").desc(),
                                      F.col("source_line").desc())
    shown_type = F.when(is_untyped, F.concat(F.lit("REPORT_TYPE absent (DATE '"), F.col("raw_date"), F.lit("')"))
                        ).otherwise(F.concat(F.lit("REPORT_TYPE '"), F.col("report_type"), F.lit("'")))
    kept_untyped = F.format_string("DATE '%s' (%s line %d)", *[F.first(c).over(untyped_order)
                                                                for c in ("raw_date", "source_file", "source_line")])
    return parsed.withColumn(
        "superseded_reason",
        F.when(is_routine, F.lit(None))
        .when(hour_has(is_routine), F.concat(shown_type, F.lit(": not used, a routine FM-15 report exists for this "
                                                               "station and hour")))
        .when(is_untyped & (F.row_number().over(untyped_order) > 1),
              F.concat(shown_type, F.lit(f": not used, the routine observation of this station and hour is taken "
                                         f"to be the one nearest to minute {ROUTINE_MINUTE}, then the most complete, "
                                         "then the latest: "), kept_untyped))
        .when(is_untyped, F.lit(None))
        .when(hour_has(is_untyped), F.concat(shown_type, F.lit(": not used, an observation of a file without "
                                                               "REPORT_TYPE is the routine one of this hour")))
        .when(F.row_number().over(special_order) > 1,
              F.concat(shown_type, F.lit(": not used, a later special report of the same hour is used"))),
    )


def transform_parse_observations(reports: DataFrame, stations: DataFrame) -> DataFrame:
    """Typed observations with units in the names and UTC timestamps.

    Rows whose DATE does not parse or whose station is unknown get a `rejection_reason`; the caller
    routes them to the quarantine rather than dropping them. `report_type` is null for the observations
    of a file without a REPORT_TYPE column.
    """
    station_ref = stations.select(
        F.col("station_id").alias("_station_id"), "wban_id", "airport_code", "lst_utc_offset_hours"
    )
    joined = reports.join(station_ref, F.trim(reports["STATION"]) == station_ref["_station_id"], "left")

    direction_raw = _clean(F.col("HourlyWindDirection"))
    precip_raw = _clean(F.col("HourlyPrecipitation"))
    parsed = {
        name: _number(F.col(column)) for column, name in MEASUREMENTS.items()
    }
    parsed["wind_direction_deg"] = F.when(direction_raw == "VRB", F.lit(None)).otherwise(
        parsed["wind_direction_deg"]
    )
    parsed["precip_in"] = F.when(precip_raw == "T", F.lit(0.0)).otherwise(parsed["precip_in"])

    # a value that parsed but is implausible is named as that, not also as unparsed
    unparsed = F.array_compact(
        F.array(*[F.when(_is_unparsed(F.col(c), parsed[n]), F.lit(c)) for c, n in MEASUREMENTS.items()])
    )
    implausible = {}
    for name, bounds in WEATHER_RANGES.items():
        implausible[name] = _is_implausible(parsed[name], bounds)
        parsed[name] = F.when(implausible[name], F.lit(None)).otherwise(parsed[name])
    implausible_names = F.array_compact(
        F.array(*[F.when(bad, F.lit(name)) for name, bad in implausible.items()])
    )
    suspect = reduce(
        lambda a, b: a | b, [F.trim(F.col(c)).endswith("s") for c in MEASUREMENTS]
    )
    observed_at_lst = F.try_to_timestamp(F.trim(F.col("DATE")), F.lit("yyyy-MM-dd'T'HH:mm:ss"))

    typed = joined.select(
        F.trim(F.col("STATION")).alias("station_id"),
        "wban_id",
        "airport_code",
        F.when(F.col("has_report_type"), F.trim(F.col("REPORT_TYPE"))).alias("report_type"),
        *[parsed[name].alias(name) for name in MEASUREMENTS.values()],
        (direction_raw == "VRB").alias("is_variable_wind"),
        (precip_raw == "T").alias("has_trace_precip"),
        F.coalesce(suspect, F.lit(False)).alias("has_suspect_value"),
        F.array_join(unparsed, ",").alias("unparsed_fields"),
        F.array_join(implausible_names, ",").alias("implausible_fields"),
        observed_at_lst.alias("observed_at_lst"),
        F.expr("timestampadd(HOUR, -lst_utc_offset_hours, observed_at_lst)").alias("observed_at_utc"),
        "source_file",
        "source_line",
        F.col("DATE").alias("raw_date"),
    )
    reason = (
        F.when(F.col("station_id").isNull() | (F.col("station_id") == ""), F.lit("STATION: missing"))
        .when(F.col("airport_code").isNull(), F.concat(F.lit("STATION: unknown station id '"),
                                                      F.col("station_id"), F.lit("'")))
        .when(F.col("observed_at_lst").isNull(), F.concat(F.lit("DATE: cannot parse '"),
                                                          F.coalesce(F.col("raw_date"), F.lit("")),
                                                          F.lit("' as yyyy-MM-ddTHH:mm:ss")))
    )
    return typed.withColumn("rejection_reason", reason)


def transform_rank_duplicates(observations: DataFrame) -> DataFrame:
    """`duplicate_rank` per station and UTC instant: 1 for the report to keep, and where it is
    (`kept_file`, `kept_line`).

    The row with the most measured values wins; a tie is broken on the values themselves, then on the
    file and line, so the outcome does not depend on file order or partitioning.
    """
    fingerprint = F.concat_ws(
        "|", *[F.coalesce(F.col(n).cast("string"), F.lit("")) for n in MEASUREMENTS.values()],
        F.col("source_file"),
    )
    window = Window.partitionBy("station_id", "observed_at_utc").orderBy(
        _completeness().desc(), fingerprint.desc(), F.col("source_line").asc()
    )
    return observations.select(
        "*",
        F.row_number().over(window).alias("duplicate_rank"),
        F.first("source_file").over(window).alias("kept_file"),
        F.first("source_line").over(window).alias("kept_line"),
    )


def transform_deduplicate(observations: DataFrame) -> DataFrame:
    """One row per station and UTC instant (see transform_rank_duplicates)."""
    ranked = transform_rank_duplicates(observations)
    return ranked.filter(F.col("duplicate_rank") == 1).drop("duplicate_rank", "kept_file", "kept_line")


def transform_hourly_table(observations: DataFrame) -> DataFrame:
    return observations.select(
        *HOURLY_COLUMNS,
        F.date_format("observed_at_lst", "yyyy-MM").alias("observation_month"),
        "station_id",
    )


def transform_daily_summaries(hourly: DataFrame) -> DataFrame:
    """The blog's daily features per station and local-standard-time day."""
    daily = hourly.groupBy("station_id", "wban_id", "airport_code",
                           F.to_date("observed_at_lst").alias("summary_date")).agg(
        F.max("temp_f").alias("tmax_f"),
        F.min("temp_f").alias("tmin_f"),
        F.sum("precip_in").alias("precip_in"),
        F.round(F.avg("wind_speed_mph"), 2).alias("avg_wind_speed_mph"),
        F.max("wind_gust_mph").alias("max_wind_gust_mph"),
        F.min("visibility_mi").alias("min_visibility_mi"),
        F.count(F.lit(1)).alias("observation_count"),
    )
    return daily.select(
        *DAILY_COLUMNS,
        F.date_format("summary_date", "yyyy-MM").alias("observation_month"),
        "station_id",
    )
