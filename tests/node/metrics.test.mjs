// GET /metrics, /api/health and /api/ready of the `rollcall` server, scraped
// during a real workload with socket.io-client (polling, WebSocket, an
// upgrade, a refused token, marks, a broadcast stream) and a raw WebSocket
// client that stops reading until the server drops it as a slow consumer.
// Every scrape is parsed with `parse-prometheus-text-format` and the
// counters are checked by how much they moved.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import WebSocket from "ws";
import {
  Clients,
  call,
  craftJwt,
  claimsFor,
  makeDataDir,
  removeDataDir,
  seed,
  shutdown,
  startRollcall,
  waitFor,
  withTimeout,
} from "./attendance_helpers.mjs";

const METRICS_TOKEN = "metrics-bearer-0123456789";
const SID = "met-2026-12-01";

let dataDir;
let server;
let tokens;
const clients = new Clients();

const STUDENTS = ["s1", "s2", "s3", "s4"];

before(async () => {
  dataDir = makeDataDir("metrics");
  tokens = await seed(dataDir, {
    users: [
      { id: "t1", email: "t1@school.test", name: "Tess Teacher", role: "teacher", password: "teacher-pass-1" },
      ...STUDENTS.map((id) => ({ id, email: `${id}@school.test`, name: `Student ${id}` })),
    ],
    courses: [{ id: "c1", teachers: ["t1"], students: STUDENTS }],
    tokens: ["t1", ...STUDENTS],
  });
  // The teacher streams thousands of updates below: the per-socket request
  // limit and the per-connection packet rate (SPEC §3.14, tested in
  // abuse_engine.test.mjs) are lifted so that only the slow consumer drops.
  server = await startRollcall(dataDir, {
    METRICS_TOKEN,
    RATE_LIMIT: "100000",
    RATE_BURST: "100000",
    PACKET_RATE: "0",
  });
});

after(async () => {
  await shutdown(clients, server, dataDir);
});

