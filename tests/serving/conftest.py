"""The small real model and its server, one of each per test module (tests/serving/helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.serving.helpers import Served, request_frame, start_server, train_small_model


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    return train_small_model(tmp_path_factory.mktemp("small_model"))


@pytest.fixture(scope="module")
def small_server(small_model: Path) -> Iterator[Served]:
    with start_server(small_model, "--timeout", "1.5", "--workers", "4") as served:
        yield served
    assert "Traceback" not in served.output()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return request_frame(12, seed=3)
