"""The procedure file format: how a council writes its procedures as data, with no code.

This package holds the format-neutral model of a council's procedures and the thin readers
that turn a file into it; it imports nothing from the machines, the engine or the stores.
Readers report every problem in a file at once, each naming the file and the key path.
"""

from __future__ import annotations

from qaflow.procedure._reader import IDENT, Node, Problems, did_you_mean, parse_toml
from qaflow.procedure._versions import FORMAT_VERSION, migrate

__all__ = [
    "FORMAT_VERSION",
    "IDENT",
    "Node",
    "Problems",
    "did_you_mean",
    "migrate",
    "parse_toml",
]
