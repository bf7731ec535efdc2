"""Multi-armed bandits: the settings' validation on write, the reweight service against real events, the beat
job, the lifecycle interplay, the activity log, and the period-weighted analysis of a bandit's metrics."""

import datetime as dt
import uuid

import numpy as np
import pytest
from django.utils import timezone

from events.models import Event
from experiments import messages
from experiments.definitions.bandit import BanditProblem, BanditSettings, parse_bandit
from experiments.metrics import daily_variant_statistics
from experiments.models import Experiment, ExperimentActivity, ExperimentMetricResult
from experiments.results.current import current_metric_result
from experiments.results.daily import current_result_store
from experiments.services.bandits import bandit_reweight, bandit_run_number, bandit_seed
from experiments.stats import Ratio, SampleMean, srm_check
from experiments.stats.bandits import NOT_ENOUGH_UNITS, BanditArm, bandit_weights, period_weighted_row
from experiments.stats.ratio_cuped import RatioCupedStatistic
from experiments.tasks import schedule_bandit_reweights
from experiments_api.celery import app as celery_app
from experiments_api.exceptions import DomainError
from tests.factories import ExperimentFactory, FeatureFlagFactory, SavedMetricFactory, mean_metric
from tests.helpers import validation_error

pytestmark = pytest.mark.django_db

START = dt.datetime(2025, 3, 6, 0, 0, tzinfo=dt.UTC)
FLAG_KEY = "bandit-flag"
METRIC_UUID = "decide-on-purchases"
DECISION_METRIC = {**mean_metric("purchase"), "uuid": METRIC_UUID}
FIRST_SEEN = {"multiple_variant_handling": "first_seen"}


def experiments_url(project) -> str:
    return f"/api/projects/{project.pk}/experiments/"


def action_url(experiment, action: str) -> str:
    return f"/api/projects/{experiment.project_id}/experiments/{experiment.pk}/{action}/"


def make_bandit(project, *, start=START, bandit=None, active=True, **extra) -> Experiment:
    flag = FeatureFlagFactory(project=project, key=f"{FLAG_KEY}-{uuid.uuid4().hex[:8]}", active=active)
    fields = {
        "type": "bandit",
        "start_date": start,
        "metrics": [DECISION_METRIC],
        "primary_metrics_ordered_uuids": [METRIC_UUID],
        "stats_config": {"method": "bayesian"},
        "exposure_criteria": FIRST_SEEN,
        "parameters": {"bandit": {"seed": 7, **(bandit or {})}},
    }
    return ExperimentFactory(project=project, feature_flag=flag, **{**fields, **extra})


def store_units(experiment, *, variant: str, count: int, buyers: int, at: dt.datetime, prefix: str = "") -> None:
    """`count` units exposed to `variant` at `at`, the first `buyers` of them buying once an hour later."""
    events = []
    for index in range(count):
        distinct_id = f"{prefix}{variant}-{index}"
        events.append(
            Event(
                project=experiment.project,
                uuid=uuid.uuid4(),
                event="$feature_flag_called",
                distinct_id=distinct_id,
                timestamp=at,
                properties={"$feature_flag": experiment.feature_flag.key, "$feature_flag_response": variant},
            )
        )
        if index < buyers:
            events.append(
                Event(
                    project=experiment.project,
                    uuid=uuid.uuid4(),
                    event="purchase",
                    distinct_id=distinct_id,
                    timestamp=at + dt.timedelta(hours=1),
                    properties={},
                )
            )
    Event.objects.bulk_create(events)


def unit_values(count: int, buyers: int) -> np.ndarray:
    return np.array([1.0] * buyers + [0.0] * (count - buyers))


def reference_arm(count: int, buyers: int) -> BanditArm:
    values = unit_values(count, buyers)
    return BanditArm(n=count, mean=float(values.mean()), variance=float(values.var(ddof=1)))


def percentages(experiment) -> dict[str, int]:
    experiment.feature_flag.refresh_from_db()
    return {variant["key"]: variant["rollout_percentage"] for variant in experiment.feature_flag.variants}


def bandit_event(entry: ExperimentActivity) -> dict:
    return next(change["after"] for change in entry.changes if change["field"] == "bandit")


# Settings: every bad input is a whole-body 400 naming the field.


def bandit_body(**overrides) -> dict:
    body = {
        "name": "Checkout bandit",
        "feature_flag_key": "checkout-bandit",
        "type": "bandit",
        "metrics": [DECISION_METRIC],
        "exposure_criteria": FIRST_SEEN,
        "parameters": {"bandit": {}},
    }
    return {**body, **overrides}


