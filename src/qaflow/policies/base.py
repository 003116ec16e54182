"""What every council policy has: a name and version that workflows pin, and its calendar.

The type lives in the procedure model (:mod:`qaflow.procedure`); it is imported here too.
"""

from __future__ import annotations

from qaflow.procedure._policy import Policy

__all__ = ["Policy"]
