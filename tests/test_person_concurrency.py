"""Concurrent batches for the same distinct ids, sent by several server processes at once against the real
PostgreSQL: never two persons for one id, never an error, and every event carries its id's person.

The race this guards against: the person read used to lock the persons it found (FOR UPDATE) and wait for the
batches holding them, while the ids without a person were read from the snapshot taken before those waits; by the
time the waits ended other batches had created persons for some of those ids, the insert collided on the unique
person uuid, and every replay repeated the same waiting read, until the retries ran out and the IntegrityError
answered 500.
"""

import json
import random
import subprocess
import sys
import time
import uuid

import pytest

from events.models import Event
from persons.models import Person, PersonDistinctId, PersonOverride
from tests.factories import ProjectFactory
from tests.helpers import REPOSITORY_ROOT, server_process_environment

PROCESSES, BATCHES, BATCH_SIZE, USERS = 4, 40, 100, 800

# One server process: wait for the start signal, then ingest its batches one after another, as gunicorn workers do.
WORKER = """
import json, os, sys, time
import django
django.setup()
from events.services import events_ingest
from experiments_api.models import Project
argument = json.loads(open(sys.argv[1]).read())
project = Project.objects.get(pk=argument["project"])
while not os.path.exists(argument["start"]):
    time.sleep(0.005)
errors = []
for batch in argument["batches"]:
    try:
        result = events_ingest(project=project, events=batch)
        if result.rejected or result.stored != len(batch):
            errors.append(f"stored {result.stored} of {len(batch)}, rejected {result.rejected}")
    except Exception as error:
        errors.append(f"{type(error).__name__}: {error}")
print(json.dumps(errors))
"""


def mixed_batches(worker: int) -> list[list[dict]]:
    """The traffic of a web app: anonymous personless events, identified users setting properties, identifies of
    the anonymous ids, over users that every process sends for."""
    generator = random.Random(worker)
    batches = []
    for _ in range(BATCHES):
        batch = []
        for _ in range(BATCH_SIZE):
            user = generator.randint(1, USERS)
            kind = generator.random()
            properties: dict = {"$current_url": f"https://example.com/{generator.randint(1, 20)}"}
            name, distinct_id = "$pageview", f"user-{user}"
            if kind < 0.05:
                name, properties["$anon_distinct_id"] = "$identify", f"anon-{user}"
            elif kind < 0.30:
                properties["$set"] = {"plan": generator.choice(["free", "pro"]), f"w{worker}": user}
            elif kind >= 0.40:
                distinct_id, properties["$process_person_profile"] = f"anon-{user}", False
            batch.append(
                {
                    "event": name,
                    "distinct_id": distinct_id,
                    "uuid": str(uuid.UUID(int=generator.getrandbits(128), version=4)),
                    "timestamp": "2026-01-15T10:00:00+00:00",
                    "properties": properties,
                }
            )
        batches.append(batch)
    return batches


@pytest.mark.django_db(transaction=True)
def test_server_processes_ingesting_the_same_ids_at_once(tmp_path):
    project = ProjectFactory()
    environment = server_process_environment()
    start = tmp_path / "start"
    batches = {worker: mixed_batches(worker) for worker in range(PROCESSES)}
    for worker in range(PROCESSES):
        argument = {"project": project.pk, "start": str(start), "batches": batches[worker]}
        (tmp_path / f"worker-{worker}.json").write_text(json.dumps(argument))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / f"worker-{worker}.json")],
            env=environment,
            cwd=REPOSITORY_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(PROCESSES)
    ]
    time.sleep(2)  # Django set up in every process
    start.touch()
    outputs = [worker.communicate(timeout=600) for worker in workers]

    assert [json.loads(stdout) if stdout else stderr[-2000:] for stdout, stderr in outputs] == [[]] * PROCESSES
    sent = [event for worker_batches in batches.values() for batch in worker_batches for event in batch]
    assert Event.objects.filter(project=project).count() == len(sent)
    # One person per id (the unique constraint), and the persons' uuids unique too.
    owners = dict(PersonDistinctId.objects.filter(project=project).values_list("distinct_id", "person__uuid"))
    assert Person.objects.filter(project=project).count() == len(set(owners.values()))
    # Every id of a person-processing event has a person; an identified anonymous id shares its user's person.
    assert {event["distinct_id"] for event in sent if event["distinct_id"].startswith("user-")} <= set(owners)
    for event in sent:
        if event["event"] == "$identify":
            assert owners[event["distinct_id"]] == owners[event["properties"]["$anon_distinct_id"]]
    # Every $set of every process landed on the one person of its user.
    last_set = {}
    for worker, worker_batches in batches.items():
        for batch in worker_batches:
            for event in batch:
                if "$set" in event["properties"]:
                    last_set[(event["distinct_id"], worker)] = event["properties"]["$set"][f"w{worker}"]
    properties = dict(Person.objects.filter(project=project).values_list("uuid", "properties"))
    for (distinct_id, worker), value in last_set.items():
        assert properties[owners[distinct_id]][f"w{worker}"] == value
    # Every event of a person-processing event resolves (through the overrides) to its id's person.
    redirected = dict(PersonOverride.objects.filter(project=project).values_list("old_person_id", "new_person_id"))
    for distinct_id, person_id in Event.objects.filter(project=project, distinct_id__startswith="user-").values_list(
        "distinct_id", "person_id"
    ):
        assert redirected.get(person_id, person_id) == owners[distinct_id]
