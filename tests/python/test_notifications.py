"""Notifications (SPEC.md §4.16) with the real python-socketio client against the
real `rollcall` binary (${CARGO_TARGET_DIR:-<repo>/target}/debug/rollcall) on a
fresh data directory: live delivery to two devices of one user (one per
transport) and to the `/notifications` namespace, the replay of missed
notifications on reconnect (each once, oldest first), paging and read marks
with acks, a role notification, and the refusals (oversized body, bad
arguments) with the sender's other traffic intact.

Users, a course and tokens are made with the admin CLI before the server
starts (sled: one process at a time). Skipped with INTEROP_IMPL=node (there is
no Node reference of the app). Every wait is bounded.
"""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests
import socketio
from rollcall_bin import binary

STARTUP_TIMEOUT = float(os.environ.get("ROLLCALL_STARTUP_TIMEOUT_MS", "20000")) / 1000
T = 10.0  # bound for any single wait
GRACE = 0.4  # only to assert that something does NOT arrive
SECRET = "rollcall-py-secret-0123456789abcdef"
LISTENING_RE = re.compile(r"^listening on 127\.0\.0\.1:(\d+)$")

pytestmark = pytest.mark.skipif(os.environ.get("INTEROP_IMPL") == "node", reason="no Node reference of the rollcall app")


def _die_with_parent():
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - best effort only
        pass


def env_for(data_dir, extra=None):
    env = {**os.environ, "DATA_DIR": data_dir, "ACCESS_TOKEN_SECRET": SECRET, "RUST_LOG": "warn"}
    env.pop("JWT_SECRET", None)
    env.pop("CHAT_PORT", None)
    env.update(extra or {})
    return env


def cli(data_dir, args, stdin=""):
    out = subprocess.run(
        [binary(), *args], cwd=data_dir, env=env_for(data_dir), input=stdin.encode(),
        capture_output=True, timeout=60,
    )
    if out.returncode != 0:
        pytest.fail(f"rollcall {' '.join(args)}: {out.stderr.decode()}")
    return out.stdout.decode()


class Rollcall:
    """`rollcall serve` on a data directory; stop() is SIGTERM by PID (SIGKILL after 5 s)."""

    def __init__(self, data_dir):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [binary(), "serve"], cwd=data_dir,
            env=env_for(data_dir, {"HOST": "127.0.0.1", "PORT": "0", "CLIENT_URL": "*"}),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        first = queue.Queue()

        def pump():
            first.put(self.proc.stdout.readline())
            for _ in self.proc.stdout:
                pass

        threading.Thread(target=pump, daemon=True).start()
        try:
            line = first.get(timeout=STARTUP_TIMEOUT).decode("utf-8", "replace").rstrip("\r\n")
        except queue.Empty:
            self.stop()
            pytest.fail("rollcall: no 'listening on' line")
        m = LISTENING_RE.match(line)
        if not m:
            self.stop()
            pytest.fail(f"rollcall: bad first line {line!r}")
        self.url = f"http://127.0.0.1:{m.group(1)}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.stderr.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def env():
    data_dir = tempfile.mkdtemp(prefix="rollcall-py-notif-")
    users = [
        {"id": "a1", "email": "a1@school.test", "name": "Admin", "role": "admin"},
        {"id": "s1", "email": "s1@school.test", "name": "Student One"},
        {"id": "s2", "email": "s2@school.test", "name": "Student Two"},
    ]
    cli(data_dir, ["user", "import"], "\n".join(json.dumps(u) for u in users) + "\n")
    tokens = {u["id"]: cli(data_dir, ["token", u["id"]]).strip() for u in users}
    server = Rollcall(data_dir)
    try:
        yield server, tokens
    finally:
        code = server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        assert code == 0, f"exit status {code}"


class Inbox:
    """Queues `notification` (and other) events of one client."""

    def __init__(self, sio, *names, namespace="/"):
        self.q = {n: queue.Queue() for n in names}
        for n in names:
            sio.on(n, handler=self._put(n), namespace=namespace)

    def _put(self, name):
        return lambda *args: self.q[name].put(args[0] if args else None)

    def get(self, name="notification"):
        return self.q[name].get(timeout=T)

    def none(self, name="notification"):
        time.sleep(GRACE)
        return self.q[name].empty()


