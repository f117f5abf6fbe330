"""The scheduler: resource pools and the child processes that run tasks."""

from digits.scheduler.local import LocalScheduler
from digits.scheduler.resources import ResourcePools

__all__ = ["LocalScheduler", "ResourcePools"]
