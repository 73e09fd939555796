"""What each feature family adds to the model, measured: test ROC AUC over several seeds with each family of
the feature mart left out, and with each candidate family (computed here from the warehouse, not in the mart)
added. The fit is the product's own (ml.booster.train_xgboost with ml/hyperparameters.json); only the seed
changes, because one seed's AUC moves by about 0.001 and most families add less than that.

    python -m bench.feature_families [--seeds 1 2 3] [--only-candidates]

Run after `make run` (it reads artifacts/ml/channels and warehouse/flight_delays.duckdb, read-only). The
candidates are read at the horizon the warehouse was built for and follow the departure board's rule
(macros/departure_board.sql) or use the schedule alone, which is published in advance.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import duckdb
import pandas as pd

from bench.hyperparameters import fit
from bench.tables import markdown_table, save_result
from flightdelay.flow.feature_contract import feature_meta
from ml.channels import read_channel
from ml.features import ID_COLUMN, FeatureSpec

PROJECT_ROOT = Path(__file__).resolve().parents[1]

FLIGHTS = """
    create temp table flights as
    select flight_id, carrier_code, origin_airport_code, dest_airport_code, tail_number, dep_delay_minutes,
        arr_delay_minutes, is_cancelled or is_diverted or arr_delay_minutes is null as is_arrival_unknown,
        is_cancelled, flight_date, scheduled_departure_at_utc, scheduled_arrival_at_utc, as_of_at_utc
    from intermediate.int_flights_converted_to_utc
"""

# Candidate families, one row per flight_id each. Measured, not (yet) in the mart.
CANDIDATES = {
    # The destination's state as this airport's flights there show it: those due in the 3 h before the as-of
    # time, with their arrival delay once landed, else the time waited past their scheduled arrival.
    "destination arrivals (3 h)": """
        with as_of_times as (select distinct dest_airport_code, as_of_at_utc from flights),
        due as (
            select t.dest_airport_code, t.as_of_at_utc, f.arr_delay_minutes,
                date_diff('minute', f.scheduled_arrival_at_utc, t.as_of_at_utc) as minutes_since_due,
                not f.is_arrival_unknown and f.scheduled_arrival_at_utc
                    + to_minutes(cast(f.arr_delay_minutes as bigint)) <= t.as_of_at_utc as has_landed
            from as_of_times as t
            inner join flights as f
                on t.dest_airport_code = f.dest_airport_code
                and f.scheduled_arrival_at_utc <= t.as_of_at_utc
                and f.scheduled_arrival_at_utc > t.as_of_at_utc - interval 3 hour),
        aggregated as (
            select dest_airport_code, as_of_at_utc, count(*) as dest_arrivals_due_3h,
                avg(case when has_landed then arr_delay_minutes else minutes_since_due end)
                    as dest_avg_arr_late_so_far_minutes_3h,
                sum(case when has_landed then (arr_delay_minutes >= 15)::int when minutes_since_due >= 15 then 1
                    else 0 end)::double
                / nullif(sum(case when has_landed or minutes_since_due >= 15 then 1 else 0 end), 0)
                    as dest_arr_late_15_share_3h
            from due group by all)
        select f.flight_id, a.* exclude (dest_airport_code, as_of_at_utc)
        from flights as f
        left join aggregated as a using (dest_airport_code, as_of_at_utc)""",
    # The origin's whole local day up to the as-of time, not only the last hours.
    "origin's day so far": """
        with as_of_times as (select distinct origin_airport_code, flight_date, as_of_at_utc from flights),
        seen as (
            select t.origin_airport_code, t.flight_date, t.as_of_at_utc, f.dep_delay_minutes, f.is_cancelled,
                date_diff('minute', f.scheduled_departure_at_utc, t.as_of_at_utc) as minutes_since_scheduled
            from as_of_times as t
            inner join flights as f
                on t.origin_airport_code = f.origin_airport_code and t.flight_date = f.flight_date
                and f.scheduled_departure_at_utc <= t.as_of_at_utc),
        aggregated as (
            select origin_airport_code, flight_date, as_of_at_utc, count(*) as origin_departures_day_so_far,
                sum(case when minutes_since_scheduled >= 15 and (is_cancelled or dep_delay_minutes >= 15) then 1
                    else 0 end)::double
                / nullif(sum(case when minutes_since_scheduled >= 15 then 1 else 0 end), 0)
                    as origin_late_15_share_day_so_far,
                avg(case when is_cancelled or dep_delay_minutes is null or dep_delay_minutes > minutes_since_scheduled
                    then minutes_since_scheduled else dep_delay_minutes end) as origin_avg_late_so_far_minutes_day
            from seen group by all)
        select f.flight_id, a.* exclude (origin_airport_code, flight_date, as_of_at_utc)
        from flights as f
        left join aggregated as a using (origin_airport_code, flight_date, as_of_at_utc)""",
    # The schedule: how many legs the aircraft flies from here earlier the same day.
    "aircraft's legs earlier today": """
        select flight_id,
            case when tail_number is not null then row_number() over (
                partition by tail_number, flight_date order by scheduled_departure_at_utc) - 1 end
                as tail_legs_earlier_today
        from flights""",
    # The schedule: the day's departures at the origin and at all airports here against their last 28 days
    # (holiday surges and lulls).
    "schedule surge (day vs 28 d)": """
        with by_day as (select origin_airport_code, flight_date, count(*) as departures from flights group by all),
        origin_days as (
            select origin_airport_code, flight_date, departures, departures / avg(departures) over (
                partition by origin_airport_code order by flight_date
                range between interval 28 day preceding and interval 1 day preceding) as ratio
            from by_day),
        all_days as (
            select flight_date, departures / avg(departures) over (
                order by flight_date range between interval 28 day preceding and interval 1 day preceding) as ratio
            from (select flight_date, sum(departures) as departures from by_day group by all))
        select f.flight_id, o.departures as origin_scheduled_departures_day,
            o.ratio as origin_day_schedule_ratio_28d, a.ratio as all_day_schedule_ratio_28d
        from flights as f
        inner join origin_days as o using (origin_airport_code, flight_date)
        inner join all_days as a using (flight_date)""",
    # The schedule: departures from every airport here to the same destination within an hour either side.
    "route congestion (schedule)": """
        select x.flight_id, count(*) - 1 as route_departures_2h
        from flights as x
        inner join flights as y
            on x.dest_airport_code = y.dest_airport_code
            and y.scheduled_departure_at_utc between x.scheduled_departure_at_utc - interval 1 hour
                and x.scheduled_departure_at_utc + interval 1 hour
        group by x.flight_id""",
}


def mart_families(project_root: Path = PROJECT_ROOT) -> dict[str, list[str]]:
    """The families of the mart's features, in contract order: `config.meta.family` beside each feature's
    definition in models/marts/ml/_ml__models.yml."""
    families: dict[str, list[str]] = {}
    for name, meta in feature_meta(project_root).items():
        if "family" in meta:
            families.setdefault(meta["family"], []).append(name)
    return families


def families_of(spec: FeatureSpec, families: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """The families, checked against the model's features: each feature in a family, and each family's features
    in the model (a family left out that the model does not have would measure nothing, and say +0)."""
    families = mart_families() if families is None else families
    unplaced = [c for c in spec.columns if not any(c in columns for columns in families.values())]
    absent = [c for columns in families.values() for c in columns if c not in spec.columns]
    if unplaced or absent:
        raise SystemExit(f"the model's features are not the contract's families (config.meta.family in "
                         f"models/marts/ml/_ml__models.yml): in no family {unplaced}, not in the model {absent}")
    return families


def candidate_frames(warehouse: str) -> dict[str, pd.DataFrame]:
    with duckdb.connect(warehouse, read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(FLIGHTS)
        return {name: con.execute(sql).df() for name, sql in CANDIDATES.items()}


def without(spec: FeatureSpec, dropped: list[str]) -> FeatureSpec:
    return FeatureSpec(categorical={c: v for c, v in spec.categorical.items() if c not in dropped},
                       numeric=[c for c in spec.numeric if c not in dropped])


def fit_auc(spec: FeatureSpec, channels: dict[str, pd.DataFrame], seed: int) -> tuple[float, float, int]:
    """The product's fit as ml/hyperparameters.json has it, but for the seed: test ROC AUC, fit seconds, rounds."""
    row = fit({}, spec, channels, seed, scored=("test",))
    return row["test_roc_auc"], row["fit_seconds"], row["rounds"]


