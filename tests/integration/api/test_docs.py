"""/docs works with no internet: the page references only this server, and all of it answers."""

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest

from escrow_api.app import create_app
from escrow_core.settings import Settings


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # /docs, its assets and /openapi.json need no database, so no lifespan runs.
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://escrow.test") as client:
        yield client


async def test_docs_reference_only_local_urls_and_each_answers(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for remote in ("http://", "https://", "//cdn"):
        assert remote not in html
    parser = _References()
    parser.feed(html)
    document_urls = re.findall(r"url: '([^']+)'", html)
    assert document_urls == ["/openapi.json"]
    urls = parser.urls + document_urls
    assert len(urls) >= 4  # script, style, icon, document
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        answer = await client.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url
    assert '"validatorUrl": null' in html  # no badge from validator.swagger.io


async def test_docs_assets_have_their_content_types(client: httpx.AsyncClient) -> None:
    expected = {
        "/docs/assets/swagger-ui-bundle.js": "javascript",
        "/docs/assets/swagger-ui.css": "text/css",
        "/docs/assets/favicon-32x32.png": "image/png",
    }
    for url, content_type in expected.items():
        answer = await client.get(url)
        assert answer.status_code == 200
        assert content_type in answer.headers["content-type"], url
    missing = await client.get("/docs/assets/nothing-here.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
