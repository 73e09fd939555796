"""bench/feature_families.py measures a family by leaving it out: the families (config.meta.family in the feature
mart's contract) must be the model's features exactly, or a family missing from the model would be reported as
adding +0.0000."""

from __future__ import annotations

import pytest

from bench.feature_families import families_of, mart_families
from ml.features import FeatureSpec

FAMILIES = mart_families()


def spec_of(columns: list[str]) -> FeatureSpec:
    categorical = FAMILIES["categories (carrier, origin, destination)"]
    return FeatureSpec(categorical={c: ["x"] for c in categorical if c in columns},
                       numeric=[c for c in columns if c not in categorical])


def test_the_families_are_the_models_features_or_the_bench_stops_naming_the_difference():
    everything = [c for columns in FAMILIES.values() for c in columns]
    assert families_of(spec_of(everything)) == FAMILIES

    with pytest.raises(SystemExit, match=r"in no family \['runway_queue_length'\]"):
        families_of(spec_of([*everything, "runway_queue_length"]))
    detail = FAMILIES["origin board detail"]
    with pytest.raises(SystemExit, match="not in the model " + repr(detail).replace("[", r"\[").replace("]", r"\]")):
        families_of(spec_of([c for c in everything if c not in detail]))
