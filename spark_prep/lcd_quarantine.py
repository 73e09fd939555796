"""Where every LCD record that is not loaded went, and why; and per file, the proof that none was lost.

Pure transforms: the quarantine rows (`weather._quarantine`: file, line, a kind and a reason naming the
field and value) of the records spark_prep/lcd_hourly.py does not load, and the per-file reconciliation
rows read = loaded + quarantined + blank lines, which weather_job checks before anything is written.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_prep import lcd_records
from spark_prep.lcd_hourly import HOURLY_REPORT_TYPES

QUARANTINE_COLUMNS = (
    "source_file",
    "source_line",
    "station_id",
    "raw_date",
    "report_type",
    "quarantine_kind",  # unreadable | other_report_type | rejected | special_superseded | not_routine | duplicate
    "quarantine_reason",  # names the field and shows its value
    "raw_text",  # the record as read, for unreadable records (the others are at source_file, source_line)
)


def transform_unreadable(raw: DataFrame) -> DataFrame:
    """Records that cannot be read (broken quoting, wrong number of fields, invalid UTF-8 in a used field,
    an overlong value), as quarantine rows."""
    return raw.filter(F.col("row_kind") == lcd_records.BAD).select(
        "source_file", "source_line",
        *[F.lit(None).cast("string").alias(c) for c in ("station_id", "raw_date", "report_type")],
        F.lit("unreadable").alias("quarantine_kind"), F.col("problem").alias("quarantine_reason"), "raw_text",
    )


def transform_read_counts(raw: DataFrame) -> DataFrame:
    """Per file, the reader's own counts: records read (readable or not, blank lines included) and blank lines."""
    return raw.filter(F.col("row_kind") == lcd_records.FILE).select("source_file", "rows_read", "blank_lines")


def transform_quarantine(records: DataFrame, parsed: DataFrame, ranked: DataFrame,
                         chosen: DataFrame | None = None, unreadable: DataFrame | None = None) -> DataFrame:
    """Every raw record that is not loaded, with the reason: records that cannot be read, other report
    types (SOD, SOM, ...), unparseable or unknown rows, observations not chosen for their hour, and
    duplicates that lost to a more complete report for the same station and time."""
    typed_file = F.col("has_report_type")
    common = ["source_file", "source_line", F.trim(F.col("STATION")).alias("station_id"),
              F.col("DATE").alias("raw_date")]
    other_types = records.filter(typed_file & ~F.trim(F.col("REPORT_TYPE")).isin(*HOURLY_REPORT_TYPES)).select(
        *common,
        F.trim(F.col("REPORT_TYPE")).alias("report_type"),
        F.lit("other_report_type").alias("quarantine_kind"),
        F.concat(F.lit("REPORT_TYPE: '"), F.trim(F.col("REPORT_TYPE")),
                 F.lit(f"' is not an hourly report ({' or '.join(HOURLY_REPORT_TYPES)})")).alias("quarantine_reason"),
    )
    missing_type = records.filter(typed_file & F.col("REPORT_TYPE").isNull()).select(
        *common,
        F.lit(None).cast("string").alias("report_type"),
        F.lit("other_report_type").alias("quarantine_kind"),
        F.lit(f"REPORT_TYPE: empty (expected {' or '.join(HOURLY_REPORT_TYPES)})").alias("quarantine_reason"),
    )
    kept = ["source_file", "source_line", "station_id", "raw_date", "report_type"]
    unparsed = parsed.filter(F.col("rejection_reason").isNotNull()).select(
        *kept, F.lit("rejected").alias("quarantine_kind"), F.col("rejection_reason").alias("quarantine_reason"),
    )
    parts = [other_types, missing_type, unparsed]
    if chosen is not None:
        parts.append(chosen.filter(F.col("superseded_reason").isNotNull()).select(
            *kept,
            F.when(F.col("report_type").isNull(), "not_routine").otherwise("special_superseded")
            .alias("quarantine_kind"),
            F.col("superseded_reason").alias("quarantine_reason"),
        ))
    parts.append(ranked.filter(F.col("duplicate_rank") > 1).select(
        *kept,
        F.lit("duplicate").alias("quarantine_kind"),
        F.format_string("duplicate: STATION '%s' DATE '%s' (%s UTC) is also at %s line %d, which is loaded "
                        "(at least as complete)", F.col("station_id"), F.col("raw_date"),
                        F.date_format("observed_at_utc", "yyyy-MM-dd HH:mm"), F.col("kept_file"),
                        F.col("kept_line")).alias("quarantine_reason"),
    ))
    parts = [part.withColumn("raw_text", F.lit(None).cast("string")) for part in parts]
    if unreadable is not None:
        parts.append(unreadable)
    return reduce(DataFrame.unionByName, parts).select(*QUARANTINE_COLUMNS)


def transform_file_reconciliation(read_counts: DataFrame, loaded: DataFrame, quarantine: DataFrame) -> DataFrame:
    """Per file: rows read = rows loaded + rows quarantined + blank lines (checked by the caller).

    `read_counts` (source_file, rows_read, blank_lines) is what the reader counted, independently of what
    the transforms made of the records, so a record lost on the way shows up here."""
    counted_loaded = loaded.groupBy("source_file").agg(F.count(F.lit(1)).alias("rows_loaded"))
    quarantined = quarantine.groupBy("source_file").agg(F.count(F.lit(1)).alias("rows_quarantined"))
    return (
        read_counts.join(counted_loaded, "source_file", "full").join(quarantined, "source_file", "full")
        .fillna(0, ["rows_read", "blank_lines", "rows_loaded", "rows_quarantined"])
        .select("source_file", "rows_read", "rows_loaded", "rows_quarantined", "blank_lines")
        .orderBy("source_file")
    )
