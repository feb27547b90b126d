// Interop: connection state recovery across a server restart, with the real
// npm `socket.io-client`, against the conformance server with a durable
// recovery log (RECOVERY_MS + RECOVERY_DIR; SPEC.md §3.10).
//
// - Graceful restart (SIGTERM, start again on the same directory and port):
//   a client that dropped before the restart and one connected through it
//   both come back with `recovered === true`, their ids, rooms (a room
//   broadcast reaches them) and data, and exactly the packets they missed,
//   in order, once.
// - Crash (SIGKILL): what survives is every broadcast older than the stated
//   bound (flush interval, here 50 ms, plus the flush in progress; checked
//   with a generous margin), in order, no duplicate, no gap; a socket that
//   was connected at the kill has no session to recover.
//
// Rust implementation only (the npm reference keeps recovery in memory).
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { IMPL, Recorder, sleep, waitFor } from "./harness.mjs";
import { RestartableServer, connectedClient } from "./recovery_helpers.mjs";

const T = 5000;
const GRACE = 300;
const sockets = new Set();
const servers = new Set();

function track(s) {
  sockets.add(s);
  return s;
}

after(async () => {
  for (const s of sockets) {
    s.io.reconnection(false);
    s.disconnect();
  }
  for (const srv of servers) await srv.dispose();
});

async function server(opts) {
  const srv = new RestartableServer(opts);
  servers.add(srv);
  return srv.start();
}

/** The `n` fields of the "bcast" payloads recorded so far. */
const ns = (rec) => rec.items.map((args) => args[0].n);

describe("recovery across a restart (RECOVERY_DIR)", { skip: IMPL === "node" && "Rust only" }, () => {
  for (const transports of [["websocket"], ["polling"]]) {
    test(`after a graceful restart (${transports}): recovered, same id, rooms, data, missed packets in order and once`, async () => {
      const srv = await server();
      // `a` drops before the restart and comes back after it (by hand);
      // `b` stays connected until the restart and reconnects on its own.
      const a = track(await connectedClient(srv.url, { transports, reconnection: false }));
      const b = track(await connectedClient(srv.url, { transports }));
      assert.equal(await a.timeout(T).emitWithAck("join", "r"), true);
      assert.equal(await b.timeout(T).emitWithAck("join", "r"), true);
      assert.equal(await a.timeout(T).emitWithAck("set-data", { user: "ada", n: [1, 2] }), true);
      assert.equal(await b.timeout(T).emitWithAck("set-data", { user: "bob" }), true);
      const aGot = new Recorder(a, "bcast");
      const bGot = new Recorder(b, "bcast");
      assert.equal(await b.timeout(T).emitWithAck("broadcast", "r", { n: 0 }), true);
      await aGot.waitCount(1);
      const [aId, bId] = [a.id, b.id];

      const dropped = waitFor(a, "disconnect", T);
      a.io.engine.close();
      await dropped;
      for (const n of [1, 2]) assert.equal(await b.timeout(T).emitWithAck("broadcast", "r", { n }), true);
      assert.equal(await b.timeout(T).emitWithAck("broadcast", "elsewhere", { n: -1 }), true);
      await bGot.waitCount(3);

      const bBack = waitFor(b, "connect", 15000);
      const exit = await srv.stop();
      assert.deepStrictEqual(exit, { code: 0, signal: null }, "a graceful shutdown on SIGTERM");
      await srv.start();
      await bBack;
      assert.equal(b.recovered, true, "connected through the restart: recovered");
      assert.equal(b.id, bId);

      const aBack = waitFor(a, "connect", T, ["connect_error"]);
      a.connect();
      await aBack;
      assert.equal(a.recovered, true, "dropped before the restart: recovered");
      assert.equal(a.id, aId, "a recovered socket keeps its id");
      await aGot.waitCount(3);
      assert.deepStrictEqual(ns(aGot), [0, 1, 2], "the missed packets, in order");
      assert.deepStrictEqual(await a.timeout(T).emitWithAck("get-data"), { user: "ada", n: [1, 2] });
      assert.deepStrictEqual(await b.timeout(T).emitWithAck("get-data"), { user: "bob" });

      // Rooms kept: a room broadcast after the restart reaches both.
      assert.equal(await a.timeout(T).emitWithAck("broadcast", "r", { n: 3 }), true);
      await aGot.waitCount(4);
      await bGot.waitCount(4);
      await sleep(GRACE);
      assert.deepStrictEqual(ns(aGot), [0, 1, 2, 3], "no duplicates");
      assert.deepStrictEqual(ns(bGot), [0, 1, 2, 3], "no duplicates");
    });
  }

  test("after a SIGKILL: broadcasts older than the flush bound are kept, in order, without gaps", async (t) => {
    const FLUSH_MS = 50;
    // The stated bound is one flush interval plus the flush in progress
    // (a sled flush and an fdatasync); the margin absorbs a loaded machine.
    const MARGIN_MS = 750;
    const srv = await server({ flushMs: FLUSH_MS });
    const a = track(await connectedClient(srv.url, { reconnection: false }));
    const b = track(await connectedClient(srv.url, { reconnection: false }));
    assert.equal(await a.timeout(T).emitWithAck("join", "k"), true);
    const aGot = new Recorder(a, "bcast");
    assert.equal(await b.timeout(T).emitWithAck("broadcast", "k", { n: 0 }), true);
    await aGot.waitCount(1);
    const aId = a.id;
    const dropped = waitFor(a, "disconnect", T);
    a.io.engine.close();
    await dropped;
    await sleep(FLUSH_MS + MARGIN_MS); // a's session is on disk by now

    const acked = []; // [n, time the server's ack arrived]
    for (let n = 1; n <= 100; n++) {
      assert.equal(await b.timeout(T).emitWithAck("broadcast", "k", { n }), true);
      acked.push([n, Date.now()]);
      await sleep(20);
    }
    const killedAt = Date.now();
    const exit = await srv.kill();
    assert.equal(exit.signal, "SIGKILL");
    await srv.start();

    const back = waitFor(a, "connect", T, ["connect_error"]);
    a.connect();
    await back;
    assert.equal(a.recovered, true, "a session saved well before the kill survives it");
    assert.equal(a.id, aId);
    await sleep(GRACE);
    const got = ns(aGot).slice(1);
    t.diagnostic(`kept ${got.length} of ${acked.length} broadcasts after a SIGKILL`);
    const mustHave = acked.filter(([, at]) => at < killedAt - FLUSH_MS - MARGIN_MS).map(([n]) => n);
    assert.ok(mustHave.length >= 50, `the test needs broadcasts older than the bound (${mustHave.length})`);
    assert.deepStrictEqual(got, got.length ? [...Array(got.length).keys()].map((i) => i + 1) : [], "a prefix: in order, no gap, no duplicate");
    assert.ok(got.length >= mustHave.length, `kept ${got.length}, must keep ${mustHave.length}`);

    // `b` was connected at the kill: its session was never saved.
    const bBack = waitFor(b, "connect", T, ["connect_error"]);
    b.connect();
    await bBack;
    assert.equal(b.recovered, false, "a socket connected at the kill is not recovered");
  });
});
