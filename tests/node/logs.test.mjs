// The `rollcall` server's log output: with LOG_FORMAT=json every line is one
// JSON object; refusals are logged with their codes (inside the socket's or
// the request's span); and no token, password or secret ever appears in it,
// through logins, registrations, token handshakes (auth payload and
// Authorization header), refused tokens, CSV downloads and metrics scrapes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  Clients,
  SECRET,
  call,
  claimsFor,
  cli,
  craftJwt,
  makeDataDir,
  removeDataDir,
  seed,
  startRollcall,
} from "./attendance_helpers.mjs";

const METRICS_TOKEN = "metrics-secret-token-for-logs-42";
const TEACHER_PASSWORD = "teacher-secret-pass-9";
const NEW_PASSWORD = "registered-secret-pass-7";

let dataDir;
let server;
let tokens;
const clients = new Clients();

before(async () => {
  dataDir = makeDataDir("logs");
  tokens = await seed(dataDir, {
    users: [
      { id: "t1", email: "t1@school.test", name: "Tess", role: "teacher", password: TEACHER_PASSWORD },
      { id: "s1", email: "s1@school.test", name: "Sam" },
    ],
    courses: [{ id: "c1", teachers: ["t1"], students: ["s1"] }],
    tokens: ["t1", "s1"],
  });
  server = await startRollcall(dataDir, {
    LOG_FORMAT: "json",
    // Everything of ours down to debug (sled's own debug lines are noise).
    RUST_LOG: "debug,sled=info",
    METRICS_TOKEN,
  });
});

after(async () => {
  clients.closeAll();
  await server?.stop();
  removeDataDir(dataDir);
});

