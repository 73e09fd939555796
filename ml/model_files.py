"""The files of a model folder (SM_MODEL_DIR), named once: ml/ writes and reads them, the flow checks for them
(without importing XGBoost or scikit-learn)."""

MODEL_FILE = "model.json"  # the booster, in XGBoost's own JSON format
SPEC_FILE = "feature_spec.json"  # the columns and categories it was fit on (ml/features.py)
BASELINE_FILE = "baseline.json"  # the logistic baseline as numbers (ml/evaluation.py, LinearBaseline)
FIT_FILE = "fit.json"  # what the fit saw and produced, so an evaluation needs no refit (ml/train.py)
