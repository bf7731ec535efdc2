"""Benchmark: a 30-day timeseries recalculation against one hand-written query for the final day (the floor).

Builds a synthetic experiment in its own PostgreSQL database (≥ 200k exposed users, ≥ 2M events over 30 days,
generated with generate_series), then measures in one run:
  (a) the recalculation service a Celery worker runs (one read of the events, 30 daily results upserted) for a
      mean metric and a funnel metric;
  (b) for each, one hand-written SQL query computing only the final day's per-variant n / sum / sum of squares;
and prints the ratios (a)/(b). The same for the mean metric broken down by an exposure property with 10 values
(per segment and variant) and for its P90 at unit level and at event level (q̂ and the sample quantiles at every
level of GrowthBook's n* grid, from one percentile_cont per variant; at event level also each unit's events at or
below its variant's q̂). `--cases` picks some of them. Both sides count persons: an event's person id, or the person
it was merged into through the overrides table. Then one user in five is identified mid-experiment (their later
events, conversions included, arrive under a new id whose person the anonymous one was merged into, with an
override each) and the cases are measured again; the final day must equal the floor's numbers every time, or the
benchmark fails. It then doubles the events and measures a worker process's peak memory at both sizes.

With `--store clickhouse` it also copies the events into ClickHouse (chDB at --chdb-path, or the server of
EVENT_STORE_URL when that is a clickhouse:// URL) and prints the same recalculation on both stores with their ratio
(PostgreSQL / ClickHouse), checking that both give the same final day, and the worker's peak memory on each.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exp_bench .venv/bin/python bench/timeseries.py
    DATABASE_URL=… .venv/bin/python bench/timeseries.py --store clickhouse --users 400000

The database named in DATABASE_URL is wiped and rebuilt; never point it at real data.
"""

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "experiments_api.settings.base")
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from events.clickhouse.client import clickhouse_client  # noqa: E402
from events.clickhouse.copy import project_copy_to_clickhouse  # noqa: E402
from events.clickhouse.schema import Layout, clickhouse_migrate  # noqa: E402
from events.partitions import event_partitions_ensure  # noqa: E402
from experiments.metrics.dialect import POSTGRES_SETTINGS  # noqa: E402
from experiments.metrics.quantile import CLUSTER_FIELDS, NSTAR_GRID  # noqa: E402
from experiments.models import (  # noqa: E402
    Experiment,
    ExperimentMetricResult,
    ExperimentTimeseriesRecalculation,
    RecalculationStatus,
)
from experiments.results.backfill import timeseries_recalculation_run  # noqa: E402
from experiments.stats.quantile import quantile_bound_levels  # noqa: E402
from experiments_api.models import Organization, Project  # noqa: E402
from flags.models import FeatureFlag  # noqa: E402

START = dt.datetime(2025, 1, 5, tzinfo=dt.UTC)
DAYS = 30
END = START + dt.timedelta(days=DAYS) - dt.timedelta(seconds=1)
FLAG_KEY = "bench-flag"
TIMEZONE = "Europe/Berlin"
MEAN_METRIC = {
    "kind": "ExperimentMetric",
    "uuid": "bench-mean",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
}
FUNNEL_METRIC = {
    "kind": "ExperimentMetric",
    "uuid": "bench-funnel",
    "metric_type": "funnel",
    "series": [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "purchase"}],
}
# Every exposure of a user carries the same one of 10 values.
BREAKDOWN_PROPERTY = "$browser"
BREAKDOWN_METRIC = MEAN_METRIC | {
    "uuid": "bench-breakdown",
    "breakdownFilter": {"breakdowns": [{"property": BREAKDOWN_PROPERTY, "type": "event"}]},
}
P90_METRIC = {
    "kind": "ExperimentMetric",
    "uuid": "bench-p90",
    "metric_type": "quantile",
    "quantile": 0.9,
    "source": MEAN_METRIC["source"],
}
EVENT_P90_METRIC = P90_METRIC | {"uuid": "bench-event-p90", "quantile_type": "event"}
# q̂'s level, then L's and U's for each n* of the grid.
P90_LEVELS = [0.9, *(level for nstar in NSTAR_GRID for level in quantile_bound_levels(0.9, nstar))]

