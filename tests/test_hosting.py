"""Hosting as the SageMaker XGBoost framework container does it: the model artifact (model.tar.gz, the
training job's SM_MODEL_DIR) unpacked into /opt/ml/model, the code channel (sourcedir.tar.gz) into
/opt/ml/code, the module named by the model's SAGEMAKER_PROGRAM imported by its bare name from there
(sagemaker_xgboost_container.serving: `modules.import_module(module_dir, module_name)`), and one request
through its model_fn -> input_fn -> predict_fn -> output_fn, in a fresh process that sees nothing of the
project."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from flightdelay.aws.deploy import _sourcedir_tarball, serving_container
from ml.booster import load_model, predict
from tests.conftest import PROJECT_ROOT
from tests.serving.helpers import request_frame, train_small_model

pytestmark = pytest.mark.engine  # trains a small model, then serves it from another process

CONTAINER = """
import importlib, json, sys
code_dir, model_dir, program, body_path = sys.argv[1:5]
sys.path.insert(0, code_dir)
handlers = importlib.import_module(program.removesuffix(".py"))
for name in ("model_fn", "input_fn", "predict_fn", "output_fn"):
    assert callable(getattr(handlers, name, None)), f"{program} has no {name}"
shipped = ("ml", "ml.booster", "ml.features", "ml.request_parsing", "ml.feature_ranges")
loaded = {name: module.__file__ for name, module in sys.modules.items()
          if getattr(module, "__file__", None) and name in shipped}
model = handlers.model_fn(model_dir)
body = open(body_path, "rb").read()
reply, content_type = handlers.output_fn(handlers.predict_fn(handlers.input_fn(body, "text/csv"), model),
                                         "application/json")
print(json.dumps({"content_type": content_type, "reply": json.loads(reply), "loaded": loaded}))
"""


def model_artifact(model_dir: Path) -> bytes:
    """model.tar.gz as SageMaker writes it at the end of training: the files of SM_MODEL_DIR at its root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, arcname=path.name)
    return buffer.getvalue()


def test_the_served_program_scores_a_request_from_the_unpacked_artifacts(tmp_path: Path):
    trained = train_small_model(tmp_path / "training")
    container = serving_container(image="xgboost-image", model_data_url="s3://bucket/model.tar.gz",
                                  submit_directory="s3://bucket/code/ml/sourcedir.tar.gz", region="us-east-1")
    program = container["Environment"]["SAGEMAKER_PROGRAM"]

    opt_ml = tmp_path / "clean" / "opt" / "ml"
    code_dir, model_dir = opt_ml / "code", opt_ml / "model"
    for archive_bytes, folder in ((_sourcedir_tarball(SimpleNamespace(project_root=PROJECT_ROOT)), code_dir),
                                  (model_artifact(trained), model_dir)):
        folder.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive_bytes)) as archive:
            archive.extractall(folder, filter="data")
    assert (code_dir / program).is_file(), f"{program} is not in the code channel: {sorted(os.listdir(code_dir))}"

    rows = request_frame(25, seed=7)
    body = tmp_path / "request.csv"
    body.write_text(rows.to_csv(index=False))
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "PYTHONHOME")}
    completed = subprocess.run(
        [sys.executable, "-I", "-c", CONTAINER, str(code_dir), str(model_dir), program, str(body)],
        cwd=tmp_path / "clean", env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    answer = json.loads(completed.stdout.strip().splitlines()[-1])

    # every module came from the unpacked code channel, none from the project
    assert answer["loaded"] and all(path.startswith(str(code_dir)) for path in answer["loaded"].values()), answer
    assert answer["content_type"] == "application/json"
    served = answer["reply"]["predictions"]
    assert [row["flight_id"] for row in served] == list(rows["flight_id"])
    booster, spec = load_model(trained)
    expected = predict(booster, spec, rows)
    np.testing.assert_allclose([row["delay_probability"] for row in served], expected, rtol=1e-6)
    assert all(0 < row["delay_probability"] < 1 for row in served)


def test_json_lines_reply_is_one_object_per_flight():
    """What a batch transform writes for Redshift's COPY ... FORMAT JSON 'auto' (the score step)."""
    import pandas as pd

    from ml.serve import JSON_LINES, output_fn

    body, content_type = output_fn(pd.DataFrame({"flight_id": ["a", "b"], "delay_probability": [0.25, 0.5]}),
                                   JSON_LINES)
    assert content_type == JSON_LINES
    assert [json.loads(line) for line in body.splitlines()] == [
        {"flight_id": "a", "delay_probability": 0.25}, {"flight_id": "b", "delay_probability": 0.5}]
