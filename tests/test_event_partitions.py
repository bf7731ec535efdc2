"""Monthly partitions created on demand by several server processes at once, against the real PostgreSQL: every
process ends with the partition there and none answers an error, whoever created it."""

import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest

from events.partitions import PARTITION_LOCK_KEY, next_month, partition_name
from tests.helpers import REPOSITORY_ROOT, server_process_environment, session_database_url

PROCESSES = 4
MONTH = datetime(2091, 3, 1, tzinfo=UTC)
NAME = partition_name(MONTH)
# Django's setup in every process and their first queries, on a busy machine (a bound, not a measurement).
QUEUE_TIMEOUT = 120

# One server process: wait for the start signal, then make sure the month's partition exists, as capture does.
WORKER = """
import json, os, sys, time
from datetime import datetime
import django
django.setup()
from events.partitions import event_partitions_ensure
start, month = sys.argv[1], datetime.fromisoformat(sys.argv[2])
while not os.path.exists(start):
    time.sleep(0.005)
try:
    event_partitions_ensure([month])
    print(json.dumps("created or found"))
except Exception as error:
    print(json.dumps(f"{type(error).__name__}: {error}"))
"""


@pytest.fixture
def holder():
    """A connection of the test's own, outside Django's; the month's partition is dropped afterwards."""
    with psycopg.connect(session_database_url(), autocommit=True) as own:
        yield own
        own.execute(f"DROP TABLE IF EXISTS {NAME}")


@pytest.mark.django_db(transaction=True)
def test_processes_queued_on_the_creation_lock(tmp_path, holder):
    """Every process looks the partition up, finds it missing and queues on the creation lock (held here until all
    of them wait); the first creates it and each of the others, in turn, finds it created."""
    holder.execute("SELECT pg_advisory_lock(%s)", [PARTITION_LOCK_KEY])
    try:
        outputs = _run_workers(tmp_path, PROCESSES, until=lambda: _waiting(holder, "advisory") == PROCESSES)
    finally:
        holder.execute("SELECT pg_advisory_unlock(%s)", [PARTITION_LOCK_KEY])
    assert outputs() == ["created or found"] * PROCESSES
    assert _partitions(holder) == 1


@pytest.mark.django_db(transaction=True)
def test_a_partition_created_without_the_lock_meanwhile(tmp_path, holder):
    """A creation that does not take the lock (a migration, an operator) still running when the processes create
    the same partition: the one holding the lock waits for it (on the DEFAULT partition it locks), meets the name
    once it commits, and counts the partition as created, as do the others queued on the lock."""
    holder.execute("BEGIN")
    holder.execute(
        f"CREATE TABLE {NAME} PARTITION OF events_event FOR VALUES FROM (%s) TO (%s)".replace("%s", "'{}'").format(
            MONTH.isoformat(), next_month(MONTH).isoformat()
        )
    )
    try:
        # One process holds the creation lock and waits for this transaction; the others wait for the lock.
        outputs = _run_workers(
            tmp_path,
            PROCESSES,
            until=lambda: _waiting(holder, "relation") == 1 and _waiting(holder, "advisory") == PROCESSES - 1,
        )
    finally:
        holder.execute("COMMIT")
    assert outputs() == ["created or found"] * PROCESSES
    assert _partitions(holder) == 1


def _run_workers(tmp_path, count: int, *, until: Callable[[], bool]) -> Callable[[], list]:
    """Start `count` processes at once and return when `until()` holds (failing if one of them exits first); the
    returned function waits for their answers."""
    environment = server_process_environment()
    start = tmp_path / "start"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(start), MONTH.isoformat()],
            env=environment,
            cwd=REPOSITORY_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    start.touch()
    deadline = time.monotonic() + QUEUE_TIMEOUT
    while not until():
        if time.monotonic() > deadline or any(worker.poll() is not None for worker in workers):
            for worker in workers:
                worker.kill()
            pytest.fail(f"the processes did not queue as expected: {[worker.communicate() for worker in workers]}")
        time.sleep(0.05)

    def outputs() -> list:
        answers = [worker.communicate(timeout=120) for worker in workers]
        return [json.loads(stdout) if stdout else stderr[-2000:] for stdout, stderr in answers]

    return outputs


def _waiting(holder: psycopg.Connection, locktype: str) -> int:
    """How many sessions wait for a lock of this type: the creation lock, or a table's."""
    key = " AND objid = %s" if locktype == "advisory" else ""
    return holder.execute(
        f"SELECT count(*) FROM pg_locks WHERE locktype = %s AND NOT granted{key}",
        [locktype, PARTITION_LOCK_KEY] if key else [locktype],
    ).fetchone()[0]


def _partitions(holder: psycopg.Connection) -> int:
    return holder.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events_event'::regclass AND inhrelid = to_regclass(%s)",
        [NAME],
    ).fetchone()[0]