# The unit is the person, resolved as the engine does: the event's person id, or the person it was merged into
# (the small overrides table, looked up by uuid). Exposures: the first `$feature_flag_called` per person; persons
# seen in two variants are excluded.
PERSON_OF = """COALESCE({alias}_override.new_person_id, {alias}.person_id)"""
OVERRIDE_JOIN = """LEFT JOIN persons_personoverride {alias}_override ON {alias}_override.project_id = {alias}.project_id
      AND {alias}_override.old_person_id = {alias}.person_id"""
FLOOR_EXPOSURES = f"""
exposures AS (
    SELECT {PERSON_OF.format(alias="e")} AS unit, MIN(e.timestamp) AS exposed_at,
        MIN(e.properties ->> '$feature_flag_response') AS variant, MIN(e.properties ->> '$browser') AS segment
    FROM events_event e {OVERRIDE_JOIN.format(alias="e")}
    WHERE e.project_id = %(project)s AND e.event = '$feature_flag_called' AND e.timestamp >= %(start)s
      AND e.timestamp < %(end)s AND e.properties ->> '$feature_flag' = %(flag)s
      AND e.properties ->> '$feature_flag_response' IN ('control', 'test')
    GROUP BY 1
    HAVING MIN(e.properties ->> '$feature_flag_response') = MAX(e.properties ->> '$feature_flag_response')
)"""
# The purchases of the final day's window, each with its person.
FLOOR_PURCHASES = f"""
purchases AS (
    SELECT {PERSON_OF.format(alias="m")} AS unit, m.timestamp, (m.properties ->> 'amount')::double precision AS amount
    FROM events_event m {OVERRIDE_JOIN.format(alias="m")}
    WHERE m.project_id = %(project)s AND m.event = 'purchase' AND m.timestamp >= %(start)s
      AND m.timestamp < %(query_to)s
)"""
FLOOR_MEAN = f"""
WITH {FLOOR_EXPOSURES}, {FLOOR_PURCHASES},
per_unit AS (
    SELECT x.unit, x.variant, COALESCE(SUM(p.amount), 0) AS value
    FROM exposures x LEFT JOIN purchases p ON p.unit = x.unit AND p.timestamp >= x.exposed_at
    GROUP BY x.unit, x.variant
)
SELECT variant, COUNT(*), SUM(value), SUM(value * value) FROM per_unit GROUP BY variant ORDER BY variant"""
FLOOR_BREAKDOWN = f"""
WITH {FLOOR_EXPOSURES}, {FLOOR_PURCHASES},
per_unit AS (
    SELECT x.unit, x.variant, x.segment, COALESCE(SUM(p.amount), 0) AS value
    FROM exposures x LEFT JOIN purchases p ON p.unit = x.unit AND p.timestamp >= x.exposed_at
    GROUP BY x.unit, x.variant, x.segment
)
SELECT segment, variant, COUNT(*), SUM(value), SUM(value * value) FROM per_unit GROUP BY segment, variant
ORDER BY segment, variant"""
FLOOR_P90 = f"""
WITH {FLOOR_EXPOSURES}, {FLOOR_PURCHASES},
per_unit AS (
    SELECT x.unit, x.variant, COALESCE(SUM(p.amount), 0) AS value
    FROM exposures x LEFT JOIN purchases p ON p.unit = x.unit AND p.timestamp >= x.exposed_at
    GROUP BY x.unit, x.variant
)
SELECT variant, COUNT(*), percentile_cont(%(levels)s::double precision[]) WITHIN GROUP (ORDER BY value)
FROM per_unit GROUP BY variant ORDER BY variant"""
FLOOR_EVENT_P90 = f"""
WITH {FLOOR_EXPOSURES}, {FLOOR_PURCHASES},
event_values AS (
    SELECT x.unit, x.variant, p.amount AS value
    FROM exposures x JOIN purchases p ON p.unit = x.unit AND p.timestamp >= x.exposed_at
),
levels AS (
    SELECT variant, COUNT(*) AS n, percentile_cont(%(levels)s::double precision[]) WITHIN GROUP (ORDER BY value) AS q
    FROM event_values GROUP BY variant
),
clusters AS (
    SELECT e.variant, COUNT(*) FILTER (WHERE e.value <= l.q[1]) AS below, COUNT(*) AS events
    FROM event_values e JOIN levels l USING (variant) GROUP BY e.unit, e.variant
)
SELECT l.variant, l.n, l.q, COUNT(*), SUM(below), SUM(below * below), SUM(events), SUM(events * events),
  SUM(below * events)
FROM levels l JOIN clusters c USING (variant) GROUP BY l.variant, l.n, l.q ORDER BY l.variant"""
FLOOR_FUNNEL = f"""
WITH {FLOOR_EXPOSURES},
steps AS (
    SELECT x.unit, m.event, m.timestamp
    FROM events_event m {OVERRIDE_JOIN.format(alias="m")}
    JOIN exposures x ON x.unit = {PERSON_OF.format(alias="m")}
    WHERE m.project_id = %(project)s AND m.event IN ('$pageview', 'purchase') AND m.timestamp >= %(start)s
      AND m.timestamp < %(query_to)s AND m.timestamp >= x.exposed_at
),
first_step AS (SELECT unit, MIN(timestamp) AS at FROM steps WHERE event = '$pageview' GROUP BY unit),
converted AS (
    SELECT DISTINCT s.unit FROM steps s JOIN first_step f ON f.unit = s.unit
    WHERE s.event = 'purchase' AND s.timestamp > f.at
)
SELECT x.variant, COUNT(*), COUNT(c.unit), COUNT(c.unit)
FROM exposures x LEFT JOIN converted c ON c.unit = x.unit GROUP BY x.variant ORDER BY x.variant"""
IDENTIFIED_SHARE = 0.2


