"""The load generator's minimal HTTP/1.1 response parsing."""

from __future__ import annotations

import pytest

from loadtest.client import _parse_response, post_request

ACCEPTED = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
    b'Content-Length: 17\r\n\r\n{"command_id":1}\n'
)


def test_a_response_is_parsed_only_once_it_is_complete() -> None:
    for cut in (10, ACCEPTED.index(b"\r\n\r\n") + 2, len(ACCEPTED) - 1):
        assert _parse_response(bytearray(ACCEPTED[:cut])) is None
    assert _parse_response(bytearray(ACCEPTED)) == (202, b'{"command_id":1}\n', len(ACCEPTED))


def test_back_to_back_responses_are_taken_one_at_a_time() -> None:
    throttled = b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n"
    buffer = bytearray(ACCEPTED + throttled)
    status, _, used = _parse_response(buffer) or (0, b"", 0)
    assert status == 202
    del buffer[:used]
    assert _parse_response(buffer) == (429, b"", len(throttled))


def test_chunked_responses_are_refused_loudly() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    with pytest.raises(ValueError, match="chunked"):
        _parse_response(bytearray(chunked))


def test_a_post_request_carries_its_length_and_token() -> None:
    request = post_request("127.0.0.1:8080", "/api/v1/commands", "t0ken", b'{"a":1}')
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /api/v1/commands HTTP/1.1\r\n")
    assert b"Authorization: Bearer t0ken" in head
    assert b"Content-Length: 7" in head
    assert body == b'{"a":1}'
