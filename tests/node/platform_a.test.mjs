// End to end, platform features of issue #12 (SPEC.md §4.15-§4.21) with the
// real npm `socket.io-client` against the real `rollcall` binary
// (target/debug/rollcall) on fresh sled data directories:
//
//   platform       - a notification reaching three devices of one user (one
//                    polling, two WebSocket) and /notifications; an offline
//                    user getting three notifications once each on reconnect,
//                    paging and read marks; role notifications; the attendance
//                    product's notifications; topics (allowed, forbidden,
//                    unknown, seed 003's subscribe:<topic>); presence flipping
//                    only when the last device leaves; online lists and session
//                    presence; the monitor API (admin ok, student 403); bad
//                    input (oversized notification) with other traffic intact
//   socket path    - SOCKET_PATH=/api/socket (seed 004)
//   shutdown       - SIGTERM under a stream of acked marks and broadcasts:
//                    every client sees server_shutdown, exit status 0, no
//                    acked mark lost, clients recovered by the restarted server
//
// Skipped with INTEROP_IMPL=node (there is no Node reference of the app).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Recorder, sleep, waitFor } from "./harness.mjs";
import { Clients, call, ids, makeDataDir, seed, shutdown, startRollcall } from "./attendance_helpers.mjs";

const SKIP = process.env.INTEROP_IMPL === "node" ? "no Node reference of the rollcall app" : false;
const T = 10000; // bound for any single wait
const GRACE = 400; // only to assert that something does NOT arrive

const USERS = [
  { id: "a1", email: "a1@school.test", name: "Admin One", role: "admin" },
  { id: "t1", email: "t1@school.test", name: "Teacher One", role: "teacher" },
  { id: "s1", email: "s1@school.test", name: "Student One" },
  { id: "s2", email: "s2@school.test", name: "Student Two" },
  { id: "s3", email: "s3@school.test", name: "Student Three" },
  { id: "s4", email: "s4@school.test", name: "Student Four" },
];

async function ok(socket, event, payload) {
  const ack = await call(socket, event, payload, T);
  assert.equal(ack?.ok, true, `${event} ${JSON.stringify(payload)} -> ${JSON.stringify(ack)}`);
  return ack;
}

/** The refusal: failed ack with `code`, and the error event with the same text. */
async function refused(socket, event, payload, code, errorEvent) {
  const ev = waitFor(socket, errorEvent, T);
  ev.catch(() => {});
  const ack = await call(socket, event, payload, T);
  assert.equal(ack?.ok, false, `${event}: ${JSON.stringify(ack)}`);
  assert.equal(ack.error.code, code, `${event}: ${JSON.stringify(ack)}`);
  const [e] = await ev;
  assert.deepEqual(e, { message: ack.error.message, code });
  return ack.error;
}

