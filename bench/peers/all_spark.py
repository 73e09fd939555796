"""The peer: the 2016 AWS sample's design, everything in Spark (local mode here, EMR there).

Spark reads the raw BTS and LCD files, rolls the hourly weather up to daily summaries, joins each flight
to its origin's previous-day summary, computes the blog's features (calendar, scheduled hour, distance,
holiday distance, carrier/origin/destination, previous-day weather), trains MLlib logistic regression and
gradient-boosted trees on the same time split as the main flow, scores the test period and writes the
predictions back as Parquet. Timings per phase go to a JSON file for bench/run.py.

    python -m bench.peers.all_spark --raw bench/work/sf1/raw --out bench/work/peer-sf1 \
        --validation-start 2013-10-01 --test-start 2013-11-01 --test-end 2013-12-31
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CATEGORICAL = ("carrier_code", "origin_airport_code", "dest_airport_code")
NUMERIC = ("month_number", "day_of_month", "day_of_week", "scheduled_dep_hour_local", "distance_miles",
           "days_to_nearest_holiday", "previous_day_tmax_f", "previous_day_tmin_f", "previous_day_precip_in",
           "previous_day_avg_wind_speed_mph")


def session(app_name: str = "flightdelay-all-spark-peer"):
    from pyspark.sql import SparkSession

    return (SparkSession.builder.appName(app_name).master("local[*]")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.memory", "6g")
            .config("spark.sql.shuffle.partitions", "8")
            .getOrCreate())


def _number(column: str):
    from pyspark.sql import functions as F

    # LCD values carry flags ("0.02s", "T" for trace); the number is what counts
    value = F.regexp_extract(F.col(column), r"^-?[0-9.]+", 0)
    return F.when(F.col(column) == "T", F.lit(0.0)).otherwise(F.when(value == "", None).otherwise(value.cast("double")))


def extract(spark, raw: Path):
    flights = spark.read.option("header", True).csv(str(raw / "bts"))
    weather = spark.read.option("header", True).csv(str(raw / "lcd"))
    stations = spark.read.option("header", True).csv(str(PROJECT_ROOT / "seeds" / "airport_weather_stations.csv"))
    holidays = spark.read.option("header", True).csv(str(PROJECT_ROOT / "seeds" / "us_federal_holidays.csv"))
    return flights, weather, stations, holidays


def daily_weather(weather, stations):
    from pyspark.sql import functions as F

    hourly = (weather.where(F.col("REPORT_TYPE") == "FM-15")
              .select(F.col("STATION").alias("station_id"),
                      F.to_date(F.substring("DATE", 1, 10)).alias("summary_date"),
                      _number("HourlyDryBulbTemperature").alias("temp_f"),
                      _number("HourlyPrecipitation").alias("precip_in"),
                      _number("HourlyWindSpeed").alias("wind_speed_mph")))
    daily = hourly.groupBy("station_id", "summary_date").agg(
        F.max("temp_f").alias("previous_day_tmax_f"), F.min("temp_f").alias("previous_day_tmin_f"),
        F.sum("precip_in").alias("previous_day_precip_in"),
        F.avg("wind_speed_mph").alias("previous_day_avg_wind_speed_mph"))
    return daily.join(stations.select("airport_code", "station_id"), "station_id")


def features(flights, daily, holidays):
    from pyspark.sql import functions as F

    parsed = flights.select(
        F.to_date(F.substring_index("FL_DATE", " ", 1), "M/d/yyyy").alias("flight_date"),
        F.col("OP_UNIQUE_CARRIER").alias("carrier_code"),
        F.col("OP_CARRIER_FL_NUM").alias("flight_number"),
        F.col("ORIGIN").alias("origin_airport_code"),
        F.col("DEST").alias("dest_airport_code"),
        F.col("CRS_DEP_TIME").alias("scheduled_dep_hhmm"),
        F.col("DEP_DELAY").cast("double").alias("dep_delay_minutes"),
        F.col("CANCELLED").cast("double").alias("cancelled"),
        F.col("DISTANCE").cast("double").alias("distance_miles"),
    ).where(F.col("cancelled") == 0).where(F.col("dep_delay_minutes").isNotNull())
    observed = holidays.select(F.to_date("observed_date").alias("holiday_date"))
    dates = parsed.select("flight_date").distinct()
    holiday_distance = (dates.crossJoin(F.broadcast(observed))
                        .groupBy("flight_date")
                        .agg(F.min(F.abs(F.datediff("flight_date", "holiday_date"))).alias("days_to_nearest_holiday")))
    previous_day = daily.withColumn("flight_date", F.date_add("summary_date", 1)).drop("summary_date", "station_id")
    return (parsed
            .join(holiday_distance, "flight_date", "left")
            .join(previous_day.withColumnRenamed("airport_code", "origin_airport_code"),
                  ["origin_airport_code", "flight_date"], "left")
            .select(
                "flight_date", "carrier_code", "flight_number", "origin_airport_code", "dest_airport_code",
                "scheduled_dep_hhmm",
                F.month("flight_date").alias("month_number"), F.dayofmonth("flight_date").alias("day_of_month"),
                (F.dayofweek("flight_date") - 1).alias("day_of_week"),
                (F.col("scheduled_dep_hhmm").cast("int") / 100).cast("int").alias("scheduled_dep_hour_local"),
                "distance_miles", "days_to_nearest_holiday", "previous_day_tmax_f", "previous_day_tmin_f",
                "previous_day_precip_in", "previous_day_avg_wind_speed_mph",
                (F.col("dep_delay_minutes") >= 15).cast("double").alias("label")))


def pipeline_stages(scale: bool):
    from pyspark.ml.feature import Imputer, OneHotEncoder, StandardScaler, StringIndexer, VectorAssembler

    indexed = [f"{c}_index" for c in CATEGORICAL]
    encoded = [f"{c}_onehot" for c in CATEGORICAL]
    imputed = [f"{c}_imputed" for c in NUMERIC]
    stages = [
        StringIndexer(inputCols=list(CATEGORICAL), outputCols=indexed, handleInvalid="keep"),
        OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"),
        Imputer(inputCols=list(NUMERIC), outputCols=imputed, strategy="median"),
        VectorAssembler(inputCols=[*encoded, *imputed], outputCol="raw_features" if scale else "features"),
    ]
    if scale:
        stages.append(StandardScaler(inputCol="raw_features", outputCol="features"))
    return stages


def run(raw: Path, out: Path, validation_start: str, test_start: str, test_end: str, gbt_iterations: int) -> dict:
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import GBTClassifier, LogisticRegression
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    timings: dict[str, float] = {}
    started = time.perf_counter()
    spark = session()
    timings["spark start"] = time.perf_counter() - started

    started = time.perf_counter()
    flights, weather, stations, holidays = extract(spark, raw)
    frame = features(flights, daily_weather(weather, stations), holidays).cache()
    train = frame.where(F.col("flight_date") < F.lit(validation_start).cast("date")).cache()
    test = frame.where(F.col("flight_date").between(F.lit(test_start).cast("date"), F.lit(test_end).cast("date")))
    test = test.cache()
    rows = {"features": frame.count(), "train": train.count(), "test": test.count()}
    timings["read, join, features"] = time.perf_counter() - started

    evaluator = BinaryClassificationEvaluator(labelCol="label", rawPredictionCol="rawPrediction",
                                              metricName="areaUnderROC")
    results = {}
    for name, classifier, scale in (
        ("logistic regression", LogisticRegression(labelCol="label", maxIter=100, regParam=0.001), True),
        ("gradient-boosted trees", GBTClassifier(labelCol="label", maxIter=gbt_iterations, maxDepth=5, seed=42),
         False),
    ):
        started = time.perf_counter()
        model = Pipeline(stages=[*pipeline_stages(scale), classifier]).fit(train)
        timings[f"train {name}"] = time.perf_counter() - started
        started = time.perf_counter()
        scored = model.transform(test).cache()
        results[name] = evaluator.evaluate(scored)
        key = name.split()[0]
        (scored.select("flight_date", "carrier_code", "flight_number", "origin_airport_code", "scheduled_dep_hhmm",
                       vector_to_array("probability")[1].alias("delay_probability"), "label")
         .write.mode("overwrite").parquet(str(out / f"predictions_{key}")))
        scored.unpersist()
        timings[f"score and write {name}"] = time.perf_counter() - started
    spark.stop()
    return {"rows": rows, "test_roc_auc": results, "timings_seconds": {k: round(v, 1) for k, v in timings.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The all-Spark peer of the flight-delay flow.")
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--validation-start", required=True)
    parser.add_argument("--test-start", required=True)
    parser.add_argument("--test-end", required=True)
    parser.add_argument("--gbt-iterations", type=int, default=50)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result = run(args.raw, args.out, args.validation_start, args.test_start, args.test_end, args.gbt_iterations)
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
