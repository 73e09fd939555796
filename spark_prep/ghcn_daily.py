"""GHCN-Daily `.dly` fixed-width files -> the rows of a CDO daily export, in Spark without Python UDFs.

Layout (NOAA's ghcnd readme, section III): one line per station, month and element:
ID (columns 1-11), YEAR (12-15), MONTH (16-17), ELEMENT (18-21), then 31 day groups of 8 characters
starting at column 22: VALUE (5, integer, -9999 = missing), MFLAG, QFLAG, SFLAG. Units: TMAX, TMIN,
TAVG in tenths of °C; PRCP in tenths of mm; SNOW in mm; AWND in tenths of m/s.

The transform pivots day values into one row per station and day with the CDO export's columns
(`STATION`, `DATE`, `TMAX`, `TMAX_ATTRIBUTES` = "mflag,qflag,sflag", ...) in metric units, so
`cdo_daily.transform_parse_daily(..., units="metric")` converts them to °F and inches (the blog's
Celsius-to-Fahrenheit step) and applies the same quality-flag and station rules. Elements the lake does
not use (SNWD, WT**, ...) are ignored; a station-day counts as read when it has a value of a used element.
A line whose YEAR or MONTH does not parse becomes one row with an unparseable DATE, so it is quarantined
with that reason instead of disappearing.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_prep import cdo_daily, lcd_records

# element -> divisor from the file's integer to the CDO metric export's unit
SCALE = {"TMAX": 10, "TMIN": 10, "TAVG": 10, "PRCP": 10, "SNOW": 1, "AWND": 10}
DAY_WIDTH = 8
FIRST_DAY_COLUMN = 22
MISSING = "-9999"


def extract(spark: SparkSession, paths: str | list[str]) -> DataFrame:
    """The non-blank lines of the files at `paths` (patterns that match only themselves: see
    lcd_records.literal_pattern), each with its file's exact name."""
    return (
        spark.read.text(paths)
        .withColumn("source_file", lcd_records.file_name_column())
        .filter(F.trim(F.col("value")) != "")
    )


def transform_day_values(lines: DataFrame) -> DataFrame:
    """One row per line and day with a value of a used element: station, date text, element, value in
    the CDO metric unit (as text), attributes. Lines with a bad YEAR/MONTH give one row with date text
    that will not parse."""
    year = F.substring("value", 12, 4)
    month = F.substring("value", 16, 2)
    header_ok = year.rlike("^[0-9]{4}$") & month.rlike("^(0[1-9]|1[0-2])$")
    with_days = lines.select(
        F.substring("value", 1, 11).alias("station"),
        year.alias("year"),
        month.alias("month"),
        F.substring("value", 18, 4).alias("element"),
        header_ok.alias("header_ok"),
        "value",
        "source_file",
        F.explode(F.when(header_ok, F.sequence(F.lit(1), F.lit(31))).otherwise(F.array(F.lit(0)))).alias("day"),
    )
    raw_value = F.trim(F.expr(f"substring(value, {FIRST_DAY_COLUMN} + (day - 1) * {DAY_WIDTH}, 5)"))
    flags = [F.expr(f"substring(value, {FIRST_DAY_COLUMN} + (day - 1) * {DAY_WIDTH} + {offset}, 1)")
             for offset in (5, 6, 7)]
    divisor = F.element_at(F.create_map(*[F.lit(x) for pair in SCALE.items() for x in pair]), F.col("element"))
    number = raw_value.try_cast("int")
    scaled = F.when(divisor == 1, number.cast("string")).otherwise((number / divisor).cast("string"))
    return with_days.filter(
        ~F.col("header_ok") | (F.col("element").isin(*SCALE) & (raw_value != MISSING) & (raw_value != ""))
    ).select(
        F.trim("station").alias("STATION"),
        F.when(F.col("header_ok"), F.format_string("%s-%s-%02d", "year", "month", "day"))
        .otherwise(F.concat_ws("-", "year", "month")).alias("DATE"),
        "element",
        # a value that is not an integer stays as text, so the parser names it
        F.coalesce(scaled, raw_value).alias("value_text"),
        F.concat_ws(",", *[F.trim(flag) for flag in flags]).alias("attributes"),
        "source_file",
        "header_ok",
    )


def transform_to_cdo_layout(day_values: DataFrame) -> DataFrame:
    """Pivot to one row per file, station and day with the CDO export's element and attribute columns.
    Bad lines stay one row each (keyed by their raw text)."""
    good = day_values.filter("header_ok")
    pivoted = (
        good.groupBy("source_file", "STATION", "DATE")
        .pivot("element", list(SCALE))
        # min: deterministic when a file repeats a station-month-element line
        .agg(F.min("value_text").alias("v"), F.min("attributes").alias("a"))
    )
    renamed = pivoted.select(
        "source_file", "STATION", "DATE",
        *[F.col(f"{element}_v").alias(element) for element in SCALE],
        *[F.col(f"{element}_a").alias(f"{element}_ATTRIBUTES") for element in SCALE],
    )
    bad = day_values.filter(~F.col("header_ok")).select(
        "source_file", "STATION", "DATE",
        *[F.lit(None).cast("string").alias(element) for element in SCALE],
        *[F.lit(None).cast("string").alias(f"{element}_ATTRIBUTES") for element in SCALE],
    )
    return cdo_daily.transform_with_all_columns(renamed.unionByName(bad))
