"""Enqueue Celery tasks by name once the current transaction commits, so producers never import task modules.

The task is looked up in the Celery app's registry and sent with `.delay`, which also honours `task_always_eager`
(the embedded mode runs it in-process; `send_task` would not). Before the transaction commits, the broker is
checked: when it cannot be reached, kombu's OperationalError rolls the transaction back instead of committing work
that would never be queued, and the exception handler answers it as a 503 with `Retry-After`.
"""

from celery import Task
from django.db import transaction

from experiments_api.celery import app


def broker_reachable_or_raise() -> None:
    """Raise kombu's OperationalError unless a fresh connection to the broker opens (in-process mode has none)."""
    if app.conf.task_always_eager:
        return
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=app.conf.broker_connection_timeout)


def registered_task(task_name: str) -> Task:
    """The task named `task_name`; the apps' task modules are imported on first use (a web process never imports
    them itself), and an unknown name raises NotRegistered."""
    if task_name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[task_name]


def enqueue_on_commit(task_name: str, *args) -> None:
    """Run the registered task `task_name` with `args` once the transaction commits (at once outside one)."""
    task = registered_task(task_name)
    broker_reachable_or_raise()
    transaction.on_commit(lambda: task.delay(*args))