/** GET `path` on the server; resolves with {status, headers, text}. */
async function get(path, headers = {}, base = server.url) {
  const res = await fetch(base + path, { headers, signal: AbortSignal.timeout(10000) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/**
 * Scrapes /metrics and returns a reader: v(name, labels) is the value of the
 * sample whose labels include `labels` (0 when absent; histograms: their count).
 */
async function scrape(base = server.url) {
  const res = await get("/metrics", { authorization: `Bearer ${METRICS_TOKEN}` }, base);
  assert.equal(res.status, 200, res.text);
  const families = parsePrometheusTextFormat(res.text);
  const byName = new Map(families.map((f) => [f.name, f]));
  const v = (name, labels = {}) => {
    const f = byName.get(name);
    if (!f) return 0;
    const matching = f.metrics.filter((m) => Object.entries(labels).every(([k, val]) => (m.labels ?? {})[k] === val));
    return matching.reduce((sum, m) => sum + Number(f.type === "HISTOGRAM" ? m.count : m.value), 0);
  };
  return { v, families, byName, text: res.text };
}

/** Scrapes until `check(scrape)` holds (bounded). */
async function until(check, ms = 10000, what = "metrics condition") {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await scrape();
    if (check(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Deltas between two scrapes. */
const delta = (a, b) => (name, labels) => b.v(name, labels) - a.v(name, labels);

test("/metrics needs the bearer token when METRICS_TOKEN is set", async () => {
  const s0 = await scrape();
  const none = await get("/metrics");
  assert.equal(none.status, 401);
  assert.equal(JSON.parse(none.text).error.code, "missing_token");
  assert.equal(none.headers.get("www-authenticate"), "Bearer");
  const wrong = await get("/metrics", { authorization: "Bearer not-the-token" });
  assert.equal(wrong.status, 401);
  assert.equal(JSON.parse(wrong.text).error.code, "invalid_token");
  const ok = await get("/metrics", { authorization: `Bearer ${METRICS_TOKEN}` });
  assert.equal(ok.status, 200);
  assert.match(ok.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  const s1 = await scrape();
  const d = delta(s0, s1);
  assert.equal(d("rollcall_http_requests_total", { route: "/metrics", status: "401" }), 2);
  // s0's own scrape, `ok`, and the one in between are counted by s1.
  assert.equal(d("rollcall_http_requests_total", { route: "/metrics", status: "200" }), 2);
});

test("health and readiness", async () => {
  const health = await get("/api/health");
  assert.equal(health.status, 200);
  const h = JSON.parse(health.text);
  assert.equal(h.status, "ok");
  assert.equal(typeof h.clients, "number");
  assert.equal(typeof h.activeSessions, "number");
  const s0 = await scrape();
  const ready = await get("/api/ready");
  assert.equal(ready.status, 200, ready.text);
  assert.deepEqual(JSON.parse(ready.text), { status: "ready", checks: { store: { ok: true }, adapter: { ok: true } } });
  const s1 = await scrape();
  // The probe is a real write, made durable by a group commit.
  assert.ok(delta(s0, s1)("rollcall_store_writes_total") >= 1);
  assert.ok(delta(s0, s1)("rollcall_store_commits_total") >= 1);
});

test("counters follow a real workload", { timeout: 120000 }, async () => {
  const url = server.url;
  const s0 = await scrape();

  // Connections: the teacher on WebSocket, two students on polling only,
  // one that starts on polling and upgrades; a refused token.
  const teacher = await clients.connect(url, tokens.t1, { transports: ["websocket"] });
  const s1 = await clients.connect(url, tokens.s1, { transports: ["polling"] });
  const s2 = await clients.connect(url, tokens.s2, { transports: ["polling"] });
  const s3 = clients.socket(url, tokens.s3, { transports: ["polling", "websocket"] });
  const upgraded = waitFor(s3.io, "open", 10000).then(() => waitFor(s3.io.engine, "upgrade", 10000));
  await waitFor(s3, "connect", 10000, ["connect_error"]);
  await upgraded;
  const bad = craftJwt(claimsFor("s1"), { secret: "not-the-server-secret" });
  const err = await clients.refused(url, bad, { transports: ["websocket"] });
  assert.equal(err.data.code, "invalid_token");

  const a = await until(
    (s) => s.v("rollcall_socketio_connections", { transport: "websocket" }) === 2 && s.v("rollcall_engine_sessions") === 4,
    10000,
    "4 connected sessions",
  );
  let d = delta(s0, a);
  assert.equal(d("rollcall_engine_handshakes_total", { transport: "websocket" }), 2); // teacher, refused
  assert.equal(d("rollcall_engine_handshakes_total", { transport: "polling" }), 3);
  assert.equal(d("rollcall_engine_upgrades_total"), 1);
  assert.equal(d("rollcall_socketio_connects_total"), 4);
  assert.equal(d("rollcall_socketio_connect_refusals_total"), 1);
  assert.equal(d("rollcall_auth_refusals_total", { code: "invalid_token" }), 1);
  assert.equal(d("rollcall_auth_refusals_total"), 1);
  assert.equal(a.v("rollcall_socketio_connections", { namespace: "/", transport: "polling" }), 2);
  assert.equal(a.v("rollcall_socketio_connections", { namespace: "/", transport: "websocket" }), 2);
  assert.equal(a.v("rollcall_engine_sessions", { transport: "polling" }), 2);
  assert.equal(a.v("rollcall_engine_sessions", { transport: "websocket" }), 2);

  // A session and its room: the teacher (starter) and three students.
  const started = await call(teacher, "startAttendanceSession", { session_id: SID, course_id: "c1" });
  assert.equal(started.ok, true, JSON.stringify(started));
  for (const s of [s1, s2, s3]) assert.equal((await call(s, "joinSession", SID)).ok, true);

  // Marks and a self check-in.
  const b0 = await scrape();
  assert.equal((await call(teacher, "markStudentPresent", { session_id: SID, student_id: "s1" })).ok, true);
  const nobody = await call(teacher, "markStudentPresent", { session_id: SID, student_id: "nobody" });
  assert.equal(nobody.error.code, "not_found");
  assert.equal((await call(s2, "markAttendance", { session_id: SID })).ok, true);
  const forbidden = await call(teacher, "markAttendance", { session_id: SID });
  assert.equal(forbidden.error.code, "forbidden");
  const b1 = await scrape();
  d = delta(b0, b1);
  assert.equal(d("rollcall_attendance_marks_total", { method: "teacher", result: "ok" }), 1);
  assert.equal(d("rollcall_attendance_marks_total", { method: "teacher", result: "not_found" }), 1);
  assert.equal(d("rollcall_attendance_marks_total", { method: "self", result: "ok" }), 1);
  assert.equal(d("rollcall_attendance_marks_total", { method: "self", result: "forbidden" }), 1);
  assert.equal(d("rollcall_attendance_marks_total"), 4);
  assert.equal(d("rollcall_app_requests_total", { event: "markStudentPresent" }), 2);
  assert.ok(d("rollcall_store_writes_total") >= 2, "two marks written");
  assert.ok(d("rollcall_store_commits_total") >= 1);
  // Each successful mark broadcasts attendanceUpdated (+ attendanceUpdate for the check-in),
  // each in two views: the full record to the staff and the student's own room, the
  // student view to the other students (SPEC §4.24): 2 + 2 x 2.
  assert.equal(d("rollcall_socketio_broadcasts_total"), 6);

  // A broadcast stream: 20 sessionUpdates to the session's room of 4.
  const K = 20;
  const receivers = [teacher, s1, s2, s3];
  const got = receivers.map(() => 0);
  const allIn = Promise.all(
    receivers.map(
      (s, i) =>
        new Promise((resolve) => {
          s.on("sessionUpdated", () => {
            if (++got[i] === K) resolve();
          });
        }),
    ),
  );
  const c0 = await scrape();
  for (let i = 0; i < K; i++) {
    const r = await call(teacher, "sessionUpdate", { sessionId: SID, note: `n${i}` });
    assert.equal(r.ok, true);
  }
  await withTimeout(allIn, 10000, "every member receives the stream");
  const c1 = await scrape();
  d = delta(c0, c1);
  assert.equal(d("rollcall_socketio_broadcasts_total"), K);
  assert.equal(d("rollcall_socketio_deliveries_total"), K * receivers.length);
  assert.equal(d("rollcall_app_requests_total", { event: "sessionUpdate", result: "ok" }), K);
  assert.ok(d("rollcall_engine_received_packets_total", { transport: "websocket" }) >= K);
  assert.ok(d("rollcall_engine_received_bytes_total", { transport: "websocket" }) > 0);
  // Out: the stream and the acks reach the two WebSocket clients (2K + K at
  // least), the polling pair gets its share over GETs.
  assert.ok(d("rollcall_engine_sent_packets_total", { transport: "websocket" }) >= 3 * K);
  assert.ok(d("rollcall_engine_sent_packets_total", { transport: "polling" }) >= 2 * K);
  assert.ok(d("rollcall_engine_sent_bytes_total", { transport: "polling" }) > 0);
  // The stream to the teacher (active) goes out from the queue or directly.
  assert.ok(d("rollcall_engine_websocket_writes_packets_total", { path: "queued" }) + d("rollcall_engine_websocket_writes_packets_total", { path: "direct" }) >= 3 * K);
  assert.ok(d("rollcall_engine_delivery_latency_seconds") > 0, "latency observed");
  assert.ok(d("rollcall_engine_queue_depth_packets") > 0, "queue depth observed");

  // A slow consumer: a raw WebSocket client that joins the room, then stops
  // reading while big updates stream in, until the server drops it.
  const slow = await rawClient(url, tokens.s4);
  await slow.request(`["joinSession","${SID}"]`);
  slow.pause();
  const e0 = await scrape();
  const big = "x".repeat(15000);
  let dropped = false;
  for (let i = 0; i < 4000 && !dropped; i++) {
    const r = await call(teacher, "sessionUpdate", { sessionId: SID, blob: big });
    assert.equal(r.ok, true);
    if (i % 100 === 99) {
      dropped = (await scrape()).v("rollcall_socketio_disconnects_total", { reason: "slow client" }) > e0.v("rollcall_socketio_disconnects_total", { reason: "slow client" });
    }
  }
  assert.ok(dropped, "the non-reading client was dropped");
  const e1 = await scrape();
  d = delta(e0, e1);
  assert.equal(d("rollcall_socketio_disconnects_total", { reason: "slow client" }), 1);
  assert.equal(d("rollcall_engine_disconnects_total", { reason: "buffer_full" }), 1);
  assert.equal(d("rollcall_engine_queue_full_dropped_packets_total"), 1);
  // Nobody else was dropped by the server (a client closing its own
  // connection meanwhile is not a drop).
  for (const r of ["transport_error", "parse_error", "ping_timeout", "forced_close", "payload_too_large", "upper_layer", "first_exchange_timeout"]) {
    assert.equal(d("rollcall_engine_disconnects_total", { reason: r }), 0, `nobody else was dropped (${r})`);
  }
  for (const r of ["ping timeout", "parse error", "forced close", "forced server close", "server namespace disconnect"]) {
    assert.equal(d("rollcall_socketio_disconnects_total", { reason: r }), 0, `nobody else was dropped (${r})`);
  }
  slow.close();

  // HTTP routes are labelled by pattern, never by raw path.
  const login = await fetch(`${url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "t1@school.test", password: "teacher-pass-1" }),
  });
  assert.equal(login.status, 200);
  const csv = await get(`/api/sessions/${SID}/attendance.csv`, { authorization: `Bearer ${tokens.t1}` });
  assert.equal(csv.status, 200);
  assert.equal((await get(`/api/nope/${SID}`)).status, 404);
  const f = await scrape();
  d = delta(e1, f);
  assert.equal(d("rollcall_http_requests_total", { route: "/api/auth/login", status: "200" }), 1);
  assert.equal(d("rollcall_http_requests_total", { route: "/api/sessions/{id}/attendance.csv", status: "200" }), 1);
  assert.equal(d("rollcall_http_requests_total", { route: "unmatched", status: "404" }), 1);
  assert.ok(f.v("rollcall_http_requests_total", { route: "/socket.io/", status: "200" }) > 0);
  assert.ok(!f.text.includes(SID), "no raw path (with an id) in any label");
  // Commit latency: one observation per group commit.
  assert.equal(
    f.v("rollcall_store_commit_latency_seconds"),
    f.v("rollcall_store_commits_total") + f.v("rollcall_store_commit_failures_total"),
  );
});

test("METRICS_ADDR serves /metrics on its own address only", async () => {
  const port = await freePort();
  const dir = makeDataDir("metrics-addr");
  const other = await startRollcall(dir, { METRICS_ADDR: `127.0.0.1:${port}` });
  try {
    assert.equal((await get("/metrics", {}, other.url)).status, 404, "not on the main port");
    const base = `http://127.0.0.1:${port}`;
    const res = await get("/metrics", {}, base);
    assert.equal(res.status, 200, "open without METRICS_TOKEN");
    const parsed = parsePrometheusTextFormat(res.text);
    assert.ok(parsed.some((f) => f.name === "rollcall_engine_handshakes_total"));
    assert.equal((await get("/api/health", {}, base)).status, 404, "only /metrics there");
  } finally {
    await other.stop();
    removeDataDir(dir);
  }
});

/** A free loopback port (bound and released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A hand-driven Socket.IO client over a raw WebSocket, so that reading can be
 * stopped: connects with `token`, request(json) sends `42<id><json>` and
 * resolves with the ack, pause() stops reading from the TCP socket.
 */
async function rawClient(url, token) {
  const ws = new WebSocket(`${url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
  const pending = new Map();
  let nextId = 1;
  let connected;
  const ready = new Promise((resolve, reject) => {
    connected = resolve;
    ws.once("error", reject);
  });
  ws.on("message", (data) => {
    const s = data.toString();
    if (s.startsWith("0")) ws.send(`40${JSON.stringify({ token })}`);
    else if (s === "2") ws.send("3");
    else if (s.startsWith("40")) connected();
    else if (s.startsWith("43")) {
      const m = /^43(\d+)/.exec(s);
      pending.get(Number(m[1]))?.(JSON.parse(s.slice(2 + m[1].length)));
    }
  });
  await withTimeout(ready, 10000, "raw client connect");
  return {
    request(json) {
      const id = nextId++;
      return withTimeout(
        new Promise((resolve) => {
          pending.set(id, resolve);
          ws.send(`42${id}${json}`);
        }),
        10000,
        "raw client ack",
      );
    },
    pause() {
      ws._socket.pause();
    },
    close() {
      ws.terminate();
    },
  };
}
