"""The warehouse past loading: the write-audit-publish ledger that gates `publish` (`wap.py`) and the copy
of the raw layer and lake into PostgreSQL for the `postgres` dbt target (`postgres_mirror.py`)."""
