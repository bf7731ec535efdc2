"""Benchmark: the two hot read endpoints against baselines measured in the same run.

(a) The experiments list: GET /api/projects/:id/experiments/ for 50 experiments (created through the API, with
    inline and saved metrics and a holdout on some), in-process through Django's test client, so the whole request
    is timed: middleware, API-key authentication, throttling, project checks, queries, serializers and rendering.
    Baseline: the same 50 rows read with `values()` and written with `json.dumps`. Prints the medians of
    interleaved rounds and their ratio (goal: the list within 3× of the baseline).
(b) POST /flags/?v=2 against gunicorn on 127.0.0.1 (4 workers) from concurrent keep-alive clients for a fixed
    duration, on a project with 20 active flags (experiment splits, property filters, partial rollouts, holdouts):
    requests/s, p50 and p99, with the flag definitions cache (the default) and on the same machine with the cache
    off (FLAG_DEFINITIONS_CACHE_SECONDS=0: every request reads the flags from PostgreSQL, as before the cache), the
    two servers taking turns in short bursts (15 of 2 s each by default). Prints the ratio of the totals (goal: at
    least 3×) and the median, lowest and highest ratio of the bursts, which show how much the machine's other load
    moved the figures.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exp_bench REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/api.py

The database is migrated if needed; the benchmark's organization, projects and flags are deleted at the end.
Without REDIS_URL the cache is per worker process (Django's local-memory cache).
"""

import argparse
import json
import multiprocessing
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import UNTHROTTLED, prepare_database, setup_django, start_gunicorn  # noqa: E402

setup_django(**UNTHROTTLED)  # the list is requested thousands of times a minute with one key

from django.core.serializers.json import DjangoJSONEncoder  # noqa: E402
from django.test import Client  # noqa: E402

from experiments.models import Experiment  # noqa: E402
from experiments_api.models import Organization, Project, ProjectMembership, User  # noqa: E402
from experiments_api.services import personal_api_key_create  # noqa: E402
from flags.models import FeatureFlag  # noqa: E402

LIST_SIZE = 50
LIST_GOAL_RATIO = 3.0
FLAGS_GOAL_RATIO = 3.0
BENCH_EMAIL = "api-bench@example.com"
MEAN_METRIC = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
}
FUNNEL_METRIC = {
    "kind": "ExperimentMetric",
    "metric_type": "funnel",
    "series": [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "purchase"}],
}
PAGEVIEW_METRIC = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "$pageview"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="Requests of the list and of its baseline (200).")
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds of load per flags server (30).")
    parser.add_argument("--bursts", type=int, default=15, help="Turns each flags server takes under load (15).")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent flags clients (default 8).")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (default 4).")
    parser.add_argument("--only", choices=["list", "flags"], help="Measure only (a) the list or (b) /flags/.")
    options = parser.parse_args()
    prepare_database()
    organization = Organization.objects.create(name="API benchmark")
    user = User.objects.filter(email=BENCH_EMAIL).first() or User.objects.create_user(
        username=BENCH_EMAIL, email=BENCH_EMAIL, first_name="Bench"
    )
    list_figures = flags_figures = None
    try:
        if options.only != "flags":
            list_project = Project.objects.create(organization=organization, name="Experiments list")
            ProjectMembership.objects.create(user=user, project=list_project)
            _key, raw_key = personal_api_key_create(user=user, scopes=["*"])
            client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}", HTTP_HOST="127.0.0.1")
            create_experiments(client, list_project)
            list_figures = measure_list(client, list_project, options.rounds)
        if options.only != "list":
            flags_project = Project.objects.create(organization=organization, name="Flags")
            create_flags(flags_project)
            flags_figures = measure_flags(flags_bodies(flags_project.api_token), options)
    finally:
        FeatureFlag.objects.filter(project__organization=organization).update(deleted=True)
        Experiment.objects.filter(project__organization=organization).delete()
        organization.delete()
        user.delete()
    if list_figures is not None:
        report_list(*list_figures, options)
    if flags_figures is not None:
        report_flags(*flags_figures, options)


def report_list(list_ms: float, baseline_ms: float, options: argparse.Namespace) -> None:
    ratio = list_ms / baseline_ms
    print(f"(a) experiments list, {LIST_SIZE} rows, {options.rounds} interleaved rounds, medians:")
    print(f"    GET /experiments/          : {list_ms:7.2f} ms")
    print(f"    values() + json.dumps      : {baseline_ms:7.2f} ms")
    print(
        f"    ratio                      : {ratio:7.2f}× (goal ≤ {LIST_GOAL_RATIO:.0f}×: {met(ratio <= LIST_GOAL_RATIO)})"
    )


