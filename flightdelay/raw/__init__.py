"""Raw files into the warehouse: the bundled sample (`sample.py`), files as users download them
(`ingest.py`), the BTS loader (`load.py`: every record loaded or quarantined at its physical line) and the
reconciliation each loading path records (`reconciliation.py`)."""
