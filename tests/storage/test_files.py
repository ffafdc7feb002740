"""parse_json reads the data files by orjson where that gives json.loads's answer; json.loads is the oracle."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets.storage.files import parse_json

scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70) | st.floats()
           | st.text() | st.sampled_from(["\ud800", "\udfff", "😀", "\x00", "é"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                                         max_size=4), max_leaves=20)


def same(a, b) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 == True in Python; NaN equals nothing)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or math.isnan(a) and math.isnan(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    return a == b


@settings(max_examples=1000, deadline=None)
@given(values, st.booleans())
def test_the_same_answer_as_json(value, ascii_only):
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(raw)
    except ValueError as error:
        with pytest.raises(type(error)):
            parse_json(raw)
        return
    assert same(parse_json(raw), expected)


@pytest.mark.parametrize("raw", [
    b"9223372036854775807", b"-9223372036854775808", b"18446744073709551616", b"-18446744073709551617",
    b"123456789012345678901234567890", b"0.12345678901234567890123", b"1e309", b"-1e309", b"NaN", b"-Infinity",
    b'"\\ud800"', b"\xef\xbb\xbf{}", b"-0", b"-0.0", b'{"a":1,"a":2}', b'{"a":[1,{"b":null}]}',
])
def test_what_orjson_reads_otherwise_goes_to_json(raw):
    assert same(parse_json(raw), json.loads(raw))


@pytest.mark.parametrize("raw", [b"", b"{", b'"a\x01b"', b"[1,]", b"01", b"\xff", b"{}x"])
def test_what_neither_reads_is_refused_as_json_refuses_it(raw):
    with pytest.raises(ValueError) as refused:
        json.loads(raw)
    with pytest.raises(type(refused.value)):
        parse_json(raw)
