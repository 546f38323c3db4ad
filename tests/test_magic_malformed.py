"""A malformed magic input (``veomock:`` with nothing or something wrong after it) is refused with
the provider's own 400, saying what to fix; the request changes nothing."""

from __future__ import annotations

import httpx
import pytest
from veomock.mocks import MockState
from veomock.mocks.failures import magic_key

from tests.conftest import PROVIDERS
from tests.faulty import PROMPT, load, submit_parts

pytestmark = pytest.mark.anyio

MALFORMED = {
    "": "a magic input names an action",
    ",,": "a magic input names an action",
    "=x": "unknown magic directive",
    "on=status": "a magic input names an action",
    "times=0": "times must be a whole number of at least 1",
    "error=internal,times=many": "times must be a whole number",
    "queued=soon": "queued",
}


# In a key, ``veomock-`` only counts when a directive's name follows it (``sk-veomock-x`` is a key).
CASES = [("prompt", d) for d in MALFORMED] + [("key", d) for d in MALFORMED if d.split("=")[0].isalpha()]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("where", "directive"), CASES, ids=[f"{w}:{d!r}" for w, d in CASES])
async def test_a_malformed_magic_input_is_the_providers_400(
    asgi_client: httpx.AsyncClient, state: MockState, provider: str, where: str, directive: str
) -> None:
    contract = load(provider)
    if where == "prompt":
        parts = submit_parts(contract, f"{PROMPT} veomock:{directive}")
    else:
        parts = submit_parts(contract, key=magic_key(contract, directive))
    answer = await asgi_client.request(**parts)
    invalid = contract.errors["invalid_request"]
    assert answer.status_code == invalid.status, answer.text
    envelope = invalid.body.render({"retry_after": 1, "message": "m"})
    assert isinstance(envelope, dict) and set(answer.json()) == set(envelope)
    said = answer.text + " ".join(answer.headers.values())
    assert MALFORMED[directive] in said and f"magic {where}" in said, said
    assert not state.jobs, "a refused request creates no job"
