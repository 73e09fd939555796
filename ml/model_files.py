"""The files of a model folder (SM_MODEL_DIR), named once: ml/ writes and reads them, the flow checks for them
(without importing XGBoost or scikit-learn)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

MODEL_FILE = "model.json"  # the booster, in XGBoost's own JSON format
SPEC_FILE = "feature_spec.json"  # the columns and categories it was fit on (ml/features.py)
BASELINE_FILE = "baseline.json"  # the logistic baseline as numbers (ml/evaluation.py, LinearBaseline)
FIT_FILE = "fit.json"  # what the fit saw and produced, so an evaluation needs no refit (ml/train.py)
FITTED_FILES = (MODEL_FILE, SPEC_FILE, BASELINE_FILE)  # one fit: FIT_FILE records their digests and the model id
MODEL_ID_CHARACTERS = 16  # hex digits of sha256 (ml/model_identity.py): unique among any number of models a team keeps
FIT_RECORD_KEYS = ("model_id", "train", "validation", "model", "baseline_training_seconds", "files")


class ModelFolderError(ValueError):
    """A model folder that is not one fit of ml/train.py: the message names the file and what to do."""


def _well_typed(summary: dict) -> bool:
    """The record's values of the types ml/train.py writes: an id of MODEL_ID_CHARACTERS hex digits, a sha256 per
    file, objects for the periods and the model, a number of seconds."""
    return (isinstance(summary["model_id"], str)
            and re.fullmatch(f"[0-9a-f]{{{MODEL_ID_CHARACTERS}}}", summary["model_id"]) is not None
            and all(isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)
                    for digest in summary["files"].values())
            and all(isinstance(summary[key], dict) for key in ("train", "validation", "model"))
            and isinstance(summary["baseline_training_seconds"], int | float)
            and not isinstance(summary["baseline_training_seconds"], bool))


def fit_record(model_dir: str | Path, role: str = "model folder") -> dict:
    """FIT_FILE of a model folder, once every file it records was checked against its digest (read before
    anything parses them: an edited, mixed or half-written folder is refused, never evaluated, served or used to
    score). `role` names the folder in the message (the model channel of a training job, a served model)."""
    folder = Path(model_dir)

    def refused(name: str, why: str) -> ModelFolderError:
        return ModelFolderError(f"{role} {folder}: {name} {why}; it is not one fit of ml/train.py, so fit a model "
                                "anew (`flightdelay train --retrain`)")

    record = folder / FIT_FILE
    try:
        summary = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    except (OSError, ValueError, RecursionError) as error:
        raise refused(FIT_FILE, f"is not JSON ({type(error).__name__})") from None
    if summary is None:
        raise refused(FIT_FILE, "is missing (or not a file)")
    files = summary.get("files") if isinstance(summary, dict) else None
    if not isinstance(files, dict) or sorted(files) != sorted(FITTED_FILES) or any(
            key not in summary for key in FIT_RECORD_KEYS) or not _well_typed(summary):
        raise refused(FIT_FILE, "is not the record of a fit this version of ml/train.py wrote")
    for name in FITTED_FILES:
        path = folder / name
        try:
            content = path.read_bytes() if path.is_file() else None
        except OSError:
            content = None
        if content is None:
            raise refused(name, "is missing (or not a file)")
        if hashlib.sha256(content).hexdigest() != files[name]:
            raise refused(name, f"is not the file the fit wrote (its digest differs from {FIT_FILE}'s)")
    return summary
