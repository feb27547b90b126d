// The jitter test of our own: 20 real socket.io-client sockets with
// connection state recovery on, each behind a TCP proxy that cuts its
// connection every 15 s for 2 s (both sides destroyed, so the server sees a
// transport close), a steady stream of numbered room broadcasts from a
// publisher, and a server restart (SIGTERM, started again on the same
// RECOVERY_DIR and port) in the middle. Every broadcast the server
// acknowledged reaches every client exactly once and in order; a broadcast
// whose ack was lost to the restart reaches every client or none; every
// reconnection, the ones after the restart included, is `recovered`.
//
// About 45 s. Rust implementation only (durable recovery log).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { IMPL, sleep, waitFor, withTimeout } from "./harness.mjs";
import { CuttingProxy, RestartableServer, connectedClient } from "./recovery_helpers.mjs";

const CLIENTS = 20;
const CUT_EVERY_MS = 15000;
const CUT_FOR_MS = 2000;
const STREAM_MS = 34000;
const RESTART_AT_MS = 17000;
const PUBLISH_EVERY_MS = 25;
const ROOM = "jitter";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test("jitter: 20 clients cut every 15 s for 2 s, a restart in the middle, every broadcast once and in order", { skip: IMPL === "node" && "Rust only", timeout: 58000 }, async (t) => {
  const srv = new RestartableServer({ recoveryMs: 30000 });
  cleanups.push(() => srv.dispose());
  await srv.start();

  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const proxy = await new CuttingProxy(srv.port).listen();
    cleanups.push(() => proxy.close());
    const socket = await connectedClient(proxy.url);
    cleanups.push(() => {
      socket.io.reconnection(false);
      socket.disconnect();
    });
    assert.equal(await socket.timeout(5000).emitWithAck("join", ROOM), true);
    const c = { i, proxy, socket, got: [], connects: [], disconnects: 0 };
    socket.on("bcast", (payload) => c.got.push(payload.seq));
    socket.on("connect", () => c.connects.push({ at: Date.now(), recovered: socket.recovered }));
    socket.on("disconnect", () => c.disconnects++);
    clients.push(c);
  }
  const pub = await connectedClient(srv.url);
  cleanups.push(() => {
    pub.io.reconnection(false);
    pub.disconnect();
  });
  const pubConnects = [];
  pub.on("connect", () => pubConnects.push(pub.recovered));

  // The stream: numbered broadcasts, sent only while connected.
  const acked = new Set();
  const uncertain = new Set();
  let seq = 0;
  let publishing = true;
  const stream = (async () => {
    while (publishing) {
      if (pub.connected) {
        const n = ++seq;
        pub
          .timeout(3000)
          .emitWithAck("broadcast", ROOM, { seq: n })
          .then(
            () => acked.add(n),
            () => uncertain.add(n),
          );
      }
      await sleep(PUBLISH_EVERY_MS);
    }
  })();

  // The cuts: client i first at 1 s + i * 750 ms, then every 15 s.
  const start = Date.now();
  const timers = clients.map((c) => {
    const first = 1000 + c.i * (CUT_EVERY_MS / CLIENTS);
    const cut = () => c.proxy.cut(CUT_FOR_MS);
    const h = { timeout: null, interval: null };
    h.timeout = setTimeout(() => {
      cut();
      h.interval = setInterval(cut, CUT_EVERY_MS);
    }, first);
    return h;
  });
  const stopCuts = () => timers.forEach((h) => (clearTimeout(h.timeout), clearInterval(h.interval)));
  cleanups.push(stopCuts);

  await sleep(RESTART_AT_MS);
  const restartAt = Date.now();
  const exit = await srv.stop();
  assert.deepStrictEqual(exit, { code: 0, signal: null }, "graceful shutdown on SIGTERM");
  await srv.start();
  t.diagnostic(`restarted in ${Date.now() - restartAt} ms`);

  await sleep(Math.max(0, STREAM_MS - (Date.now() - start)));
  publishing = false;
  stopCuts();
  await stream;
  // Let the last acks come in, then every client catch up with every acked broadcast.
  await withTimeout(
    (async () => {
      while (acked.size + uncertain.size < seq) await sleep(50);
    })(),
    5000,
    "the last acks",
  );
  const last = Math.max(...acked);
  await withTimeout(
    (async () => {
      while (!clients.every((c) => c.socket.connected && c.got.includes(last))) await sleep(50);
    })(),
    12000,
    "every client to catch up",
  );
  await sleep(500);

  t.diagnostic(
    `${seq} broadcasts (${acked.size} acked, ${uncertain.size} uncertain), ` +
      `${clients.reduce((n, c) => n + c.disconnects, 0)} disconnections`,
  );
  assert.ok(acked.size > 0.8 * seq, "most broadcasts were acked");
  for (const c of clients) {
    assert.ok(c.disconnects >= 2, `client ${c.i} was cut at least twice (${c.disconnects})`);
    for (let k = 1; k < c.got.length; k++) {
      assert.ok(c.got[k] > c.got[k - 1], `client ${c.i}: ${c.got[k]} after ${c.got[k - 1]} (duplicate or out of order)`);
    }
    const have = new Set(c.got);
    const missing = [...acked].filter((n) => !have.has(n));
    assert.deepStrictEqual(missing, [], `client ${c.i} missed acked broadcasts`);
    for (const n of have) assert.ok(acked.has(n) || uncertain.has(n), `client ${c.i} got ${n}, never sent`);
    assert.ok(c.connects.length >= 2, `client ${c.i} reconnected (${c.connects.length})`);
    assert.ok(
      c.connects.every((x) => x.recovered),
      `client ${c.i}: every reconnection recovered (${JSON.stringify(c.connects)})`,
    );
    assert.ok(c.connects.some((x) => x.at > restartAt), `client ${c.i} reconnected after the restart`);
  }
  for (const n of uncertain) {
    const holders = clients.filter((c) => c.got.includes(n)).length;
    assert.ok(holders === 0 || holders === CLIENTS, `broadcast ${n} reached ${holders} of ${CLIENTS}`);
  }
  assert.ok(pubConnects.length >= 1 && pubConnects.every(Boolean), "the publisher recovered after the restart");
});