def measure(spec: FeatureSpec, channels: dict[str, pd.DataFrame], seeds: list[int]) -> dict:
    runs = [fit_auc(spec, channels, seed) for seed in seeds]
    return {"features": len(spec.columns), "test_roc_auc": [round(r[0], 5) for r in runs],
            "mean_test_roc_auc": round(statistics.mean(r[0] for r in runs), 5),
            "mean_fit_seconds": round(statistics.mean(r[1] for r in runs), 1),
            "rounds": [r[2] for r in runs]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--channels", default="artifacts/ml/channels")
    parser.add_argument("--warehouse", default="warehouse/flight_delays.duckdb")
    parser.add_argument("--only-candidates", action="store_true")
    args = parser.parse_args(argv)
    channels = {name: read_channel(Path(args.channels) / name).frame for name in ("train", "validation", "test")}
    spec = FeatureSpec.fit(pd.concat([channels["train"], channels["validation"]]))
    families = families_of(spec)  # before any fit: a stale list stops the bench at once
    rows = {"all features of the mart": measure(spec, channels, args.seeds)}
    full = rows["all features of the mart"]["mean_test_roc_auc"]
    print(f"all features: {full:.4f}", flush=True)
    if not args.only_candidates:
        for family, columns in families.items():
            rows[f"without {family}"] = measure(without(spec, columns), channels, args.seeds)
            print(f"without {family}: {rows[f'without {family}']['mean_test_roc_auc']:.4f}", flush=True)
    for family, frame in candidate_frames(args.warehouse).items():
        added = frame.rename(columns={"flight_id": ID_COLUMN})
        with_family = {name: part.merge(added, on=ID_COLUMN, how="left") for name, part in channels.items()}
        extended = FeatureSpec.fit(pd.concat([with_family["train"], with_family["validation"]]))
        rows[f"with {family}"] = measure(extended, with_family, args.seeds)
        print(f"with {family}: {rows[f'with {family}']['mean_test_roc_auc']:.4f}", flush=True)
    path = save_result("feature-families", {"seeds": args.seeds, "test_rows": len(channels["test"]), "rows": rows})
    print(markdown_table(["variant", "features", "test ROC AUC (mean)", "per seed", "vs all"], [
        [name, str(row["features"]), f"{row['mean_test_roc_auc']:.4f}",
         ", ".join(f"{a:.4f}" for a in row["test_roc_auc"]), f"{row['mean_test_roc_auc'] - full:+.4f}"]
        for name, row in rows.items()], right_aligned_from=2))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
