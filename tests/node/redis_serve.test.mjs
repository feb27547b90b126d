// `rollcall serve` honours REDIS_URL: two attendance servers (each with its
// own data directory, seeded alike) in one Redis cluster; a course
// subscriber on one node hears of a session a teacher starts on the other.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { RedisServer, SKIP } from "./redis_helpers.mjs";
import { Clients, makeDataDir, removeDataDir, seed, startRollcall, waitFor } from "./attendance_helpers.mjs";

let redis;
const dirs = [];
const servers = [];
const tokens = [];
const clients = new Clients();

before(async () => {
  if (SKIP) return;
  redis = await new RedisServer().start();
  for (let i = 0; i < 2; i++) {
    const dir = makeDataDir("redis");
    dirs.push(dir);
    tokens.push(
      await seed(dir, {
        users: [
          { id: "t1", email: "t1@school.test", name: "Teacher", role: "teacher" },
          { id: "s1", email: "s1@school.test", name: "Student", role: "student" },
        ],
        courses: [{ id: "c1", teachers: ["t1"], students: ["s1"] }],
        tokens: ["t1", "s1"],
      }),
    );
    servers.push(await startRollcall(dir, { REDIS_URL: redis.url, REDIS_PREFIX: "serve" }));
  }
});

after(async () => {
  clients.closeAll();
  await Promise.all(servers.map((s) => s.stop()));
  dirs.forEach(removeDataDir);
  await redis?.close();
});

test("rollcall serve with REDIS_URL: a course broadcast from one node reaches a subscriber on the other", { skip: SKIP }, async () => {
  const student = await clients.connect(servers[1].url, tokens[1].s1);
  const sub = await student.timeout(5000).emitWithAck("subscribeToCourse", { course_id: "c1" });
  assert.equal(sub.ok, true);
  const teacher = await clients.connect(servers[0].url, tokens[0].t1);
  const heard = waitFor(student, "courseSessionStarted", 5000);
  const started = await teacher.timeout(5000).emitWithAck("startAttendanceSession", { session_id: "x1", course_id: "c1" });
  assert.equal(started.ok, true);
  const [ev] = await heard;
  assert.equal(JSON.stringify(ev).includes("x1"), true, JSON.stringify(ev));
});

test("rollcall serve with REDIS_URL refuses to start when Redis is down (REDIS_STARTUP=fail)", { skip: SKIP }, async () => {
  const dir = makeDataDir("redis-down");
  try {
    await assert.rejects(startRollcall(dir, { REDIS_URL: "redis://127.0.0.1:1/" }), /cannot connect to redis/);
  } finally {
    removeDataDir(dir);
  }
});
