"""The export file: JSON lines, one record per line, each naming its ``kind``.

    {"kind": "header", "format": "escrow-export", "format_version": 1, "schema_revision": ...}
    {"kind": "clock", ...}             the sandbox clock's offset
    {"kind": "party", ...}             parties nobody manages first, then the managed ones
    {"kind": "api_key", ...}           the SHA-256 of each secret, never a secret
    {"kind": "webhook_endpoint", ...}  with its signing secrets
    {"kind": "webhook_delivery", ...}  deliveries still pending
    {"kind": "event", ...}             the log in commit order, positions and ids as stored
    {"kind": "checkpoint", ...}        where each log reader (the webhook dispatcher) stands
    {"kind": "end", "counts": {...}}   the last line: a file without it was cut short

A record's fields are its table's columns (a party's ``kind`` is ``party_kind``). Readers
refuse a newer ``format_version``; a change that old readers would misread bumps it.
"""

from datetime import datetime
from typing import Annotated, Any, ClassVar, Final, Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from escrow_core.accounts import KeyRole, KeyScope, PartyKind

FORMAT: Final = "escrow-export"
FORMAT_VERSION = 1


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    #: The table a record is a row of (None: the file's own records).
    table: ClassVar[str | None] = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        return cls.model_validate(row)

    def row(self) -> dict[str, Any]:
        return self.model_dump(exclude={"kind"})


class Header(Record):
    kind: Literal["header"] = "header"
    format: Literal["escrow-export"] = FORMAT
    format_version: int
    schema_revision: str
    source: Literal["postgresql", "sqlite"]
    exported_at: AwareDatetime


class Clock(Record):
    kind: Literal["clock"] = "clock"
    offset_seconds: int


class Party(Record):
    kind: Literal["party"] = "party"
    table: ClassVar[str | None] = "parties"
    id: str
    party_kind: PartyKind
    name: str
    trade_assurance: bool
    managed_by: str | None
    created_at: AwareDatetime
    # Migration 0007; files written before it have neither.
    metadata: dict[str, str] = {}
    deactivated_at: AwareDatetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        fields = dict(row)
        fields["party_kind"] = fields.pop("kind")
        return cls.model_validate(fields)

    def row(self) -> dict[str, Any]:
        fields = self.model_dump(exclude={"kind", "party_kind"})
        return {**fields, "kind": self.party_kind.value}


class ApiKey(Record):
    kind: Literal["api_key"] = "api_key"
    table: ClassVar[str | None] = "api_keys"
    id: str
    key_hash: str
    role: KeyRole
    party_id: str | None
    created_by: str | None
    created_at: AwareDatetime
    revoked_at: AwareDatetime | None
    # Migration 0007; files written before it have none of them.
    scope: KeyScope = KeyScope.FULL
    expires_at: AwareDatetime | None = None
    last_used_at: AwareDatetime | None = None


class WebhookEndpoint(Record):
    kind: Literal["webhook_endpoint"] = "webhook_endpoint"
    table: ClassVar[str | None] = "webhook_endpoints"
    id: str
    owner_party_id: str | None
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: AwareDatetime | None
    failing_since: AwareDatetime | None
    created_by: str | None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    deleted_at: AwareDatetime | None
    # "payments" for a payments key's endpoint (migration 0008); absent from older files.
    owner_role: str | None = None


class WebhookDelivery(Record):
    """A delivery still owed, without the old sender's lease."""

    kind: Literal["webhook_delivery"] = "webhook_delivery"
    table: ClassVar[str | None] = "webhook_deliveries"
    id: int
    endpoint_id: str
    event_id: UUID
    event_position: int
    event_type: str
    stream_id: str
    sequence: int
    attempts: int
    next_attempt_at: AwareDatetime
    last_status_code: int | None
    last_error: str | None
    created_at: AwareDatetime


class Event(Record):
    kind: Literal["event"] = "event"
    table: ClassVar[str | None] = "events"
    position: int = Field(ge=1)
    stream_id: str
    version: int = Field(ge=1)
    event_id: UUID
    type: str
    schema_version: int = Field(ge=1)
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: AwareDatetime


class Checkpoint(Record):
    """A log reader's place, as the last position of the file's log it has read past (see
    ``transfer.CheckpointPlace``): transaction ids mean nothing in another database."""

    kind: Literal["checkpoint"] = "checkpoint"
    name: str
    position: int = Field(ge=0)


class End(Record):
    kind: Literal["end"] = "end"
    counts: dict[str, int]


AnyRecord = Annotated[
    Header | Clock | Party | ApiKey | WebhookEndpoint | WebhookDelivery | Event | Checkpoint | End,
    Field(discriminator="kind"),
]
_records: TypeAdapter[AnyRecord] = TypeAdapter(AnyRecord)


def encode(record: Record) -> bytes:
    return record.model_dump_json().encode() + b"\n"


def decode(line: bytes) -> AnyRecord:
    """One line's record; ``pydantic.ValidationError`` if it is not one."""
    return _records.validate_json(line)


def header(schema_revision: str, source: Literal["postgresql", "sqlite"], now: datetime) -> Header:
    return Header(
        format_version=FORMAT_VERSION,
        schema_revision=schema_revision,
        source=source,
        exported_at=now,
    )
