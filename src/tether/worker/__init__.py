"""Scale-out: workers that claim queued runs from Postgres and drive them (`Worker`), and the
server's launcher that queues runs for them (`QueueLauncher`)."""

from tether.worker.launcher import QueueLauncher
from tether.worker.options import WorkerOptions
from tether.worker.worker import Worker

__all__ = ["QueueLauncher", "Worker", "WorkerOptions"]
