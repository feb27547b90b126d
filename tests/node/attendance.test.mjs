// End to end: the real npm `socket.io-client` against the real `rollcall` binary
// (target/debug/rollcall, `cargo build --bin rollcall`) on real sled data
// directories (a fresh temporary DATA_DIR per group, removed afterwards).
// Users and courses are made with the admin CLI before each server starts
// (sled: one process at a time); tokens come from `rollcall token` or are
// made here with node:crypto for the refusal cases.
//
// Groups (each with its own server and data directory):
//   seed flow      - a teacher and 30 students through a whole session with
//                    self check-in; seed 000 room events; the authorization
//                    matrix; invalid payloads; every authentication refusal;
//                    the HTTP API (login, register, health, CSV export)
//   rate limiting  - RATE_LIMIT / RATE_BURST
//   durability     - 500 acked marks survive SIGKILL; restart mid-session;
//                    a reconnecting teacher keeps control; CLI export
//   late enrollment - students enrolled after the start get a record on
//                    join, check-in or mark
//   idle expiry    - SESSION_IDLE_SECS / IDLE_CHECK_SECS end untouched sessions
//
// Skipped with INTEROP_IMPL=node (there is no Node reference of the app).
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Recorder, sleep, waitFor } from "./harness.mjs";
import {
  Clients,
  addCourse,
  call,
  claimsFor,
  cli,
  craftJwt,
  ids,
  importUsers,
  makeDataDir,
  mintToken,
  mintTokens,
  seed,
  shutdown,
  startRollcall,
} from "./attendance_helpers.mjs";

const SKIP = process.env.INTEROP_IMPL === "node" ? "no Node reference of the rollcall app" : false;
const T = 10000; // bound for any single wait
const GRACE = 300; // only to assert that something does NOT arrive

const FENCE = { lat: 48.8584, lng: 2.2945, radius_m: 150 };
const INSIDE = { lat: 48.859, lng: 2.295 }; // ~75 m from the centre
const OUTSIDE = { lat: 48.87, lng: 2.2945 }; // ~1.3 km away
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const studentName = (id) => `Student ${id.slice(1)}`;

/**
 * Sends `event` with an ack and checks the refusal: the ack is exactly
 * {ok:false, error:{code, message}} and the socket got `errorEvent`
 * {message, code} with the same text.
 */
