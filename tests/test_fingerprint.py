"""Metric fingerprints (§6) against SHA-256 digests of canonical JSON written out by hand in each test."""

import datetime as dt
import hashlib
import zoneinfo

import pytest

from experiments.definitions.fingerprint import compute_metric_fingerprint
from tests.factories import SavedMetricFactory

REVENUE = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "uuid": "3f1c9a52-revenue",
    "name": "Revenue per user",
    "fingerprint": "stale",
    "only_count_matured_users": True,
    "goal": "increase",
    "source": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
    "breakdownFilter": {"breakdowns": []},
}
# REVENUE without uuid, name, kind, fingerprint, only_count_matured_users and the empty breakdownFilter,
# keys sorted at every level, no spaces.
REVENUE_CANONICAL = (
    '{"goal":"increase","metric_type":"mean",'
    '"source":{"event":"purchase","kind":"EventsNode","math":"sum","math_property":"amount"}}'
)
JAN_10_NOON_UTC = dt.datetime(2025, 1, 10, 12, 0, tzinfo=dt.UTC)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_a_known_metric():
    expected = sha256(
        '{"metric":{"goal":"increase","metric_type":"mean",'
        '"source":{"event":"purchase","kind":"EventsNode","math":"sum","math_property":"amount"}},'
        '"start_date":"2025-01-10T12:00:00+00:00","stats_method":"bayesian"}'
    )

    fingerprint = compute_metric_fingerprint(
        REVENUE, start_date=JAN_10_NOON_UTC, stats_config={"method": "bayesian"}, exposure_criteria=None
    )

    assert fingerprint == expected


def canonical(template: str) -> str:
    """The canonical JSON of REVENUE under some settings: `template` names the metric's place as <metric>."""
    return template.replace("<metric>", REVENUE_CANONICAL)


