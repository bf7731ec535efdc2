"""Soak test: capture, flags, the experiments list and recalculations together, through worker and Redis failures.

Starts its own Redis (a private redis-server on --redis-port, no persistence, never the shared one), gunicorn on
127.0.0.1 (4 workers) and a real Celery worker (prefork) with its embedded beat, all on the PostgreSQL database of
DATABASE_URL. For --duration seconds, client threads send `/batch/` events, `/flags/?v=2` evaluations,
experiments list pages and `recalculate_timeseries` requests, while the faults happen on a schedule:

    at 20% of the run   the whole Celery worker is killed (SIGKILL to its process group), restarted 5 s later
    at 45%              Redis is killed (SIGKILL: queued tasks and cache are lost) and restarted 5 s later
    at 70%              one pool child of the worker is killed (SIGKILL), which the worker replaces

Then the load stops and the soak waits up to --grace seconds for every accepted recalculation to complete (and
reports how many were unfinished when the load stopped and how long they took to drain). It
reports requests and answers by status per endpoint (a 200 whose body is an error counts as "200 error body"),
events acknowledged vs stored, and recalculations accepted / completed / failed / unfinished, and exits 1 on any
loss: an acknowledged event that is not stored, or an accepted recalculation that did not complete.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exp_soak .venv/bin/python bench/soak.py

The database is migrated if needed; the soak's organization, projects and events are deleted at the end.
"""

import argparse
import collections
import datetime as dt
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (  # noqa: E402
    ROOT,
    UNTHROTTLED,
    free_port,
    gunicorn_command,
    prepare_database,
    server_environment,
    setup_django,
    wait_for_port,
)

setup_django(**UNTHROTTLED)

from django.test import Client  # noqa: E402

from events.models import Event, EventDefinition  # noqa: E402
from experiments.models import Experiment, ExperimentTimeseriesRecalculation, RecalculationStatus  # noqa: E402
from experiments_api.models import Organization, Project, ProjectMembership, User  # noqa: E402
from experiments_api.services import personal_api_key_create  # noqa: E402
from flags.models import FeatureFlag  # noqa: E402

