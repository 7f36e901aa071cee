"""Enqueue background work by dotted task name, so services never import the worker package."""

from __future__ import annotations

from rq import Queue
from rq.job import Job

from mlplatform.cache import get_redis
from mlplatform.config import get_settings

PURGE_EXPIRED_REFRESH_TOKENS = "mlplatform.worker.tasks.purge_expired_refresh_tokens"
WARM_VERSION = "mlplatform.worker.tasks.warm_version"


def enqueue(task: str, *ids: str, **options) -> Job:
    return Queue(get_settings().queue_name, connection=get_redis()).enqueue(task, *ids, **options)
