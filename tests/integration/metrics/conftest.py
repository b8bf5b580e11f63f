"""Reading /metrics: every sample by name and labels, and a wait for a condition on them."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample's value, or None when /metrics does not show it."""
    return samples.get((name, frozenset(labels.items())))


async def scrape(client: httpx.AsyncClient, url: str = "/metrics") -> Samples:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def eventually(
    read: Callable[[], Awaitable[Samples]],
    condition: Callable[[Samples], bool],
    *,
    within: float = 30.0,
    what: str = "",
) -> Samples:
    """Scrape until ``condition`` holds; the last scrape is in the failure message."""
    deadline = time.monotonic() + within
    while True:
        samples = await read()
        if condition(samples):
            return samples
        if time.monotonic() > deadline:
            shown = {k: v for k, v in samples.items() if k[0].startswith("escrow_")}
            raise AssertionError(f"{what or 'condition'} not met in {within} s: {shown}")
        await asyncio.sleep(0.05)


def at_least(samples: Samples, name: str, minimum: float, **labels: Any) -> bool:
    found = value(samples, name, **labels)
    return found is not None and found >= minimum
