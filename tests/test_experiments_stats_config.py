"""`stats_config` validation: every option the results engine reads is checked on create (attr stats_config)."""

import pytest

from experiments import messages
from experiments.models import Experiment
from experiments_api.exceptions import error_body

pytestmark = pytest.mark.django_db


def create(client, project, stats_config):
    return client.post(
        f"/api/projects/{project.id}/experiments/",
        {"name": "Stats", "feature_flag_key": "stats", "stats_config": stats_config},
        format="json",
    )


@pytest.mark.parametrize(
    ("stats_config", "detail"),
    [
        ({"method": "magic"}, messages.INVALID_STATS_METHOD.format(method="magic")),
        ({"method": {}}, messages.INVALID_STATS_METHOD.format(method={})),
        ({"method": ["bayesian"]}, messages.INVALID_STATS_METHOD.format(method=["bayesian"])),
        ({"bayesian": []}, messages.STATS_CONFIG_SECTION_NOT_OBJECT.format(section="bayesian")),
        ({"bayesian": {"ci_level": 95}}, messages.STATS_CONFIG_OPTION_INVALID.format(option="bayesian.ci_level")),
        ({"bayesian": {"ci_level": "0.9"}}, messages.STATS_CONFIG_OPTION_INVALID.format(option="bayesian.ci_level")),
        ({"frequentist": {"alpha": 0}}, messages.STATS_CONFIG_OPTION_INVALID.format(option="frequentist.alpha")),
        (
            {"frequentist": {"sequential": "yes"}},
            messages.STATS_CONFIG_NOT_BOOLEAN.format(option="frequentist.sequential"),
        ),
        ({"frequentist": {"sequential_tuning": -5}}, messages.STATS_CONFIG_TUNING_INVALID),
        ({"difference_type": "ratio"}, messages.STATS_CONFIG_DIFFERENCE_TYPE_INVALID),
        ({"multiple_testing_correction": "bonferroni"}, messages.STATS_CONFIG_CORRECTION_INVALID),
        ({"cuped": {"enabled": 1}}, messages.STATS_CONFIG_NOT_BOOLEAN.format(option="cuped.enabled")),
        ({"cuped": {"enabled": True, "lookback_days": "14"}}, messages.STATS_CONFIG_LOOKBACK_INVALID),
        ({"cuped": "on"}, messages.STATS_CONFIG_NOT_BOOLEAN.format(option="cuped")),
        ({"frequentist": {"alternative": "up"}}, messages.STATS_CONFIG_ALTERNATIVE_INVALID),
        (
            {"frequentist": {"alternative": "greater", "sequential": True, "alpha": 0.6}},
            messages.STATS_CONFIG_ONE_SIDED_ALPHA,
        ),
        ({"bayesian": {"prior": 0.3}}, messages.PRIOR_NOT_OBJECT.format(path="stats_config.bayesian.prior")),
        (
            {"bayesian": {"prior": {"proper": "yes"}}},
            messages.PRIOR_PROPER_NOT_BOOLEAN.format(path="stats_config.bayesian.prior"),
        ),
        (
            {"bayesian": {"prior": {"mean": "0"}}},
            messages.PRIOR_MEAN_INVALID.format(path="stats_config.bayesian.prior"),
        ),
        (
            {"bayesian": {"prior": {"stddev": 0}}},
            messages.PRIOR_STDDEV_INVALID.format(path="stats_config.bayesian.prior"),
        ),
        (
            {"bayesian": {"prior": {"stddev": 1e200}}},
            messages.PRIOR_STDDEV_INVALID.format(path="stats_config.bayesian.prior"),
        ),
        ({"multiple_testing": {"method": "bonferroni"}}, messages.MULTIPLE_TESTING_INVALID),
        ({"multiple_testing": {"method": "holm", "include_secondary": 1}}, messages.MULTIPLE_TESTING_INVALID),
        ({"multiple_testing": "holm"}, messages.MULTIPLE_TESTING_INVALID),
    ],
)
def test_malformed_stats_config_is_refused(api_client, project, stats_config, detail):
    response = create(api_client, project, stats_config)

    assert response.status_code == 400
    assert response.json() == error_body(
        type="validation_error", code="invalid_input", detail=detail, attr="stats_config"
    )
    assert Experiment.objects.count() == 0


def test_a_complete_stats_config_is_kept(api_client, project):
    stats_config = {
        "method": "frequentist",
        "frequentist": {"alpha": 0.1, "sequential": True, "sequential_tuning": 1000},
        "difference_type": "absolute",
        "multiple_testing_correction": "holm",
        "cuped": {"enabled": True, "lookback_days": 7},
        "bayesian": {"prior": {"proper": True, "mean": 0.0, "stddev": 0.3}},
        "multiple_testing": {"method": "bh", "include_secondary": True},
    }

    response = create(api_client, project, stats_config)

    assert response.status_code == 201, response.json()
    assert response.json()["stats_config"] == stats_config