def reset_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    call_command("migrate", verbosity=0)


def create_experiment() -> Experiment:
    organization = Organization.objects.create(name="Bench")
    project = Project.objects.create(organization=organization, name="Bench", timezone=TIMEZONE)
    flag = FeatureFlag.objects.create(
        project=project,
        key=FLAG_KEY,
        filters={
            "groups": [{"properties": [], "rollout_percentage": 100}],
            "multivariate": {
                "variants": [
                    {"key": "control", "rollout_percentage": 50},
                    {"key": "test", "rollout_percentage": 50},
                ]
            },
        },
    )
    return Experiment.objects.create(
        project=project,
        name="Bench",
        feature_flag=flag,
        start_date=START,
        end_date=END,
        exposure_criteria={"filterTestAccounts": False},
        metrics=[MEAN_METRIC, FUNNEL_METRIC],
    )


def generate_users(users: int) -> None:
    """Every user is exposed once at a random time in the first 27 days; 30% are exposed again later and 1% also
    see the other variant (those are excluded from the analysis)."""
    event_partitions_ensure([START - dt.timedelta(days=3), START, END])
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_users AS SELECT u, 'user_' || u AS distinct_id, "
            "md5('user_' || u)::uuid AS person_id, "
            "CASE WHEN u %% 2 = 0 THEN 'control' ELSE 'test' END AS variant, "
            "(random() * 27 * 86400)::int AS offset_s FROM generate_series(1, %s) u",
            [users],
        )


