"""The plausible range of every numeric feature a model reads: read from its training channel, checked, served.

The inference server (ml/serve.py) refuses a request with a value outside its feature's range: a month of 13
or a humidity of 400 % is a client's bug, and the model would score it anyway (a tree only compares a value
with its split points) and answer 200 with a probability nobody can trust. Bounds are inclusive.

The ranges are declared once, beside each feature's definition in the feature mart's contract
(`config.meta.range` in models/marts/ml/_ml__models.yml; measured values take raw_contracts/ranges.py's range:
flightdelay/flow/feature_contract.py). The flow writes them into the training channel as RANGES_FILE; training
keeps them in the model's feature_spec.json, so the server needs neither the contract nor raw_contracts, and a
model is served with the ranges it was trained with.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ml.features import RANGES_FILE, FeatureSpec


def _finite(value: object) -> float | None:
    """The number as a float, or None for anything else: a bool, a string, NaN, inf, an int past float's range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def checked_range(where: str, bounds: object) -> tuple[float, float]:
    """(low, high) as floats; ValueError naming `where` unless `bounds` is two finite numbers with low <= high."""
    numbers = [_finite(value) for value in bounds] if isinstance(bounds, list | tuple) and len(bounds) == 2 else []
    if len(numbers) != 2 or None in numbers or numbers[0] > numbers[1]:
        raise ValueError(f"{where}: the range {bounds!r} is not two finite numbers [low, high] with low <= high")
    return numbers[0], numbers[1]


def read_ranges(channel: str | Path) -> dict[str, tuple[float, float]]:
    """The ranges in a training channel's RANGES_FILE (beside its Parquet files). ValueError naming the file when
    it is absent, not JSON or holds a range that is not two finite numbers."""
    channel = Path(channel)
    path = (channel.parent if channel.is_file() else channel) / RANGES_FILE
    try:
        declared = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path} is missing: the training channel carries the plausible range of each feature "
                         "beside its Parquet files (`flightdelay train` exports both; flightdelay/flow/"
                         "feature_contract.py writes the file from the feature mart's contract)") from None
    except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, an integer of 4,300+ digits, nested deep
        raise ValueError(f"{path} is not JSON of feature name -> [low, high]: {str(error)[:200]}") from None
    if not isinstance(declared, dict):
        raise ValueError(f"{path}: expected an object of feature name -> [low, high], got {type(declared).__name__}")
    return {str(name): checked_range(f"{path}, feature {name}", bounds) for name, bounds in declared.items()}


def served_ranges(spec: FeatureSpec) -> dict[str, tuple[float, float]]:
    """The range of each of the spec's numeric features; ValueError naming every feature that has none (a model
    trained before the ranges came with it, or fit outside ml/train.py), so no model is served unchecked."""
    missing = [name for name in spec.numeric if name not in spec.ranges]
    if missing:
        raise ValueError(f"the model's feature_spec.json has no plausible range for the numeric features {missing}: "
                         "it was not trained by ml/train.py from a channel with its feature_ranges.json; train it "
                         "again (`flightdelay train --retrain`)")
    return {name: checked_range(f"feature_spec.json, feature {name}", spec.ranges[name]) for name in spec.numeric}