SOAK_EMAIL = "soak@example.com"
EXPERIMENTS = 3
BATCH_SIZE = 50
START_DAYS_AGO = 3
REDIS_DOWN_SECONDS = 10.0
METRIC = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180.0, help="Seconds of load (default 180).")
    parser.add_argument("--grace", type=float, default=150.0, help="Seconds to wait for recalculations (150).")
    parser.add_argument("--redis-port", type=int, default=6390, help="Port of the soak's own Redis (6390).")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (default 4).")
    options = parser.parse_args()
    prepare_database()
    logs = Path(tempfile.mkdtemp(prefix="soak-"))
    redis_url = f"redis://127.0.0.1:{options.redis_port}/0"
    environment = server_environment(REDIS_URL=redis_url)
    environment.pop("CELERY_BROKER_URL", None)
    redis_server = RedisServer(options.redis_port, logs)
    organization = Organization.objects.create(name="Soak")
    user = User.objects.filter(email=SOAK_EMAIL).first() or User.objects.create_user(
        username=SOAK_EMAIL, email=SOAK_EMAIL
    )
    processes: dict[str, Process] = {}
    try:
        project = Project.objects.create(organization=organization, name="Soak")
        ProjectMembership.objects.create(user=user, project=project)
        _key, raw_key = personal_api_key_create(user=user, scopes=["*"])
        experiments = create_experiments(project, raw_key)
        port = free_port()
        processes["gunicorn"] = Process(gunicorn_command(port, options.workers), environment, logs / "gunicorn.log")
        processes["worker"] = Process(worker_command(logs), environment, logs / "worker.log")
        wait_for_port(port, "gunicorn")
        soak = Soak(port=port, project=project, api_key=raw_key, experiments=experiments)
        soak.run(options.duration, faults(options.duration, processes, redis_server))
        recalculations = soak.wait_for_recalculations(options.grace)
        events = soak.events_report()
    finally:
        for process in processes.values():
            process.stop()
        redis_server.stop()
        Event.objects.filter(project__organization=organization).delete()
        EventDefinition.objects.filter(project__organization=organization).delete()
        FeatureFlag.objects.filter(project__organization=organization).update(deleted=True)
        Experiment.objects.filter(project__organization=organization).delete()
        organization.delete()
        user.delete()

    print(f"soak: {options.duration:.0f} s of load, {options.workers} gunicorn workers, logs in {logs}")
    for line in soak.fault_log:
        print(f"  fault  {line}")
    for endpoint, statuses in sorted(soak.statuses.items()):
        total = sum(statuses.values())
        answers = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items(), key=str))
        print(f"  {endpoint:13} {total:7} requests  ({answers})")
    print(
        f"  events     acknowledged {events['acknowledged']}, stored {events['stored']}, "
        f"acknowledged but missing {events['missing']}, stored without acknowledgement {events['unacknowledged']}"
    )
    print(
        f"  recalculations accepted {recalculations['accepted']}, completed {recalculations['completed']}, "
        f"failed {recalculations['failed']}, unfinished {recalculations['unfinished']} "
        f"(statuses of the unfinished: {recalculations['unfinished_statuses'] or '-'})"
    )
    drain = "drained" if recalculations["drained"] else f"NOT drained within the {options.grace:.0f} s limit"
    print(
        f"  recalculations unfinished when the load stopped {recalculations['unfinished_at_stop']}, {drain} "
        f"after {recalculations['drain_seconds']:.1f} s"
    )
    lost_recalculations = recalculations["failed"] + recalculations["unfinished"]
    lost = events["missing"] + lost_recalculations
    print(
        "  result: "
        + (f"LOSS: {events['missing']} events, {lost_recalculations} recalculations" if lost else "no loss")
    )
    sys.exit(1 if lost else 0)