def insert_exposures(project_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO events_event (project_id, uuid, event, distinct_id, timestamp, properties, created_at, person_id)
            SELECT %(project)s, gen_random_uuid(), '$feature_flag_called', distinct_id,
                   %(start)s + make_interval(secs => offset_s + extra.delay), jsonb_build_object(
                       '$feature_flag', %(flag)s, '$feature_flag_response',
                       CASE WHEN extra.switch THEN CASE variant WHEN 'control' THEN 'test' ELSE 'control' END
                            ELSE variant END, '$browser', 'browser-' || ((u / 2) %% 10)),
                   now(), person_id
            FROM bench_users CROSS JOIN LATERAL (
                SELECT 0 AS delay, false AS switch
                UNION ALL SELECT (random() * 86400 * 3)::int, false WHERE random() < 0.3 + u * 0
                UNION ALL SELECT (random() * 86400 * 2)::int, true WHERE random() < 0.01 + u * 0
            ) extra
            """,
            {"project": project_id, "start": START, "flag": FLAG_KEY},
        )


def insert_metric_events(project_id: int) -> None:
    """About 9.5 events per user (80% page views, 20% purchases with an amount), 15% of them before the user's
    exposure."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO events_event (project_id, uuid, event, distinct_id, timestamp, properties, created_at, person_id)
            SELECT %(project)s, gen_random_uuid(), CASE WHEN kind < 0.2 THEN 'purchase' ELSE '$pageview' END,
                   distinct_id, %(start)s + make_interval(secs => at),
                   CASE WHEN kind < 0.2
                        THEN jsonb_build_object('amount', (kind * 500)::int, '$session_id', 's' || (at / 3600)::int)
                        ELSE jsonb_build_object('$session_id', 's' || (at / 3600)::int) END,
                   now(), person_id
            FROM (
                SELECT distinct_id, person_id, random() AS kind,
                       GREATEST(offset_s + (random() * 1.15 - 0.15) * (%(span)s - offset_s), -172800) AS at
                FROM bench_users CROSS JOIN LATERAL generate_series(1, (random() * 19 + u * 0)::int) AS n
            ) generated
            """,
            {"project": project_id, "start": START, "span": DAYS * 86400 - 1},
        )
        cursor.execute("ANALYZE events_event")


def identify_users(project_id: int) -> int:
    """One user in five logs in mid-experiment, up to 3 days after their first exposure: from then on their events
    (exposures included, same variant) arrive under a new distinct id whose person already existed, and the merge
    left an override from the anonymous person to that person, as ingestion writes for such an `$identify`."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE bench_users ADD COLUMN identified_at timestamptz, ADD COLUMN member_person uuid")
        cursor.execute(
            "UPDATE bench_users SET member_person = md5('member_' || u)::uuid, "
            "identified_at = %(start)s + make_interval(secs => offset_s + (random() * 3 * 86400)::int) "
            "WHERE u %% %(every)s = 0",
            {"start": START, "every": round(1 / IDENTIFIED_SHARE)},
        )
        cursor.execute(
            """
            UPDATE events_event AS e SET distinct_id = 'member_' || b.u, person_id = b.member_person
            FROM bench_users AS b
            WHERE e.project_id = %(project)s AND e.person_id = b.person_id AND b.identified_at IS NOT NULL
              AND e.timestamp >= b.identified_at
            """,
            {"project": project_id},
        )
        cursor.execute(
            "INSERT INTO persons_personoverride (project_id, old_person_id, new_person_id, created_at) "
            "SELECT %s, person_id, member_person, now() FROM bench_users WHERE identified_at IS NOT NULL",
            [project_id],
        )
        identified = cursor.rowcount
        cursor.execute("ANALYZE events_event")
        cursor.execute("ANALYZE persons_personoverride")
        return identified


def event_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM events_event")
        return cursor.fetchone()[0]