def report_flags(cached: dict, uncached: dict, round_ratios: list[float], options: argparse.Namespace) -> None:
    print(
        f"(b) POST /flags/?v=2, 20 active flags, {options.workers} gunicorn workers, {options.clients} clients, "
        f"{options.duration:.0f} s each in {options.bursts} alternating bursts:"
    )
    for label, figures in (("cached (default)", cached), ("uncached (cache off)", uncached)):
        print(
            f"    {label:23}: {figures['rate']:7.0f} requests/s, p50 {figures['p50']:6.2f} ms, "
            f"p99 {figures['p99']:6.2f} ms ({figures['requests']} requests)"
        )
    speedup = cached["rate"] / uncached["rate"]
    print(
        f"    ratio                  : {speedup:7.2f}× (goal ≥ {FLAGS_GOAL_RATIO:.0f}×: {met(speedup >= FLAGS_GOAL_RATIO)})"
    )
    ordered = sorted(round_ratios)
    print(
        f"    per burst              : median {statistics.median(ordered):.2f}×, "
        f"min {ordered[0]:.2f}×, max {ordered[-1]:.2f}× ({', '.join(f'{ratio:.2f}' for ratio in round_ratios)})"
    )


def met(condition: bool) -> str:
    return "met" if condition else "NOT met"


def create_experiments(client: Client, project: Project) -> None:
    """50 experiments as a client creates them: three inline metrics, a saved metric, a holdout on every fifth,
    every other one launched."""
    base = f"/api/projects/{project.id}"
    saved_metric = post(client, f"{base}/experiment_saved_metrics/", {"name": "Revenue", "query": MEAN_METRIC})
    holdout = post(client, f"{base}/experiment_holdouts/", {"name": "Holdout", "filters": [{"rollout_percentage": 5}]})
    for number in range(LIST_SIZE):
        body = {
            "name": f"Experiment {number}",
            "description": "Does the new checkout convert better?",
            "feature_flag_key": f"bench-experiment-{number}",
            "allow_unknown_events": True,
            "metrics": [MEAN_METRIC, FUNNEL_METRIC],
            "metrics_secondary": [PAGEVIEW_METRIC],
            "saved_metrics_ids": [{"id": saved_metric["id"], "metadata": {"type": "secondary"}}],
            "parameters": {
                "feature_flag_variants": [
                    {"key": "control", "rollout_percentage": 50},
                    {"key": "test", "rollout_percentage": 50},
                ]
            },
        }
        if number % 5 == 0:
            body["holdout_id"] = holdout["id"]
        experiment = post(client, f"{base}/experiments/", body)
        if number % 2 == 0:
            post(client, f"{base}/experiments/{experiment['id']}/launch/", {}, expected_status=200)


def post(client: Client, path: str, body: dict, *, expected_status: int = 201) -> dict:
    response = client.post(path, body, content_type="application/json")
    if response.status_code != expected_status:
        sys.exit(f"POST {path} answered {response.status_code}: {response.content[:300]!r}")
    return response.json()


def measure_list(client: Client, project: Project, rounds: int) -> tuple[float, float]:
    url = f"/api/projects/{project.id}/experiments/"

    def listed() -> None:
        response = client.get(url)
        if response.status_code != 200 or len(json.loads(response.content)["results"]) != LIST_SIZE:
            sys.exit(f"GET {url} answered {response.status_code}: {response.content[:300]!r}")

    def baseline() -> None:
        rows = Experiment.objects.filter(project=project, deleted=False, archived=False).order_by("-created_at")
        json.dumps(list(rows[:LIST_SIZE].values()), cls=DjangoJSONEncoder)

    for _ in range(10):  # warm up connections and caches
        listed()
        baseline()
    list_times, baseline_times = [], []
    for _ in range(rounds):
        list_times.append(timed(listed))
        baseline_times.append(timed(baseline))
    return statistics.median(list_times) * 1000, statistics.median(baseline_times) * 1000


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def create_flags(project: Project) -> None:
    """20 active flags as a project carries them, plus inactive and deleted ones the endpoint skips."""
    split = {"variants": [{"key": "control", "rollout_percentage": 50}, {"key": "test", "rollout_percentage": 50}]}
    flags = []
    for number in range(8):
        flags.append(
            {"key": f"experiment-{number}", "filters": {"groups": [{"rollout_percentage": 100}], "multivariate": split}}
        )
    for number in range(2):
        flags.append(
            {
                "key": f"held-out-experiment-{number}",
                "filters": {
                    "groups": [{"rollout_percentage": 100}],
                    "multivariate": split,
                    "holdout_groups": [{"properties": [], "rollout_percentage": 5, "variant": "holdout-1"}],
                },
            }
        )
    for number in range(5):
        flags.append(
            {
                "key": f"pro-feature-{number}",
                "filters": {
                    "groups": [
                        {"properties": [{"key": "plan", "value": ["pro", "team"], "operator": "exact"}]},
                        {"properties": [{"key": "email", "value": "@example.com", "operator": "icontains"}]},
                    ],
                    "payloads": {"true": {"limit": number}},
                },
            }
        )
    for number in range(5):
        flags.append({"key": f"rollout-{number}", "filters": {"groups": [{"rollout_percentage": 20 * (number + 1)}]}})
    FeatureFlag.objects.bulk_create(FeatureFlag(project=project, name=flag["key"], **flag) for flag in flags)
    FeatureFlag.objects.bulk_create(
        [
            FeatureFlag(project=project, key="switched-off", active=False, filters={"groups": [{}]}),
            FeatureFlag(project=project, key="removed", deleted=True, filters={"groups": [{}]}),
        ]
    )


