"""The flow's steps and what every command needs around them.

- `pipeline.py`: the steps in order (`STEPS`: sample, prep, load, build, validate, publish, train, score,
  report), `run`, and the run summary. The steps themselves, by what they touch:
  `raw_steps.py` (sample, the Spark weather job, the BTS load), `warehouse_steps.py` (dbt build into the
  audit schema, the gates, publish), `downstream_steps.py` (train, score, report: they read the published
  marts); `dbt_command.py` runs dbt, `errors.py` holds the one error a step raises.
- `modeling.py`: the ML steps around `ml/` (export channels, train, batch-score).
- `project_lock.py` (one writer at a time), `progress.py` (long child processes), `doctor.py` (the machine).
"""
