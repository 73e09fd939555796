"""One definition of the lake's tables (spark_prep/lake_schema.py): the dbt sources declare exactly its columns,
types and partitions, the Glue tables the aws home registers are built from it, and the Spark writer conforms
each table to it."""

from __future__ import annotations

import yaml

from spark_prep import PY_PACKAGES, lake_schema
from tests.conftest import PROJECT_ROOT

SOURCES = PROJECT_ROOT / "models" / "staging" / "noaa" / "_noaa__sources.yml"


def declared() -> dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]]:
    """dbt's lake sources: table -> (columns with data types, in order; partitions with data types)."""
    [source] = [s for s in yaml.safe_load(SOURCES.read_text())["sources"] if s["name"] == "weather_lake"]
    return {table["name"]: ([(c["name"], c.get("data_type")) for c in table["columns"]],
                            [(p["name"], p["data_type"]) for p in table["config"]["meta"]["spectrum"]["partitions"]])
            for table in source["tables"]}


def test_the_dbt_sources_declare_exactly_the_lake_schema():
    partitions = [(key.name, key.warehouse_type) for key in lake_schema.PARTITION_KEYS]
    expected = {table: (partitions + [(c.name, c.warehouse_type) for c in columns], partitions)
                for table, columns in lake_schema.TABLES.items()}
    found = declared()
    assert set(found) == set(expected), f"{SOURCES.name} has tables {sorted(found)}, lake_schema {sorted(expected)}"
    for table, (columns, keys) in expected.items():
        assert found[table][1] == keys, f"{table}: partitions in {SOURCES.name} differ from lake_schema"
        differences = [f"position {i}: {SOURCES.name} says {f}, lake_schema says {e}"
                       for i, (f, e) in enumerate(zip(found[table][0], columns, strict=False)) if f != e]
        assert not differences and len(found[table][0]) == len(columns), (table, differences, found[table][0])


def test_glue_tables_are_built_from_the_lake_schema():
    from flightdelay.aws.lake import glue_table_input
    from flightdelay.aws.settings import AwsSettings

    aws = AwsSettings(bucket="b", role_arn="arn:aws:iam::123456789012:role/r")
    for table, columns in lake_schema.TABLES.items():
        table_input = glue_table_input(aws, table, f"{table}/run-1")
        assert [(c["Name"], c["Type"]) for c in table_input["StorageDescriptor"]["Columns"]] == [
            (c.name, c.type) for c in columns]
        assert [k["Name"] for k in table_input["PartitionKeys"]] == [k.name for k in lake_schema.PARTITION_KEYS]


def test_the_schema_ships_with_the_spark_job():
    assert "spark_prep" in PY_PACKAGES
    source = (PROJECT_ROOT / "spark_prep" / "lake_schema.py").read_text()
    assert "import pyspark" not in source.split("def conform")[0]  # importable without Spark, as flightdelay does
