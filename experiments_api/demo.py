"""Demo data for the embedded default: a login, an API key, a launched experiment with events and results."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from events.demo import demo_events_create
from experiments.definitions.fingerprint import experiment_metric_fingerprint
from experiments.models import Experiment
from experiments.results.requests import timeseries_recalculation_request
from experiments.services import experiment_create, experiment_update
from experiments_api.services import member_with_project_ensure, personal_api_key_create

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
DEMO_ORGANIZATION = "Demo organization"
DEMO_PROJECT = "Demo project"
DEMO_EXPERIMENT = "Demo: one-click checkout"
DEMO_FLAG_KEY = "demo-one-click-checkout"
DEMO_DAYS = 14
DEMO_USERS = 2_000
DEMO_METRICS = [
    {
        "kind": "ExperimentMetric",
        "metric_type": "funnel",
        "name": "Pageview to purchase",
        "series": [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "purchase"}],
    },
    {
        "kind": "ExperimentMetric",
        "metric_type": "mean",
        "name": "Revenue per user",
        "source": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
    },
]


@transaction.atomic
def _demo_experiment(project, user) -> Experiment:
    """The launched demo experiment, created with its events on the first run (all or nothing); its daily results
    are computed once this commits."""
    existing = Experiment.objects.alive().filter(project=project, name=DEMO_EXPERIMENT).first()
    if existing is not None:
        return existing
    experiment = experiment_create(
        project=project,
        user=user,
        data={
            "name": DEMO_EXPERIMENT,
            "description": "Does a one-click checkout button sell more? (demo data)",
            "feature_flag": {"key": DEMO_FLAG_KEY},
            "metrics": [dict(metric) for metric in DEMO_METRICS],
            "stats_config": {"method": "bayesian"},
            "scheduling_config": {"timeseries": True},
        },
    )
    start_date = timezone.now() - dt.timedelta(days=DEMO_DAYS)
    experiment = experiment_update(
        experiment=experiment, user=user, data={"start_date": start_date}, request_data={"start_date": start_date}
    )
    demo_events_create(
        project=project, flag_key=DEMO_FLAG_KEY, variants=["control", "test"], days=DEMO_DAYS, users=DEMO_USERS
    )
    for metric in experiment.metrics:
        timeseries_recalculation_request(
            experiment=experiment, metric=metric, fingerprint=experiment_metric_fingerprint(experiment, metric)
        )
    return experiment


def seed_demo() -> dict:
    user, project = member_with_project_ensure(
        email=DEMO_EMAIL, organization_name=DEMO_ORGANIZATION, project_name=DEMO_PROJECT
    )
    if not user.has_usable_password():
        user.set_password(DEMO_PASSWORD)
    # The embedded default's one login also administers it at /admin/.
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["password", "is_staff", "is_superuser"])
    _key, raw_value = personal_api_key_create(user=user, scopes=["*"], label="demo")
    experiment = _demo_experiment(project, user)
    return {
        "login": {"email": DEMO_EMAIL, "username": user.username, "password": DEMO_PASSWORD},
        "key": raw_value,
        "project_id": project.pk,
        "project_api_token": project.api_token,
        "experiment_id": experiment.pk,
    }
