"""Interop: the real python-socketio client against the `conformance` contract server.

The server is started the same way as in tests/node/harness.mjs:
  INTEROP_IMPL=node -> node <repo>/benches/node/conformance.mjs   (npm socket.io reference)
  otherwise         -> ${CARGO_TARGET_DIR:-<repo>/target}/debug/examples/conformance
It must print `listening on 127.0.0.1:<port>` as its first stdout line (PORT=0).

Each scenario runs over polling only and websocket only, and with each packet format:
the default JSON parser, and msgpack (the server started with PARSER=msgpack, the client
with serializer="msgpack", python-socketio's socket.io-msgpack-parser counterpart, which
needs PyPI msgpack). Scenarios: connect, auth echo (with and without auth), message ->
message-back round trip, acks (`call`), bytes in events and acks, a server -> client ack
(please-ack / server-ack / server-ack-result), rooms and broadcasts, a second namespace,
an unknown namespace refused.

Run from the repo root: INTEROP_IMPL=node python -m pytest -q tests/python
"""

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import socketio

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = float(os.environ.get("INTEROP_STARTUP_TIMEOUT_MS", "15000")) / 1000
T = 5.0  # bound for any single wait
LISTENING_RE = re.compile(r"^listening on 127\.0\.0\.1:(\d+)$")
TRANSPORTS = ["polling", "websocket"]
# packet format -> (the server's PARSER, python-socketio's serializer)
PARSERS = {"json": ("json", "default"), "msgpack": ("msgpack", "msgpack")}


def server_command(name):
    if os.environ.get("INTEROP_IMPL") == "node":
        script = REPO / "benches" / "node" / f"{name}.mjs"
        return ["node", str(script)], script.parent
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    binary = target / "debug" / "examples" / name
    if not binary.exists():
        pytest.fail(f"{binary} not found: build it with `cargo build --examples` (or set INTEROP_IMPL=node)")
    return [str(binary)], REPO


