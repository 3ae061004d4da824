"""tether: a runtime for stateful agent graphs in which every run can always be stopped.

The graph API is LangGraph's (`tether.graph`, `tether.types`, `tether.checkpoint.*`); this module
re-exports tether's own runtime API: run handles and records, the calls nodes use to see and
handle cancellation, and the exceptions.
"""

from tether.cancel import (
    cancel_reason,
    cancelled,
    check_cancelled,
    deadline,
    on_cancel,
    shield,
    sleep,
    sleep_sync,
)
from tether.config import get_config, get_stream_writer
from tether.errors import (
    CheckpointerRequired,
    CheckpointNotFound,
    ConfigError,
    EmptyInputError,
    GraphCompileError,
    GraphInterrupt,
    GraphRecursionError,
    InvalidResumeError,
    InvalidUpdateError,
    NodeCancelled,
    NodeTimeoutError,
    OverloadError,
    RecursionLimitReached,
    RunCancelled,
    RunNotFound,
    RunTimeout,
    SerializationError,
    StoreError,
    StrictnessWarning,
    TetherError,
    ThreadBusyError,
)
from tether.runs import Run
from tether.runs.admission import limit_runs
from tether.runtime import Runtime, charge, get_runtime, heartbeat, usage
from tether.types import (
    CancelReason,
    Command,
    Interrupt,
    RetryPolicy,
    RunEvent,
    RunInfo,
    RunSnapshot,
    RunStatus,
    Send,
    TimeoutPolicy,
    Usage,
    interrupt,
)

__version__ = "0.1.0"

__all__ = [
    "CancelReason",
    "CheckpointNotFound",
    "CheckpointerRequired",
    "Command",
    "ConfigError",
    "EmptyInputError",
    "GraphCompileError",
    "GraphInterrupt",
    "GraphRecursionError",
    "Interrupt",
    "InvalidResumeError",
    "InvalidUpdateError",
    "NodeCancelled",
    "NodeTimeoutError",
    "OverloadError",
    "RecursionLimitReached",
    "RetryPolicy",
    "Run",
    "RunCancelled",
    "RunEvent",
    "RunInfo",
    "RunNotFound",
    "RunSnapshot",
    "RunStatus",
    "RunTimeout",
    "Runtime",
    "Send",
    "SerializationError",
    "StoreError",
    "StrictnessWarning",
    "TetherError",
    "ThreadBusyError",
    "TimeoutPolicy",
    "Usage",
    "__version__",
    "cancel_reason",
    "cancelled",
    "charge",
    "check_cancelled",
    "deadline",
    "get_config",
    "get_runtime",
    "get_stream_writer",
    "heartbeat",
    "interrupt",
    "limit_runs",
    "on_cancel",
    "shield",
    "sleep",
    "sleep_sync",
    "usage",
]
