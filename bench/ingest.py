"""Benchmark: event ingestion through POST /batch/ against a raw COPY of the same events (the floor).

Starts the real server (gunicorn on 127.0.0.1). Each round sends fresh events in batches of 100 from several
concurrent clients over keep-alive connections, then COPYs the same events (already serialised) straight into
events_event for another project. Prints the median events per second of each over the rounds and their ratio
(goal: /batch/ at least 30% of COPY); the rounds' values show how noisy the machine was.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exp_bench .venv/bin/python bench/ingest.py

The database is migrated if needed; the benchmark's projects and events are deleted at the end.
"""

import argparse
import datetime as dt
import http.client
import json
import queue
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import prepare_database, setup_django, start_gunicorn  # noqa: E402

setup_django()

from django.db import connection  # noqa: E402

from events.models import Event, EventDefinition  # noqa: E402
from events.partitions import event_partitions_ensure  # noqa: E402
from experiments_api.models import Organization, Project  # noqa: E402
from persons.models import person_uuid  # noqa: E402

BATCH_SIZE = 100
# A worker loads Django on its first request: on a loaded machine that can take longer than a batch ever does.
WORKER_START_TIMEOUT = 180
GOAL_RATIO = 0.30
EVENT_NAMES = ["$pageview", "$pageview", "$pageview", "$feature_flag_called", "purchase", "$autocapture"]
# The person-processing mix of the issue: the rest (70%) are anonymous, personless events.
IDENTIFY_SHARE, SET_SHARE, IDENTIFIED_SHARE = 0.02, 0.10, 0.20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000, help="Events per round (default 50000).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of /batch/ then COPY (default 3).")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent HTTP clients (default 8).")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (default 4).")
    options = parser.parse_args()
    prepare_database()
    organization = Organization.objects.create(name="Ingest benchmark")
    rates: dict[str, list[float]] = {"/batch/": [], "COPY": []}
    server, port = start_gunicorn(options.workers)
    try:
        warm_up(port, Project.objects.create(organization=organization, name="Warm-up").api_token, options.workers)
        for round_number in range(options.rounds):
            # Fresh events and projects each round, so neither side meets events the other already stored.
            events = synthetic_events(options.events, seed=round_number)
            event_partitions_ensure(dt.datetime.fromisoformat(event["timestamp"]) for event in events)
            http_project = Project.objects.create(organization=organization, name=f"/batch/ round {round_number}")
            copy_project = Project.objects.create(organization=organization, name=f"COPY round {round_number}")
            bodies = [
                json.dumps(
                    {"api_key": http_project.api_token, "sent_at": _now_iso(), "batch": events[i : i + BATCH_SIZE]}
                ).encode()
                for i in range(0, len(events), BATCH_SIZE)
            ]
            rates["/batch/"].append(len(events) / send_concurrently(port, bodies, options.clients))
            stored = Event.objects.filter(project=http_project).count()
            if stored != len(events):
                sys.exit(f"/batch/ stored {stored} of {len(events)} events.")
            rates["COPY"].append(len(events) / copy_events(copy_project.pk, events))
    finally:
        server.terminate()
        server.wait(timeout=30)
        Event.objects.filter(project__in=organization.projects.all()).delete()
        EventDefinition.objects.filter(project__in=organization.projects.all()).delete()
        organization.delete()

    http_rate, copy_rate = statistics.median(rates["/batch/"]), statistics.median(rates["COPY"])
    ratio = http_rate / copy_rate
    print(
        f"{options.events} events per round, {options.rounds} rounds, batches of {BATCH_SIZE}, "
        f"{options.clients} clients, {options.workers} gunicorn workers; medians over the rounds:"
    )
    for method, values in rates.items():
        print(
            f"{method:8}: {statistics.median(values):10,.0f} events/s  (rounds: {', '.join(f'{v:,.0f}' for v in values)})"
        )
    print(f"ratio   : {ratio:.0%} of COPY (goal ≥ {GOAL_RATIO:.0%}: {'met' if ratio >= GOAL_RATIO else 'NOT met'})")


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def synthetic_events(count: int, *, seed: int) -> list[dict]:
    """Events shaped like the SDKs', spread over the last three days, for a few thousand users, with person
    processing as posthog-js sends it: 70% anonymous (`$process_person_profile: false`), 20% of identified users,
    10% carrying `$set`, and 2% `$identify` of an anonymous id."""
    generator = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    events = []
    for _ in range(count):
        name = generator.choice(EVENT_NAMES)
        user = generator.randint(1, 5_000)
        distinct_id = f"user-{user}"
        kind = generator.random()
        properties = {
            "$lib": "posthog-python",
            "$lib_version": "7.0.0",
            "$current_url": f"https://example.com/page/{generator.randint(1, 50)}",
            "$feature/checkout-experiment": generator.choice(["control", "test"]),
            "$session_id": str(uuid.UUID(int=generator.getrandbits(128))),
            "plan": generator.choice(["free", "pro", "team"]),
        }
        if name == "purchase":
            properties["amount"] = round(generator.expovariate(1 / 40), 2)
        if name == "$feature_flag_called":
            properties.update({"$feature_flag": "checkout-experiment", "$feature_flag_response": properties["plan"]})
        if kind < IDENTIFY_SHARE:
            name, properties["$anon_distinct_id"] = "$identify", f"anon-{user}"
        elif kind < IDENTIFY_SHARE + SET_SHARE:
            properties["$set"] = {"plan": properties["plan"], "email": f"{distinct_id}@example.com"}
        elif kind >= IDENTIFY_SHARE + SET_SHARE + IDENTIFIED_SHARE:
            distinct_id = f"anon-{user}"
            properties["$process_person_profile"] = False
        events.append(
            {
                "event": name,
                "distinct_id": distinct_id,
                "uuid": str(uuid.UUID(int=generator.getrandbits(128), version=4)),
                "timestamp": (now - dt.timedelta(seconds=generator.uniform(60, 3 * 86_400))).isoformat(),
                "properties": properties,
                "type": "capture",
            }
        )
    return events