def with_bandit(**settings) -> dict:
    return {"parameters": {"bandit": settings}}


THREE_VARIANTS = [
    {"key": "control", "rollout_percentage": 34},
    {"key": "a", "rollout_percentage": 33},
    {"key": "b", "rollout_percentage": 33},
]
MIN_WEIGHT_TWO = messages.BANDIT_MIN_WEIGHT_INVALID.format(variants=2)
BAD_SETTINGS = {
    "bandit not an object": ({"parameters": {"bandit": [1]}}, messages.BANDIT_NOT_OBJECT, "parameters"),
    "unknown setting": (
        with_bandit(speed=2),
        messages.BANDIT_UNKNOWN_SETTINGS.format(
            keys="speed",
            allowed="decision_metric_uuid, top_two, min_variation_weight, burn_in_hours, update_interval_hours, seed",
        ),
        "parameters",
    ),
    "top_two not a boolean": (
        with_bandit(top_two="yes"),
        messages.BANDIT_NOT_BOOLEAN.format(setting="top_two"),
        "parameters",
    ),
    "min weight at 1/K": (with_bandit(min_variation_weight=0.5), MIN_WEIGHT_TWO, "parameters"),
    "min weight negative": (with_bandit(min_variation_weight=-0.01), MIN_WEIGHT_TWO, "parameters"),
    "min weight a string": (with_bandit(min_variation_weight="0.1"), MIN_WEIGHT_TWO, "parameters"),
    "min weight a boolean": (with_bandit(min_variation_weight=True), MIN_WEIGHT_TWO, "parameters"),
    "min weight at 1/K of three variants": (
        {"parameters": {"bandit": {"min_variation_weight": 0.34}, "feature_flag_variants": THREE_VARIANTS}},
        messages.BANDIT_MIN_WEIGHT_INVALID.format(variants=3),
        "parameters",
    ),
    "negative burn-in": (
        with_bandit(burn_in_hours=-1),
        messages.BANDIT_HOURS_INVALID.format(setting="burn_in_hours", minimum=0, maximum=8760),
        "parameters",
    ),
    "burn-in as text": (
        with_bandit(burn_in_hours="24"),
        messages.BANDIT_HOURS_INVALID.format(setting="burn_in_hours", minimum=0, maximum=8760),
        "parameters",
    ),
    "interval below an hour": (
        with_bandit(update_interval_hours=0.5),
        messages.BANDIT_HOURS_INVALID.format(setting="update_interval_hours", minimum=1, maximum=8760),
        "parameters",
    ),
    "interval above a year": (
        with_bandit(update_interval_hours=8761),
        messages.BANDIT_HOURS_INVALID.format(setting="update_interval_hours", minimum=1, maximum=8760),
        "parameters",
    ),
    "negative seed": (with_bandit(seed=-1), messages.BANDIT_SEED_INVALID, "parameters"),
    "fractional seed": (with_bandit(seed=1.5), messages.BANDIT_SEED_INVALID, "parameters"),
    "boolean seed": (with_bandit(seed=True), messages.BANDIT_SEED_INVALID, "parameters"),
    "huge seed": (with_bandit(seed=2**63), messages.BANDIT_SEED_INVALID, "parameters"),
    "empty decision metric uuid": (
        with_bandit(decision_metric_uuid=""),
        messages.BANDIT_METRIC_UUID_INVALID,
        "parameters",
    ),
    "numeric decision metric uuid": (
        with_bandit(decision_metric_uuid=5),
        messages.BANDIT_METRIC_UUID_INVALID,
        "parameters",
    ),
    "unknown decision metric": (
        with_bandit(decision_metric_uuid="nope"),
        messages.BANDIT_UNKNOWN_DECISION_METRIC.format(uuid="nope"),
        "parameters",
    ),
    "frequentist": (
        {"stats_config": {"method": "frequentist"}},
        messages.BANDIT_NEEDS_BAYESIAN.format(method="frequentist"),
        "stats_config",
    ),
    "default exposure handling": ({"exposure_criteria": None}, messages.BANDIT_NEEDS_FIRST_SEEN, "exposure_criteria"),
    "exclude handling": (
        {"exposure_criteria": {"multiple_variant_handling": "exclude"}},
        messages.BANDIT_NEEDS_FIRST_SEEN,
        "exposure_criteria",
    ),
}


