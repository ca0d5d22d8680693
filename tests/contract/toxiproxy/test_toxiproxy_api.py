"""Contract of the emulated Toxiproxy HTTP API, through toxiproxy-python and raw HTTP.

Expected shapes, messages and status codes are the real Toxiproxy 2.x server's (its api.go and
README), so a suite written against the real server passes against the emulator.
"""

from __future__ import annotations

import socket

import httpx
import pytest
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.server import Toxiproxy
from toxiproxy_helpers import EchoServer, connect, port_of, refused, roundtrip

from catalyst_sim.backends.embedded.toxiproxy import TOXIPROXY_VERSION, EmbeddedToxiproxy
from catalyst_sim.serving import free_port

ERROR_CONTENT_TYPE = "text/plain; charset=utf-8"


def create(api: httpx.Client, name: str, upstream: str, **extra: object) -> dict:
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream,
                                          **extra})
    assert response.status_code == 201, response.text
    return response.json()


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": message, "status": status}
    assert response.headers["content-type"] == ERROR_CONTENT_TYPE
    assert response.text.endswith("\n")


# --- toxiproxy-python ----------------------------------------------------------------------------


def test_version_and_running_via_client(client: Toxiproxy) -> None:
    assert client.running() is True
    assert client.version() == f'{{"version": "{TOXIPROXY_VERSION}"}}\n'.encode()


def test_proxy_lifecycle_via_client(client: Toxiproxy, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="echo")
    assert proxy.name == "echo" and proxy.upstream == echo.address and proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:") and port_of(proxy.listen) != 0  # port 0 → real port

    listed = client.proxies()
    assert list(listed) == ["echo"] and listed["echo"].listen == proxy.listen
    assert client.get_proxy("echo").upstream == echo.address
    assert client.get_proxy("missing") is None
    with connect(proxy.listen) as sock:
        roundtrip(sock, b"hello")

    with pytest.raises(ProxyExists):  # the client checks the list itself before POSTing
        client.create(upstream=echo.address, name="echo")

    assert client.destroy(proxy) is True
    assert client.proxies() == {}
    assert refused(proxy.listen)
    with pytest.raises(NotFound):
        proxy.destroy()


def test_enable_disable_and_down_via_client(client: Toxiproxy, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="flappy")
    proxy.disable()
    assert proxy.enabled is False and client.get_proxy("flappy").enabled is False
    assert refused(proxy.listen)
    proxy.enable()
    assert client.get_proxy("flappy").enabled is True
    with proxy.down():
        assert refused(proxy.listen)
    assert client.get_proxy("flappy").listen == proxy.listen  # back on the same port
    with connect(proxy.listen) as sock:
        roundtrip(sock, b"up again")


def test_toxics_via_client(client: Toxiproxy, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="toxic")
    proxy.add_toxic(type="latency", attributes={"latency": 100, "jitter": 10})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="slow_up", toxicity=0.5,
                    attributes={"rate": 64})

    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "slow_up"}
    latency = proxy.get_toxic("latency_downstream")
    assert (latency.type, latency.stream, latency.toxicity) == ("latency", "downstream", 1)
    assert latency.attributes == {"latency": 100, "jitter": 10}
    slow_up = toxics["slow_up"]
    assert (slow_up.stream, slow_up.toxicity, slow_up.attributes) == ("upstream", 0.5, {"rate": 64})

    with pytest.raises(ProxyExists):  # 409 from the server
        proxy.add_toxic(type="latency", attributes={"latency": 1})
    with pytest.raises(InvalidToxic):  # 400 from the server
        proxy.add_toxic(type="no_such_toxic")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", name="bad", attributes={"latency": "fast"})

    assert proxy.destroy_toxic("latency_downstream") is True
    assert set(proxy.toxics()) == {"slow_up"}
    assert proxy.get_toxic("latency_downstream") is None
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")


def test_reset_and_destroy_all_via_client(client: Toxiproxy, echo: EchoServer) -> None:
    first = client.create(upstream=echo.address, name="first")
    second = client.create(upstream=echo.address, name="second", enabled=False)
    assert second.enabled is False
    first.add_toxic(type="timeout", attributes={"timeout": 0})
    assert client.reset() is True
    proxies = client.proxies()
    assert all(p.enabled for p in proxies.values())
    assert first.toxics() == {} and second.toxics() == {}
    client.destroy_all()
    assert client.proxies() == {}


