from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import make_mocked_request

from web.auth.websocket import QueryTokenRedactor, origin_allowed, websocket_token


@pytest.mark.parametrize(
    ("path", "protocol", "expected"),
    [
        ("/ws/x?token=abc", None, ("abc", False)),
        ("/ws/x", "bearer, abc", ("abc", True)),
        ("/ws/x", "Bearer,abc", ("abc", True)),
        ("/ws/x?token=q", "bearer, abc", ("abc", True)),
        ("/ws/x", "chat, abc", (None, False)),
        ("/ws/x", "bearer", (None, False)),
        ("/ws/x?token=", None, (None, False)),
    ],
)
def test_the_token_comes_from_the_subprotocol_or_the_query(
    path: str, protocol: str | None, expected: tuple[str | None, bool]
) -> None:
    headers = {} if protocol is None else {"Sec-WebSocket-Protocol": protocol}
    assert websocket_token(make_mocked_request("GET", path, headers=headers)) == expected


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        (None, (), True),
        ("https://app.example", (), False),
        ("https://app.example", ("https://app.example/",), True),
        ("https://app.example/", ("https://app.example",), True),
        ("https://app.example.evil", ("https://app.example",), False),
        ("https://anything", ("*",), True),
        ("http://server.local:8080", (), True),
    ],
)
def test_origins(origin: str | None, allowed: tuple[str, ...], expected: bool) -> None:
    headers = {"Host": "server.local:8080"}
    if origin is not None:
        headers["Origin"] = origin
    request = make_mocked_request("GET", "/ws/x", headers=headers)

    assert origin_allowed(request, allowed) is expected


def test_access_log_lines_lose_their_query_tokens() -> None:
    record = logging.LogRecord(
        "aiohttp.access",
        logging.INFO,
        __file__,
        1,
        '"GET /ws/r/1?x=1&token=aaa.bbb.ccc HTTP/1.1" 101',
        None,
        None,
    )
    record.first_request_line = "GET /ws/r/1?token=aaa.bbb.ccc&y=2 HTTP/1.1"

    assert QueryTokenRedactor().filter(record)
    assert record.getMessage() == '"GET /ws/r/1?x=1&token=*** HTTP/1.1" 101'
    assert record.first_request_line == "GET /ws/r/1?token=***&y=2 HTTP/1.1"