def _die_with_parent():
    """Linux: have the kernel SIGKILL the server if this test process dies without teardown."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - best effort only
        pass


class Server:
    """One spawned contract server (or `cmd` in `cwd`, named `name`); stop() sends SIGTERM to its
    PID and waits (SIGKILL after 5 s)."""

    def __init__(self, name, env=None, cmd=None, cwd=None):
        if cmd is None:
            cmd, cwd = server_command(name)
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env={**os.environ, "HOST": "127.0.0.1", "PORT": "0", **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        first_line = queue.Queue()

        def pump():
            # First line goes to the queue; everything after is drained and dropped.
            first_line.put(self.proc.stdout.readline())
            for _ in self.proc.stdout:
                pass

        threading.Thread(target=pump, daemon=True).start()
        try:
            line = first_line.get(timeout=STARTUP_TIMEOUT).decode("utf-8", "replace").rstrip("\r\n")
        except queue.Empty:
            self.stop()
            pytest.fail(f"{name}: no 'listening on' line within {STARTUP_TIMEOUT} s{self._stderr_tail()}")
        match = LISTENING_RE.match(line)
        if not match:
            self.stop()
            pytest.fail(f"{name}: bad first stdout line {line!r}{self._stderr_tail()}")
        self.port = int(match.group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def _stderr_tail(self):
        self.stderr.seek(0)
        tail = self.stderr.read()[-8192:].decode("utf-8", "replace")
        return f"\n--- stderr ---\n{tail}" if tail else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.stderr.close()


@pytest.fixture(scope="module", params=list(PARSERS))
def server(request):
    parser, serializer = PARSERS[request.param]
    srv = Server("conformance", env={"PARSER": parser})
    srv.serializer = serializer
    try:
        yield srv
    finally:
        srv.stop()


class Events:
    """Queues the arguments of selected events so tests can wait for them with a timeout."""

    def __init__(self, sio, *names):
        self.queues = {name: queue.Queue() for name in names}
        for name in names:
            sio.on(name, handler=self._handler(name))

    def _handler(self, name):
        def handle(*args):
            self.queues[name].put(args)

        return handle

    def get(self, name, timeout=T):
        try:
            return self.queues[name].get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"timed out after {timeout} s waiting for {name!r}")


@pytest.fixture
def connect(server):
    """connect(transport, auth=None) -> (client, events); every client is disconnected at teardown."""
    clients = []

    def _connect(transport, auth=None, extra_events=(), namespaces=None):
        sio = socketio.Client(reconnection=False, serializer=server.serializer)
        clients.append(sio)
        events = Events(sio, "auth", "message-back", "server-ack-result", *extra_events)
        sio.connect(
            server.url,
            transports=[transport],
            socketio_path="socket.io",
            auth=auth,
            namespaces=namespaces,
            wait_timeout=T,
        )
        assert sio.connected
        assert sio.transport() == transport
        return sio, events

    yield _connect
    for sio in clients:
        sio.disconnect()


MIXED = (
    "hello",
    "ünïcödé 日本語 🚀👩‍👩‍👧",
    {"nested": {"list": [1, 2.5, None, True, False, "x"], "empty": {}}, "key with space": "v"},
    [1, [2, [3, []]]],
    None,
    1.5,
    -7,
    9007199254740991,
    True,
    False,
    "",
)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_auth_echo_without_auth(connect, transport):
    _, events = connect(transport)
    assert events.get("auth") == ({},)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_auth_echo_with_auth(connect, transport):
    auth = {"token": "s3cr3t", "n": 1.5, "nested": {"list": [1, "x", None]}, "ünï": "☃"}
    _, events = connect(transport, auth=auth)
    assert events.get("auth") == (auth,)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_event_round_trip(connect, transport):
    sio, events = connect(transport)
    sio.emit("message", MIXED)
    assert events.get("message-back") == MIXED
    sio.emit("message", "single")
    assert events.get("message-back") == ("single",)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ack(connect, transport):
    sio, _ = connect(transport)
    assert sio.call("message-with-ack", "x", timeout=T) == "x"
    assert sio.call("message-with-ack", {"a": [1, 2, {"b": None}]}, timeout=T) == {"a": [1, 2, {"b": None}]}
    assert sio.call("message-with-ack", MIXED, timeout=T) == MIXED


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_binary_event_round_trip(connect, transport):
    sio, events = connect(transport)
    payload = (b"\x00\x01\x02\xfe\xff", {"file": b"abc", "list": [b"\x00", "text", 3]}, "tail")
    sio.emit("message", payload)
    got = events.get("message-back")
    assert got == payload
    assert isinstance(got[0], bytes)
    assert isinstance(got[1]["file"], bytes)
    assert isinstance(got[1]["list"][0], bytes)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_binary_ack(connect, transport):
    sio, _ = connect(transport)
    blob = bytes(range(256)) * 4
    got = sio.call("message-with-ack", blob, timeout=T)
    assert isinstance(got, bytes)
    assert got == blob
    both = sio.call("message-with-ack", (b"\x01", {"b": b"\x02\x03"}), timeout=T)
    assert both == (b"\x01", {"b": b"\x02\x03"})


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_server_to_client_ack_with_binary(connect, transport):
    sio, events = connect(transport)
    seen = queue.Queue()

    @sio.on("server-ack")
    def on_server_ack(data):
        seen.put(data)
        return {"ok": True, "blob": b"\x10\x20", "echo": data["q"]}

    sio.emit("please-ack", {"q": "binary?", "blob": b"\x04\x05"})
    assert seen.get(timeout=T) == {"q": "binary?", "blob": b"\x04\x05"}
    assert events.get("server-ack-result") == ({"ok": True, "blob": b"\x10\x20", "echo": "binary?"},)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_rooms_and_broadcast(connect, transport):
    a, a_events = connect(transport, extra_events=("bcast",))
    b, b_events = connect(transport, extra_events=("bcast",))
    c, c_events = connect(transport, extra_events=("bcast",))
    room = f"py-room-{os.getpid()}-{transport}"
    assert a.call("join", room, timeout=T) is True
    assert b.call("join", room, timeout=T) is True
    # c is not a member; it broadcasts to the room (with binary)
    assert c.call("broadcast", (room, {"n": 1, "blob": b"\x01\x02"}), timeout=T) is True
    assert a_events.get("bcast") == ({"n": 1, "blob": b"\x01\x02"},)
    assert b_events.get("bcast") == ({"n": 1, "blob": b"\x01\x02"},)
    assert b.call("leave", room, timeout=T) is True
    assert c.call("broadcast", (room, "second"), timeout=T) is True
    assert a_events.get("bcast") == ("second",)
    # nothing more reached b (left) or c (never joined): a round trip orders it after the broadcasts
    assert b.call("message-with-ack", "sync", timeout=T) == "sync"
    assert c.call("message-with-ack", "sync", timeout=T) == "sync"
    assert b_events.queues["bcast"].empty()
    assert c_events.queues["bcast"].empty()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_second_namespace(server, transport):
    sio = socketio.Client(reconnection=False, serializer=server.serializer)
    main, custom = queue.Queue(), queue.Queue()
    sio.on("auth", handler=main.put)
    sio.on("auth", handler=custom.put, namespace="/custom")
    try:
        sio.connect(
            server.url,
            transports=[transport],
            socketio_path="socket.io",
            namespaces=["/", "/custom"],
            auth={"who": "py"},
            wait_timeout=T,
        )
        assert main.get(timeout=T) == {"who": "py"}
        assert custom.get(timeout=T) == {"who": "py"}
        assert sio.get_sid("/") != sio.get_sid("/custom")
        assert sio.call("message-with-ack", "over /", timeout=T) == "over /"
    finally:
        sio.disconnect()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_namespace_is_refused(server, transport):
    sio = socketio.Client(reconnection=False, serializer=server.serializer)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError) as err:
            sio.connect(
                server.url,
                transports=[transport],
                socketio_path="socket.io",
                namespaces=["/no-such-namespace"],
                wait_timeout=T,
            )
        assert "Invalid namespace" in str(err.value) or "One or more namespaces failed" in str(err.value)
    finally:
        sio.disconnect()
