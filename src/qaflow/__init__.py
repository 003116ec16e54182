"""qaflow: council quality-assurance and escalation procedures as durable state machines.

The public surface is re-exported here; implementation lives in the submodules.
"""

from qaflow.calendar import Duration, WorkingCalendar, default_calendar
from qaflow.clock import Clock, ManualClock, SystemClock
from qaflow.engine import Directory, Engine
from qaflow.errors import (
    ConcurrencyError,
    GuardFailed,
    IntegrityError,
    PermissionDenied,
    PolicyError,
    QAFlowError,
    SchemaError,
    TransitionNotAllowed,
    UnknownWorkflow,
    ValidationError,
)
from qaflow.records import (
    SYSTEM,
    Actor,
    Deadline,
    Event,
    Notification,
    Step,
    Task,
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
from qaflow.store import MemoryStore, PostgresStore, SQLiteStore, Store, open_store

__version__ = "0.1.0"

__all__ = [
    "SYSTEM",
    "Actor",
    "AddTask",
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
    "IntegrityError",
    "MachineSpec",
    "ManualClock",
    "MemoryStore",
    "Notification",
    "Notify",
    "OpenDeadline",
    "PermissionDenied",
    "PolicyError",
    "PostgresStore",
    "QAFlowError",
    "SQLiteStore",
    "SchemaError",
    "StateSpec",
    "Step",
    "Store",
    "SystemClock",
    "Task",
    "TransitionNotAllowed",
    "TransitionSpec",
    "UnknownWorkflow",
    "Update",
    "ValidationError",
    "WorkflowSnapshot",
    "WorkingCalendar",
    "converter",
    "default_calendar",
    "open_store",
]
