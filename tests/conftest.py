"""Shared fixtures: one Spark session for the whole test run (Hive support, Derby in a temp dir)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REAL_SAMPLES = PROJECT_ROOT.parent / "shared" / "data" / "real-samples"


@pytest.fixture(scope="session")
def spark_lake(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("spark_lake")


@pytest.fixture(scope="session")
def spark(spark_lake):
    from spark_prep.weather_job import JobSettings, build_spark, to_uri

    settings = JobSettings(raw_weather_path="", stations_path="", lake_uri=to_uri(str(spark_lake)),
                           master="local[1]")
    session = build_spark(settings)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
