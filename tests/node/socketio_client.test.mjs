// Interop: the real npm `socket.io-client` (v4) against the `conformance` contract server.
//
// conformance: Socket.IO v5 at /socket.io/. Namespace "/" emits "auth" (CONNECT payload) on
// connection and handles message -> message-back, message-with-ack -> ack, join / leave /
// broadcast (room) -> "bcast", please-ack -> server-ack (+ack) -> server-ack-result,
// disconnect-me -> server-side disconnect. "/custom" emits "auth". Other namespaces get
// CONNECT_ERROR {"message":"Invalid namespace"}. RECOVERY_MS turns connection state
// recovery on. See benches/node/conformance.mjs for the reference implementation.
//
// Covered: the core scenario over polling only / websocket only / polling then upgrade;
// auth echo; mixed JSON arguments; nested binary attachments both ways; acks both ways
// (with binary); emitWithAck and timeouts; namespaces (one Manager, shared engine);
// unknown namespace; rooms (join / broadcast / leave); server-side disconnect; connection
// state recovery on and off; malformed packets on a raw WebSocket do not affect others.
// The tests that hold for any packet format are in sio_suite.mjs (also run with the
// msgpack parser by socketio_msgpack.test.mjs); the JSON-specific ones are here.
//
// Run: INTEROP_IMPL=node node --test --test-timeout=60000 --test-concurrency=1   (reference)
//      node --test --test-timeout=60000 --test-concurrency=1                      (Rust example)
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Manager, io } from "socket.io-client";
import WebSocket from "ws";
import { Recorder, bytes, sleep, startServer, waitFor, withTimeout } from "./harness.mjs";
import {
  GRACE,
  MIXED,
  MODES,
  T,
  clientKit,
  coreTests,
  emitAck,
  featureTests,
  nestedBinary,
  roundTrip,
} from "./sio_suite.mjs";

let server;
const kit = clientKit(() => server);
// Everything the tests of this file (and tests added to it) may use.
const { sockets, managers, rawSockets, unique, cleanup, client, manager, connected, connectedIn } = kit;

before(async () => {
  server = await startServer("conformance");
});

afterEach(cleanup);

after(async () => {
  cleanup();
  await server?.stop();
});

coreTests(kit);
featureTests(kit);

describe("socket.io-client with the default parser", () => {
  test("malformed packets close only the offending connection", async () => {
    const { socket: good } = await connected();
    const { port } = server;
    for (const bad of ['42{"bad"', '42"not an array"', "42[]", "4Zjunk"]) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
      rawSockets.add(ws);
      const frames = new Recorder(ws, "message");
      ws.on("message", (data) => {
        if (data.toString() === "2") ws.send("3"); // answer pings
      });
      const closed = waitFor(ws, "close", T);
      closed.catch(() => {});
      await waitFor(ws, "open", T, ["error", "close"]);
      const [[open]] = await frames.waitCount(1);
      assert.match(open.toString(), /^0\{/, "first frame is not the Engine.IO open packet");
      assert.ok(JSON.parse(open.toString().slice(1)).sid);
      ws.send("40");
      let connect;
      for (let n = 2; !connect; n++) {
        const items = await frames.waitCount(n);
        connect = items.map(([d]) => d.toString()).find((f) => f.startsWith("40"));
      }
      assert.equal(typeof JSON.parse(connect.slice(2)).sid, "string", `bad CONNECT reply ${connect}`);
      ws.send(bad);
      await closed;
      frames.stop();
      rawSockets.delete(ws);
      assert.ok(good.connected, `the well-behaved client was disconnected by ${bad}`);
      assert.equal(await good.timeout(T).emitWithAck("message-with-ack", bad), bad);
    }
  });

  test("after a reconnect without recovery: recovered is false, new id, rooms are gone", async () => {
    const room = unique("norecovery");
    const a = client("/", { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 100, randomizationFactor: 0 });
    await waitFor(a, "connect", T, ["connect_error"]);
    assert.ok(!a.recovered);
    assert.equal(await a.timeout(T).emitWithAck("join", room), true);
    const oldId = a.id;
    const disconnected = waitFor(a, "disconnect", T);
    const reconnected = waitFor(a, "connect", 10000);
    a.io.engine.close();
    await disconnected;
    await reconnected;
    assert.ok(!a.recovered, "socket.recovered should be false");
    assert.notEqual(a.id, oldId);
    const rec = new Recorder(a, "bcast");
    const { socket: b } = await connected();
    assert.equal(await b.timeout(T).emitWithAck("broadcast", room, "lost"), true);
    await sleep(GRACE);
    assert.equal(rec.items.length, 0, "the new session should not be in the old room");
  });
});

