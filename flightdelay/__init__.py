"""flightdelay: flight-delay analytics and prediction, one flow from raw files to a scored model.

The folders follow the flow (README's picture), so where a line lives is one guess away:

- `cli.py`: the `flightdelay` console script; `settings.py`: the one settings object (environment variables).
- `flow/`: the steps in order (`pipeline.py`), what runs them (one writer at a time, progress, `doctor`), and
  the ML steps around `ml/` (`modeling.py`: export channels, train, score).
- `raw/`: raw files in: the bundled sample, `ingest` of downloaded files, the BTS loader and the per-file
  reconciliation every loading path records.
- `warehouse/`: the warehouse past loading: the write-audit-publish ledger, the PostgreSQL mirror.
- `quality/`: the Great Expectations gates and their offline Data Docs.
- `aws/`: the production home: `deploy` (S3, Glue, EMR, Redshift, SageMaker) and the Redshift loader.
- `report/`: the run's static HTML report.

Outside this package: `spark_prep/` (the PySpark weather job and the lake's tables), `raw_contracts/`
(file reading and plausible ranges shared by the loader, the Spark job and the gates), `ml/` (training and
serving under SageMaker's script-mode contract), and the dbt project (`models/`, `macros/`).
"""