def test_populate_via_client(client: Toxiproxy, echo: EchoServer) -> None:
    listen = f"127.0.0.1:{free_port()}"
    created = client.populate([{"name": "pop", "listen": listen, "upstream": echo.address}])
    assert [p.listen for p in created] == [listen]
    assert client.populate([{"name": "pop", "listen": listen, "upstream": echo.address}]) == []


# --- raw HTTP: shapes and status codes --------------------------------------------------------------


def test_version_raw(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.text == f'{{"version": "{TOXIPROXY_VERSION}"}}\n'
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-toxiproxy-request-id"]


def test_create_shape_and_field_order(api: httpx.Client, echo: EchoServer) -> None:
    response = api.post("/proxies", json={"name": "db", "listen": "localhost:0", "upstream": echo.address})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert body["listen"].startswith("127.0.0.1:")  # hostnames resolve, like Go's listener address
    assert body["enabled"] is True and body["toxics"] == []
    assert api.get("/proxies/db").json() == body
    assert api.get("/proxies").json() == {"db": body}


def test_create_disabled_does_not_listen(api: httpx.Client, echo: EchoServer) -> None:
    listen = f"127.0.0.1:{free_port()}"
    body = api.post("/proxies", json={"name": "off", "listen": listen, "upstream": echo.address,
                                      "enabled": False}).json()
    assert body["enabled"] is False and body["listen"] == listen
    assert refused(listen)


def test_create_errors(api: httpx.Client, echo: EchoServer) -> None:
    assert_error(api.post("/proxies", json={"upstream": echo.address}), 400, "missing required field: name")
    assert_error(api.post("/proxies", json={"name": "x"}), 400, "missing required field: upstream")
    create(api, "dup", echo.address)
    assert_error(api.post("/proxies", json={"name": "dup", "upstream": echo.address}), 409,
                 "proxy already exists")
    bad = api.post("/proxies", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"].startswith("bad request body: ")
    assert_error(api.post("/proxies", content=b""), 400, "bad request body: EOF")
    wrong_type = api.post("/proxies", json={"name": "t", "upstream": echo.address, "enabled": "yes"})
    assert wrong_type.status_code == 400
    assert "cannot unmarshal string" in wrong_type.json()["error"]


def test_create_on_a_busy_port_is_500(api: httpx.Client, echo: EchoServer) -> None:
    taken = create(api, "first", echo.address)["listen"]
    assert_error(api.post("/proxies", json={"name": "second", "listen": taken, "upstream": echo.address}),
                 500, f"listen tcp {taken}: bind: address already in use")
    assert "second" not in api.get("/proxies").json()
    assert_error(api.post("/proxies", json={"name": "bad", "listen": "nonsense", "upstream": "x:1"}), 500,
                 "address nonsense: missing port in address")


def test_unknown_proxy_is_404(api: httpx.Client) -> None:
    for response in (
        api.get("/proxies/ghost"),
        api.post("/proxies/ghost", json={"enabled": False}),
        api.patch("/proxies/ghost", json={"enabled": False}),
        api.delete("/proxies/ghost"),
        api.get("/proxies/ghost/toxics"),
        api.post("/proxies/ghost/toxics", json={"type": "latency"}),
        api.get("/proxies/ghost/toxics/latency_downstream"),
        api.delete("/proxies/ghost/toxics/latency_downstream"),
    ):
        assert_error(response, 404, "proxy not found")


def test_update_proxy(api: httpx.Client, echo: EchoServer) -> None:
    other = EchoServer()
    try:
        body = create(api, "moving", echo.address)
        listen = body["listen"]
        with connect(listen) as live:
            roundtrip(live, b"before")
            updated = api.post("/proxies/moving", json={"upstream": other.address})
            assert updated.status_code == 200
            assert updated.json()["upstream"] == other.address and updated.json()["listen"] == listen
            assert live.recv(16) == b""  # changing upstream restarts the proxy, dropping connections
        with connect(listen) as sock:
            roundtrip(sock, b"after")
        assert other.received_bytes() == b"after"

        same = api.patch("/proxies/moving", json={"listen": listen, "name": "ignored"})
        assert same.json()["listen"] == listen and same.json()["name"] == "moving"

        moved = api.patch("/proxies/moving", json={"listen": "127.0.0.1:0"}).json()
        assert moved["listen"] != listen and refused(listen)
        assert_error(api.post("/proxies/moving", content=b"[]"), 400,
                     "bad request body: json: cannot unmarshal array into Go value of type toxiproxy.Proxy")
    finally:
        other.close()


def test_delete_proxy(api: httpx.Client, echo: EchoServer) -> None:
    listen = create(api, "gone", echo.address)["listen"]
    response = api.delete("/proxies/gone")
    assert response.status_code == 204 and response.content == b""
    assert refused(listen)
    assert api.get("/proxies").json() == {}


def test_toxic_defaults_shape_and_order(api: httpx.Client, echo: EchoServer) -> None:
    create(api, "shape", echo.address)
    response = api.post("/proxies/shape/toxics", json={"type": "bandwidth"})
    assert response.status_code == 200  # the real server answers 200, not 201, for toxics
    assert response.json() == {"attributes": {"rate": 0}, "name": "bandwidth_downstream",
                               "type": "bandwidth", "stream": "downstream", "toxicity": 1}
    assert list(response.json()) == ["attributes", "name", "type", "stream", "toxicity"]
    api.post("/proxies/shape/toxics", json={"type": "slicer", "stream": "upstream", "toxicity": 0.25})
    api.post("/proxies/shape/toxics", json={"type": "noop", "stream": "UpStream"})

    listed = api.get("/proxies/shape/toxics").json()
    assert [t["name"] for t in listed] == ["slicer_upstream", "noop_UpStream", "bandwidth_downstream"]
    assert listed[0]["attributes"] == {"average_size": 0, "size_variation": 0, "delay": 0}
    assert listed[0]["toxicity"] == 0.25
    assert api.get("/proxies/shape").json()["toxics"] == listed
    assert api.get("/proxies/shape/toxics/slicer_upstream").json() == listed[0]

    deleted = api.delete("/proxies/shape/toxics/slicer_upstream")
    assert deleted.status_code == 204 and deleted.content == b""


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "latency", "stream": "sideways"}, 400,
         "stream was invalid, can be either upstream or downstream"),
        ({"type": "nope", "stream": "sideways"}, 400,  # the stream is checked before the type
         "stream was invalid, can be either upstream or downstream"),
        ({"type": "nope"}, 400, "invalid toxic type"),
        ({"stream": "upstream"}, 400, "invalid toxic type"),
        ({"type": "latency", "name": "taken"}, 409, "toxic already exists"),
        ({"type": "bandwidth", "stream": "upstream", "name": "taken"}, 409, "toxic already exists"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, 400,
         "bad request body: json: cannot unmarshal number 1.5 into Go struct field "
         "LatencyToxic.attributes.latency of type int64"),
        ({"type": "latency", "attributes": {"jitter": "10"}}, 400,
         "bad request body: json: cannot unmarshal string into Go struct field "
         "LatencyToxic.attributes.jitter of type int64"),
        ({"type": "latency", "toxicity": "high"}, 400,
         "bad request body: json: cannot unmarshal string into Go struct field "
         "ToxicWrapper.toxicity of type float32"),
    ],
)
def test_toxic_create_errors(api: httpx.Client, echo: EchoServer, body: dict, status: int,
                             message: str) -> None:
    create(api, "errs", echo.address)
    api.post("/proxies/errs/toxics", json={"type": "latency", "name": "taken"})
    assert_error(api.post("/proxies/errs/toxics", json=body), status, message)
    assert [t["name"] for t in api.get("/proxies/errs/toxics").json()] == ["taken"]