def flags_bodies(token: str) -> list[bytes]:
    bodies = []
    for number in range(1000):
        properties = {"plan": ["free", "pro", "team"][number % 3], "email": f"user-{number}@example.com"}
        body = json.dumps({"token": token, "distinct_id": f"user-{number}", "person_properties": properties})
        bodies.append(
            b"POST /flags/?v=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body.encode()
        )
    return bodies


def measure_flags(bodies: list[bytes], options: argparse.Namespace) -> tuple[dict, dict, list[float]]:
    """Both servers run side by side and take turns under load, in short bursts, so that a change in what else the
    machine is doing affects both alike; each round's ratio is reported too. One pool of client processes, started
    before the servers, sends every burst (forking a pool per burst cost CPU next to the measured server)."""
    pool = multiprocessing.get_context("fork").Pool(options.clients)
    servers = {
        "cached": start_gunicorn(options.workers),
        "uncached": start_gunicorn(options.workers, FLAG_DEFINITIONS_CACHE_SECONDS="0"),
    }
    latencies: dict[str, list[float]] = {name: [] for name in servers}
    round_ratios = []
    burst = options.duration / options.bursts
    try:
        for _server, port in servers.values():
            load(pool, port, bodies, clients=1, duration=0.1)  # waits for the first worker to answer
            load(pool, port, bodies, clients=options.clients, duration=3.0)  # every worker loads Django and caches
        for _ in range(options.bursts):
            counts = {}
            for name, (_server, port) in servers.items():
                measured = load(pool, port, bodies, clients=options.clients, duration=burst)
                latencies[name].extend(measured)
                counts[name] = len(measured)
            round_ratios.append(counts["cached"] / counts["uncached"])
    finally:
        for server, _port in servers.values():
            server.terminate()
            server.wait(timeout=30)
        pool.close()
        pool.join()
    return (*(summary(latencies[name], options.duration) for name in servers), round_ratios)


def summary(latencies: list[float], duration: float) -> dict:
    latencies = sorted(latencies)
    return {
        "requests": len(latencies),
        "rate": len(latencies) / duration,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def load(pool, port: int, bodies: list[bytes], *, clients: int, duration: float) -> list[float]:
    """`clients` of the pool's processes, each sending requests over one keep-alive connection for `duration`
    seconds, all starting at the same moment."""
    start_at = time.time() + 0.2
    results = pool.starmap(
        client_loop, [(port, bodies[number::clients], duration, start_at) for number in range(clients)], chunksize=1
    )
    return [latency for latencies in results for latency in latencies]


def client_loop(port: int, requests: list[bytes], duration: float, start_at: float) -> list[float]:
    """A lean HTTP/1.1 client (so the load generator leaves the CPU to the server): send, read one response."""
    time.sleep(max(0.0, start_at - time.time()))
    latencies = []
    sock = socket.create_connection(("127.0.0.1", port))
    stop_at = time.perf_counter() + duration
    number = 0
    while True:
        started = time.perf_counter()
        if started >= stop_at:
            break
        sock.sendall(requests[number % len(requests)])
        status, body = read_response(sock)
        if status != 200 or b'"featureFlags"' not in body:
            raise RuntimeError(f"/flags/ answered {status}: {body[:200]!r}")
        latencies.append(time.perf_counter() - started)
        number += 1
    sock.close()
    return latencies


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("The server closed the connection.")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("The server closed the connection.")
        body += chunk
    return int(lines[0].split()[1]), body


if __name__ == "__main__":
    main()