def connect(url, token, transport, namespaces=None, events=("notification",)):
    sio = socketio.Client(reconnection=False)
    ns = namespaces or ["/"]
    inbox = Inbox(sio, *events, namespace=ns[0])
    sio.connect(url, auth={"token": token}, transports=[transport], namespaces=ns, wait_timeout=T)
    return sio, inbox


def notify(url, token, body):
    return requests.post(f"{url}/api/admin/notifications", json=body,
                         headers={"authorization": f"Bearer {token}"}, timeout=T)


def test_live_notification_reaches_every_device_and_namespace(env):
    server, tok = env
    devices = [connect(server.url, tok["s1"], t) for t in ("polling", "websocket")]
    ns_client, ns_inbox = connect(server.url, tok["s1"], "websocket", namespaces=["/notifications"])
    other, other_inbox = connect(server.url, tok["s2"], "websocket")
    try:
        res = notify(server.url, tok["a1"], {"userId": "s1", "title": "Hello", "message": "from python", "type": "info"})
        assert res.status_code == 201, res.text
        body = res.json()
        assert body["delivered"] == 3
        n = body["notification"]
        for _, inbox in devices + [(ns_client, ns_inbox)]:
            got = inbox.get()
            assert got == n
            assert got["title"] == "Hello"
        assert other_inbox.none(), "another user got it"
        sio = devices[0][0]
        ack = sio.call("markNotificationRead", {"id": n["id"]}, timeout=T)
        assert ack["ok"] is True and ack["read"] == [n["id"]]
    finally:
        for sio, _ in devices + [(ns_client, None), (other, None)]:
            sio.disconnect()


def test_missed_notifications_are_replayed_once_and_paged(env):
    server, tok = env
    ids = []
    for title in ("one", "two", "three"):
        res = notify(server.url, tok["a1"], {"userId": "s2", "title": title})
        assert res.status_code == 201
        assert res.json()["delivered"] == 0
        ids.append(res.json()["notification"]["id"])
    sio, inbox = connect(server.url, tok["s2"], "polling")
    try:
        got = [inbox.get() for _ in range(3)]
        assert [g["id"] for g in got] == ids
        assert all(g["missed"] is True for g in got)
        assert inbox.none(), "each once"
        page = sio.call("getNotifications", {"limit": 2}, timeout=T)
        assert page["ok"] is True
        assert [p["title"] for p in page["notifications"]] == ["three", "two"]
        assert page["unread"] == 3
        rest = sio.call("getNotifications", {"limit": 2, "before": page["nextBefore"]}, timeout=T)
        assert [p["title"] for p in rest["notifications"]] == ["one"]
        bad = sio.call("getNotifications", {"limit": 500}, timeout=T)
        assert bad["ok"] is False and bad["error"]["code"] == "invalid_payload"
        done = sio.call("markNotificationRead", {"all": True}, timeout=T)
        assert done["unread"] == 0 and done["read"] == ids
    finally:
        sio.disconnect()
    again, inbox2 = connect(server.url, tok["s2"], "websocket")
    try:
        assert inbox2.none(), "read notifications are not replayed"
    finally:
        again.disconnect()


def test_role_notification_and_refusals(env):
    server, tok = env
    sio, inbox = connect(server.url, tok["s1"], "websocket")
    try:
        res = notify(server.url, tok["a1"], {"role": "student", "title": "Exams next week"})
        assert res.status_code == 201
        got = inbox.get()
        assert got["target"] == {"type": "role", "id": "student"}
        big = notify(server.url, tok["a1"], {"userId": "s1", "title": "big", "message": "x" * 10000})
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "payload_too_large"
        assert notify(server.url, tok["s1"], {"userId": "s2", "title": "x"}).status_code == 403
        # The refused sender's next notification works.
        ok = notify(server.url, tok["a1"], {"userId": "s1", "title": "after"})
        assert ok.status_code == 201
        assert inbox.get()["title"] == "after"
    finally:
        sio.disconnect()
