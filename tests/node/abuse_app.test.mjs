// Abuse resistance of the application (SPEC.md §4.24), end to end: the real
// `rollcall` binary (target/debug/rollcall) on a fresh data directory, real
// HTTP requests (node:http, each from a chosen loopback address: Linux routes
// all of 127.0.0.0/8 to the loopback interface, so one test can be several
// "client addresses") and the real npm socket.io-client.
//
// Groups (each with its own server and data directory):
//   limits  - login brute force at 128 concurrent requests (one address, and
//             128 addresses against the hashing pool) with a legitimate login
//             measured meanwhile and the server's RSS sampled; registration
//             spam; the sockets-per-user cap; cross-origin POST/PATCH;
//             authorization before existence (sockets and the CSV route);
//             the three SPEC/code disagreements of #17, pinned;
//   privacy - a whole attendance session (start, self check-ins with
//             locations, teacher marks, bulk update, end) in which no student
//             socket receives another student's record, name or location;
//   unknown events - they take tokens of the per-socket rate limit.
//
// Every wait is bounded; the server is stopped by PID and its directory removed.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { readFileSync } from "node:fs";
import { sleep } from "./harness.mjs";
import { Clients, call, makeDataDir, seed, shutdown, startRollcall } from "./attendance_helpers.mjs";

const SKIP = process.env.INTEROP_IMPL === "node" ? "no Node reference of the rollcall app" : false;
const T = 10000;
const PASSWORD = "correct horse battery";
/**
 * RSS the server may reach during the floods: the debug build starts at
 * ~36 MiB; 2 hash workers keep 19 MiB of argon2 memory each (SPEC §4.24);
 * the rest is margin. Before the pool (tokio's blocking threads, a fresh
 * block per hash) one address reached gigabytes.
 */
const RSS_BOUND_MB = 160;

