"""What a raw file must be, defined once for every reader of raw files.

- `records`: how a CSV file splits into records, each with the physical line it starts on; what a
  record that cannot be read is quarantined as (field and value named); blank lines counted.
- `ranges`: the plausible range of every measured value, in the units of its column name.

Pure Python with no dependencies: the BTS loader, the Spark weather job (shipped to EMR executors with
`--py-files`) and the quality suites import the same definitions.
"""