async function post(path, body) {
  const res = await fetch(server.url + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  return { status: res.status, body: await res.json() };
}

async function get(path, headers = {}) {
  const res = await fetch(server.url + path, { headers, signal: AbortSignal.timeout(10000) });
  return { status: res.status, text: await res.text() };
}

let floodSuppressed;

test("repeated refusals are rate-limited in the log and counted", async () => {
  // 100 refused Engine.IO handshakes (EIO=3: code 5) at once.
  const N = 100;
  const answers = await Promise.all(
    Array.from({ length: N }, () => get("/socket.io/?EIO=3&transport=polling").then((r) => r.status)),
  );
  assert.deepEqual([...new Set(answers)], [400]);
  const m = await get("/metrics", { authorization: `Bearer ${METRICS_TOKEN}` });
  const line = m.text.split("\n").find((l) => l.startsWith('rollcall_log_suppressed_lines_total{kind="engine_refused"}'));
  floodSuppressed = Number(line.split(" ").pop());
  assert.ok(floodSuppressed > 0, "some lines were held back");
});

test("JSON logs carry refusals with codes and never a secret", { timeout: 60000 }, async () => {
  const url = server.url;
  const secrets = [SECRET, METRICS_TOKEN, TEACHER_PASSWORD, NEW_PASSWORD, tokens.t1, tokens.s1];

  // Logins: a good one (its token is a secret too) and a wrong password.
  const login = await post("/api/auth/login", { email: "t1@school.test", password: TEACHER_PASSWORD });
  assert.equal(login.status, 200);
  secrets.push(login.body.token);
  const wrong = await post("/api/auth/login", { email: "t1@school.test", password: "wrong-secret-guess" });
  assert.equal(wrong.status, 401);
  secrets.push("wrong-secret-guess");
  const reg = await post("/api/auth/register", { email: "new@school.test", password: NEW_PASSWORD, name: "Neo" });
  assert.equal(reg.status, 201);
  secrets.push(reg.body.token);

  // Token handshakes: auth payload over WebSocket, Authorization header over polling.
  const teacher = await clients.connect(url, login.body.token);
  const viaHeader = await clients.connect(url, undefined, {
    transports: ["polling"],
    extraHeaders: { authorization: `Bearer ${tokens.s1}` },
  });
  // Refused tokens: bad signature, expired, and garbage.
  const forged = craftJwt(claimsFor("t1", { role: "teacher" }), { secret: "forged-secret-key" });
  const expired = craftJwt(claimsFor("s1", { ttl: -60 }));
  const garbage = "garbage-token-value-123";
  secrets.push(forged, expired, garbage, "forged-secret-key");
  assert.equal((await clients.refused(url, forged)).data.code, "invalid_token");
  assert.equal((await clients.refused(url, expired)).data.code, "token_expired");
  assert.equal((await clients.refused(url, garbage)).data.code, "invalid_token");

  // A refused request inside a socket's span, and a successful one.
  const refusedReq = await call(viaHeader, "startAttendanceSession", { session_id: "log-1", course_id: "c1" });
  assert.equal(refusedReq.error.code, "forbidden");
  assert.equal((await call(teacher, "startAttendanceSession", { session_id: "log-1", course_id: "c1" })).ok, true);

  // CSV downloads (with and without a valid token) and metrics scrapes.
  assert.equal((await get("/api/sessions/log-1/attendance.csv", { authorization: `Bearer ${tokens.t1}` })).status, 200);
  assert.equal((await get("/api/sessions/log-1/attendance.csv", { authorization: `Bearer ${forged}` })).status, 401);
  assert.equal((await get("/metrics", { authorization: "Bearer wrong-metrics-token" })).status, 401);
  secrets.push("wrong-metrics-token");
  assert.equal((await get("/metrics", { authorization: `Bearer ${METRICS_TOKEN}` })).status, 200);

  clients.closeAll();
  await server.stop();
  const out = server.stderr();
  // The harness keeps the last 64 KiB: make sure nothing was cut off.
  assert.ok(out.length < 60000, `log output too long to check whole (${out.length} bytes)`);
  const lines = out.split("\n").filter((l) => l.trim() !== "");
  assert.ok(lines.length > 10, "the server logged");

  const parsed = lines.map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      assert.fail(`not a JSON line: ${l}`);
    }
  });
  for (const p of parsed) {
    assert.equal(typeof p.timestamp, "string");
    assert.equal(typeof p.level, "string");
    assert.equal(typeof p.fields?.message, "string");
  }
  for (const s of secrets) {
    for (const part of [s, ...(s.split(".").filter((x) => x.length >= 16))]) {
      const hit = lines.find((l) => l.includes(part));
      assert.equal(hit, undefined, `a secret (${part.slice(0, 6)}...) appears in the log`);
    }
  }
  assert.ok(!out.includes("$argon2"), "no password hash in the log");

  const msg = (m) => parsed.filter((p) => p.fields.message === m);
  // Every refusal of the flood was either logged or counted as held back.
  const flood = msg("engine.io request refused").filter((p) => p.fields.code === 5);
  assert.ok(flood.length < 100, `${flood.length} lines for 100 refusals`);
  assert.equal(flood.length + floodSuppressed, 100);
  assert.ok(flood.some((p) => p.fields.suppressed > 0) || flood.length <= 20, "a later line says how many were held back");
  const refusedConnects = msg("connection refused").map((p) => p.fields.code).sort();
  assert.deepEqual(refusedConnects, ["invalid_token", "invalid_token", "token_expired"]);
  const req = msg("request refused");
  assert.equal(req.length, 1);
  assert.equal(req[0].fields.code, "forbidden");
  assert.equal(req[0].fields.event, "startAttendanceSession");
  // Inside the request's span (the event), inside the socket's (its ids).
  assert.equal(req[0].span.name, "request");
  assert.equal(req[0].span.event, "startAttendanceSession");
  const sock = req[0].spans.find((s) => s.name === "socket");
  assert.equal(sock?.user, "s1");
  assert.equal(typeof sock.sid, "string");
  const http = msg("http request refused");
  const codes = http.map((p) => `${p.fields.status} ${p.fields.code}`).sort();
  assert.deepEqual(codes, ["401 invalid_credentials", "401 invalid_token", "401 invalid_token"]);
  assert.deepEqual(http.map((p) => p.fields.route).sort(), ["/api/auth/login", "/api/sessions/{id}/attendance.csv", "/metrics"]);
});

test("an unknown LOG_FORMAT stops the server at startup", async () => {
  const dir = makeDataDir("logs-format");
  try {
    await assert.rejects(cli(dir, ["serve"], { env: { LOG_FORMAT: "yaml", PORT: "0" } }), /LOG_FORMAT must be text or json/);
  } finally {
    removeDataDir(dir);
  }
});
