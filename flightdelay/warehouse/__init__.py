"""The warehouse, whichever engine holds it: what the flow needs from one (`engine.py`) and each engine's own
lines (`duckdb_warehouse.py`, `postgres_warehouse.py`; Redshift's are rendered by flightdelay/aws/), the lake as
a warehouse that cannot read Parquet gets it (`lake_exposure.py`), and the write-audit-publish ledger that gates
`publish` (`wap.py`)."""
