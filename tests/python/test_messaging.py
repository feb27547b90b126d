"""Interop: the real python-socketio client against the `rollcall` binary's
`/messenger` namespace (SPEC.md §4.16).

The binary is ${CARGO_TARGET_DIR:-<repo>/target}/debug/rollcall (`cargo build
--bin rollcall`), run on a fresh temporary data directory seeded with its admin
CLI; it must print `listening on 127.0.0.1:<port>` first (PORT=0). Scenarios:
a message reaching both devices of the recipient (one long-polling, one
WebSocket) and echoed to the sender's other device; a recipient offline during
two messages getting both, once each, when it connects; history; a stranger,
an oversized text and a flood refused with their codes while the sender's
other requests keep working.

Skipped with INTEROP_IMPL=node (there is no Node reference of the app).
Run from the repo root: python -m pytest -q tests/python/test_messaging.py
"""

import json
import os
import queue
import shutil
import subprocess
import tempfile
import time

import pytest
import socketio
from rollcall_bin import binary
from test_socketio import Server

T = 5.0  # bound for any single wait
GRACE = 0.4  # only to assert that something does NOT arrive
SECRET = "rollcall-py-secret-0123456789abcdef"
NS = "/messenger"

pytestmark = pytest.mark.skipif(
    os.environ.get("INTEROP_IMPL") == "node", reason="no Node reference of the rollcall app"
)


def env_for(data_dir, extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "CHAT_PORT")}
    env.update({"DATA_DIR": data_dir, "ACCESS_TOKEN_SECRET": SECRET, "RUST_LOG": "warn"})
    env.update(extra or {})
    return env


def cli(data_dir, *args, stdin=""):
    out = subprocess.run(
        [binary(), *args], cwd=data_dir, env=env_for(data_dir), input=stdin.encode(),
        capture_output=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


def rollcall(data_dir, env):
    """`rollcall serve` on `data_dir` (test_socketio's Server: SIGTERM by PID on stop)."""
    return Server(
        "rollcall", cmd=[binary(), "serve"], cwd=data_dir,
        env={**env_for(data_dir), "CLIENT_URL": "*", **env},
    )


@pytest.fixture(scope="module")
def server():
    data_dir = tempfile.mkdtemp(prefix="rollcall-py-msg-")
    users = [
        {"id": "t1", "email": "t1@example.test", "name": "Teacher", "role": "teacher"},
        {"id": "s1", "email": "s1@example.test", "name": "Sam", "role": "student"},
        {"id": "s2", "email": "s2@example.test", "name": "Sue", "role": "student"},
        {"id": "s3", "email": "s3@example.test", "name": "Offline", "role": "student"},
        {"id": "x1", "email": "x1@example.test", "name": "Stranger", "role": "student"},
    ]
    cli(data_dir, "user", "import", stdin="\n".join(json.dumps(u) for u in users) + "\n")
    cli(data_dir, "course", "add", "--id", "c1", "--name", "C1", "--teacher", "t1")
    cli(data_dir, "enroll", "--course", "c1", "s1", "s2", "s3")
    cli(data_dir, "course", "add", "--id", "c2", "--name", "C2")
    cli(data_dir, "enroll", "--course", "c2", "x1")
    tokens = {u["id"]: cli(data_dir, "token", u["id"]).strip() for u in users}
    srv = rollcall(data_dir, {"MESSAGE_RATE": "1", "MESSAGE_BURST": "4", "MESSAGE_MAX_BYTES": "100"})
    srv.tokens = tokens
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


class Device:
    """One python-socketio client on /messenger, queueing the events it receives."""

    EVENTS = ("newMessage", "messageSent", "messageError", "messageRead")

    def __init__(self, server, user, transport, connect=True):
        self.sio = socketio.Client(reconnection=False)
        self.queues = {name: queue.Queue() for name in self.EVENTS}
        for name in self.EVENTS:
            self.sio.on(name, handler=self._put(name), namespace=NS)
        self.server, self.user, self.transport = server, user, transport
        if connect:
            self.connect()

    def _put(self, name):
        return lambda data: self.queues[name].put(data)

    def connect(self):
        self.sio.connect(
            self.server.url, namespaces=[NS], auth={"token": self.server.tokens[self.user]},
            transports=[self.transport], wait_timeout=T,
        )

    def call(self, event, data):
        return self.sio.call(event, data, namespace=NS, timeout=T)

    def next(self, name):
        return self.queues[name].get(timeout=T)

    def none(self, name):
        time.sleep(GRACE)
        assert self.queues[name].empty(), f"unexpected {name}: {self.queues[name].get()}"

    def close(self):
        self.sio.disconnect()


@pytest.fixture
def devices():
    made = []

    def make(*args, **kw):
        d = Device(*args, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def test_message_reaches_every_device_and_echoes_to_the_sender(server, devices):
    sam_poll = devices(server, "s1", "polling")
    sam_ws = devices(server, "s1", "websocket")
    sue_1 = devices(server, "s2", "websocket")
    sue_2 = devices(server, "s2", "polling")
    ack = sue_1.call("sendMessage", {"to": "s1", "text": "hello from python", "clientId": "py-1"})
    assert ack["ok"] is True, ack
    msg = ack["message"]
    assert (msg["from"], msg["to"], msg["text"], msg["clientId"]) == ("s2", "s1", "hello from python", "py-1")
    assert sam_poll.next("newMessage") == msg
    assert sam_ws.next("newMessage") == msg
    assert sue_2.next("messageSent") == msg
    sam_ws.none("newMessage")
    sue_1.none("messageSent")
    # A read receipt goes back to the sender's devices.
    read = sam_ws.call("markRead", {"messageId": msg["id"]})
    assert read["ok"] is True and read["message"]["readAt"]
    for d in (sue_1, sue_2):
        assert d.next("messageRead") == {"messageId": msg["id"], "by": "s1", "readAt": read["message"]["readAt"]}


def test_offline_recipient_gets_each_message_once_on_connect(server, devices):
    sue = devices(server, "s2", "websocket")
    sent = [sue.call("sendMessage", {"to": "s3", "text": t})["message"] for t in ("one", "two")]
    late = devices(server, "s3", "polling")
    assert [late.next("newMessage"), late.next("newMessage")] == sent
    late.none("newMessage")
    page = late.call("getMessages", {"with": "s2"})
    assert page["ok"] is True and page["messages"] == sent and page["hasMore"] is False


def test_bad_input_is_refused_and_other_traffic_keeps_working(server, devices):
    sam = devices(server, "s1", "websocket")
    stranger = sam.call("sendMessage", {"to": "x1", "text": "hi"})
    assert stranger["error"]["code"] == "not_a_contact", stranger
    assert sam.next("messageError") == {"code": "not_a_contact", "message": stranger["error"]["message"]}
    big = sam.call("sendMessage", {"to": "s2", "text": "x" * 101})
    assert big["error"]["code"] == "message_too_large", big
    codes = [sam.call("sendMessage", {"to": "t1", "text": f"flood {i}"}) for i in range(8)]
    ok = [c for c in codes if c["ok"]]
    limited = [c for c in codes if not c["ok"]]
    assert 4 <= len(ok) <= 6, codes
    assert limited and all(c["error"]["code"] == "rate_limited" for c in limited), codes
    history = sam.call("getMessages", {"with": "t1", "limit": 100})
    assert history["ok"] is True
    assert [m["id"] for m in history["messages"]] == [c["message"]["id"] for c in ok]
