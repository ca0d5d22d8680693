"""The pure parts of the emulator: validation rules and the slicer's arithmetic."""

from __future__ import annotations

import itertools
import random

import pytest

from catalyst_sim.backends.embedded.toxiproxy.proxy import slice_bounds
from catalyst_sim.backends.embedded.toxiproxy.state import (
    Proxy,
    Toxic,
    ToxiproxyError,
    parse_populate,
    parse_proxy_update,
    parse_toxic,
    split_host_port,
)


@pytest.mark.parametrize(("length", "average", "variation"),
                         [(1, 10, 0), (64, 8, 2), (32768, 100, 50), (1000, 0, 0), (500, 1, 400)])
def test_slice_bounds_cover_the_chunk(length: int, average: int, variation: int) -> None:
    pieces = slice_bounds(length, average, variation, random.Random(1))
    assert pieces[0][0] == 0 and pieces[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert all(end > start for start, end in pieces)


def test_slice_bounds_sizes_and_determinism() -> None:
    pieces = slice_bounds(4096, 64, 16, random.Random(5))
    assert all(end - start <= 64 + 16 for start, end in pieces)
    assert pieces == slice_bounds(4096, 64, 16, random.Random(5))
    assert pieces != slice_bounds(4096, 64, 16, random.Random(6))


def test_toxic_defaults_follow_the_real_server() -> None:
    toxic = parse_toxic({"type": "latency", "stream": "UpStream", "attributes": None}, [])
    assert (toxic.name, toxic.direction, toxic.toxicity) == ("latency_UpStream", "upstream", 1.0)
    assert toxic.attributes == {"latency": 0, "jitter": 0}
    assert parse_toxic({"Type": "noop"}, []).to_json() == {
        "attributes": {}, "name": "noop_downstream", "type": "noop", "stream": "downstream", "toxicity": 1}


def test_toxic_body_must_be_an_object() -> None:
    with pytest.raises(ToxiproxyError) as caught:
        parse_toxic(["latency"], [])
    assert caught.value.status == 400
    assert caught.value.message.startswith("bad request body: json: cannot unmarshal array")


def test_toxic_update_is_all_or_nothing() -> None:
    toxic = Toxic("t", "slicer", "downstream", 1.0, {"average_size": 1, "size_variation": 0, "delay": 0})
    with pytest.raises(ToxiproxyError):
        toxic.apply_update({"attributes": {"average_size": 5}, "toxicity": "x"})
    assert toxic.attributes["average_size"] == 1 and toxic.toxicity == 1.0
    toxic.apply_update({"attributes": {"delay": 10}, "toxicity": 0})
    assert toxic.attributes == {"average_size": 1, "size_variation": 0, "delay": 10} and toxic.toxicity == 0


def test_proxy_update_defaults_to_current_values() -> None:
    current = Proxy("p", "127.0.0.1:1234", "up:1", enabled=True)
    assert parse_proxy_update({}, current) == ("127.0.0.1:1234", "up:1", True)
    disabled = parse_proxy_update({"enabled": False, "listen": None}, current)
    assert disabled == ("127.0.0.1:1234", "up:1", False)


def test_populate_defaults_enabled_and_numbers_errors() -> None:
    (spec,) = parse_populate([{"name": "a", "upstream": "u:1"}])
    assert spec.enabled is True and spec.listen == ""
    with pytest.raises(ToxiproxyError, match="missing required field: upstream at proxy 2"):
        parse_populate([{"name": "a", "upstream": "u:1"}, {"name": "b"}])


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:80", ("::1", 80)), (":8474", ("", 8474)),
     ("localhost:http", ("localhost", 80))],
)
def test_split_host_port(address: str, expected: tuple[str, int]) -> None:
    assert split_host_port(address) == expected


@pytest.mark.parametrize(
    ("address", "message"),
    [("nonsense", "address nonsense: missing port in address"),
     ("::1:80", "address ::1:80: too many colons in address"),
     ("127.0.0.1:70000", "address 127.0.0.1:70000: invalid port")],
)
def test_split_host_port_errors_are_500(address: str, message: str) -> None:
    with pytest.raises(ToxiproxyError) as caught:
        split_host_port(address)
    assert (caught.value.status, caught.value.message) == (500, message)