@pytest.mark.parametrize(("overrides", "detail", "attr"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_create_refuses_a_bad_bandit_setting(api_client, project, overrides, detail, attr):
    response = api_client.post(experiments_url(project), bandit_body(**overrides), format="json")
    assert response.status_code == 400, response.json()
    assert response.json() == validation_error(detail, attr)
    assert not Experiment.objects.filter(project=project).exists()


def test_create_accepts_a_bandit_with_its_settings(api_client, project):
    settings = {
        "decision_metric_uuid": METRIC_UUID,
        "top_two": True,
        "min_variation_weight": 0,
        "burn_in_hours": 0,
        "update_interval_hours": 6,
        "seed": 42,
    }
    response = api_client.post(experiments_url(project), bandit_body(**with_bandit(**settings)), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["type"], body["parameters"]["bandit"], body["stats_config"]) == (
        "bandit",
        settings,
        {"method": "bayesian"},
    )


def test_update_refuses_settings_that_break_a_bandit(api_client, project):
    experiment = make_bandit(project, start=None)
    url = f"{experiments_url(project)}{experiment.pk}/"
    response = api_client.patch(url, {"stats_config": {"method": "frequentist"}}, format="json")
    assert response.json() == validation_error(
        messages.BANDIT_NEEDS_BAYESIAN.format(method="frequentist"), "stats_config"
    )
    decided = {"parameters": {"bandit": {"decision_metric_uuid": METRIC_UUID}}}
    assert api_client.patch(url, decided, format="json").status_code == 200
    response = api_client.patch(url, {"metrics": [mean_metric("$pageview", uuid="other")]}, format="json")
    assert response.json() == validation_error(
        messages.BANDIT_UNKNOWN_DECISION_METRIC.format(uuid=METRIC_UUID), "parameters"
    )
    experiment.refresh_from_db()
    assert [metric["uuid"] for metric in experiment.metrics] == [METRIC_UUID]


P90_METRIC = {
    "kind": "ExperimentMetric",
    "metric_type": "quantile",
    "uuid": "p90-basket",
    "source": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
    "quantile": 0.9,
}


def test_no_metric_of_a_bandit_may_be_a_quantile(api_client, project):
    for field in ("metrics", "metrics_secondary"):
        metrics = [DECISION_METRIC, P90_METRIC] if field == "metrics" else [P90_METRIC]
        response = api_client.post(experiments_url(project), bandit_body(**{field: metrics}), format="json")
        assert response.json() == validation_error(messages.BANDIT_QUANTILE_METRIC, field)
    saved = SavedMetricFactory(project=project, query=P90_METRIC)
    linked = {"saved_metrics_ids": [{"id": saved.pk, "metadata": {"type": "secondary"}}]}
    response = api_client.post(experiments_url(project), bandit_body(**linked), format="json")
    assert response.json() == validation_error(messages.BANDIT_QUANTILE_METRIC, "saved_metrics_ids")
    assert not Experiment.objects.filter(project=project).exists()
    experiment = make_bandit(project, start=None)
    response = api_client.patch(
        f"{experiments_url(project)}{experiment.pk}/", {"metrics_secondary": [P90_METRIC]}, format="json"
    )
    assert response.json() == validation_error(messages.BANDIT_QUANTILE_METRIC, "metrics_secondary")
    experiment.refresh_from_db()
    assert experiment.metrics_secondary in (None, [])


def test_a_stored_quantile_metric_of_a_bandit_is_a_failed_result_not_a_crash(project):
    """A saved metric may become a quantile after it was linked: its result fails with the reason."""
    experiment = make_bandit(project, metrics_secondary=[P90_METRIC])
    store_units(experiment, variant="control", count=3, buyers=1, at=START + dt.timedelta(hours=1))
    with pytest.raises(DomainError) as refused:
        current_metric_result(experiment=experiment, metric=P90_METRIC)
    assert refused.value.message == messages.BANDIT_QUANTILE_METRIC
    error, unexpected = current_result_store(experiment=experiment, metric=P90_METRIC, query_to=timezone.now())
    assert (error, unexpected) == (messages.BANDIT_QUANTILE_METRIC, None)
    stored = ExperimentMetricResult.objects.get(experiment=experiment, metric_uuid=P90_METRIC["uuid"])
    assert (stored.status, stored.error_message, stored.result) == ("failed", messages.BANDIT_QUANTILE_METRIC, None)


def test_the_parser_refuses_a_quantile_decision_metric_and_defaults_to_the_first_primary_metric():
    quantile = {"kind": "ExperimentMetric", "metric_type": "quantile", "uuid": "p90"}
    arguments = {"parameters": {}, "stats_config": None, "exposure_criteria": FIRST_SEEN, "variant_count": 2}
    with pytest.raises(BanditProblem) as refused:
        parse_bandit(primary_metrics=[quantile, DECISION_METRIC], **arguments)
    assert (refused.value.message, refused.value.attr) == (messages.BANDIT_QUANTILE_DECISION_METRIC, "parameters")
    assert parse_bandit(primary_metrics=[DECISION_METRIC, quantile], **arguments) == BanditSettings(
        decision_metric=DECISION_METRIC
    )


def test_launch_needs_a_decision_metric_and_starts_at_equal_weights(api_client, project):
    empty = make_bandit(project, start=None, metrics=[])
    response = api_client.post(action_url(empty, "launch"))
    assert response.json() == validation_error(messages.BANDIT_NO_DECISION_METRIC, "metrics")

    experiment = make_bandit(project, start=None)
    flag = experiment.feature_flag
    flag.filters["multivariate"]["variants"] = [
        {"key": "control", "rollout_percentage": 70},
        {"key": "a", "rollout_percentage": 20},
        {"key": "b", "rollout_percentage": 10},
    ]
    flag.save()
    response = api_client.post(action_url(experiment, "launch"))
    assert response.status_code == 200, response.json()
    assert percentages(experiment) == {"control": 34, "a": 33, "b": 33}


# The reweight service against events in PostgreSQL.


def test_a_reweight_moves_traffic_to_the_better_arm_and_logs_its_inputs(project):
    experiment = make_bandit(project)
    store_units(experiment, variant="control", count=150, buyers=15, at=START + dt.timedelta(hours=1))
    store_units(experiment, variant="test", count=150, buyers=75, at=START + dt.timedelta(hours=1))
    version = experiment.feature_flag.version
    now = START + dt.timedelta(hours=25)

    entry = bandit_reweight(experiment=experiment, now=now)

    assert percentages(experiment) == {"control": 1, "test": 99}
    assert experiment.feature_flag.version == version + 1
    assert (entry.activity, entry.user, entry.changes[0]) == (
        "bandit_reweight",
        None,
        {"field": "feature_flag_variants", "before": {"control": 50.0, "test": 50.0}, "after": percentages(experiment)},
    )
    event = bandit_event(entry)
    reported = event.pop("variants")
    assert event == {
        "run": 0,
        "date": now.isoformat(),
        "decision_metric_uuid": METRIC_UUID,
        "seed": bandit_seed(experiment_id=experiment.pk, run=0, seed=7),
        "top_two": False,
        "min_variation_weight": 0.01,
        "current_weights": {"control": 0.5, "test": 0.5},
        "updated_weights": {"control": 0.01, "test": 0.99},
        "applied_percentages": {"control": 1, "test": 99},
        "best_arm_probabilities": {"control": 0.0, "test": 1.0},
        "update_message": None,
        "error": None,
        "weights_were_updated": True,
    }
    expected = {"control": reference_arm(150, 15), "test": reference_arm(150, 75)}
    assert [row["key"] for row in reported] == ["control", "test"]
    for row in reported:
        arm = expected[row["key"]]
        assert (row["users"], row["mean"], row["variance"]) == pytest.approx((arm.n, arm.mean, arm.variance), abs=1e-9)


CLOSE_CASES = {
    "two arms": (False, {"control": 40, "test": 48}),
    "three arms, top two": (True, {"control": 30, "a": 40, "b": 42}),
}


@pytest.mark.parametrize(("top_two", "buyers"), CLOSE_CASES.values(), ids=CLOSE_CASES.keys())
def test_close_arms_get_the_thompson_weights_of_the_fixed_seed(project, top_two, buyers):
    experiment = make_bandit(project, bandit={"top_two": top_two, "min_variation_weight": 0.05})
    flag = experiment.feature_flag
    flag.filters["multivariate"]["variants"] = [{"key": key, "rollout_percentage": 0} for key in buyers]
    flag.filters["multivariate"]["variants"][0]["rollout_percentage"] = 100
    flag.save()
    for variant, count in buyers.items():
        store_units(experiment, variant=variant, count=120, buyers=count, at=START + dt.timedelta(hours=2))

    event = bandit_event(bandit_reweight(experiment=experiment, now=START + dt.timedelta(hours=24)))

    seed = bandit_seed(experiment_id=experiment.pk, run=0, seed=7)
    arms = [reference_arm(120, count) for count in buyers.values()]
    reference = bandit_weights(arms, seed=seed, top_two=top_two, min_weight=0.05)
    assert list(event["updated_weights"]) == list(buyers)
    assert list(event["updated_weights"].values()) == pytest.approx(reference.weights, abs=1e-12)
    assert list(event["best_arm_probabilities"].values()) == pytest.approx(reference.best_arm_probabilities, abs=1e-12)
    assert 0.05 < min(event["updated_weights"].values()) < max(event["updated_weights"].values()) < 0.95
    assert sum(event["applied_percentages"].values()) == 100
    assert percentages(experiment) == event["applied_percentages"]


def test_the_seed_depends_on_the_experiment_run_and_configured_seed():
    seeds = {
        bandit_seed(experiment_id=1, run=0, seed=None),
        bandit_seed(experiment_id=1, run=1, seed=None),
        bandit_seed(experiment_id=2, run=0, seed=None),
        bandit_seed(experiment_id=1, run=0, seed=3),
    }
    assert len(seeds) == 4
    assert bandit_seed(experiment_id=1, run=0, seed=3) == bandit_seed(experiment_id=1, run=0, seed=3)


def test_fewer_than_100_units_in_an_arm_change_nothing_and_say_why(project):
    experiment = make_bandit(project)
    store_units(experiment, variant="control", count=150, buyers=15, at=START + dt.timedelta(hours=1))
    store_units(experiment, variant="test", count=99, buyers=50, at=START + dt.timedelta(hours=1))
    version = experiment.feature_flag.version

    entry = bandit_reweight(experiment=experiment, now=START + dt.timedelta(hours=30))

    assert (percentages(experiment), experiment.feature_flag.version) == ({"control": 50, "test": 50}, version)
    assert [change["field"] for change in entry.changes] == ["bandit"]
    event = bandit_event(entry)
    assert (event["update_message"], event["weights_were_updated"], event["updated_weights"]) == (
        NOT_ENOUGH_UNITS,
        False,
        None,
    )
    assert [(row["key"], row["users"]) for row in event["variants"]] == [("control", 150), ("test", 99)]


def test_runs_wait_for_the_burn_in_and_happen_once_per_interval(project):
    experiment = make_bandit(project, bandit={"burn_in_hours": 48, "update_interval_hours": 12})
    assert bandit_reweight(experiment=experiment, now=START + dt.timedelta(hours=47, minutes=59)) is None
    first = bandit_reweight(experiment=experiment, now=START + dt.timedelta(hours=48))
    assert bandit_reweight(experiment=experiment, now=START + dt.timedelta(hours=59)) is None
    second = bandit_reweight(experiment=experiment, now=START + dt.timedelta(hours=61))
    assert [bandit_event(first)["run"], bandit_event(second)["run"]] == [0, 1]
    assert ExperimentActivity.objects.filter(experiment=experiment, activity="bandit_reweight").count() == 2
    settings = BanditSettings(None, burn_in=dt.timedelta(hours=48), update_interval=dt.timedelta(hours=12))
    assert bandit_run_number(start=START, settings=settings, now=START + dt.timedelta(hours=84)) == 3


def test_a_paused_ended_or_non_bandit_experiment_is_never_reweighted(project):
    paused = make_bandit(project, active=False)
    ended = make_bandit(project, end_date=START + dt.timedelta(hours=30))
    draft = make_bandit(project, start=None)
    product = make_bandit(project, type="product")
    later = START + dt.timedelta(hours=48)
    assert [bandit_reweight(experiment=experiment, now=later) for experiment in (paused, ended, draft, product)] == [
        None
    ] * 4
    assert not ExperimentActivity.objects.filter(activity="bandit_reweight").exists()


def test_an_unanalysable_decision_metric_is_logged_as_the_error(project):
    experiment = make_bandit(project, parameters={"bandit": {}, "excluded_variants": ["test"]})
    entry = bandit_reweight(experiment=experiment, now=START + dt.timedelta(hours=24))
    assert bandit_event(entry)["error"] == messages.BANDIT_VARIANTS_NOT_ANALYSED.format(keys="test")
    assert percentages(experiment) == {"control": 50, "test": 50}


def test_pause_stops_reweights_and_reset_restores_equal_weights(api_client, project):
    experiment = make_bandit(project)
    store_units(experiment, variant="control", count=150, buyers=15, at=START + dt.timedelta(hours=1))
    store_units(experiment, variant="test", count=150, buyers=75, at=START + dt.timedelta(hours=1))
    assert api_client.post(action_url(experiment, "pause")).status_code == 200
    assert bandit_reweight(experiment=experiment, now=START + dt.timedelta(hours=25)) is None
    assert api_client.post(action_url(experiment, "resume")).status_code == 200
    assert bandit_reweight(experiment=experiment, now=START + dt.timedelta(hours=25)) is not None
    assert percentages(experiment) == {"control": 1, "test": 99}

    response = api_client.post(action_url(experiment, "reset"))

    assert response.status_code == 200, response.json()
    assert percentages(experiment) == {"control": 50, "test": 50}
    assert response.json()["feature_flag"]["filters"]["multivariate"]["variants"] == [
        {"key": "control", "name": "Control", "rollout_percentage": 50},
        {"key": "test", "name": "Test", "rollout_percentage": 50},
    ]


def test_the_activity_endpoint_serves_the_reweight(api_client, project):
    experiment = make_bandit(project)
    entry = bandit_reweight(experiment=experiment, now=START + dt.timedelta(hours=24))
    response = api_client.get(action_url(experiment, "activity"))
    assert response.status_code == 200, response.json()
    (served,) = response.json()["results"]
    assert (served["activity"], served["changes"]) == ("bandit_reweight", entry.changes)


# The beat job.


def test_the_beat_job_reweights_every_running_bandit_once(project):
    started = timezone.now() - dt.timedelta(hours=25)
    running = [make_bandit(project, start=started) for _ in range(2)]
    store_units(running[0], variant="control", count=150, buyers=15, at=started + dt.timedelta(hours=1))
    store_units(running[0], variant="test", count=150, buyers=75, at=started + dt.timedelta(hours=1))
    paused = make_bandit(project, start=started, active=False)
    young = make_bandit(project, start=timezone.now() - dt.timedelta(hours=1))

    schedule_bandit_reweights.delay()
    schedule_bandit_reweights.delay()

    logged = {
        experiment.pk: ExperimentActivity.objects.filter(experiment=experiment, activity="bandit_reweight").count()
        for experiment in (*running, paused, young)
    }
    assert logged == {running[0].pk: 1, running[1].pk: 1, paused.pk: 0, young.pk: 0}
    assert percentages(running[0]) == {"control": 1, "test": 99}
    assert percentages(running[1]) == {"control": 50, "test": 50}


def test_celery_beat_runs_the_bandit_job_every_quarter_hour():
    entry = celery_app.conf.beat_schedule["bandit-reweights"]
    assert entry == {"task": "experiments.tasks.schedule_bandit_reweights", "schedule": 15 * 60}
    assert (entry["task"] in celery_app.tasks, schedule_bandit_reweights.name) == (True, entry["task"])


# Analysis across periods of changing weights.


def direct_weighted(periods: list[dict[str, np.ndarray]], arm: str) -> tuple[float, float]:
    """ȳ = Σ_p w_p ȳ_p and Var(ȳ) = Σ_p w_p² s²_p/n_p with w_p = N_p/N, straight from the unit values."""
    units = [sum(len(values) for values in period.values()) for period in periods]
    weights = np.array(units) / sum(units)
    mean = sum(w * period[arm].mean() for w, period in zip(weights, periods, strict=True))
    variance = sum(
        w**2 * period[arm].var(ddof=1) / len(period[arm]) for w, period in zip(weights, periods, strict=True)
    )
    return float(mean), float(variance)


def sums_row(values: np.ndarray, denominators: np.ndarray | None = None) -> dict:
    row = {"number_of_samples": len(values), "sum": values.sum(), "sum_squares": (values**2).sum()}
    if denominators is not None:
        row |= {
            "denominator_sum": denominators.sum(),
            "denominator_sum_squares": (denominators**2).sum(),
            "numerator_denominator_sum_product": (values * denominators).sum(),
        }
    return row


def test_period_weighting_matches_a_direct_computation():
    rng = np.random.default_rng(3)
    sizes = [(400, 380), (30, 900), (200, 50)]
    periods = [
        {"control": rng.gamma(2.0, 3.0 + p, size=a), "test": rng.gamma(2.5, 3.0 - p / 2, size=b)}
        for p, (a, b) in enumerate(sizes)
    ]
    units = [sum(len(values) for values in period.values()) for period in periods]
    for arm in ("control", "test"):
        row = period_weighted_row([sums_row(period[arm]) for period in periods], units)
        statistic = SampleMean(n=row["number_of_samples"], sum=row["sum"], sum_squares=row["sum_squares"])
        mean, variance = direct_weighted(periods, arm)
        assert row["number_of_samples"] == sum(len(period[arm]) for period in periods)
        assert statistic.mean == pytest.approx(mean, abs=1e-6, rel=1e-9)
        assert statistic.variance / statistic.n == pytest.approx(variance, abs=1e-6, rel=1e-9)


def test_period_weighting_of_a_ratio_weights_each_component():
    rng = np.random.default_rng(5)
    periods = [(rng.poisson(3, 300).astype(float), rng.poisson(6, 300) + 1.0) for _ in range(2)]
    periods.append((rng.poisson(5, 80).astype(float), rng.poisson(6, 80) + 1.0))
    units = [2 * len(numerator) for numerator, _ in periods]
    row = period_weighted_row([sums_row(numerator, denominator) for numerator, denominator in periods], units)
    weights = np.array(units) / sum(units)
    x = sum(w * num.mean() for w, (num, _den) in zip(weights, periods, strict=True))
    d = sum(w * den.mean() for w, (_num, den) in zip(weights, periods, strict=True))
    var_x = sum(w**2 * num.var(ddof=1) / len(num) for w, (num, _den) in zip(weights, periods, strict=True))
    var_d = sum(w**2 * den.var(ddof=1) / len(den) for w, (_num, den) in zip(weights, periods, strict=True))
    cov = sum(w**2 * np.cov(num, den)[0, 1] / len(num) for w, (num, den) in zip(weights, periods, strict=True))
    ratio = Ratio(
        n=row["number_of_samples"],
        numerator_sum=row["sum"],
        numerator_sum_squares=row["sum_squares"],
        denominator_sum=row["denominator_sum"],
        denominator_sum_squares=row["denominator_sum_squares"],
        numerator_denominator_sum_product=row["numerator_denominator_sum_product"],
    )
    delta = var_x / d**2 + x**2 * var_d / d**4 - 2 * x * cov / d**3
    assert ratio.mean == pytest.approx(x / d, abs=1e-6, rel=1e-9)
    assert ratio.variance / ratio.n == pytest.approx(delta, abs=1e-6, rel=1e-9)


def test_period_weighting_of_ratio_cuped_moments_weights_every_pair():
    rng = np.random.default_rng(8)
    periods = []
    for size in (300, 120):
        pre_d = rng.poisson(3, size) + 1.0
        pre_m = pre_d * rng.gamma(2, 4, size)
        d = pre_d + rng.poisson(1, size)
        periods.append(np.vstack([pre_m / pre_d * d + rng.gamma(2, 2, size), d, pre_m, pre_d]))
    names = ("sum", "denominator_sum", "covariate_sum", "covariate_denominator_sum")
    squares = {
        (0, 0): "sum_squares", (1, 1): "denominator_sum_squares", (0, 1): "numerator_denominator_sum_product",
        (2, 2): "covariate_sum_squares", (0, 2): "sum_products", (3, 3): "covariate_denominator_sum_squares",
        (1, 3): "denominator_covariate_denominator_sum_product", (2, 3): "covariate_numerator_denominator_sum_product",
        (0, 3): "numerator_covariate_denominator_sum_product", (1, 2): "covariate_numerator_denominator_post_sum_product",
    }  # fmt: skip
    rows = [
        {"number_of_samples": values.shape[1]}
        | {name: values[index].sum() for index, name in enumerate(names)}
        | {name: (values[i] * values[j]).sum() for (i, j), name in squares.items()}
        for values in periods
    ]
    units = [2 * values.shape[1] for values in periods]

    row = period_weighted_row(rows, units)

    statistic = RatioCupedStatistic(**{"n": row.pop("number_of_samples")} | row)
    weights = np.array(units) / sum(units)
    means = sum(w * values.mean(axis=1) for w, values in zip(weights, periods, strict=True))
    covariance = sum(w**2 * np.cov(values) / values.shape[1] for w, values in zip(weights, periods, strict=True))
    assert statistic.means == pytest.approx(means, rel=1e-9)
    assert statistic.covariance / statistic.n == pytest.approx(covariance, rel=1e-9)


def test_period_weighting_leaves_out_periods_without_units_of_the_arm():
    values = np.array([1.0, 3.0, 4.0, 8.0])
    empty = {"number_of_samples": 0, "sum": 0.0, "sum_squares": 0.0, "step_counts": [0, 0]}
    full = {**sums_row(values), "step_counts": [4, 2]}
    row = period_weighted_row([empty, full], [10, 30])
    assert row.pop("step_counts") == pytest.approx([4.0, 2.0])
    # One period: the arm's own sums (n((n − 1)·s²/n + ȳ²) = Σx²).
    assert row == pytest.approx({"number_of_samples": 4, "sum": 16.0, "sum_squares": float((values**2).sum())})
    assert period_weighted_row([empty], [5]) == {
        "number_of_samples": 0,
        "sum": 0.0,
        "sum_squares": 0.0,
        "step_counts": [0.0, 0.0],
    }


def test_the_engine_counts_only_units_first_exposed_in_the_window(project):
    experiment = make_bandit(project)
    store_units(experiment, variant="control", count=5, buyers=2, at=START + dt.timedelta(hours=1))
    store_units(experiment, variant="control", count=3, buyers=3, at=START + dt.timedelta(hours=30), prefix="late-")
    query_to = START + dt.timedelta(days=3)
    window = (START + dt.timedelta(hours=24), query_to)
    statistics = daily_variant_statistics(
        experiment=experiment, metric=DECISION_METRIC, boundaries=[query_to], first_exposure_window=window
    )
    control = statistics.variants[0][0]
    assert (control["key"], control["number_of_samples"], control["sum"]) == ("control", 3, 3)
    assert statistics.exposures == [{"control": 3, "test": 0}]


FIRST_PERIOD = {"control": (150, 30), "test": (150, 75)}
SECOND_PERIOD = {"control": (20, 10), "test": (600, 120)}


def two_period_bandit_result(project) -> dict:
    """A bandit's current result after one reweight to 1/99: the periods' (units, buyers) per arm are
    FIRST_PERIOD and SECOND_PERIOD; with the flag's percentages after the reweight."""
    experiment = make_bandit(project)
    for variant, (count, buyers) in FIRST_PERIOD.items():
        store_units(experiment, variant=variant, count=count, buyers=buyers, at=START + dt.timedelta(hours=1))
    bandit_reweight(experiment=experiment, now=START + dt.timedelta(hours=24))
    for variant, (count, buyers) in SECOND_PERIOD.items():
        store_units(
            experiment, variant=variant, count=count, buyers=buyers, at=START + dt.timedelta(hours=26), prefix="p2-"
        )
    experiment.refresh_from_db()
    return {
        "percentages": percentages(experiment),
        "result": current_metric_result(experiment=experiment, metric=DECISION_METRIC),
    }


def assert_periods_weighted(bandit: dict) -> None:
    assert bandit["percentages"] == {"control": 1, "test": 99}
    result = bandit["result"]
    periods = [
        {variant: unit_values(count, buyers) for variant, (count, buyers) in period.items()}
        for period in (FIRST_PERIOD, SECOND_PERIOD)
    ]
    rows = {"control": result["baseline"], "test": result["variant_results"][0]}
    for arm, row in rows.items():
        mean, variance = direct_weighted(periods, arm)
        statistic = SampleMean(n=row["number_of_samples"], sum=row["sum"], sum_squares=row["sum_squares"])
        assert row["number_of_samples"] == FIRST_PERIOD[arm][0] + SECOND_PERIOD[arm][0]
        assert statistic.mean == pytest.approx(mean, abs=1e-6)
        assert statistic.variance / statistic.n == pytest.approx(variance, abs=1e-6)
    expected_units = {"control": 300 * 50 + 620 * 1, "test": 300 * 50 + 620 * 99}
    assert result["sample_ratio_mismatch"] == srm_check({"control": 170, "test": 750}, expected_units)
    assert result["sample_ratio_mismatch"]["mismatch"] is False


@pytest.mark.every_database
def test_a_bandit_result_weights_the_periods_between_reweights(project):
    assert_periods_weighted(two_period_bandit_result(project))


def test_a_bandit_created_launched_and_ended_through_the_api(api_client, project):
    body = bandit_body(**with_bandit(burn_in_hours=0, update_interval_hours=1))
    created = api_client.post(experiments_url(project), body, format="json").json()
    experiment = Experiment.objects.get(pk=created["id"])
    assert api_client.post(action_url(experiment, "launch")).status_code == 200
    experiment.refresh_from_db()
    exposed_at = experiment.start_date + dt.timedelta(seconds=1)
    store_units(experiment, variant="control", count=100, buyers=10, at=exposed_at)
    store_units(experiment, variant="test", count=100, buyers=60, at=exposed_at)

    entry = bandit_reweight(experiment=experiment, now=experiment.start_date + dt.timedelta(hours=2))
    assert bandit_event(entry)["run"] == 2
    assert percentages(experiment) == {"control": 1, "test": 99}
    assert api_client.post(action_url(experiment, "end")).status_code == 200
    assert bandit_reweight(experiment=experiment, now=experiment.start_date + dt.timedelta(hours=3)) is None
    assert ExperimentActivity.objects.filter(experiment=experiment, activity="bandit_reweight").count() == 1