const post = (url, path, token, body) =>
  fetch(url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

/** Resolves with `list()` once it holds at least `n` items (bounded by T). */
async function until(list, n, what) {
  const end = Date.now() + T;
  while (list().length < n) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${n} ${what} (got ${list().length})`);
    await sleep(20);
  }
  return list();
}

/** Asserts that `socket` gets no `event` during the grace period. */
async function silent(socket, event, what) {
  const rec = new Recorder(socket, event);
  await sleep(GRACE);
  rec.stop();
  assert.equal(rec.items.length, 0, `${what}: unexpected ${event} ${JSON.stringify(rec.items)}`);
}

describe("platform: notifications, topics, presence, monitor", { skip: SKIP }, () => {
  let dataDir, server, tok;
  const clients = new Clients();

  before(async () => {
    dataDir = makeDataDir("platform");
    tok = await seed(dataDir, {
      users: USERS,
      courses: [{ id: "c1", name: "Maths", teachers: ["t1"], students: ["s1", "s2"] }],
      tokens: USERS.map((u) => u.id),
    });
    server = await startRollcall(dataDir, { LOW_ATTENDANCE_PCT: "75" });
  });
  after(() => shutdown(clients, server, dataDir));

  test("a notification reaches all three devices of a user and /notifications", async () => {
    const polling = await clients.connect(server.url, tok.s1, { transports: ["polling"], upgrade: false });
    const ws1 = await clients.connect(server.url, tok.s1);
    const ws2 = await clients.connect(server.url, tok.s1);
    const nsSock = await clients.connect(`${server.url}/notifications`, tok.s1);
    const other = await clients.connect(server.url, tok.s2);
    assert.equal(polling.io.engine.transport.name, "polling");
    const devices = [polling, ws1, ws2, nsSock];
    const got = devices.map((s) => waitFor(s, "notification", T));
    const res = await post(server.url, "/api/admin/notifications", tok.a1, {
      userId: "s1", title: "Booking Confirmed", message: "See you", type: "success", actionUrl: "/b/1",
    });
    assert.equal(res.status, 201);
    const body = await res.json();
    assert.equal(body.ok, true);
    assert.equal(body.delivered, 4);
    const n = body.notification;
    assert.match(n.id, /^[0-9a-f]{16}$/);
    assert.deepEqual(n.target, { type: "user", id: "s1" });
    for (const p of got) {
      const [e] = await p;
      assert.deepEqual(e, n);
      assert.equal(e.title, "Booking Confirmed");
      assert.equal(e.type, "success");
      assert.equal(e.actionUrl, "/b/1");
      assert.equal(e.read, false);
    }
    await silent(other, "notification", "another user");
    // The other devices hear of a read mark; the unread count follows.
    const seen = waitFor(ws2, "notificationsRead", T);
    const ack = await ok(ws1, "markNotificationRead", { id: n.id });
    assert.deepEqual(ack.read, [n.id]);
    assert.equal(ack.unread, 0);
    assert.deepEqual((await seen)[0], { ids: [n.id], unread: 0 });
    for (const s of devices.concat(other)) s.disconnect();
  });

  test("an offline user gets the three notifications they missed, once each", async () => {
    const sent = [];
    for (const title of ["one", "two", "three"]) {
      const res = await post(server.url, "/api/admin/notifications", tok.a1, { userId: "s3", title, message: `m-${title}` });
      assert.equal(res.status, 201);
      const b = await res.json();
      assert.equal(b.delivered, 0);
      sent.push(b.notification.id);
    }
    const s = clients.socket(server.url, tok.s3);
    const rec = new Recorder(s, "notification");
    await waitFor(s, "connect", T, ["connect_error"]);
    const items = await rec.waitCount(3, T);
    await sleep(GRACE);
    assert.equal(rec.items.length, 3, "each once");
    assert.deepEqual(items.map(([e]) => e.id), sent, "oldest first");
    assert.deepEqual(items.map(([e]) => e.title), ["one", "two", "three"]);
    for (const [e] of items) assert.equal(e.missed, true);
    // Paging, newest first.
    const p1 = await ok(s, "getNotifications", { limit: 2 });
    assert.deepEqual(p1.notifications.map((x) => x.title), ["three", "two"]);
    assert.equal(p1.unread, 3);
    const p2 = await ok(s, "getNotifications", { limit: 2, before: p1.nextBefore });
    assert.deepEqual(p2.notifications.map((x) => x.title), ["one"]);
    assert.equal(p2.nextBefore, null);
    await refused(s, "getNotifications", { limit: 0 }, "invalid_payload", "notificationError");
    await refused(s, "markNotificationRead", { id: "nope" }, "invalid_payload", "notificationError");
    const all = await ok(s, "markNotificationRead", { all: true });
    assert.deepEqual(all.read, sent);
    assert.equal(all.unread, 0);
    s.disconnect();
    // Read ones are not replayed.
    const again = clients.socket(server.url, tok.s3);
    const rec2 = new Recorder(again, "notification");
    await waitFor(again, "connect", T, ["connect_error"]);
    await sleep(GRACE);
    assert.equal(rec2.items.length, 0);
    again.disconnect();
  });

  test("role notifications reach the role, with read state per user", async () => {
    const s1 = await clients.connect(server.url, tok.s1);
    const t1 = await clients.connect(server.url, tok.t1);
    const got = waitFor(s1, "notification", T);
    const res = await post(server.url, "/api/admin/notifications", tok.a1, { role: "student", title: "Exams", message: "Next week" });
    assert.equal(res.status, 201);
    const { notification: n } = await res.json();
    assert.deepEqual(n.target, { type: "role", id: "student" });
    assert.deepEqual((await got)[0], n);
    await silent(t1, "notification", "a teacher");
    await ok(s1, "markNotificationRead", n.id);
    // s4 was offline: it is still unread for them, and replayed.
    const s4 = clients.socket(server.url, tok.s4);
    const replay = waitFor(s4, "notification", T);
    await waitFor(s4, "connect", T, ["connect_error"]);
    const [e] = await replay;
    assert.equal(e.id, n.id);
    assert.equal(e.read, false);
    const page = await ok(s1, "getNotifications", { unreadOnly: true });
    assert.ok(!page.notifications.some((x) => x.id === n.id), "read for s1");
    for (const s of [s1, t1, s4]) s.disconnect();
    const bad = await post(server.url, "/api/admin/notifications", tok.a1, { role: "wizard", title: "x" });
    assert.equal(bad.status, 400);
    const both = await post(server.url, "/api/admin/notifications", tok.a1, { role: "student", userId: "s1", title: "x" });
    assert.equal(both.status, 400);
    const nobody = await post(server.url, "/api/admin/notifications", tok.a1, { userId: "ghost", title: "x" });
    assert.equal(nobody.status, 404);
  });

  test("an oversized notification is refused and the sender's other traffic works", async () => {
    const huge = await post(server.url, "/api/admin/notifications", tok.a1, { userId: "s1", title: "big", message: "x".repeat(9000) });
    assert.equal(huge.status, 413);
    assert.deepEqual((await huge.json()).error.code, "payload_too_large");
    const empty = await post(server.url, "/api/admin/notifications", tok.a1, { userId: "s1" });
    assert.equal(empty.status, 400);
    const student = await post(server.url, "/api/admin/notifications", tok.s1, { userId: "s2", title: "x" });
    assert.equal(student.status, 403);
    const anon = await post(server.url, "/api/admin/notifications", undefined, { userId: "s2", title: "x" });
    assert.equal(anon.status, 401);
    const fine = await post(server.url, "/api/admin/notifications", tok.a1, { userId: "s1", title: "small" });
    assert.equal(fine.status, 201);
  });

  test("topics: allowed, forbidden, unknown, and seed 003's subscribe:<topic>", async () => {
    const student = await clients.connect(server.url, tok.s2);
    const admin = await clients.connect(server.url, tok.a1);
    const sub = await ok(student, "subscribe", { topic: "announcements" });
    assert.equal(sub.event, "announcements_update");
    await refused(student, "subscribe", { topic: "payments" }, "forbidden", "topicError");
    await refused(student, "subscribe", "nope", "not_found", "topicError");
    await refused(student, "subscribe", { topic: "bad name!" }, "invalid_payload", "topicError");
    // Seed 003 spelling, without an ack: the refusal comes as topicError.
    const err = waitFor(student, "topicError", T);
    student.emit("subscribe:payments");
    assert.equal((await err)[0].code, "forbidden");
    const unknown = waitFor(student, "topicError", T);
    student.emit("subscribe:unknown-topic");
    assert.equal((await unknown)[0].code, "not_found");
    // The admin subscribes the seed 003 way.
    const subscribed = waitFor(admin, "subscribed", T);
    admin.emit("subscribe:payments");
    assert.deepEqual((await subscribed)[0], { topic: "payments", event: "payment_update" });
    // The student's other traffic still works after the refusals.
    await ok(student, "getNotifications", {});
    const pay = waitFor(admin, "payment_update", T);
    const res = await post(server.url, "/api/admin/topics/payments/publish", tok.a1, { data: { invoiceId: "inv_123", status: "paid" } });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).delivered, 1);
    const [p] = await pay;
    assert.equal(p.topic, "payments");
    assert.equal(p.data.invoiceId, "inv_123");
    await silent(student, "payment_update", "not subscribed");
    const ann = waitFor(student, "announcements_update", T);
    assert.equal((await post(server.url, "/api/admin/topics/announcements/publish", tok.a1, { data: "hello" })).status, 200);
    assert.equal((await ann)[0].data, "hello");
    await ok(student, "unsubscribe", "announcements");
    assert.equal((await post(server.url, "/api/admin/topics/announcements/publish", tok.a1, { data: "again" })).status, 200);
    await silent(student, "announcements_update", "unsubscribed");
    const missing = await post(server.url, "/api/admin/topics/nope/publish", tok.a1, { data: 1 });
    assert.equal(missing.status, 404);
    assert.equal((await post(server.url, "/api/admin/topics/payments/publish", tok.t1, { data: 1 })).status, 403);
    student.disconnect();
    admin.disconnect();
  });

  test("presence flips only when the last device leaves", async () => {
    const admin = await clients.connect(server.url, tok.a1);
    const teacher = await clients.connect(server.url, tok.t1);
    await ok(teacher, "subscribeToCourse", "c1");
    const status = new Recorder(admin, "userStatusChanged");
    const viaCourse = new Recorder(teacher, "userStatusChanged");
    // Other users' flips (e.g. the teacher's own) may arrive too: look at s2's.
    const of = (rec) => rec.items.map(([e]) => e).filter((e) => e.userId === "s2");
    const seen = (rec, n) => until(() => of(rec), n, "userStatusChanged of s2");
    const d1 = await clients.connect(server.url, tok.s2, { transports: ["polling"], upgrade: false });
    const [on] = await seen(status, 1);
    assert.equal(on.status, "online");
    assert.equal(on.connections, 1);
    assert.equal(on.role, "student");
    await seen(viaCourse, 1);
    const d2 = await clients.connect(server.url, tok.s2);
    const d3 = await clients.connect(`${server.url}/notifications`, tok.s2);
    await sleep(GRACE);
    assert.equal(of(status).length, 1, "no flip for more devices");
    const list = await ok(admin, "getOnlineUsers", {});
    const s2 = list.data.users.find((u) => u.userId === "s2");
    assert.equal(s2.connections, 3);
    const course = await ok(teacher, "getOnlineUsers", { course_id: "c1" });
    assert.deepEqual(course.data.users.map((u) => u.userId), ["s2", "t1"]);
    d1.disconnect();
    d3.disconnect();
    await sleep(GRACE);
    assert.equal(of(status).length, 1, "no flip while a device remains");
    d2.disconnect();
    const [, off] = await seen(status, 2);
    assert.equal(off.status, "offline");
    assert.equal(off.connections, 0);
    await seen(viaCourse, 2);
    const student = await clients.connect(server.url, tok.s1);
    await refused(student, "getOnlineUsers", {}, "forbidden", "presenceError");
    await refused(student, "getOnlineUsers", null, "invalid_payload", "presenceError");
    for (const s of [admin, teacher, student]) s.disconnect();
  });

  test("the attendance product notifies: session started, marked absent, low attendance", async () => {
    const teacher = await clients.connect(server.url, tok.t1);
    const s1 = await clients.connect(server.url, tok.s1);
    const s2 = await clients.connect(server.url, tok.s2);
    // Earlier tests left unread notifications, replayed with `missed`: only live ones count.
    const r1 = new Recorder(s1, "notification");
    const r2 = new Recorder(s2, "notification");
    const live = (rec, n) => until(() => rec.items.map(([e]) => e).filter((e) => !e.missed), n, "notification");
    await ok(teacher, "startAttendanceSession", { session_id: "c1-n1", course_id: "c1" });
    const [n1] = await live(r1, 1);
    assert.equal(n1.type, "session_started");
    assert.deepEqual(n1.data, { session_id: "c1-n1", course_id: "c1" });
    await live(r2, 1);
    await ok(s1, "joinAttendanceSession", "c1-n1");
    const pres = await ok(teacher, "getSessionPresence", "c1-n1");
    const byId = Object.fromEntries(pres.data.students.map((x) => [x.studentId, x]));
    assert.equal(byId.s1.joined, true);
    assert.equal(byId.s2.joined, false);
    assert.equal(byId.s2.online, true);
    await refused(s1, "getSessionPresence", "c1-n1", "forbidden", "presenceError");
    await ok(teacher, "markStudentAbsent", { session_id: "c1-n1", student_id: "s2" });
    const [, n2] = await live(r2, 2);
    assert.equal(n2.type, "marked_absent");
    assert.equal(n2.data.session_id, "c1-n1");
    // Told once per session: a second absent mark is not repeated.
    await ok(teacher, "markStudentAbsent", { session_id: "c1-n1", student_id: "s2" });
    await ok(teacher, "markStudentPresent", { session_id: "c1-n1", student_id: "s1" });
    await ok(teacher, "endAttendanceSession", "c1-n1");
    const [, , n3] = await live(r2, 3);
    assert.equal(n3.type, "low_attendance");
    assert.equal(n3.data.percent, 0);
    assert.equal(n3.data.threshold, 75);
    await sleep(GRACE);
    const types = (rec) => rec.items.map(([e]) => e).filter((e) => !e.missed).map((e) => e.type);
    assert.deepEqual(types(r1), ["session_started"], "s1 was present");
    assert.deepEqual(types(r2), ["session_started", "marked_absent", "low_attendance"]);
    for (const s of [teacher, s1, s2]) s.disconnect();
  });

  test("monitor API: status and actions for admins, 403 for students", async () => {
    const admin = await clients.connect(server.url, tok.a1);
    const poll = await clients.connect(server.url, tok.s1, { transports: ["polling"], upgrade: false });
    const ns = await clients.connect(`${server.url}/notifications`, tok.s1);
    const get = (t) => fetch(`${server.url}/api/socket-test`, { headers: t ? { authorization: `Bearer ${t}` } : {} });
    assert.equal((await get(tok.s1)).status, 403);
    assert.equal((await get()).status, 401);
    const res = await get(tok.a1);
    assert.equal(res.status, 200);
    const st = await res.json();
    assert.equal(st.ok, true);
    assert.ok(st.uptimeSecs >= 0);
    assert.ok(st.connections.byTransport.polling >= 1, JSON.stringify(st));
    assert.ok(st.connections.byTransport.websocket >= 2, JSON.stringify(st));
    assert.ok(st.connections.byNamespace["/"] >= 2);
    assert.ok(st.connections.byNamespace["/notifications"] >= 1);
    assert.ok(st.clients >= 3);
    assert.ok(st.onlineUsers.users.some((u) => u.userId === "s1" && u.connections >= 2));
    assert.equal(typeof st.queues.packets, "number");
    assert.ok(st.topics.some((t) => t.name === "payments"));
    const msg = waitFor(poll, "testMessage", T);
    const a = await post(server.url, "/api/socket-test", tok.a1, { action: "sendToUser", targetUserId: "s1", message: "hi" });
    assert.equal(a.status, 200);
    assert.equal((await a.json()).delivered, 1);
    assert.equal((await msg)[0].message, "hi");
    const list = waitFor(admin, "getOnlineUsers", T);
    assert.equal((await post(server.url, "/api/socket-test", tok.a1, { action: "emitOnlineUsers" })).status, 200);
    assert.ok((await list)[0].users.some((u) => u.userId === "a1"));
    const all = waitFor(poll, "testMessage", T);
    assert.equal((await post(server.url, "/api/socket-test", tok.a1, { action: "broadcast", message: "all" })).status, 200);
    assert.equal((await all)[0].message, "all");
    assert.equal((await post(server.url, "/api/socket-test", tok.a1, { action: "explode" })).status, 400);
    assert.equal((await post(server.url, "/api/socket-test", tok.a1, { action: "sendToUser" })).status, 400);
    assert.equal((await post(server.url, "/api/socket-test", tok.s1, { action: "broadcast" })).status, 403);
    for (const s of [admin, poll, ns]) s.disconnect();
  });
});

describe("socket path: SOCKET_PATH=/api/socket", { skip: SKIP }, () => {
  let dataDir, server, tok;
  const clients = new Clients();
  before(async () => {
    dataDir = makeDataDir("path");
    tok = await seed(dataDir, { users: USERS.slice(0, 3), tokens: ["a1", "s1"] });
    server = await startRollcall(dataDir, { SOCKET_PATH: "/api/socket" });
  });
  after(() => shutdown(clients, server, dataDir));

  test("clients connect at the configured path; the default path is gone", async () => {
    for (const transports of [["polling"], ["websocket"]]) {
      const s = await clients.connect(server.url, tok.s1, { path: "/api/socket", transports });
      await ok(s, "getNotifications", {});
      s.disconnect();
    }
    const n = await clients.connect(`${server.url}/notifications`, tok.s1, { path: "/api/socket" });
    n.disconnect();
    const err = await clients.refused(server.url, tok.s1, { transports: ["polling"] }, T);
    assert.ok(err instanceof Error);
    const old = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(old.status, 404);
    const monitor = await fetch(`${server.url}/api/socket-test`, { headers: { authorization: `Bearer ${tok.a1}` } });
    assert.equal(monitor.status, 200);
  });
});

describe("graceful shutdown: SIGTERM under a broadcast stream", { skip: SKIP }, () => {
  const STUDENTS = ids("p", 2, 40);
  let dataDir, server, tok;
  const clients = new Clients();
  before(async () => {
    dataDir = makeDataDir("shutdown");
    tok = await seed(dataDir, {
      users: [USERS[1], ...STUDENTS.map((id) => ({ id, email: `${id}@school.test`, name: id }))],
      courses: [{ id: "c9", teachers: ["t1"], students: STUDENTS }],
      tokens: ["t1", "p01", "p02", "p03"],
    });
  });
  after(() => shutdown(clients, server, dataDir));

  test("every client sees server_shutdown, exit 0, no acked mark lost, clients recover", async () => {
    const env = { RECOVERY_MS: "60000", SHUTDOWN_DRAIN_MS: "2000", SHUTDOWN_RECONNECT_DELAY_MS: "300" };
    server = await startRollcall(dataDir, env);
    const port = server.port;
    const opts = { reconnection: true, reconnectionDelay: 300, reconnectionDelayMax: 600 };
    const teacher = await clients.connect(server.url, tok.t1, opts);
    await ok(teacher, "startAttendanceSession", { session_id: "c9-s", course_id: "c9" });
    const watchers = [];
    for (const [i, id] of ["p01", "p02", "p03"].entries()) {
      const transports = i === 0 ? ["polling"] : ["websocket"];
      const s = await clients.connect(server.url, tok[id], { ...opts, transports, upgrade: false });
      await ok(s, "joinAttendanceSession", "c9-s");
      watchers.push(s);
    }
    const sockets = [teacher, ...watchers];
    const names = ["teacher", "polling watcher", "websocket watcher", "websocket watcher"];
    const notices = sockets.map((s, i) =>
      waitFor(s, "server_shutdown", T, ["disconnect"]).catch((e) => {
        throw new Error(`${names[i]}: ${e.message}`);
      }),
    );
    for (const p of notices) p.catch(() => {});
    const updates = watchers.map((s) => new Recorder(s, "attendanceUpdated"));
    // Marks one after another; each ack means durable.
    const acked = [];
    let stop = false;
    const stream = (async () => {
      for (const id of STUDENTS) {
        if (stop) break;
        try {
          const ack = await call(teacher, "markStudentPresent", { session_id: "c9-s", student_id: id }, 3000);
          if (ack?.ok) acked.push(id);
        } catch {
          break; // the server went away mid-request
        }
      }
    })();
    await updates[0].waitCount(10, T);
    const exit = server.stop(); // SIGTERM
    for (const p of notices) {
      const [n] = await p;
      assert.equal(n.reason, "server shutting down");
      assert.equal(n.reconnectDelayMs, 300);
    }
    const { code, signal } = await exit;
    assert.equal(signal, null);
    assert.equal(code, 0, server.stderr());
    stop = true;
    await stream;
    assert.ok(acked.length >= 10, `acked ${acked.length}`);
    // Restart on the same port: the clients reconnect by themselves.
    server = await startRollcall(dataDir, { ...env, PORT: String(port) });
    await Promise.all(sockets.map((s) => (s.connected ? null : waitFor(s, "connect", T))));
    for (const s of watchers.slice(1)) assert.equal(s.recovered, true, "WebSocket watcher recovered");
    const data = await ok(teacher, "getAttendanceSessionData", "c9-s");
    const present = new Set(data.data.attendanceRecords.filter((r) => r.status === "present").map((r) => r.student_id));
    for (const id of acked) assert.ok(present.has(id), `acked mark of ${id} kept`);
    // The recovered rooms work: a new mark reaches the watchers.
    const after = watchers.map((s) => waitFor(s, "attendanceUpdated", T));
    await ok(teacher, "markStudentAbsent", { session_id: "c9-s", student_id: "p40" });
    // The watchers are students: they get the students' view (SPEC §4.24).
    for (const p of after) assert.deepEqual(Object.keys((await p)[0]).sort(), ["session_id", "status", "updated_at"]);
  });
});
