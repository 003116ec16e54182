"""Bounded pauses of the cyclic garbage collector in long-lived processes.

A process that holds many workflows in memory (a :class:`~qaflow.store.MemoryStore` of a
million, a large simulation) pays for them on every full collection: CPython's collector
walks every tracked object, so each pause grows with what is loaded, not with what changed.
qaflow's records hold no reference cycles, so loaded state never needs collecting.
:func:`freeze_loaded` is the explicit option: called once the working set is loaded, it
moves every object alive at that moment into the collector's permanent generation
(:func:`gc.freeze`), so later pauses scale with new objects only. Nothing is freed that
would otherwise have been: frozen objects are still released by reference counting when
dropped; only cycles among them are never collected (call :func:`gc.unfreeze` before
dropping a large frozen structure that may hold cycles).
"""

from __future__ import annotations

import gc

__all__ = ["freeze_loaded"]


def freeze_loaded() -> int:
    """Collect once, then freeze every live object out of later collections.

    Returns how many objects are frozen. Call it after loading (and again after loading
    more); it is an explicit choice of the host process, never made by qaflow itself.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
