"""The store's errors, raised by ``Store.append`` and ``CommandSession.commit``.

StoreError
├── ConcurrencyError   the stream was not at the expected version: re-read, re-decide, retry
├── EventIdConflict    event ids reused on another stream, or only some of them reused
├── KeyBusy            another request holds the Idempotency-Key past the wait
└── ClaimLost          a claim was taken over: its holder may no longer complete it
"""

import uuid
from collections.abc import Sequence


class StoreError(Exception):
    """Base class of every error the event store raises."""


class ConcurrencyError(StoreError):
    """The stream was not at ``expected_version``; retry the command in a new transaction."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None = None):
        seen = "" if actual_version is None else f", it is at version {actual_version}"
        super().__init__(f"stream {stream_id!r} was expected at version {expected_version}{seen}")
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class KeyBusy(StoreError):
    """Another request held the Idempotency-Key for longer than this one would wait."""


class ClaimLost(StoreError):
    """The claim was taken over (its lease ran out): this request's write must not land."""


class EventIdConflict(StoreError):
    """An append reused some, not all, stored event ids, or reused them on another stream."""

    def __init__(self, stream_id: str, event_ids: Sequence[uuid.UUID]):
        listed = ", ".join(str(event_id) for event_id in event_ids)
        super().__init__(f"append to {stream_id!r} reuses stored event ids: {listed}")
        self.stream_id = stream_id
        self.event_ids = tuple(event_ids)