def create_experiments(project: Project, api_key: str) -> list[dict]:
    """Launched experiments (started three days ago) with one mean metric each, created through the API."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}", HTTP_HOST="127.0.0.1")
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=START_DAYS_AGO)).isoformat()
    experiments = []
    for number in range(EXPERIMENTS):
        response = client.post(
            f"/api/projects/{project.pk}/experiments/",
            {
                "name": f"Soak {number}",
                "feature_flag_key": f"soak-{number}",
                "start_date": start,
                "metrics": [METRIC],
                "allow_unknown_events": True,
            },
            content_type="application/json",
        )
        if response.status_code != 201:
            sys.exit(f"Creating an experiment answered {response.status_code}: {response.content[:300]!r}")
        experiments.append(response.json())
    return experiments


class RedisServer:
    """The soak's own redis-server: no snapshots, no append-only file, so a restart loses everything."""

    def __init__(self, port: int, logs: Path) -> None:
        self.port, self.logs, self.process = port, logs, None
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                sys.exit(f"Port {port} is taken: pass --redis-port with a free port (the soak needs its own Redis).")
        self.start()

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            command, stdout=(self.logs / "redis.log").open("a"), stderr=subprocess.STDOUT, cwd=self.logs
        )
        wait_for_port(self.port, "redis-server")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Process:
    """A child in its own process group, so a SIGKILL reaches its children (a worker's pool) too."""

    def __init__(self, command: list[str], environment: dict, log: Path) -> None:
        self.command, self.environment, self.log = command, environment, log
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.environment,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_group(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def kill_one_child(self) -> int | None:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        if not children:
            return None
        os.kill(int(children[0]), signal.SIGKILL)
        return int(children[0])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def worker_command(logs: Path) -> list[str]:
    """The worker with its embedded beat, as docker-compose runs it: a Redis restart loses the queued and reserved
    messages, and only beat's sweep requeues their recalculations once their leases expire."""
    celery = str(Path(sys.executable).parent / "celery")
    return [
        celery,
        "-A",
        "experiments_api",
        "worker",
        "--beat",
        f"--schedule={logs / 'celerybeat-schedule'}",
        "--loglevel=WARNING",
        "--concurrency=2",
        "--without-gossip",
    ]


def faults(duration: float, processes: dict, redis_server: RedisServer) -> list:
    """(seconds into the run, description, action) for the fault schedule."""

    def restart_worker_later() -> None:
        processes["worker"].kill_group()
        threading.Timer(5.0, processes["worker"].start).start()

    def restart_redis_later() -> None:
        redis_server.kill()
        threading.Timer(REDIS_DOWN_SECONDS, redis_server.start).start()

    def kill_pool_child() -> None:
        processes["worker"].kill_one_child()

    return [
        (0.20 * duration, "SIGKILL the Celery worker and its pool, restart it 5 s later", restart_worker_later),
        (
            0.45 * duration,
            f"SIGKILL Redis (cache and queued tasks lost), restart it {REDIS_DOWN_SECONDS:.0f} s later",
            restart_redis_later,
        ),
        (0.70 * duration, "SIGKILL one pool child of the Celery worker", kill_pool_child),
    ]


class Soak:
    def __init__(self, *, port: int, project: Project, api_key: str, experiments: list[dict]) -> None:
        self.port, self.project, self.api_key, self.experiments = port, project, api_key, experiments
        self.statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.acknowledged: set[str] = set()
        self.recalculation_ids: set[str] = set()
        self.fault_log: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self, duration: float, schedule: list) -> None:
        clients = [self.capture, self.capture, self.flags, self.flags, self.experiments_list, self.recalculate]
        threads = [threading.Thread(target=self.client_loop, args=(client,), daemon=True) for client in clients]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for at, description, action in schedule:
            time.sleep(max(0.0, started + at - time.monotonic()))
            action()
            self.fault_log.append(f"{time.monotonic() - started:6.1f} s  {description}")
        time.sleep(max(0.0, started + duration - time.monotonic()))
        self.stop.set()
        for thread in threads:
            thread.join(timeout=60)

    def client_loop(self, send) -> None:
        connection_ = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        generator = random.Random()
        while not self.stop.is_set():
            try:
                send(connection_, generator)
            except (OSError, http.client.HTTPException) as error:
                self.count(send.__name__, f"connection error ({type(error).__name__})")
                connection_.close()
                connection_ = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                time.sleep(0.2)
        connection_.close()

    def count(self, endpoint: str, status) -> None:
        with self.lock:
            self.statuses[endpoint][status] += 1

    def request(self, connection_, method: str, path: str, body: dict | None = None, *, api: bool = False):
        headers = {"Content-Type": "application/json"}
        if api:
            headers["Authorization"] = f"Bearer {self.api_key}"
        connection_.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = connection_.getresponse()
        payload = response.read()
        try:
            return response.status, json.loads(payload)
        except ValueError:
            return response.status, None

    def capture(self, connection_, generator: random.Random) -> None:
        now = dt.datetime.now(dt.UTC)
        batch = []
        for _ in range(BATCH_SIZE):
            flag_key = f"soak-{generator.randrange(EXPERIMENTS)}"
            unit = f"user-{generator.randrange(2_000)}"
            at = now - dt.timedelta(seconds=generator.uniform(60, START_DAYS_AGO * 86_400 - 3_600))
            variant = generator.choice(["control", "test"])
            name = generator.choice(["$feature_flag_called", "purchase"])
            properties = {"$feature_flag": flag_key, "$feature_flag_response": variant, f"$feature/{flag_key}": variant}
            if name == "purchase":
                properties["amount"] = generator.randint(1, 100)
            batch.append(
                {
                    "event": name,
                    "distinct_id": unit,
                    "uuid": str(uuid.uuid4()),
                    "timestamp": at.isoformat(),
                    "properties": properties,
                }
            )
        status, body = self.request(connection_, "POST", "/batch/", {"api_key": self.project.api_token, "batch": batch})
        if status == 200 and body == {"status": 1}:
            self.count("capture", 200)
            with self.lock:
                self.acknowledged.update(event["uuid"] for event in batch)
        else:
            self.count("capture", "200 error body" if status == 200 else status)

    def flags(self, connection_, generator: random.Random) -> None:
        body = {"token": self.project.api_token, "distinct_id": f"user-{generator.randrange(2_000)}"}
        status, answer = self.request(connection_, "POST", "/flags/?v=2", body)
        ok = status == 200 and isinstance(answer, dict) and len(answer.get("featureFlags", {})) == EXPERIMENTS
        self.count("flags", "200 error body" if status == 200 and not ok else status)

    def experiments_list(self, connection_, generator: random.Random) -> None:
        status, body = self.request(connection_, "GET", f"/api/projects/{self.project.pk}/experiments/", api=True)
        ok = status == 200 and isinstance(body, dict) and len(body.get("results", [])) == EXPERIMENTS
        self.count("list", "200 error body" if status == 200 and not ok else status)

    def recalculate(self, connection_, generator: random.Random) -> None:
        experiment = generator.choice(self.experiments)
        metric = experiment["metrics"][0]
        status, body = self.request(
            connection_,
            "POST",
            f"/api/projects/{self.project.pk}/experiments/{experiment['id']}/recalculate_timeseries/",
            {"metric": metric, "fingerprint": metric["fingerprint"]},
            api=True,
        )
        if status in (200, 201) and isinstance(body, dict) and body.get("id"):
            with self.lock:
                self.recalculation_ids.add(body["id"])
            self.count("recalculate", status)
        else:
            self.count("recalculate", "200 error body" if status == 200 else status)
        time.sleep(1.0)  # a client asking about once a second, not a tight loop

    def wait_for_recalculations(self, grace: float) -> dict:
        """Wait (at most `grace` seconds) until every accepted recalculation has completed or failed; the report
        says how many were unfinished when the load stopped and how long they took to drain."""
        finished = {RecalculationStatus.COMPLETED, RecalculationStatus.FAILED}
        started = time.monotonic()
        deadline = started + grace
        unfinished_at_stop = None
        while True:
            statuses = dict(
                ExperimentTimeseriesRecalculation.objects.filter(pk__in=self.recalculation_ids).values_list(
                    "pk", "status"
                )
            )
            drained = len(statuses) == len(self.recalculation_ids) and all(
                status in finished for status in statuses.values()
            )
            if unfinished_at_stop is None:
                unfinished_at_stop = len(self.recalculation_ids) - sum(
                    status in finished for status in statuses.values()
                )
            if drained or time.monotonic() > deadline:
                break
            time.sleep(1)
        unfinished = collections.Counter(status for status in statuses.values() if status not in finished)
        return {
            "accepted": len(self.recalculation_ids),
            "completed": sum(status == RecalculationStatus.COMPLETED for status in statuses.values()),
            "failed": sum(status == RecalculationStatus.FAILED for status in statuses.values()),
            "unfinished": sum(unfinished.values()) + len(self.recalculation_ids) - len(statuses),
            "unfinished_statuses": ", ".join(f"{status}: {count}" for status, count in unfinished.items()),
            "unfinished_at_stop": unfinished_at_stop,
            "drained": drained,
            "drain_seconds": time.monotonic() - started,
        }

    def events_report(self) -> dict:
        stored = set(map(str, Event.objects.filter(project=self.project).values_list("uuid", flat=True)))
        return {
            "acknowledged": len(self.acknowledged),
            "stored": len(stored),
            "missing": len(self.acknowledged - stored),
            "unacknowledged": len(stored - self.acknowledged),
        }


if __name__ == "__main__":
    main()
