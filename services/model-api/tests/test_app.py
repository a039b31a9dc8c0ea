"""The app in process (no server): request limits, each refusal naming what is wrong."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from soil_model_api.app import create_app
from soil_model_api.config import Settings
from soil_model_api.model_dir import load_from_dir


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_from_dir(model_dir)


def test_body_above_the_byte_limit_is_413_before_parsing(loaded, benchmark):
    app = create_app(Settings(model_dir=loaded.info.source, max_body_bytes=4096), model=loaded)
    body = json.dumps({"spectra": benchmark.spectra[:1].tolist()})

    async def post():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            return await client.post("/v1/predict", content=body, headers={"Content-Type": "application/json"})

    resp = asyncio.run(post())

    assert len(body) > 4096
    assert resp.status_code == 413
    assert "MODEL_API_MAX_BODY_BYTES" in resp.json()["detail"][0]["msg"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_assets_from_the_service_only(loaded, page):
    """Swagger UI and ReDoc work offline: every URL in the page is local and served."""
    import re

    app = create_app(Settings(model_dir=loaded.info.source), model=loaded)

    async def fetch():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            html = (await client.get(page)).text
            urls = re.findall(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""", html)
            local = sorted({a or b for a, b in urls})
            answers = {url: await client.get(url) for url in local}
            return html, local, answers

    html, local, answers = asyncio.run(fetch())

    assert not re.search(r"https?://", html), re.findall(r"https?://[^\s\"']+", html)
    assert any(url.endswith(".js") for url in local) and "/openapi.json" in local
    for url, resp in answers.items():
        assert resp.status_code == 200, url
        assert len(resp.content) > (100_000 if url.endswith(".js") else 0), url
