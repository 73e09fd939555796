"""The production home: `deploy.py` (S3, Glue, EMR, Redshift + Spectrum, SageMaker; plans as data, `--dry-run`)
and the BTS loader's Redshift path (`redshift_load.py`)."""
