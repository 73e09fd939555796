"""What the model was trained on and what the predictions were scored from, so `train` and `score` redo only
what changed.

Retraining policy: a model is retrained when what it would be trained and evaluated on changed, i.e. any of
- the inputs of the months its time split's features are computed from (train_start .. test_end, and the two
  months before train_start that their look-back windows read), month by month as the published build's inputs
  record them (flightdelay/flow/build_inputs.py), or the dbt project that shapes them;
- the time split or the prediction horizon (settings);
- the training code, the versioned hyperparameters or the channel export (ml/*.py, ml/hyperparameters.json,
  flightdelay/flow/modeling.py);
or on `--retrain` / `--force`. A new month after the test period changes none of these: it is scored by the
current model, not trained on.

What the fit saw is the data up to the test period (`fit_months`; the month of its first day too, as flights
dated the day before may look at it across the date line). When only what comes after changed (a month arriving
inside the test period, or FLIGHTDELAY_TEST_END moved), the model is not refit but evaluated again on the whole
test period (ml/train.py with the model channel): its fit id (`fit_digest`) stays, the evaluation's data id
(`digest`) moves. Moving FLIGHTDELAY_TEST_START or the validation or training start refits.

Scoring: predictions are rescored from the first month whose feature rows changed since the build they were
scored from; all of them when the model changed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from flightdelay.flow.build_inputs import BuildInputs
from flightdelay.flow.feature_contract import ranges_file
from flightdelay.settings import Settings
from ml.features import RANGES_FILE
from ml.model_identity import code_files

TRAINING_INPUTS_FILE = "training_inputs.json"  # next to the model, in the model folder
# the features of a day read up to 28 days of route history, its lag, and the rebuild margin before it
LOOKBACK_DAYS = 62


@dataclass(frozen=True)
class TrainingInputs:
    build_id: str  # the published build the channels were exported from
    project: str
    split: dict[str, str]
    prediction_horizon_minutes: int
    months: dict[str, list[str | None]]  # 'YYYY-MM' in the split -> [flights token, weather token]
    code: str

    @property
    def digest(self) -> str:
        """The id of what the model was fit and evaluated on: equal for the same data, split, features and code,
        whichever build."""
        content = {k: v for k, v in asdict(self).items() if k != "build_id"}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def fit_months(self) -> list[str]:
        """The months whose data the fit's rows (training and validation) can depend on."""
        return [m for m in sorted(self.months) if m <= self.split["test_start"][:7]]

    @property
    def fit_digest(self) -> str:
        """The id of what the model was fit on: `digest` without the test period's end and months."""
        content = {**{k: v for k, v in asdict(self).items() if k not in ("build_id", "months")},
                   "split": {k: v for k, v in self.split.items() if k != "test_end"},
                   "months": {m: self.months[m] for m in self.fit_months}}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def ml_code_digest(project_root: Path) -> str:
    digest = hashlib.sha256()
    modeling = Path(__file__).with_name("modeling.py")
    for file in [*code_files(project_root / "ml"), project_root / "ml" / "hyperparameters.json", modeling]:
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    # the feature ranges the model is saved with, as resolved (the contract's YAML and raw_contracts/ranges.py):
    # a narrowed range must reach the served model, not wait for the next change of data
    digest.update(RANGES_FILE.encode() + b"\0" + ranges_file(project_root) + b"\0")
    return digest.hexdigest()


def training_inputs(settings: Settings, build_id: str, build_inputs: BuildInputs) -> TrainingInputs:
    from flightdelay.flow.modeling import TimeSplit

    split = TimeSplit.from_settings(settings)
    first, last = f"{split.train_start - timedelta(days=LOOKBACK_DAYS):%Y-%m}", f"{split.test_end:%Y-%m}"
    months = sorted(m for m in set(build_inputs.flight_months) | set(build_inputs.weather_months) if first <= m <= last)
    return TrainingInputs(
        build_id=build_id,
        project=build_inputs.project,
        split={name: str(value) for name, value in asdict(split).items()},
        prediction_horizon_minutes=settings.prediction_horizon_minutes,
        months={m: [build_inputs.flight_months.get(m), build_inputs.weather_months.get(m)] for m in months},
        code=ml_code_digest(settings.project_root),
    )


def why_train(recorded: TrainingInputs | None, current: TrainingInputs | None, retrain: bool, force: bool) -> str:
    """Why this run trains, in words: what differs from the inputs the current model was trained on."""
    if retrain or force:
        return "--retrain" if retrain else "--force"
    if recorded is None or current is None:
        return "no model trained on recorded inputs yet"
    changes = [f"{name} changed" for name in ("project", "split", "prediction_horizon_minutes", "code")
               if getattr(recorded, name) != getattr(current, name)]
    months = sorted(m for m in set(recorded.months) | set(current.months)
                    if recorded.months.get(m) != current.months.get(m))
    if months:
        changes.append(f"data of {', '.join(months)} changed")
    return "; ".join(changes) or "the model file is missing"


def recorded_training_inputs(model_dir: Path) -> TrainingInputs | None:
    path = model_dir / TRAINING_INPUTS_FILE
    if not path.exists():
        return None
    try:
        return TrainingInputs(**json.loads(path.read_text()))
    except (TypeError, ValueError):
        return None


def record_training_inputs(model_dir: Path, inputs: TrainingInputs) -> None:
    (model_dir / TRAINING_INPUTS_FILE).write_text(json.dumps({**asdict(inputs)}, indent=2, sort_keys=True))


def first_changed_month(scored_from: BuildInputs | None, published: BuildInputs) -> str | None:
    """The first month to rescore ('YYYY-MM-01'), '' when none changed, None when everything must be."""
    if scored_from is None or scored_from.project != published.project:
        return None
    changed = published.months_changed_since(scored_from)
    return f"{min(changed)}-01" if changed else ""
