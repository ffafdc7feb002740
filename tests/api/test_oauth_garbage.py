"""Garbage and binary bytes in every header and parameter of the OAuth endpoints: never a 500 (SPEC section 5)."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote_from_bytes

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ENDPOINTS = ["/security/oauth/token", "/security/oauth/introspect", "/security/oauth/revoke"]
FIELDS = ["grant_type", "ticket", "scope", "client_id", "client_secret", "token", "token_type_hint"]
HEADERS = ["Authorization", "Content-Type", "X-Forwarded-For", "X-Forwarded-Proto", "X-Request-ID", "Cookie",
           "Accept", "Content-Encoding", "If-Match"]
# Header values as a server receives them: any byte but the line breaks that end a header, read as latin-1.
header_value = st.binary(max_size=80).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"").decode("latin-1"))
basic = st.binary(max_size=60).map(lambda raw: "Basic " + base64.b64encode(raw).decode())
bearer = st.binary(max_size=60).map(lambda raw: "Bearer " + raw.decode("latin-1").replace("\r", "").replace("\n", ""))
form = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.binary(max_size=12)),
    st.one_of(st.binary(max_size=60), st.sampled_from([b"client_credentials", b"ticket", b"", b"\xff\xfe"])),
    max_size=6,
)


def encoded(fields: dict) -> bytes:
    """A form body of raw bytes, percent-encoded as a client would (or not: some values stay raw)."""
    parts = []
    for key, value in fields.items():
        key = key.encode() if isinstance(key, str) else key
        parts.append(quote_from_bytes(key) + "=" + quote_from_bytes(value))
    return "&".join(parts).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    fields=form,
    raw_body=st.one_of(st.none(), st.binary(max_size=120)),
    query=st.binary(max_size=60),
    headers=st.dictionaries(st.sampled_from(HEADERS), header_value, max_size=4),
    authorization=st.one_of(st.none(), basic, bearer, header_value),
)
def test_no_input_makes_an_oauth_endpoint_fail(test_client, endpoint, fields, raw_body, query, headers, authorization):
    """Whatever the bytes, the answer is a 4xx (or 200) with a JSON body (revocation's 200 is empty)."""
    if authorization is not None:
        headers = {**headers, "Authorization": authorization}
    headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    response = test_client.post(
        f"{endpoint}?{quote_from_bytes(query)}", data=raw_body if raw_body is not None else encoded(fields),
        headers=headers,
    )
    assert response.status_code < 500, (response.status_code, response.data[:300])
    if response.data:
        json.loads(response.data)
