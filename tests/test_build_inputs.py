"""What `flightdelay build` redoes (flightdelay/flow/build_inputs.py): nothing, from the first changed month, or
everything; and the retraining and rescoring decisions built on it (flightdelay/flow/ml_inputs.py)."""

from __future__ import annotations

from flightdelay.flow import build_inputs, ml_inputs
from flightdelay.flow.build_inputs import BuildInputs


def inputs(project="p", flights=None, weather=None) -> BuildInputs:
    return BuildInputs(project, flights or {"2013-01": "a", "2013-02": "b"},
                       weather or {"2013-01": "w1", "2013-02": "w2"})


def test_nothing_published_or_forced_rebuilds_everything():
    assert build_inputs.plan(inputs(), None, []).full_refresh
    assert build_inputs.plan(inputs(), inputs(), [], full_refresh=True).full_refresh


def test_a_new_month_rebuilds_from_that_month():
    now = inputs(flights={"2013-01": "a", "2013-02": "b", "2013-03": "c"}, weather={"2013-01": "w1", "2013-02": "w2"})
    plan = build_inputs.plan(now, inputs(), [])
    assert (plan.full_refresh, plan.rebuild_from_month) == (False, "2013-03-01")


def test_changed_weather_of_an_earlier_month_rebuilds_from_it():
    now = inputs(weather={"2013-01": "w1-redelivered", "2013-02": "w2"})
    assert build_inputs.plan(now, inputs(), []).rebuild_from_month == "2013-01-01"


def test_a_month_that_disappeared_counts_as_changed():
    now = inputs(flights={"2013-01": "a"})
    assert build_inputs.plan(now, inputs(), []).rebuild_from_month == "2013-02-01"


def test_months_an_unpublished_build_touched_are_rebuilt_too():
    """A build after the publish (its gates failed) left February's bad rows in the intermediate tables: the data
    is back to what was published, and February is still rebuilt."""
    failed = inputs(flights={"2013-01": "a", "2013-02": "bad"})
    plan = build_inputs.plan(inputs(), inputs(), [failed])
    assert (plan.full_refresh, plan.rebuild_from_month) == (False, "2013-02-01")


def test_nothing_changed_rebuilds_no_flight():
    plan = build_inputs.plan(inputs(), inputs(), [])
    assert (plan.full_refresh, plan.rebuild_from_month) == (False, "2013-03-01")
    assert build_inputs.plan(inputs(flights={"2013-12": "x"}, weather={}), inputs(flights={"2013-12": "x"},
                                                                               weather={}), []).rebuild_from_month \
        == "2014-01-01"


def test_a_changed_project_rebuilds_everything():
    assert build_inputs.plan(inputs(project="q"), inputs(), []).full_refresh
    assert build_inputs.plan(inputs(), inputs(), [inputs(project="q")]).full_refresh


def test_inputs_round_trip_through_the_ledger():
    original = inputs()
    assert BuildInputs.from_json(original.to_json()) == original
    assert BuildInputs.from_json(original.to_json()).digest == original.digest


def test_rescoring_starts_at_the_first_changed_month():
    published = inputs(flights={"2013-01": "a", "2013-02": "b", "2013-03": "c"})
    assert ml_inputs.first_changed_month(inputs(), published) == "2013-03-01"
    assert ml_inputs.first_changed_month(published, published) == ""
    assert ml_inputs.first_changed_month(None, published) is None
    assert ml_inputs.first_changed_month(inputs(project="old"), published) is None


def test_a_month_after_the_test_period_does_not_retrain(tmp_path):
    from datetime import date

    from flightdelay.settings import Settings
    from tests.conftest import PROJECT_ROOT

    settings = Settings(project_root=PROJECT_ROOT, raw_dir=tmp_path, lake_dir=tmp_path, warehouse_path=tmp_path / "w",
                        artifacts_dir=tmp_path, train_start=date(2013, 1, 1), test_start=date(2013, 2, 1),
                        test_end=date(2013, 2, 28))
    before = ml_inputs.training_inputs(settings, "build-1", inputs())
    after = ml_inputs.training_inputs(settings, "build-2", inputs(flights={"2013-01": "a", "2013-02": "b",
                                                                           "2013-03": "new"}))
    assert after.digest == before.digest  # the same data id, whichever build exported it
    changed = ml_inputs.training_inputs(settings, "build-3", inputs(flights={"2013-01": "a", "2013-02": "changed"}))
    assert changed.digest != before.digest
    moved = ml_inputs.training_inputs(settings.with_overrides(test_end=date(2013, 3, 31)), "build-2",
                                      inputs(flights={"2013-01": "a", "2013-02": "b", "2013-03": "new"}))
    assert moved.digest != before.digest


def test_a_month_inside_the_test_period_keeps_the_fit(tmp_path):
    """The fit id covers the months up to the test period's first (and the split's starts); a later month inside
    the test period, or a later test end, moves the data id only: the model is evaluated again, not refit."""
    from datetime import date

    from flightdelay.settings import Settings
    from tests.conftest import PROJECT_ROOT

    settings = Settings(project_root=PROJECT_ROOT, raw_dir=tmp_path, lake_dir=tmp_path, warehouse_path=tmp_path / "w",
                        artifacts_dir=tmp_path, train_start=date(2013, 1, 1), test_start=date(2013, 2, 15),
                        test_end=date(2013, 3, 31))
    before = ml_inputs.training_inputs(settings, "b1", inputs())
    assert before.fit_months == ["2013-01", "2013-02"]
    march = ml_inputs.training_inputs(settings, "b2", inputs(flights={"2013-01": "a", "2013-02": "b", "2013-03": "c"}))
    assert march.digest != before.digest and march.fit_digest == before.fit_digest
    longer = ml_inputs.training_inputs(settings.with_overrides(test_end=date(2013, 4, 30)), "b2", inputs())
    assert longer.digest != before.digest and longer.fit_digest == before.fit_digest
    for changed in (ml_inputs.training_inputs(settings, "b3", inputs(flights={"2013-01": "a", "2013-02": "new"})),
                    ml_inputs.training_inputs(settings.with_overrides(test_start=date(2013, 2, 20)), "b3", inputs()),
                    ml_inputs.training_inputs(settings.with_overrides(prediction_horizon_minutes=360), "b3", inputs())):
        assert changed.fit_digest != before.fit_digest


def test_training_says_why_it_trains(tmp_path):
    from flightdelay.settings import Settings
    from tests.conftest import PROJECT_ROOT

    settings = Settings(project_root=PROJECT_ROOT, raw_dir=tmp_path, lake_dir=tmp_path, warehouse_path=tmp_path / "w",
                        artifacts_dir=tmp_path)
    before = ml_inputs.training_inputs(settings, "b1", inputs())
    after = ml_inputs.training_inputs(settings, "b2", inputs(flights={"2013-01": "a", "2013-02": "redelivered"}))
    assert ml_inputs.why_train(before, after, False, False) == "data of 2013-02 changed"
    assert ml_inputs.why_train(None, after, False, False) == "no model trained on recorded inputs yet"
    assert ml_inputs.why_train(before, before, True, False) == "--retrain"