def test_toxic_unknown_attributes_ignored_and_toxicity_unchecked(api: httpx.Client, echo: EchoServer) -> None:
    create(api, "lenient", echo.address)
    body = api.post("/proxies/lenient/toxics", json={"type": "latency", "toxicity": 3,
                                                      "attributes": {"latency": 5, "colour": "red"}}).json()
    assert body["attributes"] == {"latency": 5, "jitter": 0} and body["toxicity"] == 3


def test_toxic_update(api: httpx.Client, echo: EchoServer) -> None:
    create(api, "upd", echo.address)
    api.post("/proxies/upd/toxics", json={"type": "latency", "attributes": {"latency": 100, "jitter": 20}})
    response = api.post("/proxies/upd/toxics/latency_downstream", json={"attributes": {"latency": 50}})
    assert response.status_code == 200
    assert response.json()["attributes"] == {"latency": 50, "jitter": 20}  # partial update
    patched = api.patch("/proxies/upd/toxics/latency_downstream",
                        json={"toxicity": 0.5, "type": "bandwidth", "stream": "upstream", "name": "x"}).json()
    assert patched == {"attributes": {"latency": 50, "jitter": 20}, "name": "latency_downstream",
                       "type": "latency", "stream": "downstream", "toxicity": 0.5}
    bad = api.post("/proxies/upd/toxics/latency_downstream", json={"attributes": {"latency": "x"}})
    assert bad.status_code == 400
    assert api.get("/proxies/upd/toxics/latency_downstream").json() == patched  # all-or-nothing
    assert_error(api.post("/proxies/upd/toxics/ghost", json={}), 404, "toxic not found")
    assert_error(api.get("/proxies/upd/toxics/ghost"), 404, "toxic not found")
    assert_error(api.delete("/proxies/upd/toxics/ghost"), 404, "toxic not found")


