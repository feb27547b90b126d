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
//
// Run: INTEROP_IMPL=node node --test --test-timeout=60000 --test-concurrency=1   (reference)
//      node --test --test-timeout=60000 --test-concurrency=1                      (Rust example)
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Manager, io } from "socket.io-client";
import WebSocket from "ws";
import { Recorder, bytes, sleep, startServer, waitFor, withTimeout } from "./harness.mjs";

const T = 5000; // default bound for any single wait
const GRACE = 300; // only to assert that something does NOT arrive

let server;
const sockets = new Set();
const managers = new Set();
const rawSockets = new Set();
let seq = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++seq}`;

before(async () => {
  server = await startServer("conformance");
});

function cleanup() {
  for (const s of sockets) s.disconnect();
  for (const m of managers) {
    m.reconnection(false);
    m.engine?.close();
  }
  for (const ws of rawSockets) ws.terminate();
  sockets.clear();
  managers.clear();
  rawSockets.clear();
}

afterEach(cleanup);

after(async () => {
  cleanup();
  await server?.stop();
});

const MODES = {
  polling: { transports: ["polling"], upgrade: false },
  websocket: { transports: ["websocket"], upgrade: false },
  "polling+upgrade": { transports: ["polling", "websocket"], upgrade: true },
};

/** A new socket (own Manager, no reconnection unless asked) that is tracked for cleanup. */
function client(nsp = "/", opts = {}, base = server) {
  const socket = io(base.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], ...opts });
  sockets.add(socket);
  managers.add(socket.io);
  return socket;
}

/** Connects and resolves with { socket, auth } once both `connect` and the server's `auth` event arrived. */
async function connected(nsp = "/", opts = {}, base = server) {
  const socket = client(nsp, opts, base);
  const auth = waitFor(socket, "auth", T, ["connect_error", "disconnect"]);
  auth.catch(() => {});
  await waitFor(socket, "connect", T, ["connect_error"]);
  const [authPayload] = await auth;
  return { socket, auth: authPayload };
}

/** Connects in one of the three transport modes; polling+upgrade waits for the upgrade. */
async function connectedIn(mode, opts = {}) {
  const { transports, upgrade } = MODES[mode];
  const socket = client("/", { transports, ...opts });
  const auth = waitFor(socket, "auth", T, ["connect_error", "disconnect"]);
  auth.catch(() => {});
  // The Manager creates its engine synchronously; hook the upgrade before it can happen.
  const upgraded = upgrade ? waitFor(socket.io.engine, "upgrade", T, ["upgradeError", "close"]) : null;
  upgraded?.catch(() => {});
  await waitFor(socket, "connect", T, ["connect_error"]);
  const [authPayload] = await auth;
  if (upgraded) await upgraded;
  assert.equal(socket.io.engine.transport.name, mode === "polling" ? "polling" : "websocket");
  return { socket, auth: authPayload };
}

/** Emits `event` with args and resolves with the argument list of the next `reply` event. */
async function roundTrip(socket, event, reply, ...args) {
  const back = waitFor(socket, reply, T, ["disconnect"]);
  socket.emit(event, ...args);
  return back;
}

/** Emits with a callback ack and resolves with the ack's argument list. */
function emitAck(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(T).emit(event, ...args, (err, ...ackArgs) => (err ? reject(err) : resolve(ackArgs)));
  });
}

const MIXED = [
  "plain ascii",
  "unicode: é ñ ß — 日本語 — 𝄞 — 🚀🎉 — 👩‍👩‍👧 — \u2028\u2029",
  'quotes " \\ / and control \n\t\r \u0000',
  "",
  0,
  1,
  -1,
  1.5,
  -0.25,
  1e-7,
  123456789.125,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  12345678901234567000, // beyond 2^53: must survive as the same double
  1e300,
  true,
  false,
  null,
  [],
  {},
  [1, "two", [3, [4, [5, []]]], { six: 6 }, null, false],
  {
    nested: { deep: { deeper: { list: [null, true, false, 0, "x", { y: [] }] } } },
    "key with spaces": "v",
    ключ: "значение",
    "emoji🔑": "🎉",
    order: { z: 1, a: 2, m: 3, "10": 4, "2": 5 },
    num: 1.5,
    big: 9007199254740991,
  },
];

const nestedBinary = () => ({
  file: Buffer.from([1, 2, 3, 0, 255]),
  list: [Buffer.from("abc"), { inner: bytes(1024, 5) }, "text", 42, null, Buffer.alloc(0)],
  meta: { name: "attachment", size: 5, deeper: { blob: Buffer.from([0x2d, 0x34, 0x35]) } },
});

for (const mode of Object.keys(MODES)) {
  describe(`socket.io-client core over ${mode}`, () => {
    test("connects, gets its id and the auth echo ({} when no auth)", async () => {
      const { socket, auth } = await connectedIn(mode);
      assert.equal(typeof socket.id, "string");
      assert.ok(socket.id.length > 0);
      assert.deepStrictEqual(auth, {});
    });

    test("mixed arguments round trip exactly via message / message-back", async () => {
      const { socket } = await connectedIn(mode);
      const got = await roundTrip(socket, "message", "message-back", ...MIXED);
      assert.deepStrictEqual(got, MIXED);
      assert.equal(JSON.stringify(got), JSON.stringify(MIXED), "key order / number text changed");
    });

    test("binary attachments nested in objects and arrays, both ways", async () => {
      const { socket } = await connectedIn(mode);
      const args = [nestedBinary(), Buffer.from([9]), [Buffer.from([0]), 1, [Buffer.from("zz")]], "tail"];
      const got = await roundTrip(socket, "message", "message-back", ...args);
      assert.deepStrictEqual(got, args);
      for (const b of [got[0].file, got[0].list[0], got[0].list[1].inner, got[0].meta.deeper.blob, got[1]]) {
        assert.ok(Buffer.isBuffer(b), "attachment did not come back as binary");
      }
      // Uint8Array in, binary out.
      const [u8back] = await roundTrip(socket, "message", "message-back", new Uint8Array([7, 8, 9]));
      assert.deepStrictEqual(Buffer.from(u8back), Buffer.from([7, 8, 9]));
    });

    test("acks both ways, with binary", async () => {
      const { socket } = await connectedIn(mode);
      // client -> server ack, several arguments including binary
      const sent = ["a", 1.5, { b: Buffer.from([1, 2]) }, [Buffer.from("x")], null];
      assert.deepStrictEqual(await emitAck(socket, "message-with-ack", ...sent), sent);
      // server -> client ack: the server emits server-ack with an ack, we answer with binary
      const data = { question: "binary?", blob: Buffer.from([4, 5, 6]) };
      const answer = { ok: true, blob: bytes(300, 9), list: [Buffer.from([0])] };
      socket.once("server-ack", (d, ack) => {
        assert.deepStrictEqual(d, data);
        assert.equal(typeof ack, "function", "server-ack carried no ack id");
        ack(answer);
      });
      const [result] = await roundTrip(socket, "please-ack", "server-ack-result", data);
      assert.deepStrictEqual(result, answer);
    });
  });
}

describe("socket.io-client features (websocket unless stated)", () => {
  test("auth echo with an auth payload", async () => {
    const auth = { token: "s3cr3t", n: 1.5, nested: { list: [1, "x", null], ok: true }, ünï: "☃" };
    const { auth: got } = await connected("/", { auth });
    assert.deepStrictEqual(got, auth);
    const { auth: polled } = await connected("/", { auth, transports: ["polling"] });
    assert.deepStrictEqual(polled, auth);
  });

  test("emitWithAck resolves with the first ack argument", async () => {
    const { socket } = await connected();
    assert.equal(await withTimeout(socket.emitWithAck("message-with-ack", "first", "second"), T, "ack"), "first");
    assert.deepStrictEqual(await socket.timeout(T).emitWithAck("message-with-ack", { a: [1, 2] }), { a: [1, 2] });
    assert.deepStrictEqual(await socket.timeout(T).emitWithAck("message-with-ack", Buffer.from([1, 2, 3])), Buffer.from([1, 2, 3]));
  });

  test("timeout(ms).emitWithAck rejects when the server never acks", async () => {
    const { socket } = await connected();
    const started = Date.now();
    await assert.rejects(socket.timeout(250).emitWithAck("nobody-handles-this", 1), (err) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /timed out/);
      return true;
    });
    assert.ok(Date.now() - started >= 200, "rejected too early");
    // the callback form reports the same timeout
    const err = await new Promise((resolve) => socket.timeout(150).emit("nobody-handles-this", (e) => resolve(e)));
    assert.ok(err instanceof Error);
    // and the connection is still fine
    assert.equal(await socket.timeout(T).emitWithAck("message-with-ack", "alive"), "alive");
  });

  test("/custom namespace gets its own auth echo", async () => {
    const { socket, auth } = await connected("/custom", { auth: { ns: "custom" } });
    assert.equal(socket.nsp, "/custom");
    assert.deepStrictEqual(auth, { ns: "custom" });
  });

  for (const transports of [["websocket"], ["polling"]]) {
    test(`two namespaces over one Manager share one engine (${transports[0]})`, async () => {
      const manager = new Manager(server.url, { transports, reconnection: false });
      managers.add(manager);
      const main = manager.socket("/", { auth: { which: "main" } });
      const custom = manager.socket("/custom", { auth: { which: "custom" } });
      sockets.add(main);
      sockets.add(custom);
      const mainAuth = waitFor(main, "auth", T, ["connect_error"]);
      const customAuth = waitFor(custom, "auth", T, ["connect_error"]);
      assert.deepStrictEqual((await mainAuth)[0], { which: "main" });
      assert.deepStrictEqual((await customAuth)[0], { which: "custom" });
      assert.ok(main.connected && custom.connected);
      assert.ok(main.io.engine, "no engine");
      assert.equal(main.io.engine, custom.io.engine);
      assert.notEqual(main.id, custom.id);
      assert.deepStrictEqual(await roundTrip(main, "message", "message-back", "over main"), ["over main"]);
      // leaving /custom keeps the shared engine (and "/") alive
      const engine = main.io.engine;
      custom.disconnect();
      assert.equal(await main.timeout(T).emitWithAck("message-with-ack", "still here"), "still here");
      assert.equal(main.io.engine, engine);
      assert.equal(engine.readyState, "open");
    });
  }

  test("an unknown namespace gets connect_error 'Invalid namespace'", async () => {
    const socket = client("/no-such-namespace");
    const [err] = await waitFor(socket, "connect_error", T, ["connect"]);
    assert.ok(err instanceof Error);
    assert.equal(err.message, "Invalid namespace");
    assert.equal(socket.connected, false);

    // On a shared Manager, the refusal does not disturb "/" on the same engine.
    const manager = new Manager(server.url, { transports: ["websocket"], reconnection: false });
    managers.add(manager);
    const main = manager.socket("/");
    const bad = manager.socket("/nope");
    sockets.add(main);
    sockets.add(bad);
    const mainConnected = waitFor(main, "connect", T, ["connect_error"]);
    const [err2] = await waitFor(bad, "connect_error", T, ["connect"]);
    assert.equal(err2.message, "Invalid namespace");
    await mainConnected;
    assert.equal(await main.timeout(T).emitWithAck("message-with-ack", "ok"), "ok");
  });

  test("rooms: broadcast reaches exactly the members, leave works", async () => {
    const room = unique("room-A");
    const [a, b, c] = await Promise.all([connected(), connected(), connected()]).then((xs) => xs.map((x) => x.socket));
    const recA = new Recorder(a, "bcast");
    const recB = new Recorder(b, "bcast");
    const recC = new Recorder(c, "bcast");
    assert.equal(await a.timeout(T).emitWithAck("join", room), true);
    assert.equal(await b.timeout(T).emitWithAck("join", room), true);
    assert.equal(await c.timeout(T).emitWithAck("join", unique("other-room")), true);

    // c (not a member) broadcasts to the room: a and b get it, c does not
    assert.equal(await c.timeout(T).emitWithAck("broadcast", room, { n: 1, bin: Buffer.from([1]) }), true);
    assert.deepStrictEqual((await recA.waitCount(1))[0], [{ n: 1, bin: Buffer.from([1]) }]);
    assert.deepStrictEqual((await recB.waitCount(1))[0], [{ n: 1, bin: Buffer.from([1]) }]);
    await sleep(GRACE);
    assert.equal(recC.items.length, 0, "a non-member received the room broadcast");

    // b leaves; a (member) broadcasts: the sender itself receives it, b does not
    assert.equal(await b.timeout(T).emitWithAck("leave", room), true);
    assert.equal(await a.timeout(T).emitWithAck("broadcast", room, "second"), true);
    assert.deepStrictEqual((await recA.waitCount(2))[1], ["second"]);
    await sleep(GRACE);
    assert.equal(recB.items.length, 1, "a socket that left still received the broadcast");
    assert.equal(recC.items.length, 0);
    assert.equal(recA.items.length, 2);

    // join / leave without an ack are accepted too
    b.emit("join", room);
    assert.equal(await b.timeout(T).emitWithAck("message-with-ack", "sync"), "sync"); // b's join is processed before this
    assert.equal(await c.timeout(T).emitWithAck("broadcast", room, "third"), true);
    assert.deepStrictEqual((await recB.waitCount(2))[1], ["third"]);
    assert.deepStrictEqual((await recA.waitCount(3))[2], ["third"]);
  });

  test("disconnect-me: the client sees reason 'io server disconnect'", async () => {
    for (const transports of [["websocket"], ["polling"]]) {
      const { socket } = await connected("/", { transports });
      const disconnected = waitFor(socket, "disconnect", T);
      socket.emit("disconnect-me");
      const [reason] = await disconnected;
      assert.equal(reason, "io server disconnect");
      assert.equal(socket.connected, false);
    }
  });

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