@pytest.mark.parametrize(
    ("settings", "expected_json"),
    [
        # A draft has no start date; a missing stats method counts as bayesian (an unknown one is refused on write).
        ({"start_date": None, "stats_config": None}, '{"metric":<metric>,"start_date":null,"stats_method":"bayesian"}'),
        (
            {"start_date": JAN_10_NOON_UTC, "stats_config": {"bayesian": {"ci_level": 0.9}}},
            '{"metric":<metric>,"start_date":"2025-01-10T12:00:00+00:00","stats_method":"bayesian"}',
        ),
        (
            {"start_date": JAN_10_NOON_UTC, "stats_config": {"method": "frequentist"}},
            '{"metric":<metric>,"start_date":"2025-01-10T12:00:00+00:00","stats_method":"frequentist"}',
        ),
        # Start dates are converted to UTC, with microseconds when there are any.
        (
            {
                "start_date": dt.datetime(2025, 1, 10, 7, 0, 0, 250, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
                "stats_config": {},
            },
            '{"metric":<metric>,"start_date":"2025-01-10T12:00:00.000250+00:00","stats_method":"bayesian"}',
        ),
        # Exposure criteria are included when non-empty; top-level keys are sorted too.
        (
            {
                "start_date": None,
                "stats_config": None,
                "exposure_criteria": {"multiple_variant_handling": "first_seen", "filterTestAccounts": False},
            },
            '{"exposure_criteria":{"filterTestAccounts":false,"multiple_variant_handling":"first_seen"},'
            '"metric":<metric>,"start_date":null,"stats_method":"bayesian"}',
        ),
        (
            {"start_date": None, "stats_config": None, "exposure_criteria": {}},
            '{"metric":<metric>,"start_date":null,"stats_method":"bayesian"}',
        ),
        (
            {"start_date": None, "stats_config": None, "only_count_matured_users": True},
            '{"metric":<metric>,"only_count_matured_users":true,"start_date":null,"stats_method":"bayesian"}',
        ),
        (
            {"start_date": None, "stats_config": None, "excluded_variants": ["red", "blue", "red"]},
            '{"excluded_variants":["blue","red"],"metric":<metric>,"start_date":null,"stats_method":"bayesian"}',
        ),
    ],
)
def test_settings_that_change_results_change_the_fingerprint(settings, expected_json):
    settings = {"exposure_criteria": None, **settings}

    assert compute_metric_fingerprint(REVENUE, **settings) == sha256(canonical(expected_json))


@pytest.mark.parametrize(
    ("breakdown_filter", "canonical_metric"),
    [
        # A null filter, or one with no breakdowns and nothing else, is dropped.
        (None, '{"metric_type":"funnel","series":[]}'),
        ({"breakdowns": []}, '{"metric_type":"funnel","series":[]}'),
        (
            {"breakdowns": [], "breakdown_limit": 5},
            '{"breakdownFilter":{"breakdown_limit":5},"metric_type":"funnel","series":[]}',
        ),
        (
            {"breakdowns": [{"property": "$os"}]},
            '{"breakdownFilter":{"breakdowns":[{"property":"$os"}]},"metric_type":"funnel","series":[]}',
        ),
    ],
)
def test_breakdown_filters_are_normalised(breakdown_filter, canonical_metric):
    metric = {"kind": "ExperimentMetric", "metric_type": "funnel", "series": [], "breakdownFilter": breakdown_filter}

    fingerprint = compute_metric_fingerprint(metric, start_date=None, stats_config=None, exposure_criteria=None)

    assert fingerprint == sha256('{"metric":' + canonical_metric + ',"start_date":null,"stats_method":"bayesian"}')


def test_non_ascii_is_escaped_like_python_json():
    metric = {"kind": "ExperimentMetric", "metric_type": "mean", "source": {"kind": "EventsNode", "event": "café ☕"}}

    fingerprint = compute_metric_fingerprint(metric, start_date=None, stats_config=None, exposure_criteria=None)

    assert fingerprint == sha256(
        '{"metric":{"metric_type":"mean","source":{"event":"caf\\u00e9 \\u2615","kind":"EventsNode"}},'
        '"start_date":null,"stats_method":"bayesian"}'
    )


def test_names_and_uuids_do_not_change_the_fingerprint():
    renamed = {**REVENUE, "name": "Another name", "uuid": "other", "fingerprint": None}
    settings = {"start_date": None, "stats_config": None, "exposure_criteria": None}

    assert compute_metric_fingerprint(renamed, **settings) == compute_metric_fingerprint(REVENUE, **settings)


def test_the_api_stores_and_recomputes_fingerprints(api_client, project):
    url = f"/api/projects/{project.id}/experiments/"
    created = api_client.post(
        url,
        {
            "name": "Checkout",
            "feature_flag_key": "checkout",
            "start_date": "2025-01-10T12:00:00Z",
            "exposure_criteria": {"filterTestAccounts": True},
            "metrics": [REVENUE],
        },
        format="json",
    ).json()

    assert created["metrics"][0]["fingerprint"] == sha256(
        canonical(
            '{"exposure_criteria":{"filterTestAccounts":true},"metric":<metric>,'
            '"start_date":"2025-01-10T12:00:00+00:00","stats_method":"bayesian"}'
        )
    )

    updated = api_client.patch(
        f"{url}{created['id']}/", {"stats_config": {"method": "frequentist"}, "start_date": None}, format="json"
    ).json()

    assert updated["metrics"][0]["fingerprint"] == sha256(
        canonical(
            '{"exposure_criteria":{"filterTestAccounts":true},"metric":<metric>,'
            '"start_date":null,"stats_method":"frequentist"}'
        )
    )


def test_saved_metrics_get_a_fingerprint_when_read(api_client, project):
    saved = SavedMetricFactory(project=project, query={**REVENUE, "uuid": "saved-revenue"})
    url = f"/api/projects/{project.id}/experiments/"
    created = api_client.post(
        url,
        {
            "name": "Checkout",
            "feature_flag_key": "checkout",
            "start_date": "2025-01-10T12:00:00Z",
            "saved_metrics_ids": [{"id": saved.id}],
        },
        format="json",
    ).json()

    [link] = api_client.get(f"{url}{created['id']}/").json()["saved_metrics"]

    assert link["query"]["fingerprint"] == sha256(
        canonical('{"metric":<metric>,"start_date":"2025-01-10T12:00:00+00:00","stats_method":"bayesian"}')
    )
    # The fingerprint is computed, not stored on the saved metric.
    saved.refresh_from_db()
    assert saved.query["fingerprint"] == "stale"