def exposed_users(experiment: Experiment) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(DISTINCT distinct_id) FROM events_event "
            "WHERE project_id = %s AND event = '$feature_flag_called'",
            [experiment.project_id],
        )
        return cursor.fetchone()[0]


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def recalculate(experiment: Experiment, metric: dict) -> float:
    """Time the worker's service on a fresh recalculation record (the results rows of earlier runs removed)."""
    ExperimentMetricResult.objects.filter(experiment=experiment, metric_uuid=metric["uuid"]).delete()
    ExperimentTimeseriesRecalculation.objects.filter(experiment=experiment, fingerprint=metric["uuid"]).delete()
    recalculation = ExperimentTimeseriesRecalculation.objects.create(
        project=experiment.project, experiment=experiment, metric=metric, fingerprint=metric["uuid"]
    )
    seconds, _ = timed(timeseries_recalculation_run, recalculation_id=recalculation.pk)
    recalculation.refresh_from_db()
    if recalculation.status != RecalculationStatus.COMPLETED:
        raise RuntimeError(f"Recalculation ended {recalculation.status}: {recalculation.error_message}")
    return seconds


def floor(experiment: Experiment, sql: str) -> tuple[float, list]:
    """The hand-written query, under the same planner settings as the engine's queries (one transaction)."""
    last_day_end = dt.datetime(2025, 2, 4, tzinfo=dt.UTC) + dt.timedelta(hours=23)  # next Berlin midnight after END
    params = {
        "project": experiment.project_id,
        "start": START,
        "end": END,
        "flag": FLAG_KEY,
        "query_to": last_day_end,
        "levels": P90_LEVELS,
    }

    def run():
        with transaction.atomic(), connection.cursor() as cursor:
            for name, value in POSTGRES_SETTINGS.items():
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
            cursor.execute(sql, params)
            return cursor.fetchall()

    return timed(run)


def final_day(experiment: Experiment, metric: dict) -> list:
    return [
        (variant["key"], variant["number_of_samples"], variant["sum"], variant["sum_squares"])
        for variant in _variants(final_result(experiment, metric))
    ]


def final_result(experiment: Experiment, metric: dict) -> dict:
    row = ExperimentMetricResult.objects.filter(experiment=experiment, metric_uuid=metric["uuid"]).latest("query_to")
    return row.result


def _variants(result: dict) -> list[dict]:
    return [result["baseline"], *result["variant_results"]]


def _same(ours: list[tuple], theirs: list[tuple]) -> bool:
    """Equal keys and counts (leading non-float items), numbers equal up to rounding."""
    return len(ours) == len(theirs) and all(
        len(a) == len(b)
        and all(
            x == y if not isinstance(y, float) else abs(x - y) <= 1e-6 * max(1.0, abs(y))
            for x, y in zip(a, b, strict=True)
        )
        for a, b in zip(ours, theirs, strict=True)
    )


def check_sums(result: dict, rows: list) -> tuple[list, list]:
    ours = [(v["key"], v["number_of_samples"], v["sum"], v["sum_squares"]) for v in _variants(result)]
    return ours, [(variant, count, float(total), float(squares)) for variant, count, total, squares in rows]


def check_segments(result: dict, rows: list) -> tuple[list, list]:
    ours = [
        (item["breakdown_value"][0], v["key"], v["number_of_samples"], v["sum"], v["sum_squares"])
        for item in result["breakdown_results"]
        for v in _variants(item)
    ]
    theirs = [(segment, variant, n, float(total), float(squares)) for segment, variant, n, total, squares in rows]
    return sorted(ours), sorted(theirs)


def _floor_quantiles(n: int, levels: list[float]) -> tuple:
    """(n, q̂, L, U, n*) from the levels' sample quantiles: the largest grid n* ≤ n whose L and U differ."""
    for position in reversed(range(len(NSTAR_GRID))):
        lower, upper = levels[1 + 2 * position], levels[2 + 2 * position]
        if NSTAR_GRID[position] <= n and lower != upper:
            return n, float(levels[0]), float(lower), float(upper), NSTAR_GRID[position]
    return n, float(levels[0]), float(levels[0]), float(levels[0]), None


