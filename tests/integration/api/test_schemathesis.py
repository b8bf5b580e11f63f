"""Schemathesis against the in-process app: no 5xx, and every answer as the document says.

Every operation of the served document is called as the admin and as a buyer, on a fresh
database of each backend holding a few real orders (placed, accepted, held, shipped,
disputed): first with its documented request example on each real id (so every success shape
is seen), then with generated requests, valid ones (half of them aimed at the real ids, with
no stray Escrow-On-Behalf-Of or If-Match, so commands reach the domain) and, for the admin,
invalid ones, which must be refused with a 4xx. Every response must be below 500 and
documented: status code, content type, headers and body schema.

Each generated request is sent to both backends (an app on SQLite and one on PostgreSQL, each
on its own seeded database; an id aimed at real data is the same seeded order on each): the
generation, most of the cost, is paid once for the two. The operations are dealt into
``PARTS`` tests per caller, each on databases of its own, so no one test holds up the run.

To catch a field a response carries but the document does not declare, the responses are
checked against the document with ``additionalProperties: false`` added to each object schema
that lists its properties; the served document itself stays open to additive change.

Bounded and reproducible: ``MAX_EXAMPLES`` per operation and mode, derandomized, no example
database; about 50 s of worker time for both callers on both backends (some 60 operations).
"""

import copy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core import NOT_SET
from schemathesis.python import asgi

from escrow_api.app import create_app
from support.api import ADMIN_KEY, Api, auth, order_terms, running_api
from support.api import test_settings as settings_for
from support.databases import PostgresDatabases, SqliteDatabases, TestDatabases

pytestmark = pytest.mark.runs_long  # run first (tests/conftest.py)
BACKENDS = ("sqlite", "postgresql")
PARTS = 3  # tests per caller, each with a share of the operations
MAX_EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 5}
# Invalid input is refused before the caller's role matters, so one caller sends it.
MODES = {
    "admin": (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    "buyer": (GenerationMode.POSITIVE,),
}

# A schema-valid request may still break a rule the document cannot express (a currency code
# that is not ISO 4217, a ship_by in the past, a schedule that does not sum to the total, an
# If-Match naming another version): DESIGN section 4 answers those 422 and 412. Every other
# check runs with its defaults.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "412", "422"]
            }
        }
    }
)


@dataclass
class Seed:
    """A fresh database with a small cast and orders in several states."""

    url: str
    keys: dict[str, str]  # caller -> secret
    ids: dict[str, list[str]]  # path parameter name -> real ids


async def _seed(api: Api) -> tuple[dict[str, str], dict[str, list[str]]]:
    buyer = await api.register("buyer")
    supplier = await api.register("supplier", trade_assurance=True)
    buyer_key = await api.party_key(buyer["id"])
    supplier_auth = auth(await api.party_key(supplier["id"]))
    payments = auth(await api.role_key("payments"))
    spare = await api.client.post(f"/v1/parties/{supplier['id']}/api-keys", headers=api.admin)
    assert spare.status_code == 201, spare.text
    steps: list[tuple[str, dict[str, str], Any]] = [
        ("accept", supplier_auth, None),
        ("payments", payments, {"amount": 1_005_000, "method": "card", "provider_ref": "p"}),
        ("ship", supplier_auth, {"carrier": "DHL", "tracking_number": "1Z"}),
        ("dispute", auth(buyer_key), {"reason": "quality", "requested_refund": 1_000}),
    ]
    orders = []
    for count in range(len(steps) + 1):  # placed, accepted, held, shipped, disputed
        body = order_terms(supplier["id"], payment_schedule=None)
        placed = await api.client.post("/v1/orders", json=body, headers=auth(buyer_key))
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        for path, headers, step_body in steps[:count]:
            done = await api.client.post(
                f"/v1/orders/{order_id}/{path}", json=step_body, headers=headers
            )
            assert done.status_code == 200, done.text
        orders.append(order_id)
    # Money out: a payment to the placed order is refunded whole; a completed order's
    # release makes a payout.
    refunded = await api.client.post(
        f"/v1/orders/{orders[0]}/payments",
        json={"amount": 1_000, "method": "card", "provider_ref": "early"},
        headers=payments,
    )
    assert refunded.status_code == 200, refunded.text
    done = orders[3]  # shipped
    for path, headers, step_body in (
        ("deliver", supplier_auth, None),
        ("confirm-receipt", auth(buyer_key), None),
    ):
        answer = await api.client.post(f"/v1/orders/{done}/{path}", json=step_body, headers=headers)
        assert answer.status_code == 200, answer.text
    # The buyer's answer omits payouts: read them as payments.
    completed = await api.client.get(f"/v1/orders/{done}", headers=payments)
    keys = {"admin": ADMIN_KEY, "buyer": buyer_key}
    ids = {
        "order_id": orders,
        "party_id": [buyer["id"], supplier["id"]],
        "key_id": [spare.json()["id"]],  # never a key the test acts with
        "payout_id": [p["id"] for p in completed.json()["payouts"]],
        "refund_id": [r["id"] for r in refunded.json()["refunds"]],
    }
    return keys, ids


