"""Twenty parallel creates and duplicates with one new flag key: all succeed and share the one flag created."""

import threading

import pytest
from django.db import connections

from experiments.models import Experiment
from flags.models import FeatureFlag
from tests.factories import ExperimentFactory, ProjectFactory, UserFactory, member_of

PARALLEL_REQUESTS = 20
NEW_KEY = "parallel-checkout"

pytestmark = pytest.mark.django_db(transaction=True)


def post_in_parallel(clients, path: str, bodies: list[dict]) -> list:
    """POST bodies[i] with clients[i], all threads released at once, each on its own database connection."""
    start = threading.Barrier(len(clients))
    responses: list = [None] * len(clients)

    def post(index: int) -> None:
        try:
            start.wait(timeout=30)
            responses[index] = clients[index].post(path, bodies[index], format="json")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(index,)) for index in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return responses


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def clients(project, make_client):
    return [make_client(member_of(project, UserFactory(current_project=project))) for _ in range(PARALLEL_REQUESTS)]


def assert_all_share_one_new_flag(project, responses, *, experiments: int) -> None:
    assert [response.status_code for response in responses] == [201] * PARALLEL_REQUESTS, [
        response.json() for response in responses if response.status_code != 201
    ]
    flag = FeatureFlag.objects.get(project=project, key=NEW_KEY)
    assert {response.json()["feature_flag"]["id"] for response in responses} == {flag.pk}
    assert Experiment.objects.filter(project=project, feature_flag=flag).count() == PARALLEL_REQUESTS
    assert Experiment.objects.filter(project=project).count() == experiments
    assert flag.variants == [
        {"key": "control", "name": "Control Group", "rollout_percentage": 50},
        {"key": "test", "name": "Test Variant", "rollout_percentage": 50},
    ]


def test_parallel_creates_with_one_new_key_all_succeed_with_one_flag(project, clients):
    bodies = [{"name": f"Checkout {index}", "feature_flag_key": NEW_KEY} for index in range(PARALLEL_REQUESTS)]

    responses = post_in_parallel(clients, f"/api/projects/{project.pk}/experiments/", bodies)

    assert_all_share_one_new_flag(project, responses, experiments=PARALLEL_REQUESTS)
    assert sorted(response.json()["name"] for response in responses) == sorted(body["name"] for body in bodies)


def test_parallel_duplicates_with_one_new_key_all_succeed_with_one_flag(project, clients):
    source = ExperimentFactory(project=project, name="Checkout")
    bodies = [{"feature_flag_key": NEW_KEY, "name": f"Copy {index}"} for index in range(PARALLEL_REQUESTS)]

    responses = post_in_parallel(clients, f"/api/projects/{project.pk}/experiments/{source.pk}/duplicate/", bodies)

    assert_all_share_one_new_flag(project, responses, experiments=PARALLEL_REQUESTS + 1)
    assert Experiment.objects.get(pk=source.pk).feature_flag.key != NEW_KEY