def _quantile_row(variant: dict) -> tuple:
    fields = ("quantile_n", "quantile", "quantile_lower", "quantile_upper", "quantile_nstar")
    return (variant["key"], *(variant[field] for field in fields))


def check_quantiles(result: dict, rows: list) -> tuple[list, list]:
    return [_quantile_row(v) for v in _variants(result)], [
        (variant, *_floor_quantiles(n, levels)) for variant, n, levels in rows
    ]


def check_event_quantiles(result: dict, rows: list) -> tuple[list, list]:
    ours = [(*_quantile_row(v), *(v[field] for field in CLUSTER_FIELDS)) for v in _variants(result)]
    theirs = [(variant, *_floor_quantiles(n, levels), *sums) for variant, n, levels, *sums in rows]
    return ours, theirs


# name: (metric, its one-scan floor for the final day, the check that both give the same final day)
CASES = {
    "mean": (MEAN_METRIC, FLOOR_MEAN, check_sums),
    "funnel": (FUNNEL_METRIC, FLOOR_FUNNEL, check_sums),
    "breakdown": (BREAKDOWN_METRIC, FLOOR_BREAKDOWN, check_segments),
    "p90": (P90_METRIC, FLOOR_P90, check_quantiles),
    "event-p90": (EVENT_P90_METRIC, FLOOR_EVENT_P90, check_event_quantiles),
}


def compare(experiment: Experiment, name: str, repeats: int) -> None:
    metric, floor_sql, check = CASES[name]
    recalculations = [recalculate(experiment, metric) for _ in range(repeats)]
    floors = [floor(experiment, floor_sql) for _ in range(repeats)]
    recalculation, floor_seconds = min(recalculations), min(seconds for seconds, _ in floors)
    print(
        f"  {name:9}  recalculation {recalculation:7.3f}s   floor {floor_seconds:7.3f}s   "
        f"ratio {recalculation / floor_seconds:5.2f}x   (best of {repeats})"
    )
    ours, theirs = check(final_result(experiment, metric), floors[0][1])
    if not _same(ours, theirs):
        raise RuntimeError(f"The final day differs from the floor query: {ours} vs {theirs}")


def use_store(url: str) -> None:
    settings.EVENT_STORE_URL = url


def copy_to_clickhouse(experiment: Experiment, url: str) -> None:
    use_store(url)
    client = clickhouse_client()
    clickhouse_migrate(client)
    for table in Layout(database=client.database).tables():
        client.command(f"TRUNCATE TABLE {client.database}.{table}")
    seconds, result = timed(project_copy_to_clickhouse, client, project_id=experiment.project_id)
    client.command(f"OPTIMIZE TABLE {client.database}.events FINAL")
    print(f"Copied {result.events} events to ClickHouse in {seconds:.1f}s ({result.events / seconds:,.0f} events/s)")
    use_store("")


def compare_stores(experiment: Experiment, url: str, repeats: int) -> None:
    """The same recalculation on PostgreSQL and on ClickHouse; the final days must agree."""
    for metric in (MEAN_METRIC, FUNNEL_METRIC):
        timings, finals = {}, {}
        for name, store_url in (("postgres", ""), ("clickhouse", url)):
            use_store(store_url)
            timings[name] = min(recalculate(experiment, metric) for _ in range(repeats))
            finals[name] = final_day(experiment, metric)
        use_store("")
        if [row[:2] for row in finals["postgres"]] != [row[:2] for row in finals["clickhouse"]] or any(
            abs(a - b) > 1e-6 * max(1.0, abs(b))
            for row_a, row_b in zip(finals["postgres"], finals["clickhouse"], strict=True)
            for a, b in zip(row_a[2:], row_b[2:], strict=True)
        ):
            raise RuntimeError(f"The stores differ on the final day: {finals}")
        print(
            f"  {metric['metric_type']:6}  PostgreSQL {timings['postgres']:7.3f}s   ClickHouse "
            f"{timings['clickhouse']:7.3f}s   PostgreSQL/ClickHouse {timings['postgres'] / timings['clickhouse']:5.2f}x"
            f"   (best of {repeats}, same final day)"
        )


