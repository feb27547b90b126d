#!/usr/bin/env node
// Benchmark: confirmed durable attendance marks per second.
//
// Starts the release `rollcall` binary (`cargo build --release --bin rollcall`)
// on a fresh data directory, with TEACHERS teachers, each with their own course
// of STUDENTS students and their own session (users via `rollcall user import`,
// courses via `course add` / `enroll`, tokens via `rollcall token`). Each
// teacher's socket (the real socket.io-client, WebSocket) keeps IN_FLIGHT
// markStudentPresent / markStudentAbsent requests with acks in flight. A mark
// is acked only once it is flushed to disk, so acks per second = durable marks
// per second. After WARMUP_S seconds, acks are counted for DURATION_S seconds.
//
// Prints one JSON line on stdout (progress on stderr):
//   {marks_per_sec, acks, errors, duration_s, teachers, in_flight_per_teacher,
//    latency_ms: {p50, p90, p99, max}, client_cpu_pct, server_cpu_pct, ...}
// CPU percentages are of one core over the measured window (200 = two cores).
//
// Run: node benches/marks.mjs   (env: TEACHERS=100 STUDENTS=50 IN_FLIGHT=64
//      DURATION_S=15 WARMUP_S=3 PROFILE=release). Only 127.0.0.1 is used; the
//      server is stopped and the data directory removed at the end.
import { readFileSync } from "node:fs";
import os from "node:os";
import { performance } from "node:perf_hooks";
import {
  Clients,
  addCourse,
  call,
  cli,
  ids,
  importUsers,
  makeDataDir,
  removeDataDir,
  startRollcall,
} from "../tests/node/attendance_helpers.mjs";

const TEACHERS = Number(process.env.TEACHERS || 100);
const STUDENTS = Number(process.env.STUDENTS || 50);
const IN_FLIGHT = Number(process.env.IN_FLIGHT || 64);
const DURATION_S = Number(process.env.DURATION_S || 15);
const WARMUP_S = Number(process.env.WARMUP_S || 3);
const PROFILE = process.env.PROFILE || "release";

const log = (...a) => console.error(`[marks ${new Date().toISOString().slice(11, 23)}]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** utime + stime of a process in seconds (Linux /proc). */
function procCpuSecs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ = 100 on Linux
  } catch {
    return NaN;
  }
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const dataDir = makeDataDir("bench");
  const clients = new Clients();
  let server;
  try {
    // ---- setup with the CLI (no server running) ----
    const t0 = performance.now();
    const teachers = ids("t", 3, TEACHERS);
    const users = teachers.map((id) => ({ id, email: `${id}@bench.test`, name: `Teacher ${id}`, role: "teacher" }));
    const courseStudents = teachers.map((t) => ids(`${t}s`, 3, STUDENTS));
    for (const list of courseStudents) {
      for (const id of list) users.push({ id, email: `${id}@bench.test`, name: `Student ${id}` });
    }
    await importUsers(dataDir, users, { profile: PROFILE });
    for (let i = 0; i < TEACHERS; i++) {
      await addCourse(dataDir, { id: `c${i}`, name: `Course ${i}`, teachers: [teachers[i]], students: courseStudents[i] }, { profile: PROFILE });
    }
    const tokens = [];
    for (const t of teachers) tokens.push((await cli(dataDir, ["token", t], { profile: PROFILE })).trim());
    log(`setup: ${users.length} users, ${TEACHERS} courses in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // ---- server and sessions ----
    server = await startRollcall(dataDir, { RATE_LIMIT: "1000000000", RATE_BURST: "1000000000", RUST_LOG: "warn" }, { profile: PROFILE });
    log(`server pid ${server.pid} on ${server.url}`);
    const sockets = await clients.connectMany(server.url, tokens);
    await Promise.all(
      sockets.map(async (s, i) => {
        const ack = await call(s, "startAttendanceSession", { session_id: `bench-${i}`, course_id: `c${i}` }, 30000);
        if (!ack?.ok || ack.totalStudents !== STUDENTS) throw new Error(`start ${i}: ${JSON.stringify(ack)}`);
      }),
    );
    log(`${TEACHERS} sessions started`);

    // ---- load ----
    const st = { running: true, measuring: false, acks: 0, errors: 0, sent: 0, outstanding: 0, firstError: null };
    const lat = [];
    sockets.forEach((sock, ti) => {
      const sid = `bench-${ti}`;
      const list = courseStudents[ti];
      let i = 0;
      const sendOne = () => {
        if (!st.running) return;
        const student_id = list[i % list.length];
        // Alternate present / absent each pass over the class, so every mark is a change.
        const event = Math.floor(i / list.length) % 2 ? "markStudentAbsent" : "markStudentPresent";
        i++;
        const t = performance.now();
        st.sent++;
        st.outstanding++;
        sock.emit(event, { session_id: sid, student_id }, (ack) => {
          st.outstanding--;
          if (ack?.ok) {
            if (st.measuring) {
              st.acks++;
              lat.push(performance.now() - t);
            }
          } else {
            st.errors++;
            st.firstError ??= ack;
          }
          sendOne();
        });
      };
      for (let k = 0; k < IN_FLIGHT; k++) sendOne();
    });

    await sleep(WARMUP_S * 1000);
    const c0 = process.cpuUsage();
    const s0 = procCpuSecs(server.pid);
    const w0 = performance.now();
    st.measuring = true;
    await sleep(DURATION_S * 1000);
    st.measuring = false;
    const elapsed = (performance.now() - w0) / 1000;
    const c1 = process.cpuUsage(c0);
    const s1 = procCpuSecs(server.pid);
    const acks = st.acks;
    st.running = false;

    // Drain what is still in flight (bounded), then check the last state is readable.
    const drainEnd = Date.now() + 30000;
    while (st.outstanding > 0 && Date.now() < drainEnd) await sleep(20);
    const check = await call(sockets[0], "getAttendanceSessionData", "bench-0", 30000);
    if (!check?.ok || check.data.statistics.total !== STUDENTS) throw new Error(`final read: ${JSON.stringify(check).slice(0, 300)}`);

    lat.sort((a, b) => a - b);
    const r = (x) => (x === null ? null : Math.round(x * 100) / 100);
    const result = {
      bench: "durable_marks",
      marks_per_sec: Math.round(acks / elapsed),
      acks,
      errors: st.errors,
      first_error: st.firstError,
      duration_s: Math.round(elapsed * 1000) / 1000,
      teachers: TEACHERS,
      students_per_course: STUDENTS,
      in_flight_per_teacher: IN_FLIGHT,
      latency_ms: { p50: r(percentile(lat, 50)), p90: r(percentile(lat, 90)), p99: r(percentile(lat, 99)), max: r(lat.at(-1) ?? null) },
      client_cpu_pct: Math.round(((c1.user + c1.system) / 1e6 / elapsed) * 1000) / 10,
      server_cpu_pct: Math.round(((s1 - s0) / elapsed) * 1000) / 10,
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model ?? "unknown",
      node: process.version,
      profile: PROFILE,
    };
    console.log(JSON.stringify(result));
  } finally {
    clients.closeAll();
    if (server) await server.stop();
    removeDataDir(dataDir);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
