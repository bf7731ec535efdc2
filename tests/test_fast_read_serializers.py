"""experiments_api.serializers.FastReadMixin: the serializers of experiment responses give exactly DRF's output,
field for field, for experiments in every state, and each serializer instance gets fields of its own."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework import serializers

from experiments.api.serializers.experiments import (
    ExperimentFeatureFlagSerializer,
    ExperimentHoldoutSummarySerializer,
    ExperimentSerializer,
    ExperimentToSavedMetricSerializer,
)
from experiments.models import Experiment, ExperimentToSavedMetric
from experiments.selectors import experiments_with_relations
from experiments_api.serializers import FastReadMixin, UserBasicSerializer
from tests.factories import ExperimentFactory, FeatureFlagFactory, HoldoutFactory, SavedMetricFactory, mean_metric


def drf_and_fast(serializer_class, instance, context: dict) -> tuple[dict, dict]:
    serializer = serializer_class(context=context)
    return serializers.Serializer.to_representation(serializer, instance), FastReadMixin.to_representation(
        serializer, instance
    )


@pytest.fixture
def experiments(project, user):
    launched = ExperimentFactory(
        project=project,
        created_by=user,
        name="Launched",
        description="With everything",
        start_date=timezone.now() - dt.timedelta(days=3),
        end_date=timezone.now(),
        holdout=HoldoutFactory(project=project, created_by=user),
        metrics=[mean_metric(uuid="m1")],
        parameters={"feature_flag_variants": [{"key": "control", "rollout_percentage": 50}]},
        conclusion="won",
        exposure_cohort=None,
        feature_flag=FeatureFlagFactory(project=project, active=False, tags=["a"], evaluation_tags=["web"]),
    )
    ExperimentToSavedMetric.objects.create(
        experiment=launched, saved_metric=SavedMetricFactory(project=project), metadata={"type": "secondary"}
    )
    ExperimentFactory(project=project, name="Draft", created_by=None, description="")
    return list(experiments_with_relations(Experiment.objects.filter(project=project)).order_by("id"))


def test_every_serializer_of_the_list_gives_drfs_output(project, experiments):
    context = {"project": project}
    for experiment in experiments:
        drf, fast = drf_and_fast(ExperimentSerializer, experiment, context)
        assert list(fast) == list(drf)
        assert fast == drf
        cases = [(ExperimentFeatureFlagSerializer, experiment.feature_flag)]
        cases += [(ExperimentToSavedMetricSerializer, link) for link in experiment.saved_metric_links.all()]
        if experiment.holdout is not None:
            cases += [(ExperimentHoldoutSummarySerializer, experiment.holdout)]
        if experiment.created_by is not None:
            cases += [(UserBasicSerializer, experiment.created_by)]
        for serializer_class, instance in cases:
            drf, fast = drf_and_fast(serializer_class, instance, context)
            assert fast == drf, serializer_class.__name__
    assert [experiment.name for experiment in experiments] == ["Launched", "Draft"]
    assert drf_and_fast(ExperimentSerializer, experiments[0], context)[1]["conclusion"] == "won"


def test_each_instance_gets_fields_of_its_own(project):
    first, second = ExperimentSerializer(context={"project": project}), ExperimentSerializer(context={})
    assert list(first.fields) == list(serializers.ModelSerializer.get_fields(second))
    assert all(first.fields[name] is not second.fields[name] for name in first.fields)
    assert first.fields["holdout_id"].queryset.query.where  # narrowed to the project for this instance only
    assert not second.fields["holdout_id"].queryset.query.where