def test_reset_raw(api: httpx.Client, echo: EchoServer) -> None:
    create(api, "r1", echo.address)
    create(api, "r2", echo.address)
    api.post("/proxies/r1/toxics", json={"type": "latency"})
    api.post("/proxies/r2", json={"enabled": False})
    response = api.post("/reset")
    assert response.status_code == 204 and response.content == b""
    for proxy in api.get("/proxies").json().values():
        assert proxy["enabled"] is True and proxy["toxics"] == []


def test_populate_raw(api: httpx.Client, echo: EchoServer) -> None:
    listen_a, listen_b = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    specs = [{"name": "a", "listen": listen_a, "upstream": echo.address},
             {"name": "b", "listen": listen_b, "upstream": echo.address, "enabled": False}]
    response = api.post("/populate", json=specs)
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [(p["name"], p["listen"], p["enabled"]) for p in proxies] == [("a", listen_a, True),
                                                                         ("b", listen_b, False)]
    api.post("/proxies/a/toxics", json={"type": "latency"})
    again = api.post("/populate", json=specs).json()["proxies"]  # unchanged → untouched
    assert again[0]["toxics"] and again[0]["listen"] == listen_a

    other = EchoServer()
    try:
        replaced = api.post("/populate", json=[{"name": "a", "listen": listen_a, "upstream": other.address}])
        assert replaced.json()["proxies"][0]["toxics"] == []  # a different upstream → a new proxy
        assert replaced.json()["proxies"][0]["upstream"] == other.address
    finally:
        other.close()

    assert api.post("/populate", json=[]).json() == {"proxies": None}


def test_populate_errors(api: httpx.Client, echo: EchoServer) -> None:
    invalid = api.post("/populate", json=[{"name": "ok", "upstream": echo.address}, {"upstream": "x:1"}])
    assert invalid.status_code == 400
    assert invalid.json() == {"error": "missing required field: name at proxy 2", "status": 400,
                              "proxies": None}
    assert api.get("/proxies").json() == {}  # checked before anything is created

    failing = api.post("/populate", json=[
        {"name": "one", "listen": "127.0.0.1:0", "upstream": echo.address},
        {"name": "two", "listen": "local373", "upstream": echo.address},
        {"name": "three", "listen": "127.0.0.1:0", "upstream": echo.address},
    ])
    assert failing.status_code == 500
    body = failing.json()
    assert list(body) == ["error", "status", "proxies"]
    assert body["status"] == 500 and [p["name"] for p in body["proxies"]] == ["one"]
    assert list(api.get("/proxies").json()) == ["one"]

    assert api.post("/populate", json={"name": "x"}).status_code == 400


def test_router_details(api: httpx.Client) -> None:
    missing = api.get("/nothing-here")
    assert missing.status_code == 404 and missing.text == "404 page not found\n"
    assert api.get("/proxies/").status_code == 404  # no slash redirect, as gorilla/mux
    assert api.put("/proxies").status_code == 405
    assert api.get("/reset").status_code == 405
    browser = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert browser.status_code == 403 and browser.text == "User agent not allowed\n"


def test_two_servers_are_independent(echo: EchoServer) -> None:
    with EmbeddedToxiproxy(seed=1) as one, EmbeddedToxiproxy(seed=1) as two:
        assert one.port != two.port
        with httpx.Client(base_url=one.url) as api_one, httpx.Client(base_url=two.url) as api_two:
            create(api_one, "same-name", echo.address)
            create(api_two, "same-name", echo.address)
            assert api_one.get("/proxies").json()["same-name"]["listen"] != \
                api_two.get("/proxies").json()["same-name"]["listen"]


def test_listen_on_ipv6_loopback(api: httpx.Client, echo: EchoServer) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    response = api.post("/proxies", json={"name": "v6", "listen": "[::1]:0", "upstream": echo.address})
    if response.status_code == 500:
        pytest.skip(f"IPv6 loopback unavailable: {response.json()['error']}")
    listen = response.json()["listen"]
    assert listen.startswith("[::1]:")
    with socket.create_connection(("::1", port_of(listen)), timeout=5) as sock:
        roundtrip(sock, b"six")