def peak_worker_memory(metric: dict, store_url: str = "") -> int:
    """Peak RSS (MiB) of a fresh process that runs one recalculation, as a Celery worker would."""
    output = subprocess.run(
        [sys.executable, __file__, "--worker-memory", json.dumps(metric)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "EVENT_STORE_URL": store_url},
    ).stdout
    return int(output.strip().splitlines()[-1])


def worker_memory_child(metric: dict) -> None:
    experiment = Experiment.objects.get()
    recalculate(experiment, metric)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--reuse", action="store_true", help="time the data of a previous run again (skips the memory measurement)"
    )
    parser.add_argument("--store", choices=("postgres", "clickhouse"), default="postgres")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--chdb-path", default="/tmp/experiments-bench-chdb", help="chDB's data directory")
    parser.add_argument("--worker-memory", help=argparse.SUPPRESS)
    parser.add_argument("--copy-to", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.copy_to:
        copy_to_clickhouse(Experiment.objects.get(), arguments.copy_to)
        return
    if arguments.worker_memory:
        worker_memory_child(json.loads(arguments.worker_memory))
        return
    clickhouse_url = ""
    if arguments.store == "clickhouse":
        clickhouse_url = os.environ.get("EVENT_STORE_URL") or f"chdb://{arguments.chdb_path}"
    use_store("")
    if connection.vendor != "postgresql":
        raise SystemExit("The benchmark runs on PostgreSQL: set DATABASE_URL to a postgres:// URL.")
    if arguments.reuse:
        experiment = Experiment.objects.get()
    else:
        print(f"Building the synthetic experiment in {connection.settings_dict['NAME']} ...")
        reset_database()
        experiment = create_experiment()
        generate_users(arguments.users)
        insert_exposures(experiment.project_id)
        insert_metric_events(experiment.project_id)
    print(f"{exposed_users(experiment)} exposed users, {event_count()} events over {DAYS} days")
    print(f"Planner settings for both sides: {POSTGRES_SETTINGS}\n")
    if clickhouse_url:
        # chDB allows one process per data directory: the copy and each worker run in their own process, before
        # this one opens it.
        if not arguments.reuse:
            subprocess.run([sys.executable, __file__, "--copy-to", clickhouse_url], check=True, env=os.environ)
        memory = {
            name: peak_worker_memory(MEAN_METRIC, url)
            for name, url in (("postgres", ""), ("clickhouse", clickhouse_url))
        }
        compare_stores(experiment, clickhouse_url, arguments.repeats)
        print(
            f"Peak worker memory (mean metric): PostgreSQL {memory['postgres']} MiB, ClickHouse {memory['clickhouse']} MiB"
        )
        return
    for name in arguments.cases.split(","):
        compare(experiment, name, arguments.repeats)
    if arguments.reuse:
        return
    seconds, identified = timed(identify_users, experiment.project_id)
    print(
        f"\n{identified} users ({IDENTIFIED_SHARE:.0%}) identified mid-experiment, their later events under a new id "
        f"and person, one override each ({seconds:.1f}s to rewrite):"
    )
    for name in arguments.cases.split(","):
        compare(experiment, name, arguments.repeats)
    events_small, memory_small = event_count(), peak_worker_memory(MEAN_METRIC)
    insert_metric_events(experiment.project_id)
    events_large, memory_large = event_count(), peak_worker_memory(MEAN_METRIC)
    print(
        f"\nPeak worker memory (mean metric recalculation in a fresh process): {memory_small} MiB at {events_small} "
        f"events, {memory_large} MiB at {events_large} events"
    )


if __name__ == "__main__":
    main()
