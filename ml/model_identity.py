"""The model id: one content hash of everything a fit depends on, so that the same inputs give the same id (and,
XGBoost being deterministic for a seed, the same model bytes) and any change gives another.

What it covers: the rows the fit saw (the training and validation frames after sampling, values and column
names), the features and their categories (the FeatureSpec), the hyperparameters, and the code version (the
bytes of ml/*.py, which are the training code SageMaker receives, and the XGBoost version). What it leaves out on
purpose: where the files lie, when the fit ran, the test period (evaluating the same model on a longer test
period does not make another model).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from ml.model_files import MODEL_ID_CHARACTERS


def data_digest(*frames: pd.DataFrame) -> str:
    """The values and column names of the frames, row by row (pandas' stable per-row hash), in order."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(json.dumps([[str(name), str(kind)] for name, kind in frame.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def code_files(folder: Path = Path(__file__).parent) -> list[Path]:
    """The modules of ml/ that ship and count as its code: regular *.py files, not hidden ones (an editor's lock
    file `.#serve.py` is a dangling link, a scratch `.x.py` nobody meant to ship)."""
    return [path for path in sorted(folder.glob("*.py"))
            if not path.name.startswith(".") and path.is_file() and not path.is_symlink()]


def code_digest(folder: Path = Path(__file__).parent) -> str:
    """The training code: every module of ml/, as SageMaker's source dir holds them (staging.sourcedir_tarball)."""
    digest = hashlib.sha256()
    for path in code_files(folder):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def model_id(data: str, features: dict, hyperparameters: dict, code: str, library_versions: dict) -> str:
    payload = {"data": data, "features": features, "hyperparameters": hyperparameters, "code": code,
               "libraries": library_versions}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:MODEL_ID_CHARACTERS]