@pytest.fixture(scope="module")
async def databases(
    postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, TestDatabases]]:
    """Both backends at once (the session's ``test_databases`` is one backend per test);
    without a PostgreSQL server the test is skipped, and on CI it fails (``postgres_admin_url``)."""
    made: dict[str, TestDatabases] = {
        "sqlite": SqliteDatabases(tmp_path_factory.mktemp("schemathesis")),
        "postgresql": PostgresDatabases(admin_url=sa.make_url(postgres_admin_url)),
    }
    try:
        yield made
    finally:
        for factory in made.values():
            await factory.close()


@pytest.fixture
async def seeds(databases: dict[str, TestDatabases]) -> AsyncIterator[dict[str, Seed]]:
    """A fresh seeded database on each backend, dropped after the test."""
    urls: dict[str, str] = {}
    seeded: dict[str, Seed] = {}
    try:
        for backend in BACKENDS:
            url = urls[backend] = await databases[backend].create_migrated()
            async with running_api(settings_for(url)) as api:
                keys, ids = await _seed(api)
            seeded[backend] = Seed(url, keys, ids)
        # The same seeding on each: an index into an id list names the same order on both.
        assert len({tuple(map(len, seed.ids.values())) for seed in seeded.values()}) == 1
        yield seeded
    finally:
        for backend, url in urls.items():
            await databases[backend].drop(url)


def strict(document: dict[str, Any]) -> dict[str, Any]:
    """The document with ``additionalProperties: false`` on every object schema that lists
    its properties and says nothing of others."""
    strict_document = copy.deepcopy(document)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(strict_document["components"]["schemas"])
    return strict_document


@dataclass
class Target:
    """The strict document's operations, and the app of each backend to send them to."""

    schema: Any
    apps: dict[str, Any]


@pytest.fixture
def target(seeds: dict[str, Seed]) -> Iterator[Target]:
    """The served document, made strict, and an app per backend that schemathesis runs
    (lifespan included) on its own event loop."""
    apps = {backend: create_app(settings_for(seed.url)) for backend, seed in seeds.items()}
    served = schemathesis.openapi.from_asgi("/openapi.json", apps["sqlite"])
    schema = schemathesis.openapi.from_dict(strict(served.raw_schema), config=CONFIG)
    schema.app = apps["sqlite"]
    try:
        yield Target(schema, apps)
    finally:
        asgi.shutdown_lifespans()


