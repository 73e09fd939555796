"""The model card: a short markdown page from evaluation.json, the model's metrics beside the baseline's."""

from __future__ import annotations


def model_card(evaluation: dict) -> str:
    """A short markdown card: data, metrics next to the baseline, importance, calibration."""
    model, base = evaluation["binary_classification_metrics"], evaluation["baseline"]["binary_classification_metrics"]
    data = evaluation["dataset"]
    training = evaluation.get("training_data", {})  # added by the flow (flightdelay train), absent in a bare job
    horizon = training.get("prediction_horizon_minutes")
    lines = [
        "# Flight delay model card",
        "",
        "Predicts whether a departing flight leaves 15+ minutes late, from features known at the as-of time "
        "(scheduled departure minus the prediction horizon"
        + (f", {horizon} minutes" if horizon is not None else "") + "). XGBoost "
        f"{evaluation['model']['xgboost_version']}, {evaluation['model']['num_boosted_rounds']} rounds.",
        "",
        f"Model id `{evaluation['model_id']}`: a hash of the rows it was fit on, its features, hyperparameters and "
        "training code; every prediction it makes carries it."
        + (f" Data id `{training['data_id']}` (the months it was fit and evaluated on), fit id `{training['fit_id']}`."
           if "data_id" in training and "fit_id" in training else ""),
        "",
        "## Data",
        "",
        "| part | first date | last date | rows | delayed share |",
        "|---|---|---|---|---|",
        *[f"| {name} | {p['first_date']} | {p['last_date']} | {p['rows']:,} | {p['positive_rate']:.3f} |"
          for name, p in (("train", data["train"]), ("validation", data["validation"]),
                          (data["evaluated_on"], data["test"]))],
        *([f"The model was fit on a uniform sample of {data['train']['rows']:,} of the training channel's "
           f"{data['train']['rows_in_channel']:,} rows (`max_train_rows`)."]
          if data["train"].get("rows_in_channel", data["train"]["rows"]) > data["train"]["rows"] else []),
        "",
        f"## Metrics on the {data['evaluated_on']} period",
        "",
        "| metric | XGBoost | logistic baseline (blog features) |",
        "|---|---|---|",
        *[f"| {name} | {model[key]['value']:.4f} | {base[key]['value']:.4f} |"
          for name, key in (("ROC AUC", "auc"), ("PR AUC", "pr_auc"), ("log loss", "log_loss"))],
        "",
        "## Hyperparameters",
        "",
        *[f"- `{name}` = {value}" for name, value in evaluation["model"]["hyperparameters"].items()],
        "",
        "## Feature importance (gain, top 15)",
        "",
        "| feature | gain |",
        "|---|---|",
        *[f"| {name} | {gain:.1f} |"
          for name, gain in list(evaluation["model"]["feature_importance_gain"].items())[:15]],
        "",
        "## Calibration (ten bins of predicted probability)",
        "",
        "| predicted probability | flights | mean predicted | observed delayed share |",
        "|---|---|---|---|",
        *[f"| {row['bin_lower']:.1f}-{row['bin_upper']:.1f} | {row['count']:,} | {row['mean_predicted']:.3f} | "
          f"{row['observed_rate']:.3f} |" for row in evaluation["model"]["calibration"]],
        "",
    ]
    return "\n".join(lines)
