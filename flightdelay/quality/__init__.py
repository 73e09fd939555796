"""Great Expectations gates at each boundary (`gates.py`: raw files, the lake, the audit marts, the training
channel) and Data Docs that render offline (`docs_assets.py`)."""
