"""Great Expectations gates at each boundary: the raw files, the lake, the audit marts, the training channel.

- `suites.py`: the suites as data, which expectations on which columns at which severity; what dbt tests
  check on the marts is not repeated there.
- `frames.py`: the pandas frame each boundary's suites validate, read by DuckDB (or from the channel folder).
- `gates.py`: runs the suites on the frames through the GX file context in `expectations/` (checkpoints, Data
  Docs); `validate_boundaries` and `validate_training_channel` are what the flow calls. Big tables are
  validated a chunk of months at a time, so memory follows the chunk, not the table.
- `whole_table.py`: the expectations no chunk can decide (shares of rows, means, uniqueness, row counts),
  computed over the whole table in SQL and reported with the chunks' results.
- `docs_assets.py`: makes the Data Docs render offline.
"""

import os

# Set here, not in gates.py: a package's __init__ runs before any of its modules, so this precedes every
# `import great_expectations` below it whichever module is imported first (GX reads its analytics setting when
# it is imported, so setting it in a function called later would be too late). setdefault: a caller's own
# choice stands.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