def post(connection_: http.client.HTTPConnection, body: bytes) -> None:
    connection_.request("POST", "/batch/", body=body, headers={"Content-Type": "application/json"})
    response = connection_.getresponse()
    payload = response.read()
    if response.status != 200 or json.loads(payload) != {"status": 1}:
        raise RuntimeError(f"/batch/ answered {response.status}: {payload[:200]!r}")


def warm_up(port: int, token: str, workers: int) -> None:
    """Each worker loads Django and opens its database connection before the clock starts (no events stored)."""
    body = json.dumps({"api_key": token, "batch": []}).encode()
    for _ in range(workers * 4):
        connection_ = http.client.HTTPConnection("127.0.0.1", port, timeout=WORKER_START_TIMEOUT)
        post(connection_, body)
        connection_.close()


def send_concurrently(port: int, bodies: list[bytes], clients: int) -> float:
    pending: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        pending.put(body)
    errors: list[BaseException] = []

    def client() -> None:
        connection_ = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while True:
                try:
                    body = pending.get_nowait()
                except queue.Empty:
                    return
                post(connection_, body)
        except BaseException as error:  # reported after the run
            errors.append(error)
        finally:
            connection_.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


def copy_events(project_id: int, events: list[dict]) -> float:
    """The floor: one COPY of the same rows (properties already serialised, each with its id's person uuid) into
    the partitioned table, with no person work."""
    rows = [
        (
            project_id,
            event["uuid"],
            event["event"],
            event["distinct_id"],
            event["timestamp"],
            json.dumps(event["properties"], separators=(",", ":")),
            _now_iso(),
            person_uuid(project_id, event["distinct_id"]),
        )
        for event in events
    ]
    started = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            'COPY events_event (project_id, uuid, event, distinct_id, "timestamp", properties, created_at, person_id) '
            "FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    elapsed = time.perf_counter() - started
    if Event.objects.filter(project_id=project_id).count() != len(events):
        sys.exit("COPY did not store every event.")
    return elapsed


if __name__ == "__main__":
    main()