Statuses = dict[str, dict[str, set[int]]]  # backend -> operation label -> status codes seen


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("caller", ["admin", "buyer"])
def test_every_operation_conforms_to_the_document(
    target: Target, seeds: dict[str, Seed], caller: str, part: int
) -> None:
    headers = {
        backend: {"Authorization": f"Bearer {seed.keys[caller]}"} for backend, seed in seeds.items()
    }
    failures: list[str] = []
    statuses: Statuses = {backend: {} for backend in BACKENDS}
    operations = sorted(
        (result.ok() for result in target.schema.get_all_operations()), key=lambda o: o.label
    )
    assert len(operations) >= 25
    mine = operations[part::PARTS]
    for operation in mine:
        for backend in BACKENDS:
            try:
                _on_real_data(
                    operation,
                    target.schema.raw_schema,
                    headers[backend],
                    seeds[backend],
                    statuses[backend],
                    target.apps[backend],
                )
            except (Exception, BaseExceptionGroup) as error:
                failures.append(f"{operation.label} [documented example, {backend}]: {error}")
        takes_input = any(
            len(group) for group in (operation.path_parameters, operation.query, operation.body)
        ) or any(p.name != "Authorization" for p in operation.headers)
        # An operation without input has no invalid request to make.
        modes = MODES[caller] if takes_input else (GenerationMode.POSITIVE,)
        for mode in modes:
            try:
                _exercise(operation, mode, headers, seeds, statuses, target.apps)
            except (Exception, BaseExceptionGroup) as error:
                failures.append(f"{operation.label} [{mode.value}]: {error}")
    assert not failures, "\n\n".join(failures)
    # The run reached past authorization and lookup into the domain, on each backend.
    reached = {"GET /v1/orders/{order_id}", "GET /v1/orders/{order_id}/events"}
    if caller == "buyer":
        reached.add("POST /v1/orders/{order_id}/messages")
    for backend in BACKENDS:
        successes = {
            label for label, seen in statuses[backend].items() if any(s < 300 for s in seen)
        }
        assert reached & {o.label for o in mine} <= successes, backend


def _documented_body(document: dict[str, Any], operation: Any) -> Any:
    """The first example of the operation's request body, or NOT_SET without one."""
    raw = operation.definition.raw.get("requestBody")
    if raw is None:
        return NOT_SET
    schema = raw["content"]["application/json"]["schema"]
    ref = next((v["$ref"] for v in schema.get("anyOf", [schema]) if "$ref" in v), None)
    examples = (
        document["components"]["schemas"][ref.rsplit("/", 1)[1]].get("examples") if ref else None
    )
    return examples[0] if examples else NOT_SET


def _on_real_data(
    operation: Any,
    document: dict[str, Any],
    headers: dict[str, str],
    seed: Seed,
    statuses: dict[str, set[int]],
    app: Any,
) -> None:
    """The operation's documented example on each real id, so every success shape is seen
    (an order in each seeded state, with and without a dispute)."""
    names = [parameter.name for parameter in operation.path_parameters]
    if not names or not all(name in seed.ids for name in names):
        return
    body = _documented_body(document, operation)
    for real in seed.ids[names[0]]:
        case = operation.Case(path_parameters={names[0]: real}, body=body)
        if body is not NOT_SET:
            case.media_type = "application/json"
        response = case.call_and_validate(headers=headers, app=app)
        statuses.setdefault(operation.label, set()).add(response.status_code)


def _exercise(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, dict[str, str]],
    seeds: dict[str, Seed],
    statuses: Statuses,
    apps: dict[str, Any],
) -> None:
    """Generated requests, each sent to every backend's app."""
    real_ids = {  # an index into the seeded ids, the same order on every backend
        parameter.name: st.sampled_from(range(len(seeds[BACKENDS[0]].ids[parameter.name])))
        for parameter in operation.path_parameters
        if parameter.name in seeds[BACKENDS[0]].ids
    }

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        aimed: dict[str, int] = {}
        if mode.is_positive and data.draw(st.booleans(), label="aim at real data"):
            aimed = {name: data.draw(ids, label=name) for name, ids in real_ids.items()}
            # Only an agent may send Escrow-On-Behalf-Of, and a generated If-Match names no
            # version: either would stop the request before the command.
            for header in ("Escrow-On-Behalf-Of", "If-Match"):
                (case.headers or {}).pop(header, None)
        for backend in BACKENDS:
            for name, index in aimed.items():
                case.path_parameters[name] = seeds[backend].ids[name][index]
            try:
                response = case.call_and_validate(headers=headers[backend], app=apps[backend])
            except (Exception, BaseExceptionGroup) as error:
                raise AssertionError(f"on {backend}: {error}") from error
            statuses[backend].setdefault(operation.label, set()).add(response.status_code)

    run()
