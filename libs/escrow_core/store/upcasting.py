"""Upgrading stored event data written under an older schema version."""

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Upcasters:
    """A registry of one-step upgrades, applied in a chain when events are read."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, from_version: int, fn: Upcaster) -> None:
        """Register ``fn`` to upgrade ``event_type`` data from ``from_version`` to the next."""
        if from_version < 1:
            raise ValueError("schema versions start at 1")
        key = (event_type, from_version)
        if key in self._steps:
            raise ValueError(f"an upcaster for {event_type} v{from_version} is already registered")
        self._steps[key] = fn

    def upcast(
        self, event_type: str, schema_version: int, data: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Apply every registered step from ``schema_version``; returns (version, data)."""
        if not self._steps:
            return schema_version, data  # the common case, on every event read
        while (step := self._steps.get((event_type, schema_version))) is not None:
            data = step(data)
            schema_version += 1
        return schema_version, data