/** One HTTP request from local address `from`; resolves with {status, headers, json, ms}. */
function request(port, method, path, { body, from = "127.0.0.1", headers = {}, timeout = 20000 } = {}) {
  const data = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        localAddress: from,
        agent: false,
        headers: {
          ...(data === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(data) }),
          ...headers,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (text += c));
        res.on("end", () => {
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, json, text, ms: Date.now() - started });
        });
      },
    );
    req.setTimeout(timeout, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

const login = (port, email, password, opts = {}) => request(port, "POST", "/api/auth/login", { ...opts, body: { email, password } });

/** The server's resident set size in MiB (/proc/<pid>/status). */
function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Samples the RSS every 50 ms until stop(); resolves with the peak. */
function sampleRss(pid) {
  let peak = rssMb(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 50);
  return { stop: () => (clearInterval(timer), Math.max(peak, rssMb(pid))) };
}

/** A login of `email` that honours 429's Retry-After until it succeeds or `ms` pass; {res, ms}. */
async function persistentLogin(port, email, password, from, ms = T) {
  const started = Date.now();
  for (;;) {
    const res = await login(port, email, password, { from });
    if (res.status !== 429 || Date.now() - started > ms) return { res, ms: Date.now() - started };
    await sleep(Number(res.headers["retry-after"] || 1) * 1000);
  }
}

/** Asserts a 429 rate_limited answer with a Retry-After of whole seconds. */
function assertLimited(res, what) {
  assert.equal(res.status, 429, `${what}: ${res.text}`);
  assert.equal(res.json?.error?.code, "rate_limited", what);
  assert.match(String(res.headers["retry-after"]), /^[1-9]\d*$/, `${what}: Retry-After`);
}

/** Sends an event with an ack and resolves with the ack. */
const ask = (socket, event, payload) => call(socket, event, payload, T);

/** The ack must be a refusal with `code`. */
async function refusedWith(socket, event, payload, code) {
  const ack = await ask(socket, event, payload);
  assert.equal(ack?.ok, false, `${event} ${JSON.stringify(payload)}: ${JSON.stringify(ack)}`);
  assert.equal(ack.error.code, code, `${event} ${JSON.stringify(payload)}: ${JSON.stringify(ack)}`);
  return ack;
}

describe("application abuse limits", { skip: SKIP }, () => {
  let dataDir, server, tok, port;
  const clients = new Clients();
  const ALLOWED = "http://allowed.test";
  before(async () => {
    dataDir = makeDataDir("abuse");
    tok = await seed(dataDir, {
      users: [
        { id: "victim", email: "victim@school.test", name: "Victim", password: PASSWORD },
        { id: "other", email: "other@school.test", name: "Other", password: PASSWORD },
        { id: "pinned", email: "pinned@school.test", name: "Pinned", password: ` ${PASSWORD} ` },
        { id: "t1", email: "t1@school.test", name: "Teacher", role: "teacher", password: PASSWORD },
        { id: "st1", email: "st1@school.test", name: "Student One", password: PASSWORD },
        { id: "st2", email: "st2@school.test", name: "Student Two", password: PASSWORD },
      ],
      courses: [
        { id: "ca", teachers: ["t1"], students: ["st1"] },
        { id: "cb", teachers: ["t1"], students: ["st2"] },
      ],
      tokens: ["t1", "st1", "st2"],
    });
    server = await startRollcall(dataDir, {
      CLIENT_URL: ALLOWED,
      HASH_WORKERS: "2",
      HASH_QUEUE: "64",
      MAX_SOCKETS_PER_USER: "3",
      LOGIN_BURST: "10",
      LOGIN_RATE_PER_MIN: "30",
      LOGIN_BACKOFF_AFTER: "3",
      LOGIN_BACKOFF_MAX_SECS: "30",
      REGISTER_BURST: "5",
      REGISTER_RATE_PER_HOUR: "10",
      // The connection-level limits of the engine (SPEC §1.1, tested in
      // abuse_engine.test.mjs) would answer the floods first: off here, so
      // that these tests see the application's own limits.
      CONN_RATE: "0",
    });
    port = server.port;
  });
  after(() => shutdown(clients, server, dataDir));

  test("login brute force: 128 concurrent wrong passwords from one address are mostly refused, the owner and others still log in", async (t) => {
    const base = rssMb(server.pid);
    const rss = sampleRss(server.pid);
    // A legitimate user on another address logs in throughout the attack.
    let attacking = true;
    const legit = (async () => {
      const seen = [];
      while (attacking) {
        const { res, ms } = await persistentLogin(port, "other@school.test", PASSWORD, "127.0.0.2");
        seen.push({ status: res.status, ms });
        await sleep(500); // within its own address's bucket (10, +0.5/s)
      }
      return seen;
    })();
    const statuses = [];
    // Waves of 128 concurrent attempts for 3 s (at least 3 waves).
    const attackStart = Date.now();
    for (let wave = 0; wave < 3 || Date.now() - attackStart < 3000; wave++) {
      const answers = await Promise.all(
        Array.from({ length: 128 }, (_, i) => login(port, "victim@school.test", `wrong-${wave}-${i}`, { from: "127.0.0.1" })),
      );
      for (const a of answers) {
        if (a.status === 429) assertLimited(a, "flood");
        else assert.equal(a.status, 401, a.text);
        statuses.push(a.status);
      }
    }
    attacking = false;
    const seen = await legit;
    const peak = rss.stop();
    const checked = statuses.filter((s) => s === 401).length;
    const worst = Math.max(...seen.map((s) => s.ms));
    t.diagnostic(`RSS ${base.toFixed(0)} -> peak ${peak.toFixed(0)} MiB; ${checked}/${statuses.length} passwords checked; ${seen.length} legitimate logins, slowest ${worst} ms`);
    // The bucket holds 10 and refills 0.5/s, and the account backoff holds the
    // address back after 3 failures: 3 s of flood check at most ~12 passwords.
    assert.ok(checked <= 16, `${checked} of ${statuses.length} passwords were checked`);
    assert.ok(statuses.length >= 384);
    assert.ok(seen.length >= 3, `${seen.length} legitimate logins during the attack`);
    for (const s of seen) {
      assert.equal(s.status, 200, JSON.stringify(seen));
      assert.ok(s.ms < 3000, `legitimate login took ${s.ms} ms`);
    }
    assert.ok(peak < RSS_BOUND_MB, `RSS ${peak.toFixed(0)} MiB (started at ${base.toFixed(0)} MiB)`);
    // The victim, from an address that has not been failing, is not locked out...
    const owner = await login(port, "victim@school.test", PASSWORD, { from: "127.0.0.3" });
    assert.equal(owner.status, 200, owner.text);
    // ...while the flooding address is still held back.
    assertLimited(await login(port, "victim@school.test", PASSWORD, { from: "127.0.0.1" }), "flooding address");
  });

  test("account backoff: after 3 failures the failing address waits (exponential), a clean address does not; success resets", async () => {
    const from = "127.0.0.20";
    for (let i = 0; i < 3; i++) assert.equal((await login(port, "other@school.test", "nope-" + i, { from })).status, 401);
    const held = await login(port, "other@school.test", PASSWORD, { from });
    assertLimited(held, "backoff");
    assert.equal(held.json.error.message, "too many failed logins for this account");
    assert.equal((await login(port, "other@school.test", PASSWORD, { from: "127.0.0.21" })).status, 200);
    // The success cleared the failures: the first address may try again at once.
    assert.equal((await login(port, "other@school.test", PASSWORD, { from })).status, 200);
  });

  test("hashing pool: 128 concurrent logins from 128 addresses: at most the queue waits, the rest get 429, memory stays bounded", async (t) => {
    const base = rssMb(server.pid);
    const rss = sampleRss(server.pid);
    const flood = Promise.all(
      Array.from({ length: 128 }, (_, i) => login(port, `ghost${i}@school.test`, "wrong password", { from: `127.0.1.${i + 1}` })),
    );
    const legit = persistentLogin(port, "st1@school.test", PASSWORD, "127.0.2.1", 15000);
    const answers = await flood;
    const { res, ms } = await legit;
    const peak = rss.stop();
    const busy = answers.filter((a) => a.status === 429);
    t.diagnostic(`RSS ${base.toFixed(0)} -> peak ${peak.toFixed(0)} MiB; ${128 - busy.length} checked, ${busy.length} refused (429); legitimate login ${ms} ms`);
    for (const a of busy) {
      assertLimited(a, "pool");
      assert.equal(a.json.error.message, "too many password checks at once");
    }
    assert.equal(answers.filter((a) => a.status === 401).length + busy.length, 128);
    assert.ok(busy.length >= 1, "the queue (64) overflowed");
    assert.equal(res.status, 200, res.text);
    assert.ok(ms < 15000, `legitimate login took ${ms} ms`);
    assert.ok(peak < RSS_BOUND_MB, `RSS ${peak.toFixed(0)} MiB (started at ${base.toFixed(0)} MiB)`);
  });

  test("registration spam from one address: 5 accounts, then 429 with Retry-After; another address still registers", async () => {
    const answers = [];
    for (let i = 0; i < 12; i++) {
      answers.push(
        await request(port, "POST", "/api/auth/register", {
          from: "127.0.0.5",
          body: { email: `spam${i}@spam.test`, password: "password123", name: `Spam ${i}` },
        }),
      );
    }
    assert.deepEqual(answers.slice(0, 5).map((a) => a.status), [201, 201, 201, 201, 201]);
    for (const a of answers.slice(5)) assertLimited(a, "registration");
    // The refused ones were not created.
    const refusedLogin = await login(port, "spam5@spam.test", "password123", { from: "127.0.0.6" });
    assert.equal(refusedLogin.status, 401);
    const other = await request(port, "POST", "/api/auth/register", {
      from: "127.0.0.7",
      body: { email: "fresh@spam.test", password: "password123", name: "Fresh" },
    });
    assert.equal(other.status, 201, other.text);
  });

  test("sockets per user: the 4th CONNECT of one user gets too_many_connections; a slot is given back on disconnect", async () => {
    const three = await Promise.all([1, 2, 3].map(() => clients.connect(server.url, tok.st1)));
    const err = await clients.refused(server.url, tok.st1);
    assert.equal(err.message, "Too many connections");
    assert.equal(err.data.code, "too_many_connections");
    // Another user is not affected.
    const other = await clients.connect(server.url, tok.st2);
    assert.ok(other.connected);
    three[0].disconnect();
    let again;
    for (let i = 0; i < 50 && !again; i++) {
      await sleep(100);
      again = await clients.connect(server.url, tok.st1).catch(() => undefined);
    }
    assert.ok(again?.connected, "a slot came back after a disconnect");
    const ack = await ask(again, "checkActiveSessions", "ca");
    assert.equal(ack.ok, true);
    clients.closeAll();
    await sleep(300); // the server gives the slots back as the sockets close
  });

  test("cross-origin state-changing requests: 403 forbidden_origin unless the Origin is allowed; no Origin is served", async () => {
    const evil = { Origin: "http://evil.test" };
    const refusedLogin = await request(port, "POST", "/api/auth/login", { body: { email: "st2@school.test", password: PASSWORD }, headers: evil, from: "127.0.0.30" });
    assert.equal(refusedLogin.status, 403);
    assert.equal(refusedLogin.json.error.code, "forbidden_origin");
    const refusedPatch = await request(port, "PATCH", "/api/admin/users/st2", { body: { active: false }, headers: evil, from: "127.0.0.30" });
    assert.equal(refusedPatch.status, 403);
    assert.equal(refusedPatch.json.error.code, "forbidden_origin");
    const refusedReg = await request(port, "POST", "/api/auth/register", { body: { email: "x@evil.test", password: "password123", name: "X" }, headers: evil, from: "127.0.0.31" });
    assert.equal(refusedReg.json.error.code, "forbidden_origin");
    const allowed = await request(port, "POST", "/api/auth/login", { body: { email: "st2@school.test", password: PASSWORD }, headers: { Origin: ALLOWED }, from: "127.0.0.30" });
    assert.equal(allowed.status, 200, allowed.text);
    assert.equal(allowed.headers["access-control-allow-origin"], ALLOWED);
    const noOrigin = await request(port, "POST", "/api/auth/login", { body: { email: "st2@school.test", password: PASSWORD }, from: "127.0.0.30" });
    assert.equal(noOrigin.status, 200, noOrigin.text);
    // A GET from another origin is answered (it changes nothing), without CORS headers.
    const health = await request(port, "GET", "/api/health", { headers: evil });
    assert.equal(health.status, 200);
    assert.equal(health.headers["access-control-allow-origin"], undefined);
  });

  test("authorization before existence: a student gets forbidden whether or not the id exists; staff still get not_found", async () => {
    const [teacher, student] = await Promise.all([clients.connect(server.url, tok.t1), clients.connect(server.url, tok.st1)]);
    // cb-s1 exists (course cb, which st1 is not in); nope-s does not.
    assert.equal((await ask(teacher, "startAttendanceSession", { session_id: "cb-s1", course_id: "cb" })).ok, true);
    for (const sid of ["cb-s1", "nope-s"]) {
      await refusedWith(student, "startAttendanceSession", { session_id: sid, course_id: "nope-c" }, "forbidden");
      await refusedWith(student, "startAttendanceSession", sid, "forbidden");
      await refusedWith(student, "getAttendanceSessionData", sid, "forbidden");
      await refusedWith(student, "endAttendanceSession", sid, "forbidden");
      await refusedWith(student, "markStudentPresent", { session_id: sid, student_id: "st1" }, "forbidden");
      await refusedWith(student, "bulkUpdateAttendance", { session_id: sid, attendanceUpdates: [{ student_id: "st1", status: "present" }] }, "forbidden");
      await refusedWith(student, "joinAttendanceSession", sid, "forbidden");
      await refusedWith(student, "joinSession", sid, "forbidden");
      await refusedWith(student, "getAttendanceStats", sid, "forbidden");
      await refusedWith(student, "markAttendance", { session_id: sid }, "forbidden");
      await refusedWith(student, "getSessionPresence", sid, "forbidden");
      const csv = await request(port, "GET", `/api/sessions/${sid}/attendance.csv`, { headers: { Authorization: `Bearer ${tok.st1}` } });
      assert.equal(csv.status, 403, `${sid}: ${csv.text}`);
      assert.equal(csv.json.error.code, "forbidden");
    }
    for (const cid of ["cb", "nope-c"]) {
      await refusedWith(student, "subscribeToCourse", cid, "forbidden");
      await refusedWith(student, "checkActiveSessions", cid, "forbidden");
      await refusedWith(student, "getOnlineUsers", { course_id: cid }, "forbidden");
    }
    // Staff learn that an id does not exist.
    await refusedWith(teacher, "getAttendanceSessionData", "nope-s", "not_found");
    const csv = await request(port, "GET", "/api/sessions/nope-s/attendance.csv", { headers: { Authorization: `Bearer ${tok.t1}` } });
    assert.equal(csv.status, 404);
    clients.closeAll();
  });

  test("SPEC/code agreements of #17: an empty auth.token falls back to the header; passwords are not trimmed; CSV numbers are not quoted", async () => {
    // Empty auth.token + a Bearer header: the header's token is used.
    const s = await clients.connect(server.url, "", { extraHeaders: { Authorization: `Bearer ${tok.st1}` }, transports: ["polling"] });
    assert.equal((await ask(s, "checkActiveSessions", "ca")).ok, true);
    s.disconnect();
    // The password " correct horse battery " (with spaces) is exactly that.
    assert.equal((await login(port, "pinned@school.test", ` ${PASSWORD} `, { from: "127.0.0.40" })).status, 200);
    assert.equal((await login(port, "pinned@school.test", PASSWORD, { from: "127.0.0.40" })).status, 401);
    // A negative coordinate is written as a number in the CSV.
    const teacher = await clients.connect(server.url, tok.t1);
    const student = await clients.connect(server.url, tok.st1);
    assert.equal((await ask(teacher, "startAttendanceSession", { session_id: "ca-csv", course_id: "ca" })).ok, true);
    assert.equal((await ask(student, "markAttendance", { session_id: "ca-csv", location: { lat: -33.8568, lng: -151.2153 } })).ok, true);
    const csv = await request(port, "GET", "/api/sessions/ca-csv/attendance.csv", { headers: { Authorization: `Bearer ${tok.t1}` } });
    assert.equal(csv.status, 200);
    assert.match(csv.text, /,self,-33\.8568,-151\.2153\n/);
    clients.closeAll();
  });
});

describe("privacy: no student receives another student's record, identity or location", { skip: SKIP }, () => {
  const STUDENTS = ["pv-ana", "pv-bob", "pv-cyd", "pv-dee", "pv-eve"];
  const NAMES = { "pv-ana": "Ana Alpha", "pv-bob": "Bob Bravo", "pv-cyd": "Cyd Charlie", "pv-dee": "Dee Delta", "pv-eve": "Eve Echo" };
  // Distinct locations inside a 500 m fence, six decimals each.
  const LOC = {
    "pv-ana": { lat: 48.858411, lng: 2.294512 },
    "pv-bob": { lat: 48.858622, lng: 2.294733 },
    "pv-cyd": { lat: 48.858833, lng: 2.294944 },
  };
  let dataDir, server, tok;
  const clients = new Clients();
  before(async () => {
    dataDir = makeDataDir("privacy");
    tok = await seed(dataDir, {
      users: [{ id: "pv-t", email: "pvt@school.test", name: "Tess Teacher", role: "teacher" }, ...STUDENTS.map((id) => ({ id, email: `${id}@school.test`, name: NAMES[id] }))],
      courses: [{ id: "pv-c", teachers: ["pv-t"], students: STUDENTS }],
      tokens: ["pv-t", ...STUDENTS],
    });
    server = await startRollcall(dataDir);
  });
  after(() => shutdown(clients, server, dataDir));

  test("a whole session: start, self check-ins with locations, marks, bulk update, end", async () => {
    const SID = "pv-s1";
    const teacher = await clients.connect(server.url, tok["pv-t"]);
    const staffSeen = [];
    teacher.onAny((event, ...args) => staffSeen.push([event, args]));
    assert.equal((await ask(teacher, "startAttendanceSession", { session_id: SID, course_id: "pv-c", checkin: { geofence: { lat: 48.8585, lng: 2.2946, radius_m: 500 } } })).ok, true);
    // Each student: one socket in both seed rooms, every event recorded.
    const sockets = {};
    const seen = {};
    for (const id of STUDENTS) {
      const s = await clients.connect(server.url, tok[id]);
      seen[id] = [];
      s.onAny((event, ...args) => seen[id].push([event, args]));
      assert.equal((await ask(s, "joinAttendanceSession", SID)).ok, true);
      assert.equal((await ask(s, "joinSession", SID)).ok, true);
      sockets[id] = s;
    }
    // Self check-ins with locations.
    for (const id of Object.keys(LOC)) {
      const ack = await ask(sockets[id], "markAttendance", { session_id: SID, location: LOC[id] });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.deepEqual(ack.attendance.location, LOC[id]);
    }
    // Teacher marks, a bulk update, reads, the end.
    assert.equal((await ask(teacher, "markStudentPresent", { session_id: SID, student_id: "pv-dee" })).ok, true);
    assert.equal((await ask(teacher, "markStudentAbsent", { session_id: SID, student_id: "pv-eve" })).ok, true);
    const bulk = await ask(teacher, "bulkUpdateAttendance", {
      session_id: SID,
      attendanceUpdates: [
        { student_id: "pv-ana", status: "present" },
        { student_id: "pv-bob", status: "absent" },
        { student_id: "pv-eve", status: "present" },
      ],
    });
    assert.equal(bulk.ok, true);
    for (const id of STUDENTS) assert.equal((await ask(sockets[id], "getAttendanceStats", SID)).ok, true);
    assert.equal((await ask(teacher, "sessionUpdate", { sessionId: SID, note: "halfway" })).ok, true);
    assert.equal((await ask(sockets["pv-eve"], "leaveSession", SID)).ok, true);
    const end = await ask(teacher, "endAttendanceSession", SID);
    assert.equal(end.ok, true);
    await sleep(500); // let the last broadcasts arrive

    // Staff saw the roster: every check-in's location and every student's name.
    const staffText = JSON.stringify(staffSeen);
    for (const id of Object.keys(LOC)) {
      assert.ok(staffText.includes(String(LOC[id].lat)), `staff saw ${id}'s location`);
    }
    for (const id of STUDENTS) assert.ok(staffText.includes(NAMES[id]), `staff saw ${id}`);
    const staffEnd = staffSeen.find(([e]) => e === "attendanceSessionEnded")[1][0];
    assert.equal(staffEnd.finalData.attendanceRecords.length, 5);

    for (const id of STUDENTS) {
      const events = seen[id];
      const names = new Set(events.map(([e]) => e));
      // The student did get the session's events (so the checks below are about something).
      for (const e of ["attendanceUpdated", "attendanceBulkUpdated", "attendanceSessionEnded", "attendanceStats"]) {
        assert.ok(names.has(e), `${id} got ${e}: ${[...names]}`);
      }
      for (const [event, args] of events) {
        const text = JSON.stringify(args);
        for (const other of STUDENTS.filter((o) => o !== id)) {
          assert.ok(!text.includes(other), `${id} received ${other}'s id in ${event}: ${text.slice(0, 300)}`);
          assert.ok(!text.includes(NAMES[other]), `${id} received ${other}'s name in ${event}: ${text.slice(0, 300)}`);
          if (LOC[other]) {
            assert.ok(!text.includes(String(LOC[other].lat)), `${id} received ${other}'s latitude in ${event}`);
            assert.ok(!text.includes(String(LOC[other].lng)), `${id} received ${other}'s longitude in ${event}`);
          }
        }
      }
      // Their own record came with its location; the end carries counts only.
      if (LOC[id]) {
        const own = events.filter(([e, [v]]) => e === "attendanceUpdated" && v.student_id === id);
        assert.ok(own.some(([, [v]]) => v.attendanceRecord.location?.lat === LOC[id].lat), `${id} got its own record`);
      }
      const [, [ended]] = events.find(([e]) => e === "attendanceSessionEnded");
      assert.deepEqual(ended.finalData.attendanceRecords, []);
      assert.equal(ended.finalData.statistics.total, 5);
    }
  });
});

describe("unknown events take rate-limit tokens", { skip: SKIP }, () => {
  let dataDir, server, tok;
  const clients = new Clients();
  before(async () => {
    dataDir = makeDataDir("unknown-ev");
    tok = await seed(dataDir, {
      users: [{ id: "ue1", email: "ue1@school.test", name: "U" }],
      courses: [{ id: "uc", teachers: [], students: ["ue1"] }],
      tokens: ["ue1"],
    });
    server = await startRollcall(dataDir, { RATE_LIMIT: "1", RATE_BURST: "5", AUTH_AFTER_CONNECT: "on", MAX_SOCKETS_PER_USER: "2" });
  });
  after(() => shutdown(clients, server, dataDir));

  test("a flood of unknown events drains the bucket: they are refused as rate_limited, and so is the next real request", async () => {
    const s = await clients.connect(server.url, tok.ue1);
    const errors = [];
    s.on("attendanceError", (e) => errors.push(e));
    for (let i = 0; i < 12; i++) s.emit("noSuchEvent", { i });
    const ack = await ask(s, "checkActiveSessions", "uc");
    assert.equal(ack.ok, false);
    assert.equal(ack.error.code, "rate_limited");
    await sleep(200);
    assert.ok(errors.length >= 6, `${errors.length} refusals`);
    for (const e of errors) assert.deepEqual(e, { message: "Too many requests", code: "rate_limited" });
    // An unknown event with an ack gets a failed ack once the bucket is empty.
    const refused = await ask(s, "noSuchEvent", {});
    assert.equal(refused.error.code, "rate_limited");
    // After a refill the socket works again.
    await sleep(1500);
    assert.equal((await ask(s, "checkActiveSessions", "uc")).ok, true);
    clients.closeAll();
    await sleep(300);
  });

  test("the sockets-per-user cap also holds for authenticate-after-connect: authError too_many_connections", async () => {
    const two = [await clients.connect(server.url, tok.ue1), await clients.connect(server.url, tok.ue1)];
    const anon = await clients.connect(server.url, undefined);
    const err = await ask(anon, "authenticate", { token: tok.ue1 });
    assert.deepEqual(err, { ok: false, error: { code: "too_many_connections", message: "at most 2 sockets per user" } });
    two[0].disconnect();
    let ok;
    // (Each refusal counts towards the 10 after which §4.22.3 disconnects.)
    for (let i = 0; i < 5 && !ok?.ok; i++) {
      await sleep(300);
      ok = await ask(anon, "authenticate", { token: tok.ue1 });
    }
    assert.equal(ok.ok, true, JSON.stringify(ok));
    clients.closeAll();
    await sleep(300);
  });

  test("on /messenger too: unknown events drain its bucket (messageError rate_limited)", async () => {
    const m = await clients.connect(`${server.url}/messenger`, tok.ue1);
    const errors = [];
    m.on("messageError", (e) => errors.push(e));
    for (let i = 0; i < 12; i++) m.emit("noSuchEvent", { i });
    const ack = await ask(m, "getMessages", { with: "nobody" });
    assert.equal(ack.error.code, "rate_limited");
    await sleep(200);
    assert.ok(errors.length >= 6, `${errors.length} refusals`);
    for (const e of errors.slice(0, 6)) assert.deepEqual(e, { message: "Too many requests", code: "rate_limited" });
  });
});
