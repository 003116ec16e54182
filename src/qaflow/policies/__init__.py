"""Council policies as data: one module per council, each citing the clauses it encodes."""

from qaflow.policies.base import Policy

__all__ = ["Policy"]