async function refused(socket, event, payload, code, errorEvent = "attendanceError") {
  const what = `${event} ${JSON.stringify(payload)?.slice(0, 120)}`;
  const ev = waitFor(socket, errorEvent, T);
  ev.catch(() => {});
  const ack = await call(socket, event, payload, T);
  assert.equal(ack?.ok, false, `${what}: expected a refusal, got ${JSON.stringify(ack)?.slice(0, 300)}`);
  assertKeys(ack, ["error", "ok"], what);
  assert.equal(ack.error.code, code, `${what}: ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.error.message, "string", what);
  assert.ok(ack.error.message.length > 0, what);
  const [e] = await ev;
  assert.deepEqual(e, { message: ack.error.message, code }, what);
  return ack.error;
}

/** Sends `event` with an ack and asserts it succeeded; resolves with the ack. */
async function ok(socket, event, payload) {
  const ack = await call(socket, event, payload, T);
  assert.equal(ack?.ok, true, `${event} ${JSON.stringify(payload)?.slice(0, 120)} -> ${JSON.stringify(ack)?.slice(0, 300)}`);
  return ack;
}

/** Resolves with the first argument of the next `event`, for each socket. */
const nextOf = (sockets, event, ms = T) =>
  Promise.all(sockets.map((s) => waitFor(s, event, ms).then(([v]) => v)));

/** Resolves with the first argument of the first `event` for which `pred` holds. */
function waitForMatch(socket, event, pred, ms = T) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`timed out after ${ms} ms waiting for a matching "${event}"`));
    }, ms);
    const on = (v) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      socket.off(event, on);
      resolve(v);
    };
    socket.on(event, on);
  });
}

/** Polls `fn` every 50 ms until it returns a truthy value (bounded). */
async function pollUntil(fn, what, ms = T) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

const health = async (url) => (await fetch(`${url}/api/health`)).json();

/** Asserts the exact set of keys of an object. */
function assertKeys(obj, keys, msg) {
  assert.deepEqual(Object.keys(obj).sort(), [...keys].sort(), msg);
}

function assertRecord(rec, expected) {
  assertKeys(rec, ["location", "marked_at", "marked_by", "method", "session_id", "status", "student_id", "student_name"]);
  for (const [k, v] of Object.entries(expected)) assert.deepEqual(rec[k], v, `record ${rec.student_id}.${k}`);
  if (rec.marked_by === null) assert.equal(rec.marked_at, null);
  else assert.match(rec.marked_at, ISO);
}

function byStudent(records) {
  return Object.fromEntries(records.map((r) => [r.student_id, r]));
}

// ---------------------------------------------------------------------------

describe("rollcall seed flow, authorization, authentication and HTTP", { skip: SKIP }, () => {
  const S30 = ids("s", 3, 30);
  const PASSWORD = "correct horse battery";
  let dataDir;
  let server;
  let tok = {};
  const oldTok = {};
  const clients = new Clients();

  before(async () => {
    dataDir = makeDataDir("seed");
    await importUsers(dataDir, [
      { id: "t1", email: "t1@example.test", name: "Teacher One", role: "teacher", password: PASSWORD },
      { id: "t2", email: "t2@example.test", name: "Teacher Two", role: "teacher" },
      { id: "adm", email: "adm@example.test", name: "Admin", role: "admin" },
      ...S30.map((id) => ({ id, email: `${id}@example.test`, name: studentName(id), role: "student" })),
      { id: "x01", email: "x01@example.test", name: "Outsider", role: "student" },
      { id: "dis01", email: "dis01@example.test", name: "Disabled", role: "student", password: PASSWORD },
      { id: "rev01", email: "rev01@example.test", name: "Revoked", role: "student" },
      { id: "evil1", email: "evil1@example.test", name: "=cmd|' /C calc'!A0", role: "student" },
      { id: "evil2", email: "evil2@example.test", name: 'Doe, "Jane"', role: "student" },
    ]);
    await addCourse(dataDir, { id: "c1", name: "Course One", teachers: ["t1"], students: S30 });
    await addCourse(dataDir, { id: "c2", name: "Course Two", teachers: ["t2"], students: ["x01"] });
    await addCourse(dataDir, { id: "c3", name: "Course Three", teachers: ["t1"], students: ["evil1", "evil2"] });
    oldTok.dis01 = await mintToken(dataDir, "dis01");
    oldTok.rev01 = await mintToken(dataDir, "rev01");
    await cli(dataDir, ["user", "disable", "dis01"]);
    await cli(dataDir, ["user", "revoke-tokens", "rev01"]);
    tok = await mintTokens(dataDir, ["t1", "t2", "adm", "x01", "rev01", "evil1", "evil2", ...S30]);
    // Every login and registration of this group comes from 127.0.0.1: the
    // per-address limits (SPEC §4.24, tested in abuse_app.test.mjs) are raised.
    server = await startRollcall(dataDir, { LOGIN_BURST: "1000", REGISTER_BURST: "1000", LOGIN_BACKOFF_AFTER: "1000" });
  });

  afterEach(() => clients.closeAll());

  after(() => shutdown(clients, server, dataDir));

  test("a teacher and 30 students through a whole session: seed events, acks, self check-in, statistics, course subscribers", async () => {
    const SID = "sess-main";
    const url = server.url;
    const teacher = await clients.connect(url, tok.t1);
    const students = await clients.connectMany(url, S30.map((id) => tok[id]));
    const st = Object.fromEntries(S30.map((id, i) => [id, students[i]]));
    const subs = [st.s001, st.s002];
    // Everything every socket receives, to check that no secret leaks.
    const seenByTeacher = [];
    const seenByStudents = [];
    teacher.onAny((ev, ...args) => seenByTeacher.push(JSON.stringify([ev, ...args])));
    for (const s of students) s.onAny((ev, ...args) => seenByStudents.push(JSON.stringify([ev, ...args])));

    // Course subscribers, before any session.
    {
      const ev = waitFor(subs[0], "activeSessionsData", T);
      const ack = await ok(subs[0], "subscribeToCourse", { course_id: "c1" });
      assert.deepEqual(ack, { ok: true, data: { course_id: "c1", activeSessions: [] } });
      assert.deepEqual((await ev)[0], { course_id: "c1", activeSessions: [] });
      await ok(subs[1], "subscribeToCourse", { courseId: "c1" });
    }

    // Start with self check-in by code and geofence.
    const started = waitFor(teacher, "attendanceSessionStarted", T);
    const codeEv = waitFor(teacher, "checkinCode", T);
    const courseStarted = nextOf(subs, "courseSessionStarted");
    const courseActive = nextOf(subs, "activeSessionsData");
    const startAck = await ok(teacher, "startAttendanceSession", {
      session_id: SID,
      course_id: "c1",
      checkin: { code: true, geofence: FENCE },
    });
    assertKeys(startAck, ["ok", "session", "session_id", "totalStudents"]);
    assert.equal(startAck.session_id, SID);
    assert.equal(startAck.totalStudents, 30);
    const session = startAck.session;
    assert.equal(session.session_id, SID);
    assert.equal(session.course_id, "c1");
    assert.equal(session.teacher_id, "t1");
    assert.equal(session.status, "active");
    assert.match(session.started_at, ISO);
    assert.equal(session.ended_at, null);
    assert.deepEqual(session.checkin, { code_required: true, code_period_secs: 30, geofence: FENCE });

    const [startedEv] = await started;
    assertKeys(startedEv, ["attendanceRecords", "session", "session_id", "totalStudents"]);
    assert.equal(startedEv.session_id, SID);
    assert.deepEqual(startedEv.session, session);
    assert.equal(startedEv.totalStudents, 30);
    assert.deepEqual(startedEv.attendanceRecords.map((r) => r.student_id), S30);
    for (const r of startedEv.attendanceRecords) {
      assertRecord(r, {
        session_id: SID,
        student_name: studentName(r.student_id),
        status: "absent",
        marked_by: null,
        method: "initial",
        location: null,
      });
    }
    const [codeMsg] = await codeEv;
    assertKeys(codeMsg, ["code", "expires_at", "period_secs", "session_id"]);
    assert.equal(codeMsg.session_id, SID);
    assert.match(codeMsg.code, /^\d{6}$/);
    assert.match(codeMsg.expires_at, ISO);
    assert.equal(codeMsg.period_secs, 30);
    const code = codeMsg.code;

    for (const ev of await courseStarted) {
      assert.deepEqual(ev, {
        course_id: "c1",
        session_id: SID,
        teacher_id: "t1",
        teacher_name: "Teacher One",
        started_by: "Teacher One",
        started_at: session.started_at,
      });
    }
    for (const ev of await courseActive) {
      assert.deepEqual(ev, {
        course_id: "c1",
        activeSessions: [{ sessionId: SID, teacherId: "t1", studentCount: 0, startedAt: session.started_at }],
      });
    }

    // Every student joins (both id spellings); the teacher hears of each.
    const joinedRec = new Recorder(teacher, "studentJoinedAttendance");
    await Promise.all(
      students.map(async (s, i) => {
        const ev = waitFor(s, "attendanceSessionJoined", T);
        const ack = await ok(s, "joinAttendanceSession", i % 2 ? { sessionId: SID } : { session_id: SID });
        assert.deepEqual(ack, { ok: true, session_id: SID });
        assert.deepEqual((await ev)[0], { session_id: SID, message: "Joined attendance session" });
      }),
    );
    const joined = (await joinedRec.waitCount(30, T)).map(([v]) => v);
    joinedRec.stop();
    assert.deepEqual(joined.map((j) => j.student_id).sort(), S30);
    for (const j of joined) {
      assertKeys(j, ["joined_at", "session_id", "student_id", "student_name"]);
      assert.equal(j.session_id, SID);
      assert.equal(j.student_name, studentName(j.student_id));
      assert.match(j.joined_at, ISO);
    }
    {
      const ev = waitFor(subs[0], "activeSessionsResponse", T);
      const ack = await ok(subs[0], "checkActiveSessions", "c1");
      assert.equal(ack.data.activeSessions.length, 1);
      assert.equal(ack.data.activeSessions[0].studentCount, 30);
      assert.deepEqual((await ev)[0], ack.data);
    }

    // From here on every member of the room sees each single update: the
    // teacher and the student concerned in full, other students their view
    // (status and time only, SPEC §4.24).
    const updates = [teacher, ...students].map((s) => new Recorder(s, "attendanceUpdated"));

    // Teacher marks: present, present then absent.
    {
      const confirm = waitFor(teacher, "studentMarkedPresent", T);
      const seen = waitFor(st.s001, "attendanceUpdated", T);
      const ack = await ok(teacher, "markStudentPresent", { session_id: SID, student_id: "s001" });
      assertKeys(ack, ["attendanceRecord", "ok"]);
      assertRecord(ack.attendanceRecord, {
        session_id: SID,
        student_id: "s001",
        student_name: "Student 001",
        status: "present",
        marked_by: "t1",
        method: "teacher",
        location: null,
      });
      assert.deepEqual((await confirm)[0], { session_id: SID, student_id: "s001", attendanceRecord: ack.attendanceRecord });
      const [u] = await seen;
      assertKeys(u, ["attendanceRecord", "session_id", "status", "student_id", "updated_at", "updated_by"]);
      assert.equal(u.session_id, SID);
      assert.equal(u.student_id, "s001");
      assert.equal(u.status, "present");
      assert.deepEqual(u.attendanceRecord, ack.attendanceRecord);
      assert.equal(u.updated_by, "Teacher One");
      assert.match(u.updated_at, ISO);
    }
    await ok(teacher, "markStudentPresent", { sessionId: SID, studentId: "s002" });
    {
      const confirm = waitFor(teacher, "studentMarkedAbsent", T);
      const ack = await ok(teacher, "markStudentAbsent", { sessionId: SID, student_id: "s002" });
      assertRecord(ack.attendanceRecord, { student_id: "s002", status: "absent", marked_by: "t1", method: "teacher" });
      assert.deepEqual((await confirm)[0], { session_id: SID, student_id: "s002", attendanceRecord: ack.attendanceRecord });
    }

    // Bulk: s003..s010 present, s011 absent.
    {
      const list = [
        ...ids("s", 3, 8, 3).map((student_id) => ({ student_id, status: "present" })),
        { studentId: "s011", status: "absent" },
      ];
      const complete = waitFor(teacher, "attendanceBulkUpdateComplete", T);
      const roomBulk = waitFor(teacher, "attendanceBulkUpdated", T);
      const studentBulk = waitFor(st.s030, "attendanceBulkUpdated", T);
      const ack = await ok(teacher, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: list });
      assert.deepEqual(ack, { ok: true, totalUpdated: 9 });
      const [c] = await complete;
      assertKeys(c, ["session_id", "totalUpdated", "updatedRecords"]);
      assert.equal(c.session_id, SID);
      assert.equal(c.totalUpdated, 9);
      assert.deepEqual(c.updatedRecords.map((r) => [r.student_id, r.status]), [
        ...ids("s", 3, 8, 3).map((id) => [id, "present"]),
        ["s011", "absent"],
      ]);
      for (const r of c.updatedRecords) assertRecord(r, { session_id: SID, marked_by: "t1", method: "bulk" });
      const [b] = await roomBulk;
      assertKeys(b, ["session_id", "updated_at", "updated_by", "updatedRecords"]);
      assert.equal(b.session_id, SID);
      assert.deepEqual(b.updatedRecords, c.updatedRecords);
      assert.equal(b.updated_by, "Teacher One");
      assert.match(b.updated_at, ISO);
      // A student of the room gets the counts only (SPEC §4.24).
      const [sb] = await studentBulk;
      assert.deepEqual(sb, { session_id: SID, updatedRecords: [], totalUpdated: 9, updated_by: "Teacher One", updated_at: b.updated_at });
    }

    // Self check-in with the code the teacher got and a location inside the fence.
    await Promise.all(
      ids("s", 3, 9, 12).map(async (id) => {
        const marked = waitFor(st[id], "attendanceMarked", T);
        const ack = await ok(st[id], "markAttendance", { sessionId: SID, location: INSIDE, code });
        assertKeys(ack, ["attendance", "ok"]);
        assertRecord(ack.attendance, {
          session_id: SID,
          student_id: id,
          student_name: studentName(id),
          status: "present",
          marked_by: id,
          method: "self",
          location: INSIDE,
        });
        assert.deepEqual((await marked)[0], {
          success: true,
          attendance: ack.attendance,
          message: "Attendance marked successfully",
        });
      }),
    );
    // latitude / longitude spelling
    await ok(st.s024, "markAttendance", { session_id: SID, location: { latitude: INSIDE.lat, longitude: INSIDE.lng }, code });
    // Refusals of self check-in.
    await refused(st.s021, "markAttendance", { sessionId: SID, location: INSIDE, code: "12345" }, "invalid_code");
    await refused(st.s021, "markAttendance", { sessionId: SID, location: INSIDE }, "invalid_code");
    await refused(st.s022, "markAttendance", { sessionId: SID, location: OUTSIDE, code }, "outside_geofence");
    await refused(st.s023, "markAttendance", { sessionId: SID, code }, "location_required");

    // 3 teacher marks + 10 self check-ins, to everyone in the room, in order.
    const expectedUpdates = [
      ["s001", "present"],
      ["s002", "present"],
      ["s002", "absent"],
    ];
    const teacherRec = updates[0];
    {
      const got = (await teacherRec.waitCount(13, T)).map(([u]) => [u.student_id, u.status]);
      assert.equal(got.length, 13);
      assert.deepEqual(got.slice(0, 3), expectedUpdates);
      assert.deepEqual(got.slice(3).map((g) => g[0]).sort(), [...ids("s", 3, 9, 12), "s024"]);
    }
    for (const [i, rec] of updates.entries()) {
      // The teacher's 13 single updates, plus each of its own bulk marks as one.
      const got = (await rec.waitCount(13, T)).map(([u]) => u);
      await sleep(100);
      rec.stop();
      if (i === 0) continue;
      const me = S30[i - 1];
      for (const u of rec.items.map(([x]) => x)) {
        if (u.student_id === undefined) {
          assertKeys(u, ["session_id", "status", "updated_at"]);
        } else {
          assert.equal(u.student_id, me, `student ${me} received ${u.student_id}'s record`);
        }
      }
      assert.ok(got.length >= 13);
    }

    // Present: s001, s003-s010, s012-s020, s024 (19); absent: the other 11.
    const present = new Set(["s001", ...ids("s", 3, 8, 3), ...ids("s", 3, 9, 12), "s024"]);
    const STATS = { total: 30, present: 19, absent: 11, attendance_rate: 63.3 };
    {
      const ev = waitFor(teacher, "attendanceSessionData", T);
      const ack = await ok(teacher, "getAttendanceSessionData", { sessionId: SID });
      assertKeys(ack, ["data", "ok"]);
      const d = ack.data;
      assert.deepEqual((await ev)[0], d);
      assertKeys(d, ["attendanceRecords", "session", "session_id", "statistics"]);
      assert.equal(d.session_id, SID);
      assert.equal(d.session.status, "active");
      assert.deepEqual(d.statistics, STATS);
      const recs = byStudent(d.attendanceRecords);
      assertKeys(recs, S30);
      for (const id of S30) assert.equal(recs[id].status, present.has(id) ? "present" : "absent", id);
      assertRecord(recs.s001, { method: "teacher", marked_by: "t1" });
      assertRecord(recs.s011, { method: "bulk", marked_by: "t1", status: "absent" });
      assertRecord(recs.s012, { method: "self", marked_by: "s012", location: INSIDE });
      assertRecord(recs.s021, { method: "initial", marked_by: null, status: "absent" });
    }
    {
      const ev = waitFor(st.s005, "attendanceStats", T);
      const ack = await ok(st.s005, "getAttendanceStats", SID); // bare string id
      assertKeys(ack.data, ["sessionId", "stats", "timestamp"]);
      assert.equal(ack.data.sessionId, SID);
      assert.deepEqual(ack.data.stats, STATS);
      assert.match(ack.data.timestamp, ISO);
      assert.deepEqual((await ev)[0], ack.data);
      assert.deepEqual((await ok(teacher, "getAttendanceStats", { session_id: SID })).data.stats, STATS);
    }

    // End: confirm to the teacher, the room, the course subscribers.
    const FINAL = { present: 19, absent: 11, total: 30 };
    const confirm = waitFor(teacher, "attendanceSessionEndedConfirm", T);
    const roomEnded = nextOf([teacher, ...students], "attendanceSessionEnded");
    const courseEnded = nextOf(subs, "courseSessionEnded");
    const courseActive2 = nextOf(subs, "activeSessionsData");
    const endAck = await ok(teacher, "endAttendanceSession", { session_id: SID });
    assert.deepEqual(endAck, { ok: true, session_id: SID, final_statistics: FINAL });
    const [conf] = await confirm;
    assertKeys(conf, ["finalData", "session_id"]);
    assert.equal(conf.session_id, SID);
    assertKeys(conf.finalData, ["attendanceRecords", "session", "statistics"]);
    assert.equal(conf.finalData.session.status, "ended");
    assert.match(conf.finalData.session.ended_at, ISO);
    assert.deepEqual(conf.finalData.statistics, STATS);
    assert.equal(conf.finalData.attendanceRecords.length, 30);
    for (const [i, ev] of (await roomEnded).entries()) {
      // Staff get the roster, students the statistics only (SPEC §4.24).
      const finalData = i === 0 ? conf.finalData : { ...conf.finalData, attendanceRecords: [] };
      assert.deepEqual(ev, {
        session_id: SID,
        finalData,
        ended_by: "Teacher One",
        ended_at: conf.finalData.session.ended_at,
      });
    }
    for (const ev of await courseEnded) {
      assert.deepEqual(ev, {
        course_id: "c1",
        session_id: SID,
        teacher_id: "t1",
        teacher_name: "Teacher One",
        final_statistics: FINAL,
        ended_by: "Teacher One",
        ended_at: conf.finalData.session.ended_at,
      });
    }
    for (const ev of await courseActive2) assert.deepEqual(ev, { course_id: "c1", activeSessions: [] });

    // An ended session takes no more changes, but its data stays readable.
    await refused(teacher, "markStudentPresent", { session_id: SID, student_id: "s030" }, "session_not_active");
    await refused(teacher, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: [{ student_id: "s030", status: "present" }] }, "session_not_active");
    await refused(teacher, "endAttendanceSession", { session_id: SID }, "session_not_active");
    await refused(teacher, "startAttendanceSession", { session_id: SID, course_id: "c1" }, "session_not_active");
    await refused(st.s030, "joinAttendanceSession", { session_id: SID }, "session_not_active");
    await refused(st.s030, "markAttendance", { sessionId: SID, location: INSIDE, code }, "session_not_active");
    const after = await ok(teacher, "getAttendanceSessionData", { session_id: SID });
    assert.equal(after.data.session.status, "ended");
    assert.deepEqual(after.data.statistics, STATS);

    // The code secret is never sent; students never see a check-in code (only staff do).
    assert.ok(seenByStudents.length > 30 * 5);
    for (const m of [...seenByTeacher, ...seenByStudents]) assert.ok(!m.includes("code_secret"), m.slice(0, 200));
    for (const m of seenByStudents) {
      assert.ok(!m.startsWith('["checkinCode"'), "a student got a checkinCode event");
      assert.ok(!m.includes(code), `a student saw the check-in code: ${m.slice(0, 200)}`);
    }
  });

  test("presence (studentCount) counts students who joined and are still connected, per socket", async () => {
    const SID = "sess-presence";
    const teacher = await clients.connect(server.url, tok.t1);
    await ok(teacher, "startAttendanceSession", { session_id: SID, course_id: "c1" });
    const count = async () => (await ok(teacher, "checkActiveSessions", "c1")).data.activeSessions.find((a) => a.sessionId === SID).studentCount;
    // s001 joins on socket A and has a second socket B (another tab) that did not join; s002 joins on C.
    const [a, b, c] = await clients.connectMany(server.url, [tok.s001, tok.s001, tok.s002]);
    await ok(a, "joinAttendanceSession", SID);
    await ok(c, "joinAttendanceSession", SID);
    assert.equal(await count(), 2);
    const disconnected = async (socket) => {
      const before = (await health(server.url)).clients;
      socket.disconnect();
      await pollUntil(async () => (await health(server.url)).clients < before, "the server to drop the socket");
      await sleep(GRACE); // the disconnect handlers run around the same time
    };
    // B closing does not make s001 absent: A is still connected and joined.
    await disconnected(b);
    assert.equal(await count(), 2, "s001 left the presence when an unrelated socket of theirs disconnected");
    // A closing does.
    a.disconnect();
    await pollUntil(async () => (await count()) === 1, "studentCount 1 after s001's joined socket closed");
    await ok(teacher, "endAttendanceSession", SID);
  });

  test("events outside the protocol get no reply and no ack", async () => {
    const s = await clients.connect(server.url, tok.s001);
    const errors = new Recorder(s, "attendanceError");
    await assert.rejects(s.timeout(GRACE).emitWithAck("bogusEvent", { session_id: "x" }), /operation has timed out/);
    await assert.rejects(s.timeout(GRACE).emitWithAck("attendanceError", { code: "x" }), /operation has timed out/);
    assert.equal(errors.items.length, 0);
    errors.stop();
    // The socket still works.
    await ok(s, "checkActiveSessions", "c1");
  });

  test("joinSession / leaveSession / sessionUpdate / check-in without code: userJoined, userLeft, sessionUpdated, attendanceUpdate", async () => {
    const SID = "sess-room";
    const teacher = await clients.connect(server.url, tok.t1);
    const [a, b] = await clients.connectMany(server.url, [tok.s001, tok.s002]);
    await ok(teacher, "startAttendanceSession", { sessionId: SID, courseId: "c1" });
    const bJoined = new Recorder(b, "userJoined");

    // a joins with a bare string id; the teacher (in the room since start) hears it.
    let tJoined = waitFor(teacher, "userJoined", T);
    assert.deepEqual(await ok(a, "joinSession", SID), { ok: true, sessionId: SID });
    let [j] = await tJoined;
    assertKeys(j, ["sessionId", "timestamp", "userId", "userName"]);
    assert.deepEqual([j.userId, j.userName, j.sessionId], ["s001", "Student 001", SID]);
    assert.match(j.timestamp, ISO);

    // b joins with {sessionId}; a and the teacher hear it, b does not hear itself.
    tJoined = waitFor(teacher, "userJoined", T);
    const aJoined = waitFor(a, "userJoined", T);
    await ok(b, "joinSession", { sessionId: SID });
    // The teacher hears who joined; another student only that someone did (SPEC §4.24).
    const [[tj], [aj]] = [await tJoined, await aJoined];
    assert.deepEqual([tj.userId, tj.userName, tj.sessionId], ["s002", "Student 002", SID]);
    assert.deepEqual(aj, { sessionId: SID, timestamp: tj.timestamp });

    // sessionUpdate from the teacher reaches everyone in the room, teacher included.
    let upd = nextOf([teacher, a, b], "sessionUpdated");
    assert.deepEqual(await ok(teacher, "sessionUpdate", { sessionId: SID, status: "paused", note: "back in 5", updatedBy: "spoofed", timestamp: "x" }), {
      ok: true,
      sessionId: SID,
    });
    for (const u of await upd) {
      assertKeys(u, ["note", "sessionId", "status", "timestamp", "updatedBy"]);
      assert.deepEqual([u.sessionId, u.status, u.note, u.updatedBy], [SID, "paused", "back in 5", "t1"]);
      assert.match(u.timestamp, ISO);
    }

    // Self check-in in a session without code or fence: attendanceUpdate to the session room.
    const upd0 = nextOf([teacher, a, b], "attendanceUpdate");
    const marked = await ok(a, "markAttendance", { sessionId: SID });
    assertRecord(marked.attendance, { student_id: "s001", status: "present", method: "self", location: null });
    const [tu, au, bu] = await upd0;
    // The teacher and the student who checked in see who it was; another
    // student only that someone did (SPEC §4.24).
    for (const u of [tu, au]) {
      assertKeys(u, ["checkInTime", "sessionId", "status", "userId", "userName"]);
      assert.deepEqual([u.userId, u.userName, u.status, u.sessionId], ["s001", "Student 001", "present", SID]);
      assert.match(u.checkInTime, ISO);
    }
    assert.deepEqual(bu, { status: "present", checkInTime: tu.checkInTime, sessionId: SID });

    // b leaves: a and the teacher get userLeft; b gets no more room events.
    const left = nextOf([teacher, a], "userLeft");
    assert.deepEqual(await ok(b, "leaveSession", { session_id: SID }), { ok: true, sessionId: SID });
    const [tl, al] = await left;
    assertKeys(tl, ["sessionId", "timestamp", "userId"]);
    assert.deepEqual([tl.userId, tl.sessionId], ["s002", SID]);
    assert.deepEqual(al, { sessionId: SID, timestamp: tl.timestamp });
    // Leaving a session one is not in is refused.
    await refused(b, "leaveSession", SID, "conflict");
    const bUpd = new Recorder(b, "sessionUpdated");
    upd = nextOf([teacher, a], "sessionUpdated");
    await ok(teacher, "sessionUpdate", { session_id: SID, status: "resumed" });
    await upd;
    await sleep(GRACE);
    assert.equal(bUpd.items.length, 0, "sessionUpdated reached a socket that left");
    assert.equal(bJoined.items.length, 0, "userJoined was sent to the joining socket itself");
    bUpd.stop();
    bJoined.stop();
    await ok(teacher, "endAttendanceSession", SID);
  });

  test("authorization: students and another course's teacher are refused every restricted event (forbidden)", async () => {
    const SID = "sess-authz";
    const [teacher, other, student, outsider, admin] = await clients.connectMany(server.url, [
      tok.t1,
      tok.t2,
      tok.s001,
      tok.x01,
      tok.adm,
    ]);
    await ok(teacher, "startAttendanceSession", { session_id: SID, course_id: "c1", checkin: { code: true } });
    const restricted = [
      ["startAttendanceSession", { session_id: "sess-authz-new", course_id: "c1" }],
      ["startAttendanceSession", { session_id: SID, course_id: "c1" }], // taking over an existing session
      ["startAttendanceSession", { session_id: SID, course_id: "c2" }],
      ["markStudentPresent", { session_id: SID, student_id: "s001" }],
      ["markStudentAbsent", { session_id: SID, student_id: "s002" }],
      ["bulkUpdateAttendance", { session_id: SID, attendanceUpdates: [{ student_id: "s001", status: "present" }] }],
      ["getAttendanceSessionData", { session_id: SID }],
      ["endAttendanceSession", { session_id: SID }],
      ["sessionUpdate", { sessionId: SID, status: "hijacked" }],
      ["getCheckinCode", { session_id: SID }],
    ];
    for (const [who, socket] of [
      ["student", student],
      ["other teacher", other],
    ]) {
      for (const [event, payload] of restricted) {
        await refused(socket, event, payload, "forbidden").catch((e) => {
          e.message = `${who}: ${e.message}`;
          throw e;
        });
      }
    }
    // A course that does not exist is not_found for staff; a student gets
    // forbidden whether or not it exists (SPEC §4.6, §4.24).
    await refused(teacher, "startAttendanceSession", { session_id: "sess-authz-x", course_id: "no-course" }, "not_found");
    await refused(student, "subscribeToCourse", "no-course", "forbidden", "activeSessionsError");
    // A teacher of another course cannot join it either.
    await refused(other, "joinAttendanceSession", { session_id: SID }, "forbidden");
    await refused(other, "subscribeToCourse", { course_id: "c1" }, "forbidden", "activeSessionsError");

    // A student not enrolled in the course: no join, no check-in, no subscription.
    const { checkin } = await ok(teacher, "getCheckinCode", { session_id: SID });
    await refused(outsider, "joinAttendanceSession", { session_id: SID }, "forbidden");
    await refused(outsider, "markAttendance", { sessionId: SID, code: checkin.code }, "forbidden");
    await refused(outsider, "subscribeToCourse", { course_id: "c1" }, "forbidden", "activeSessionsError");
    await refused(outsider, "checkActiveSessions", { course_id: "c1" }, "forbidden", "activeSessionsError");
    await refused(outsider, "joinSession", SID, "forbidden");
    await refused(outsider, "getAttendanceStats", SID, "forbidden");
    // Only students check themselves in.
    await refused(teacher, "markAttendance", { sessionId: SID, code: checkin.code }, "forbidden");

    // Nothing of the refused requests took effect.
    const data = (await ok(teacher, "getAttendanceSessionData", SID)).data;
    assert.equal(data.session.status, "active");
    assert.equal(data.session.course_id, "c1");
    assert.equal(data.session.teacher_id, "t1");
    assert.deepEqual(data.statistics, { total: 30, present: 0, absent: 30, attendance_rate: 0 });
    await refused(teacher, "getAttendanceSessionData", { session_id: "sess-authz-new" }, "not_found");

    // An admin is staff of every course (joining puts them in the staff room);
    // the enrolled student may still check in.
    await ok(admin, "markStudentPresent", { session_id: SID, student_id: "s002" });
    await ok(admin, "joinAttendanceSession", { session_id: SID });
    const staffHears = nextOf([teacher, admin], "studentJoinedAttendance");
    await ok(student, "joinAttendanceSession", { session_id: SID });
    for (const j of await staffHears) assert.equal(j.student_id, "s001");
    await ok(student, "markAttendance", { sessionId: SID, code: checkin.code });
    const stats = (await ok(student, "getAttendanceStats", SID)).data.stats;
    assert.deepEqual(stats, { total: 30, present: 2, absent: 28, attendance_rate: 6.7 });
    await ok(admin, "endAttendanceSession", { session_id: SID });
  });

  test("invalid payloads are refused with invalid_payload (and nothing is applied)", async () => {
    const SID = "sess-invalid";
    const [teacher, student] = await clients.connectMany(server.url, [tok.t1, tok.s001]);
    await ok(teacher, "startAttendanceSession", { session_id: SID, course_id: "c1", checkin: { geofence: FENCE } });
    await ok(student, "joinAttendanceSession", SID);
    const upd = (n, status = "present") => ids("s", 3, n).map((student_id) => ({ student_id, status }));
    const cases = [
      // missing / malformed ids
      [teacher, "startAttendanceSession", undefined],
      [teacher, "startAttendanceSession", {}],
      [teacher, "startAttendanceSession", { session_id: "bad id!", course_id: "c1" }],
      [teacher, "startAttendanceSession", { session_id: "x".repeat(129), course_id: "c1" }],
      [teacher, "startAttendanceSession", { session_id: "", course_id: "c1" }],
      [teacher, "startAttendanceSession", { session_id: "sess-new", course_id: "c/1" }],
      [teacher, "startAttendanceSession", { session_id: "sess-new" }], // no course
      [teacher, "startAttendanceSession", { session_id: ["sess-new"], course_id: "c1" }],
      // bad check-in settings
      [teacher, "startAttendanceSession", { session_id: "sess-new", course_id: "c1", checkin: "yes" }],
      [teacher, "startAttendanceSession", { session_id: "sess-new", course_id: "c1", checkin: { code: "yes" } }],
      [teacher, "startAttendanceSession", { session_id: "sess-new", course_id: "c1", checkin: { period_secs: 2 } }],
      [teacher, "startAttendanceSession", { session_id: "sess-new", course_id: "c1", checkin: { geofence: { lat: 91, lng: 0, radius_m: 10 } } }],
      [teacher, "startAttendanceSession", { session_id: "sess-new", course_id: "c1", checkin: { geofence: { lat: 0, lng: 200, radius_m: 10 } } }],
      [teacher, "startAttendanceSession", { session_id: "sess-new", course_id: "c1", checkin: { geofence: { lat: 0, lng: 0, radius_m: 0 } } }],
      [teacher, "startAttendanceSession", { session_id: "sess-new", course_id: "c1", checkin: { geofence: { lat: 0, lng: 0 } } }],
      // marks
      [teacher, "markStudentPresent", undefined],
      [teacher, "markStudentPresent", { session_id: SID }],
      [teacher, "markStudentPresent", { student_id: "s001" }],
      [teacher, "markStudentPresent", { session_id: SID, student_id: "s 001" }],
      [teacher, "markStudentAbsent", { session_id: SID, student_id: { id: "s001" } }],
      [teacher, "markStudentAbsent", SID], // a bare id has no student
      // bulk
      [teacher, "bulkUpdateAttendance", { session_id: SID }],
      [teacher, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: "all" }],
      [teacher, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: [] }],
      [teacher, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: Array.from({ length: 1001 }, (_, i) => upd(30)[i % 30]) }],
      [teacher, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: [...upd(2), { student_id: "s003", status: "late" }] }],
      [teacher, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: [...upd(2), { student_id: "s003" }] }],
      [teacher, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: [...upd(2), { status: "present" }] }],
      [teacher, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: [...upd(2), "s003"] }],
      // self check-in
      [student, "markAttendance", SID],
      [student, "markAttendance", { location: INSIDE }],
      [student, "markAttendance", { sessionId: SID, location: { lat: 91, lng: 0 } }],
      [student, "markAttendance", { sessionId: SID, location: { lat: -90.5, lng: 0 } }],
      [student, "markAttendance", { sessionId: SID, location: { lat: 0, lng: 181 } }],
      [student, "markAttendance", { sessionId: SID, location: { lat: "48.859", lng: "2.295" } }],
      [student, "markAttendance", { sessionId: SID, location: { lat: 48.859 } }],
      [student, "markAttendance", { sessionId: SID, location: "here" }],
      // the rest
      [teacher, "getAttendanceSessionData", {}],
      [teacher, "endAttendanceSession", { session_id: "a b" }],
      [teacher, "sessionUpdate", SID],
      [teacher, "sessionUpdate", { sessionId: SID, blob: "x".repeat(17 * 1024) }],
      [student, "joinSession", null],
      [student, "joinAttendanceSession", { session_id: "<script>" }],
      [student, "getAttendanceStats", { id: SID }],
      [student, "subscribeToCourse", {}, "activeSessionsError"],
      [student, "subscribeToCourse", { course_id: "c 1" }, "activeSessionsError"],
      [student, "checkActiveSessions", undefined, "activeSessionsError"],
    ];
    for (const [socket, event, payload, errorEvent] of cases) {
      await refused(socket, event, payload, "invalid_payload", errorEvent);
    }
    // Bulk entries are validated before the session is looked up.
    await refused(teacher, "bulkUpdateAttendance", { session_id: "no-such-session", attendanceUpdates: [{ student_id: "s001", status: "late" }] }, "invalid_payload");
    await refused(teacher, "bulkUpdateAttendance", { session_id: "no-such-session", attendanceUpdates: upd(1) }, "not_found");
    // All or nothing: a bulk with one unknown student applies none of it.
    await refused(teacher, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: [...upd(2), { student_id: "nobody", status: "present" }] }, "not_found");
    await refused(teacher, "markStudentPresent", { session_id: SID, student_id: "x01" }, "not_found");
    await refused(teacher, "getAttendanceSessionData", { session_id: "no-such-session" }, "not_found");
    let data = (await ok(teacher, "getAttendanceSessionData", SID)).data;
    assert.deepEqual(data.statistics, { total: 30, present: 0, absent: 30, attendance_rate: 0 });
    await refused(teacher, "getAttendanceSessionData", "sess-new", "not_found");
    // The limit itself is accepted: 1000 updates (30 students, repeated).
    const thousand = Array.from({ length: 1000 }, (_, i) => ({ student_id: S30[i % 30], status: i % 30 < 10 ? "present" : "absent" }));
    assert.deepEqual(await ok(teacher, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: thousand }), { ok: true, totalUpdated: 1000 });
    data = (await ok(teacher, "getAttendanceSessionData", SID)).data;
    assert.deepEqual(data.statistics, { total: 30, present: 10, absent: 20, attendance_rate: 33.3 });
    // Numbers are accepted as ids (and do not name this session).
    await refused(teacher, "getAttendanceSessionData", { session_id: 42 }, "not_found");
    // snake_case wins over camelCase; attendance_updates is accepted too.
    await refused(teacher, "getAttendanceSessionData", { session_id: "nope", sessionId: SID }, "not_found");
    assert.deepEqual(await ok(teacher, "bulkUpdateAttendance", { sessionId: SID, attendance_updates: upd(1, "absent") }), { ok: true, totalUpdated: 1 });
    await ok(teacher, "endAttendanceSession", { sessionId: SID });
    // A bare string cannot start a new session (it needs a course)...
    const t2 = await clients.connect(server.url, tok.t2);
    await refused(t2, "startAttendanceSession", "c2", "invalid_payload");
    await refused(t2, "getAttendanceSessionData", "c2", "not_found");
    // ...but resumes an existing one.
    await ok(t2, "startAttendanceSession", { session_id: "sess-bare", course_id: "c2" });
    const bare = await ok(t2, "startAttendanceSession", "sess-bare");
    assert.equal(bare.session.session_id, "sess-bare");
    assert.equal(bare.session.course_id, "c2");
    assert.equal(bare.totalStudents, 1);
    await ok(t2, "endAttendanceSession", "sess-bare");
  });

  describe("authentication refusals (connect_error 'Authentication error' with data.code)", () => {
    const now = () => Math.floor(Date.now() / 1000);
    const cases = [
      ["no token", () => undefined, "missing_token"],
      ["empty token", () => "", "missing_token"],
      ["garbage token", () => "not.a.jwt", "invalid_token"],
      ["bad signature", () => craftJwt(claimsFor("s001"), { secret: "another-secret" }), "invalid_token"],
      ["alg none", () => craftJwt(claimsFor("s001"), { alg: "none" }), "invalid_token"],
      ["alg none with the real signature", () => tok.s001.replace(/^[^.]+/, Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")), "invalid_token"],
      ["expired", () => craftJwt(claimsFor("s001", { now: now() - 7200, ttl: 3600 })), "token_expired"],
      ["expired one second ago", () => craftJwt({ ...claimsFor("s001"), exp: now() - 1 }), "token_expired"],
      ["no exp claim", () => craftJwt({ sub: "s001", role: "student", ver: 0, iat: now() }), "invalid_token"],
      ["no ver claim", () => craftJwt({ sub: "s001", role: "student", exp: now() + 60, iat: now() }), "invalid_token"],
      ["HS512 with the right secret", () => craftJwt(claimsFor("s001"), { alg: "HS512" }), "invalid_token"],
      ["disabled user", () => oldTok.dis01, "user_disabled"],
      ["revoked token version", () => oldTok.rev01, "token_revoked"],
      ["unknown user", () => craftJwt(claimsFor("ghost")), "unknown_user"],
    ];
    for (const [name, token, code] of cases) {
      test(`${name} -> ${code}`, async () => {
        const t = token();
        const err = await clients.refused(server.url, t, t === undefined ? { auth: undefined } : {});
        assert.equal(err.message, "Authentication error");
        assert.equal(err.data?.code, code, JSON.stringify(err.data));
        assert.equal(typeof err.data.message, "string");
      });
    }

    test("accepted: a CLI token, a hand-made HS256 token, a fresh token after revoke-tokens", async () => {
      for (const t of [tok.s001, craftJwt(claimsFor("s001")), tok.rev01]) {
        const s = await clients.connect(server.url, t);
        assert.ok(s.connected);
      }
    });

    test("token in an Authorization: Bearer header (polling)", async () => {
      const opts = (t) => ({ transports: ["polling"], extraHeaders: { Authorization: `Bearer ${t}` } });
      const s = await clients.connect(server.url, undefined, opts(tok.s001));
      assert.equal(s.io.engine.transport.name, "polling");
      // It is s001: enrolled in c1, so the subscription is allowed.
      await ok(s, "subscribeToCourse", "c1");
      const err = await clients.refused(server.url, undefined, opts(craftJwt(claimsFor("s001"), { secret: "nope" })));
      assert.equal(err.message, "Authentication error");
      assert.equal(err.data.code, "invalid_token");
      const err2 = await clients.refused(server.url, undefined, opts(oldTok.rev01));
      assert.equal(err2.data.code, "token_revoked");
      // An empty auth.token does not hide the header.
      const s2 = await clients.connect(server.url, "", opts(tok.s002));
      await ok(s2, "subscribeToCourse", "c1");
    });
  });

  describe("HTTP API", () => {
    const post = (p, body) =>
      fetch(server.url + p, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

    test("GET /api/health", async () => {
      const res = await fetch(`${server.url}/api/health`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type"), /application\/json/);
      const body = await res.json();
      assert.equal(body.status, "ok");
      assert.equal(typeof body.clients, "number");
      assert.equal(typeof body.activeSessions, "number");
    });

    test("API conventions: 404 route, OPTIONS 204, CORS echo, 413 body, 400 non-JSON, trimmed email, exact password", async () => {
      const nf = await fetch(`${server.url}/api/nope`);
      assert.equal(nf.status, 404);
      assert.deepEqual(await nf.json(), { ok: false, error: { code: "not_found", message: "no such route" } });
      const opt = await fetch(`${server.url}/api/auth/login`, { method: "OPTIONS", headers: { origin: "http://app.example" } });
      assert.equal(opt.status, 204);
      assert.equal(opt.headers.get("access-control-allow-methods"), "GET,POST,PATCH,DELETE,OPTIONS");
      assert.equal(opt.headers.get("access-control-allow-headers"), "authorization,content-type");
      assert.equal(opt.headers.get("access-control-allow-origin"), "http://app.example"); // CLIENT_URL=*
      assert.equal(opt.headers.get("access-control-allow-credentials"), "true");
      const big = await post("/api/auth/login", { email: "t1@example.test", password: "x".repeat(70 * 1024) });
      assert.equal(big.status, 413);
      assert.equal((await big.json()).error.code, "payload_too_large");
      const bad = await fetch(`${server.url}/api/auth/login`, { method: "POST", body: "{not json" });
      assert.equal(bad.status, 400);
      assert.deepEqual(await bad.json(), { ok: false, error: { code: "invalid_payload", message: "body must be JSON" } });
      const trimmed = await post("/api/auth/login", { email: "  t1@example.test ", password: PASSWORD });
      assert.equal(trimmed.status, 200);
      // The password is taken exactly as sent (never trimmed).
      const padded = await post("/api/auth/login", { email: "t1@example.test", password: ` ${PASSWORD} ` });
      assert.equal(padded.status, 401);
      const blank = await post("/api/auth/login", { email: "   ", password: PASSWORD });
      assert.equal(blank.status, 400);
    });

    test("POST /api/auth/login: right password gives a working token, wrong ones 401", async () => {
      const res = await post("/api/auth/login", { email: "T1@Example.test", password: PASSWORD });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.ok, true);
      assert.deepEqual(body.user, { id: "t1", email: "t1@example.test", name: "Teacher One", role: "teacher", active: true });
      const s = await clients.connect(server.url, body.token);
      await ok(s, "checkActiveSessions", "c1");
      for (const bad of [
        { email: "t1@example.test", password: "wrong password" },
        { email: "nobody@example.test", password: PASSWORD },
        { email: "t2@example.test", password: PASSWORD }, // no password set
        { email: "dis01@example.test", password: PASSWORD }, // disabled
      ]) {
        const r = await post("/api/auth/login", bad);
        assert.equal(r.status, 401, JSON.stringify(bad));
        assert.deepEqual((await r.json()).error.code, "invalid_credentials");
      }
      const r = await post("/api/auth/login", { email: "t1@example.test" });
      assert.equal(r.status, 400);
      assert.equal((await r.json()).error.code, "invalid_payload");
    });

    test("POST /api/auth/register creates a student who can connect (and log in)", async () => {
      const cred = { email: "new.student@example.test", password: "a long password", name: "New Student" };
      const res = await post("/api/auth/register", cred);
      assert.equal(res.status, 201);
      const body = await res.json();
      assert.equal(body.ok, true);
      assert.equal(body.user.role, "student");
      assert.equal(body.user.email, cred.email);
      assert.equal(body.user.name, cred.name);
      assert.equal(body.user.active, true);
      const s = await clients.connect(server.url, body.token);
      // Not enrolled anywhere.
      await refused(s, "subscribeToCourse", "c1", "forbidden", "activeSessionsError");
      const login = await post("/api/auth/login", { email: cred.email, password: cred.password });
      assert.equal(login.status, 200);
      assert.equal((await login.json()).user.id, body.user.id);
      const dup = await post("/api/auth/register", { ...cred, email: "NEW.student@example.test" });
      assert.equal(dup.status, 409);
      assert.equal((await dup.json()).error.code, "conflict");
      const short = await post("/api/auth/register", { email: "s@example.test", password: "short", name: "S" });
      assert.equal(short.status, 400);
    });

    test("GET /api/sessions/<id>/attendance.csv: teacher and admin 200 with the rows, student 403, no token 401", async () => {
      const SID = "sess-csv";
      const [teacher, s2] = await clients.connectMany(server.url, [tok.t1, tok.s002]);
      await ok(teacher, "startAttendanceSession", { session_id: SID, course_id: "c1" });
      const m1 = (await ok(teacher, "markStudentPresent", { session_id: SID, student_id: "s001" })).attendanceRecord;
      await ok(s2, "joinAttendanceSession", SID);
      const m2 = (await ok(s2, "markAttendance", { sessionId: SID, location: INSIDE })).attendance;
      const get = (t) => fetch(`${server.url}/api/sessions/${SID}/attendance.csv`, t ? { headers: { authorization: `Bearer ${t}` } } : {});

      for (const t of [tok.t1, tok.adm]) {
        const res = await get(t);
        assert.equal(res.status, 200);
        assert.match(res.headers.get("content-type"), /^text\/csv/);
        const lines = (await res.text()).split("\n");
        assert.equal(lines.at(-1), "");
        lines.pop();
        assert.equal(lines[0], "session_id,student_id,student_name,email,status,marked_by,marked_at,method,lat,lng");
        assert.equal(lines.length, 31);
        assert.equal(lines[1], `${SID},s001,Student 001,s001@example.test,present,t1,${m1.marked_at},teacher,,`);
        assert.equal(lines[2], `${SID},s002,Student 002,s002@example.test,present,s002,${m2.marked_at},self,${INSIDE.lat},${INSIDE.lng}`);
        assert.equal(lines[3], `${SID},s003,Student 003,s003@example.test,absent,,,initial,,`);
        assert.equal(lines.filter((l) => l.includes(",absent,")).length, 28);
      }
      for (const [t, status, code] of [
        [tok.s001, 403, "forbidden"],
        [tok.t2, 403, "forbidden"],
        [undefined, 401, "missing_token"],
        [craftJwt(claimsFor("t1", { role: "teacher" }), { secret: "x" }), 401, "invalid_token"],
        [oldTok.rev01, 401, "token_revoked"],
      ]) {
        const res = await get(t);
        assert.equal(res.status, status);
        assert.equal((await res.json()).error.code, code);
      }
      const missing = await fetch(`${server.url}/api/sessions/nope/attendance.csv`, { headers: { authorization: `Bearer ${tok.t1}` } });
      assert.equal(missing.status, 404);
      await ok(teacher, "endAttendanceSession", SID);
    });

    test("CSV quoting: commas and quotes are quoted, formula-like text defused, numbers (negative coordinates) left alone", async () => {
      const SID = "sess-csv-quote";
      const [teacher, e1, e2] = await clients.connectMany(server.url, [tok.t1, tok.evil1, tok.evil2]);
      await ok(teacher, "startAttendanceSession", { session_id: SID, course_id: "c3" });
      const loc = { lat: -33.8568, lng: 151.2153 };
      const r1 = (await ok(e1, "markAttendance", { sessionId: SID, location: loc })).attendance;
      const r2 = (await ok(teacher, "markStudentAbsent", { session_id: SID, student_id: "evil2" })).attendanceRecord;
      const res = await fetch(`${server.url}/api/sessions/${SID}/attendance.csv`, { headers: { authorization: `Bearer ${tok.t1}` } });
      assert.equal(res.status, 200);
      assert.equal(
        await res.text(),
        "session_id,student_id,student_name,email,status,marked_by,marked_at,method,lat,lng\n" +
          `${SID},evil1,"'=cmd|' /C calc'!A0",evil1@example.test,present,evil1,${r1.marked_at},self,-33.8568,151.2153\n` +
          `${SID},evil2,"Doe, ""Jane""",evil2@example.test,absent,t1,${r2.marked_at},teacher,,\n`,
      );
      await ok(teacher, "endAttendanceSession", SID);
    });
  });
});

// ---------------------------------------------------------------------------

describe("rate limiting (RATE_LIMIT / RATE_BURST), closed registration, CORS origin list", { skip: SKIP }, () => {
  let dataDir;
  let server;
  let tok;
  const clients = new Clients();

  before(async () => {
    dataDir = makeDataDir("rate");
    tok = await seed(dataDir, {
      users: [
        { id: "rt1", email: "rt1@example.test", name: "Rate Teacher", role: "teacher" },
        { id: "rs1", email: "rs1@example.test", name: "Rate Student", role: "student" },
      ],
      courses: [{ id: "rc1", teachers: ["rt1"], students: ["rs1"] }],
      tokens: ["rt1", "rs1"],
    });
    // 3 requests in a burst, then one per 100 s: deterministic for this test.
    server = await startRollcall(dataDir, {
      RATE_LIMIT: "0.01",
      RATE_BURST: "3",
      ALLOW_REGISTRATION: "false",
      CLIENT_URL: "http://app.example,http://other.example",
    });
  });

  after(() => shutdown(clients, server, dataDir));

  test("a socket over its budget gets rate_limited; other sockets are not affected", async () => {
    const [teacher, student, teacher2] = await clients.connectMany(server.url, [tok.rt1, tok.rs1, tok.rt1]);
    await ok(teacher, "startAttendanceSession", { session_id: "rate-1", course_id: "rc1" });
    const errors = new Recorder(teacher, "attendanceError");
    const acks = await Promise.all(Array.from({ length: 5 }, () => call(teacher, "getAttendanceSessionData", "rate-1", T)));
    assert.deepEqual(acks.map((a) => a.ok), [true, true, false, false, false]);
    for (const a of acks.slice(2)) assert.deepEqual(a, { ok: false, error: { code: "rate_limited", message: "Too many requests" } });
    const errs = (await errors.waitCount(3, T)).map(([e]) => e);
    errors.stop();
    assert.deepEqual(errs, Array(3).fill({ message: "Too many requests", code: "rate_limited" }));
    // Still limited, also for the activeSessions events.
    await refused(teacher, "markStudentPresent", { session_id: "rate-1", student_id: "rs1" }, "rate_limited");
    await refused(teacher, "checkActiveSessions", "rc1", "rate_limited", "activeSessionsError");
    // Per socket: the same user's second socket and a student still have their budget.
    await ok(teacher2, "markStudentPresent", { session_id: "rate-1", student_id: "rs1" });
    await ok(student, "joinAttendanceSession", "rate-1");
    await ok(student, "getAttendanceStats", "rate-1");
    await ok(student, "checkActiveSessions", "rc1");
    await refused(student, "getAttendanceStats", "rate-1", "rate_limited");
    // The refused mark was not applied, the accepted one was.
    const data = (await ok(teacher2, "getAttendanceSessionData", "rate-1")).data;
    assert.deepEqual(data.statistics, { total: 1, present: 1, absent: 0, attendance_rate: 100 });
  });

  test("ALLOW_REGISTRATION=false closes registration; CORS echoes only listed origins", async () => {
    const res = await fetch(`${server.url}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: "http://other.example" },
      body: JSON.stringify({ email: "n@example.test", password: "long enough pw", name: "N" }),
    });
    assert.equal(res.status, 403);
    assert.equal((await res.json()).error.code, "registration_closed");
    assert.equal(res.headers.get("access-control-allow-origin"), "http://other.example");
    assert.equal(res.headers.get("access-control-allow-credentials"), "true");
    assert.match(res.headers.get("vary") ?? "", /Origin/);
    const foreign = await fetch(`${server.url}/api/health`, { headers: { origin: "http://evil.example" } });
    assert.equal(foreign.status, 200);
    assert.equal(foreign.headers.get("access-control-allow-origin"), null);
  });
});

// ---------------------------------------------------------------------------

describe("durability: acked marks survive SIGKILL, sessions survive restarts", { skip: SKIP }, () => {
  const N = 500;
  const STUDENTS = ids("d", 3, N);
  const SID = "dur-1";
  const ENV = { RATE_LIMIT: "100000", RATE_BURST: "100000" };
  let dataDir;
  let server;
  let tok;
  const clients = new Clients();

  before(async () => {
    dataDir = makeDataDir("durable");
    tok = await seed(dataDir, {
      users: [
        { id: "dt1", email: "dt1@example.test", name: "Durable Teacher", role: "teacher" },
        ...STUDENTS.map((id) => ({ id, email: `${id}@example.test`, name: `Durable ${id}` })),
      ],
      courses: [{ id: "dc1", name: "Durable Course", teachers: ["dt1"], students: STUDENTS }],
      tokens: ["dt1", "d002", "d003"],
    });
    server = await startRollcall(dataDir, ENV);
  });

  afterEach(() => clients.closeAll());

  after(() => shutdown(clients, server, dataDir));

  test(`${N} pipelined marks, SIGKILL at the ${N}th ack, restart: all ${N} present, session still active and usable`, async () => {
    const teacher = await clients.connect(server.url, tok.dt1);
    const codeBefore = waitFor(teacher, "checkinCode", T);
    const start = await ok(teacher, "startAttendanceSession", { session_id: SID, course_id: "dc1", checkin: { code: true } });
    assert.equal(start.totalStudents, N);
    const [{ code: preKillCode }] = await codeBefore;

    const first = server;
    const killedAt = await new Promise((resolve, reject) => {
      let acked = 0;
      const timer = setTimeout(() => reject(new Error(`only ${acked} of ${N} acks within 60 s`)), 60000);
      STUDENTS.forEach((student_id, i) => {
        teacher.emit("markStudentPresent", { session_id: SID, student_id }, (ack) => {
          if (!ack?.ok || ack.attendanceRecord?.student_id !== student_id || acked !== i) {
            clearTimeout(timer);
            reject(new Error(`mark ${i} of ${student_id} (after ${acked} acks): ${JSON.stringify(ack)}`));
            return;
          }
          if (++acked === N) {
            // Right now, before anything else runs: no clean shutdown, no extra flush.
            process.kill(first.pid, "SIGKILL");
            clearTimeout(timer);
            resolve(acked);
          }
        });
      });
    });
    assert.equal(killedAt, N);
    assert.deepEqual(await first.exited, { code: null, signal: "SIGKILL" });
    clients.closeAll();

    server = await startRollcall(dataDir, ENV);
    const health = await (await fetch(`${server.url}/api/health`)).json();
    assert.equal(health.activeSessions, 1);
    const teacher2 = await clients.connect(server.url, tok.dt1);
    const data = (await ok(teacher2, "getAttendanceSessionData", { session_id: SID })).data;
    assert.equal(data.session.status, "active");
    assert.equal(data.session.ended_at, null);
    assert.deepEqual(data.statistics, { total: N, present: N, absent: 0, attendance_rate: 100 });
    for (const r of data.attendanceRecords) assertRecord(r, { status: "present", marked_by: "dt1", method: "teacher" });

    // The teacher keeps marking in the same session after the restart...
    await ok(teacher2, "markStudentAbsent", { session_id: SID, student_id: "d001" });
    // ...and takes the room back by starting it again (resume: no course_id needed).
    const started = waitFor(teacher2, "attendanceSessionStarted", T);
    const codeEv = waitFor(teacher2, "checkinCode", T);
    const resumed = await ok(teacher2, "startAttendanceSession", { session_id: SID });
    assert.equal(resumed.session_id, SID);
    assert.equal(resumed.totalStudents, N);
    assert.equal(resumed.session.started_at, start.session.started_at);
    const [ev] = await started;
    assert.equal(ev.attendanceRecords.length, N);
    assert.equal(byStudent(ev.attendanceRecords).d001.status, "absent");
    const [resumedCode] = await codeEv;
    assert.equal(resumedCode.session_id, SID);

    // Students can join and check in, with the code shown before the crash
    // (the code secret is stored with the session; 30 s windows, previous one accepted).
    const student = await clients.connect(server.url, tok.d002);
    const joinedEv = waitFor(teacher2, "studentJoinedAttendance", T);
    await ok(student, "joinAttendanceSession", SID);
    assert.equal((await joinedEv)[0].student_id, "d002");
    const upd = waitFor(student, "attendanceUpdated", T);
    await ok(teacher2, "markStudentAbsent", { session_id: SID, student_id: "d002" });
    assert.equal((await upd)[0].status, "absent");
    await ok(student, "markAttendance", { sessionId: SID, code: preKillCode });
    const stats = (await ok(teacher2, "getAttendanceSessionData", SID)).data.statistics;
    assert.deepEqual(stats, { total: N, present: N - 1, absent: 1, attendance_rate: 99.8 });
  });

  test("a teacher who reconnects keeps control of a running session", async () => {
    const SID2 = "dur-2";
    const t1 = await clients.connect(server.url, tok.dt1);
    const s = await clients.connect(server.url, tok.d003);
    await ok(t1, "startAttendanceSession", { session_id: SID2, course_id: "dc1" });
    t1.disconnect();
    await ok(s, "joinAttendanceSession", SID2);

    const t2 = await clients.connect(server.url, tok.dt1);
    // Control comes from the course, not the socket: marks work at once...
    await ok(t2, "markStudentPresent", { session_id: SID2, student_id: "d003" });
    // ...and starting the same session again resumes it (no new session, no announcement).
    const started = waitFor(t2, "attendanceSessionStarted", T);
    const again = await ok(t2, "startAttendanceSession", { session_id: SID2, course_id: "dc1" });
    assert.equal(again.totalStudents, N);
    const [ev] = await started;
    assert.equal(byStudent(ev.attendanceRecords).d003.status, "present");
    // Back in the staff room and the attendance room.
    const joinedEv = waitFor(t2, "studentJoinedAttendance", T);
    const s2 = await clients.connect(server.url, tok.d003);
    await ok(s2, "joinAttendanceSession", SID2);
    assert.equal((await joinedEv)[0].student_id, "d003");
    const upd = waitFor(t2, "attendanceUpdated", T);
    await ok(s2, "markAttendance", { sessionId: SID2 });
    assert.equal((await upd)[0].student_id, "d003");
    const end = await ok(t2, "endAttendanceSession", SID2);
    assert.deepEqual(end.final_statistics, { present: 1, absent: N - 1, total: N });
  });

  test("check-in codes rotate to the staff room every period; the previous code stays valid", async () => {
    const SID3 = "dur-3";
    const teacher = await clients.connect(server.url, tok.dt1);
    const student = await clients.connect(server.url, tok.d003);
    const first = waitFor(teacher, "checkinCode", T);
    await ok(teacher, "startAttendanceSession", { session_id: SID3, course_id: "dc1", checkin: { code: true, period_secs: 5 } });
    const [c0] = await first;
    assert.equal(c0.period_secs, 5);
    const exp0 = Date.parse(c0.expires_at);
    assert.equal(exp0 % 5000, 0);
    // The rotation task sends the next window's code at the window boundary.
    const c1 = await waitForMatch(teacher, "checkinCode", (c) => c.session_id === SID3 && c.expires_at !== c0.expires_at, 8000);
    assert.equal(Date.parse(c1.expires_at), exp0 + 5000);
    assert.match(c1.code, /^\d{6}$/);
    assert.ok(Date.now() >= exp0 - 1000, "rotated early");
    // The previous window's code is still accepted; a made-up one is not.
    await ok(student, "joinAttendanceSession", SID3);
    await refused(student, "markAttendance", { sessionId: SID3, code: "1234567" }, "invalid_code");
    await ok(student, "markAttendance", { sessionId: SID3, code: c0.code });
    await ok(student, "markAttendance", { sessionId: SID3, code: c1.code });
    // getCheckinCode gives the current one.
    const { checkin } = await ok(teacher, "getCheckinCode", SID3);
    assert.equal(checkin.session_id, SID3);
    if (checkin.expires_at === c1.expires_at) assert.equal(checkin.code, c1.code);
    await ok(teacher, "endAttendanceSession", SID3);
    // No codes for an ended session, nor for one that does not use them.
    await refused(teacher, "getCheckinCode", SID3, "session_not_active");
    await ok(teacher, "startAttendanceSession", { session_id: "dur-4", course_id: "dc1" });
    await refused(teacher, "getCheckinCode", "dur-4", "conflict");
    await ok(teacher, "endAttendanceSession", "dur-4");
  });

  test("after a clean shutdown (SIGTERM) the CLI export shows the session", async () => {
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
    const csv = await cli(dataDir, ["export", SID]);
    const lines = csv.trimEnd().split("\n");
    assert.equal(lines.length, N + 1);
    assert.equal(lines.filter((l) => l.includes(",present,")).length, N - 1);
    assert.match(lines.find((l) => l.startsWith(`${SID},d001,`)), /,absent,dt1,/);
    assert.match(lines.find((l) => l.startsWith(`${SID},d002,`)), /,present,d002,.*,self,,$/);
  });
});

// ---------------------------------------------------------------------------

describe("students enrolled after the session started", { skip: SKIP }, () => {
  const SID = "late-1";
  let dataDir;
  let server;
  let tok;
  const clients = new Clients();

  before(async () => {
    dataDir = makeDataDir("late");
    tok = await seed(dataDir, {
      users: [
        { id: "lt1", email: "lt1@example.test", name: "Late Teacher", role: "teacher" },
        ...["l01", "l02", "l03", "l04", "l05"].map((id) => ({ id, email: `${id}@example.test`, name: `Late ${id}` })),
      ],
      courses: [{ id: "lc1", teachers: ["lt1"], students: ["l01"] }],
      tokens: ["lt1", "l01", "l02", "l03", "l04", "l05"],
    });
    server = await startRollcall(dataDir);
  });

  after(() => shutdown(clients, server, dataDir));

  test("joining, checking in or being marked creates their record; others still get not_found / forbidden", async () => {
    const teacher = await clients.connect(server.url, tok.lt1);
    const start = await ok(teacher, "startAttendanceSession", { session_id: SID, course_id: "lc1" });
    assert.equal(start.totalStudents, 1);
    clients.closeAll();
    // Enrollment is an admin CLI change (one process at a time on the data directory).
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
    await cli(dataDir, ["enroll", "--course", "lc1", "l02", "l03", "l04"]);
    server = await startRollcall(dataDir);

    const t = await clients.connect(server.url, tok.lt1);
    await ok(t, "joinAttendanceSession", SID);
    const [s2, s3, s5] = await clients.connectMany(server.url, [tok.l02, tok.l03, tok.l05]);

    // l02 joins: an absent record appears at once.
    const joined = waitFor(t, "studentJoinedAttendance", T);
    await ok(s2, "joinAttendanceSession", SID);
    assert.equal((await joined)[0].student_id, "l02");
    let data = (await ok(t, "getAttendanceSessionData", SID)).data;
    assert.deepEqual(data.statistics, { total: 2, present: 0, absent: 2, attendance_rate: 0 });
    assertRecord(byStudent(data.attendanceRecords).l02, { status: "absent", marked_by: null, method: "initial", student_name: "Late l02" });
    // Joining again changes nothing.
    await ok(s2, "joinAttendanceSession", SID);
    assert.equal((await ok(t, "getAttendanceSessionData", SID)).data.statistics.total, 2);

    // l03 checks in without having joined; the staff room sees it.
    const upd = waitFor(t, "attendanceUpdated", T);
    const marked = await ok(s3, "markAttendance", { sessionId: SID });
    assertRecord(marked.attendance, { student_id: "l03", status: "present", marked_by: "l03", method: "self" });
    assert.equal((await upd)[0].student_id, "l03");

    // The teacher marks l04, who never connected.
    const m = await ok(t, "markStudentPresent", { session_id: SID, student_id: "l04" });
    assertRecord(m.attendanceRecord, { student_id: "l04", status: "present", marked_by: "lt1", method: "teacher", student_name: "Late l04" });
    // ...and in a bulk update, with a known student.
    const b = await ok(t, "bulkUpdateAttendance", {
      session_id: SID,
      attendanceUpdates: [
        { student_id: "l01", status: "present" },
        { student_id: "l02", status: "present" },
      ],
    });
    assert.equal(b.totalUpdated, 2);

    // Not enrolled: refused as before, and nothing is created.
    await refused(t, "markStudentPresent", { session_id: SID, student_id: "l05" }, "not_found");
    await refused(t, "bulkUpdateAttendance", { session_id: SID, attendanceUpdates: [{ student_id: "l05", status: "present" }] }, "not_found");
    await refused(s5, "joinAttendanceSession", SID, "forbidden");
    await refused(s5, "markAttendance", { sessionId: SID }, "forbidden");

    data = (await ok(t, "getAttendanceSessionData", SID)).data;
    assert.deepEqual(data.statistics, { total: 4, present: 4, absent: 0, attendance_rate: 100 });
    assert.deepEqual(data.attendanceRecords.map((r) => r.student_id), ["l01", "l02", "l03", "l04"]);
    const end = await ok(t, "endAttendanceSession", SID);
    assert.deepEqual(end.final_statistics, { present: 4, absent: 0, total: 4 });
  });
});

// ---------------------------------------------------------------------------

describe("idle expiry (SESSION_IDLE_SECS / IDLE_CHECK_SECS)", { skip: SKIP }, () => {
  let dataDir;
  let server;
  let tok;
  const clients = new Clients();

  before(async () => {
    dataDir = makeDataDir("idle");
    tok = await seed(dataDir, {
      users: [
        { id: "it1", email: "it1@example.test", name: "Idle Teacher", role: "teacher" },
        { id: "is1", email: "is1@example.test", name: "Idle Student", role: "student" },
      ],
      courses: [{ id: "ic1", teachers: ["it1"], students: ["is1"] }],
      tokens: ["it1", "is1"],
    });
    server = await startRollcall(dataDir, { SESSION_IDLE_SECS: "2", IDLE_CHECK_SECS: "1" });
  });

  after(() => shutdown(clients, server, dataDir));

  test("an untouched session ends by itself (ended_by system); a busy one does not until it goes idle", async () => {
    const [teacher, student] = await clients.connectMany(server.url, [tok.it1, tok.is1]);
    await ok(student, "subscribeToCourse", "ic1");
    const courseEnded = new Recorder(student, "courseSessionEnded");
    const roomEnded = new Recorder(teacher, "attendanceSessionEnded");
    const studentRoomEnded = new Recorder(student, "attendanceSessionEnded");

    const t0 = Date.now(); // before the start: the idle clock cannot begin earlier
    await ok(teacher, "startAttendanceSession", { session_id: "idle-1", course_id: "ic1" });
    await ok(student, "joinAttendanceSession", "idle-1");
    await ok(teacher, "startAttendanceSession", { session_id: "idle-2", course_id: "ic1" });
    // Keep idle-2 busy: a mark every 300 ms (idle limit 2 s).
    let busy = true;
    const keepBusy = (async () => {
      let n = 0;
      while (busy) {
        await ok(teacher, "markStudentPresent", { session_id: "idle-2", student_id: "is1" });
        n++;
        await sleep(300);
      }
      return n;
    })();

    const [[ended]] = await courseEnded.waitCount(1, 15000);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 2000, `ended after ${elapsed} ms, before the 2 s idle limit`);
    assertKeys(ended, [
      "course_id",
      "ended_at",
      "ended_by",
      "final_statistics",
      "session_id",
      "teacher_id",
      "teacher_name",
    ]);
    assert.equal(ended.session_id, "idle-1");
    assert.equal(ended.course_id, "ic1");
    assert.equal(ended.teacher_id, "it1");
    assert.equal(ended.teacher_name, "Idle Teacher");
    assert.equal(ended.ended_by, "system");
    assert.match(ended.ended_at, ISO);
    assert.deepEqual(ended.final_statistics, { present: 0, absent: 1, total: 1 });
    for (const rec of [roomEnded, studentRoomEnded]) {
      const [[r]] = await rec.waitCount(1, T);
      assert.equal(r.session_id, "idle-1");
      assert.equal(r.ended_by, "system");
      assert.equal(r.ended_at, ended.ended_at);
      assert.equal(r.finalData.session.status, "ended");
      assert.deepEqual(r.finalData.statistics, { total: 1, present: 0, absent: 1, attendance_rate: 0 });
    }
    await refused(teacher, "markStudentPresent", { session_id: "idle-1", student_id: "is1" }, "session_not_active");

    // idle-2 was kept busy through the same checks.
    let d = (await ok(teacher, "getAttendanceSessionData", "idle-2")).data;
    assert.equal(d.session.status, "active");
    busy = false;
    assert.ok((await keepBusy) >= 5);
    const since = Date.now();
    await courseEnded.waitCount(2, 15000);
    assert.ok(Date.now() - since >= 1000, "the busy session ended too soon after its last mark");
    const [ended2] = courseEnded.items[1];
    assert.equal(ended2.session_id, "idle-2");
    assert.equal(ended2.ended_by, "system");
    assert.deepEqual(ended2.final_statistics, { present: 1, absent: 0, total: 1 });
    d = (await ok(teacher, "getAttendanceSessionData", "idle-2")).data;
    assert.equal(d.session.status, "ended");
    const health = await (await fetch(`${server.url}/api/health`)).json();
    assert.equal(health.activeSessions, 0);
    for (const r of [courseEnded, roomEnded, studentRoomEnded]) r.stop();
  });
});
