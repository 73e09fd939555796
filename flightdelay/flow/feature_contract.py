"""The feature mart's contract, read once for every reader: models/marts/ml/_ml__models.yml.

Each feature's column in the contract carries, in `config.meta`, what the rest of the product needs to know of it
beside its type: its sentence for the report (`reason`), its family for the bench (`family`), and its plausible
range (`range`), which the inference server enforces; `reason_unknown` (what a missing value means) and
`drift_monitored: false` (left out of the drift marts) where they apply. So adding a numeric feature is an edit to
the intermediate model, the mart and this YAML, and nothing in Python (a categorical one is also declared in
ml/features.py `CATEGORICAL_FEATURES`, which the SageMaker container needs without the YAML).

A range is inclusive and in the unit the column's name carries, written one of two ways:
- `[low, high]`, numbers that follow from the feature's definition (a share is [0, 1], a month [1, 12]);
- `{raw: flight|weather, field: NAME}`, a measured value's range from raw_contracts/ranges.py, the one the loader,
  the Spark weather job and the quality suites use; `low:` or `high:` beside them replaces that bound (a lateness
  seen within a 3-hour window starts where the loader's departure delays start and ends at 180 minutes).

The ranges reach the model as a file in its training channel (`RANGES_FILE`, written by `export_channels` and, in
the aws home, uploaded beside the unloaded channel): training keeps them in the model's feature_spec.json, so a
model is served with the ranges of the contract it was trained on, and ml/ never reads this YAML (SageMaker gets
ml/ alone).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from ml.feature_ranges import checked_range
from ml.features import CATEGORICAL_FEATURES, DATE_COLUMN, ID_COLUMN, LABEL, RANGES_FILE
from raw_contracts.ranges import FLIGHT_RANGES, WEATHER_RANGES

FEATURE_CONTRACT = Path("models/marts/ml/_ml__models.yml")
FEATURE_MART_MODEL = "ml_flight_delay_features"
RAW_RANGES = {"flight": FLIGHT_RANGES, "weather": WEATHER_RANGES}
NOT_NUMERIC_TYPES = ("date", "timestamp", "time", "varchar", "char", "text", "string")  # a boolean is 0/1 to the model
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}", re.ASCII)


class FeatureContractError(ValueError):
    """The contract does not say what a feature needs: the message names the column and the file."""


def _mart_columns(project_root: Path) -> list[dict]:
    """The mart's columns as the contract lists them; FeatureContractError unless each is a mapping whose name is
    a plain lowercase identifier (the aws home writes the names into the UNLOAD that feeds the batch transform),
    given once."""
    contract = yaml.safe_load((project_root / FEATURE_CONTRACT).read_text(encoding="utf-8"))
    models = contract.get("models") if isinstance(contract, dict) else None
    model = next((m for m in models or () if isinstance(m, dict) and m.get("name") == FEATURE_MART_MODEL), None)
    if model is None or not isinstance(model.get("columns"), list):
        raise FeatureContractError(f"{project_root / FEATURE_CONTRACT}: no model {FEATURE_MART_MODEL} with a list "
                                   "of columns")
    columns = model["columns"]
    names = [column.get("name") if isinstance(column, dict) else None for column in columns]
    bad = [name for name in names if not (isinstance(name, str) and IDENTIFIER.fullmatch(name))]
    twice = sorted({name for name in names if names.count(name) > 1})
    if bad or twice:
        raise FeatureContractError(f"{FEATURE_CONTRACT}, model {FEATURE_MART_MODEL}: column names must be lowercase "
                                   f"identifiers, each given once; found {bad or twice}")
    return columns


def _meta(columns: list[dict]) -> dict[str, dict]:
    return {column["name"]: (column.get("config") or {}).get("meta") or {} for column in columns}


def _numeric(columns: list[dict]) -> list[str]:
    skipped = {ID_COLUMN, LABEL, DATE_COLUMN, *CATEGORICAL_FEATURES}
    return [column["name"] for column in columns if column["name"] not in skipped
            and not str(column.get("data_type", "")).lower().startswith(NOT_NUMERIC_TYPES)]


def feature_meta(project_root: Path) -> dict[str, dict]:
    """Each column's `config.meta` in the feature mart's contract (a feature's sentences, family and range)."""
    return _meta(_mart_columns(project_root))


def numeric_features(project_root: Path) -> list[str]:
    """The mart's numeric features in its column order: every column but the id, the label, the dates and
    timestamps and the categoricals, as ml/features.py `numeric_columns` types the channel exported from it (a
    string column not declared categorical is no feature here: training refuses it, named)."""
    return _numeric(_mart_columns(project_root))


def _resolve(name: str, declared: object) -> tuple[float, float]:
    where = f"{FEATURE_CONTRACT}, column {name}: config.meta.range"
    if isinstance(declared, list) and len(declared) == 2:
        low, high = declared
    elif isinstance(declared, dict) and isinstance(declared.get("raw"), str) and declared["raw"] in RAW_RANGES:
        raw = RAW_RANGES[declared["raw"]]
        if not isinstance(declared.get("field"), str) or declared["field"] not in raw:
            raise FeatureContractError(f"{where} names the raw field {declared.get('field')!r}, which "
                                       f"raw_contracts/ranges.py does not have for {declared['raw']}: "
                                       f"one of {sorted(raw)}")
        unknown = set(declared) - {"raw", "field", "low", "high"}
        if unknown:
            raise FeatureContractError(f"{where} has keys {sorted(unknown)}: only raw, field, low and high")
        low, high = declared.get("low", raw[declared["field"]][0]), declared.get("high", raw[declared["field"]][1])
    else:
        raise FeatureContractError(f"{where} is {declared!r}: write [low, high] or {{raw: flight|weather, "
                                   f"field: NAME}} (module docstring of flightdelay/flow/feature_contract.py)")
    try:
        return checked_range(where, [low, high])
    except ValueError as error:
        raise FeatureContractError(str(error)) from None


def feature_ranges(project_root: Path) -> dict[str, tuple[float, float]]:
    """The plausible range of every numeric feature of the mart. FeatureContractError naming every feature that
    declares none (the server would have to serve it unchecked) and any range that is not two finite numbers."""
    columns = _mart_columns(project_root)  # read once for both
    meta, names = _meta(columns), _numeric(columns)
    misplaced = [name for name in meta if "range" in meta[name] and name not in names]
    if misplaced:
        raise FeatureContractError(f"{FEATURE_CONTRACT}: the columns {misplaced} declare a range but are not numeric "
                                   "features (the id, the label, a date or a category): nothing would check it")
    missing = [name for name in names if "range" not in meta[name]]
    if missing:
        raise FeatureContractError(f"{FEATURE_CONTRACT}: the numeric features {missing} declare no plausible range: "
                                   "add config.meta.range to each ([low, high], or {raw: flight|weather, field: "
                                   "NAME} for a measured value)")
    return {name: _resolve(name, meta[name]["range"]) for name in names}


def ranges_file(project_root: Path) -> bytes:
    """The contract's ranges as the training channel's RANGES_FILE holds them (ml/feature_ranges.py reads it)."""
    ranges = feature_ranges(project_root)
    return (json.dumps({name: list(bounds) for name, bounds in ranges.items()}, indent=1) + "\n").encode()


def write_feature_ranges(project_root: Path, folder: Path) -> Path:
    """The contract's ranges as a file in the training channel's folder."""
    path = folder / RANGES_FILE
    path.write_bytes(ranges_file(project_root))
    return path
