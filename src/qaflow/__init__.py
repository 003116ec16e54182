"""qaflow: council quality-assurance and escalation procedures as durable state machines.

The public surface is re-exported here; implementation lives in the submodules.
"""

from qaflow._checks import MAX_CLOCK_SKEW
from qaflow._compiled import is_compiled
from qaflow._gc import freeze_loaded
from qaflow._integrity import Problem, VerifyReport, make_checkpoint
from qaflow.calendar import Duration, WorkingCalendar, default_calendar
from qaflow.clock import Clock, ManualClock, SystemClock
from qaflow.engine import Directory, Engine
from qaflow.errors import (
    ConcurrencyError,
    GuardFailed,
    IdempotencyConflict,
    IntegrityError,
    OutcomeUnknown,
    PermissionDenied,
    PolicyError,
    QAFlowError,
    StoreBusy,
    StoreError,
    StoreUnavailable,
    TransitionNotAllowed,
    UnknownWorkflow,
    ValidationError,
)
from qaflow.records import (
    SYSTEM,
    Actor,
    AnchorEntry,
    Deadline,
    Event,
    Notification,
    Step,
    Task,
    TickFailure,
    WorkflowSnapshot,
    converter,
)
from qaflow.spec import (
    AddTask,
    CloseDeadline,
    Context,
    DeadlineRule,
    Derived,
    ExtendDeadline,
    Field,
    Guard,
    MachineSpec,
    Notify,
    OpenDeadline,
    StateSpec,
    TransitionSpec,
    Update,
)
from qaflow.store import (
    MemoryStore,
    PostgresStore,
    SimulationStore,
    SQLiteStore,
    Store,
    open_store,
)

__version__ = "0.1.0"

compiled: bool = is_compiled()
"""True when this install runs qaflow's hot modules compiled with mypyc (a build made with
``QAFLOW_COMPILE=1``, see the README); False for the pure-Python install. The results are the
same either way: the compiled modules are the same source."""

__all__ = [
    "MAX_CLOCK_SKEW",
    "SYSTEM",
    "Actor",
    "AddTask",
    "AnchorEntry",
    "Clock",
    "CloseDeadline",
    "ConcurrencyError",
    "Context",
    "Deadline",
    "DeadlineRule",
    "Derived",
    "Directory",
    "Duration",
    "Engine",
    "Event",
    "ExtendDeadline",
    "Field",
    "Guard",
    "GuardFailed",
    "IdempotencyConflict",
    "IntegrityError",
    "MachineSpec",
    "ManualClock",
    "MemoryStore",
    "Notification",
    "Notify",
    "OpenDeadline",
    "OutcomeUnknown",
    "PermissionDenied",
    "PolicyError",
    "PostgresStore",
    "Problem",
    "QAFlowError",
    "SQLiteStore",
    "SimulationStore",
    "StateSpec",
    "Step",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreUnavailable",
    "SystemClock",
    "Task",
    "TickFailure",
    "TransitionNotAllowed",
    "TransitionSpec",
    "UnknownWorkflow",
    "Update",
    "ValidationError",
    "VerifyReport",
    "WorkflowSnapshot",
    "WorkingCalendar",
    "compiled",
    "converter",
    "default_calendar",
    "freeze_loaded",
    "make_checkpoint",
    "open_store",
]
