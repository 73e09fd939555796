"""The flow's steps (`pipeline.py`: sample, prep, load, build, validate, publish, train, score, report, run),
and what every command needs around them: one writer at a time (`project_lock.py`), progress for long
child processes (`progress.py`), the machine check (`doctor.py`), and the ML steps (`modeling.py`)."""