describe("connection state recovery (RECOVERY_MS=5000)", () => {
  let recoveryServer;
  before(async () => {
    recoveryServer = await startServer("conformance", { RECOVERY_MS: "5000" });
  });
  after(async () => {
    cleanup();
    await recoveryServer?.stop();
  });

  const drops = {
    "websocket, engine.close()": { transports: ["websocket"], drop: (s) => s.io.engine.close() },
    "websocket, TCP connection destroyed": {
      transports: ["websocket"],
      drop: (s) => s.io.engine.transport.ws._socket.destroy(),
    },
    "polling, engine.close()": { transports: ["polling"], drop: (s) => s.io.engine.close() },
  };

  for (const [name, { transports, drop }] of Object.entries(drops)) {
    test(`missed room broadcasts are replayed in order after a drop (${name})`, async (t) => {
      const room = unique("recovery");
      // Reconnection is automatic (the Manager's); the fixed delay gives the other
      // client time to broadcast while this one is offline.
      const a = client("/", { transports, reconnection: true, reconnectionDelay: 500, reconnectionDelayMax: 500, randomizationFactor: 0 }, recoveryServer);
      await waitFor(a, "connect", T, ["connect_error"]);
      assert.ok(!a.recovered);
      assert.equal(await a.timeout(T).emitWithAck("join", room), true);
      const oldId = a.id;
      const { socket: b } = await connected("/", {}, recoveryServer);
      // A first broadcast that `a` does receive: it carries an offset (the last argument
      // of a stored packet), which the client sends back as CONNECT {pid, offset}.
      const warmup = waitFor(a, "bcast", T);
      assert.equal(await b.timeout(T).emitWithAck("broadcast", room, { warmup: true }), true);
      const [warm, offset] = await warmup;
      assert.deepStrictEqual(warm, { warmup: true });
      assert.equal(typeof offset, "string", "a stored broadcast should carry its offset as last argument");

      const missed = new Recorder(a, "bcast");
      let reconnectAttempted = false;
      a.io.once("reconnect_attempt", () => {
        reconnectAttempted = true;
      });
      const disconnected = waitFor(a, "disconnect", T);
      const reconnected = waitFor(a, "connect", 10000);
      drop(a);
      const [reason] = await disconnected;
      assert.notEqual(reason, "io server disconnect");
      for (let i = 0; i < 3; i++) {
        assert.equal(await b.timeout(T).emitWithAck("broadcast", room, { missed: i }), true);
      }
      if (reconnectAttempted) t.diagnostic("reconnected before all broadcasts were sent: replay not exercised");
      await reconnected;
      assert.equal(a.recovered, true, "socket.recovered should be true");
      assert.equal(a.id, oldId, "a recovered socket keeps its id");
      const got = await missed.waitCount(3);
      // with recovery on, every stored packet carries its offset as an extra last argument
      assert.deepStrictEqual(
        got.map((args) => args[0]),
        [{ missed: 0 }, { missed: 1 }, { missed: 2 }],
      );
      // the room membership was restored too
      assert.equal(await b.timeout(T).emitWithAck("broadcast", room, { live: true }), true);
      const all = await missed.waitCount(4);
      assert.deepStrictEqual(all[3][0], { live: true });
      await sleep(GRACE);
      assert.equal(missed.items.length, 4, "duplicate broadcasts after recovery");
    });
  }
});
