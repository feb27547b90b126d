// The socket.io-client tests that hold whatever the packet format: the core scenario in
// each transport mode (mixed arguments, nested binary both ways, acks both ways) and the
// features (auth, emitWithAck and timeouts, namespaces, unknown namespace, rooms,
// server-side disconnect). socketio_client.test.mjs runs them with the default parser,
// socketio_msgpack.test.mjs with socket.io-msgpack-parser against PARSER=msgpack.
//
// clientKit(getServer, defaults) makes the tracked clients a test file uses; `defaults`
// are extra socket.io-client options (e.g. { parser }) for every socket and Manager.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Manager, io } from "socket.io-client";
import { Recorder, bytes, sleep, waitFor, withTimeout } from "./harness.mjs";

export const T = 5000; // default bound for any single wait
export const GRACE = 300; // only to assert that something does NOT arrive

export const MODES = {
  polling: { transports: ["polling"], upgrade: false },
  websocket: { transports: ["websocket"], upgrade: false },
  "polling+upgrade": { transports: ["polling", "websocket"], upgrade: true },
};

/**
 * Tracked clients of the server `getServer()` returns: client / connected / connectedIn
 * make sockets (own Manager, websocket, no reconnection unless asked), manager(opts) a
 * shared Manager; cleanup() closes them all (call it after each test).
 */
export function clientKit(getServer, defaults = {}) {
  const sockets = new Set();
  const managers = new Set();
  const rawSockets = new Set();
  let seq = 0;
  const unique = (prefix) => `${prefix}-${process.pid}-${++seq}`;

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

  /** A new socket (own Manager, no reconnection unless asked) that is tracked for cleanup. */
  function client(nsp = "/", opts = {}, base = getServer()) {
    const socket = io(base.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], ...defaults, ...opts });
    sockets.add(socket);
    managers.add(socket.io);
    return socket;
  }

  /** A Manager shared by the sockets made with manager.socket(nsp) (track them in `sockets`). */
  function manager(opts = {}, base = getServer()) {
    const m = new Manager(base.url, { reconnection: false, ...defaults, ...opts });
    managers.add(m);
    return m;
  }

  /** Connects and resolves with { socket, auth } once both `connect` and the server's `auth` event arrived. */
  async function connected(nsp = "/", opts = {}, base = getServer()) {
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

  return { sockets, managers, rawSockets, unique, cleanup, client, manager, connected, connectedIn };
}

/** Emits `event` with args and resolves with the argument list of the next `reply` event. */
export async function roundTrip(socket, event, reply, ...args) {
  const back = waitFor(socket, reply, T, ["disconnect"]);
  socket.emit(event, ...args);
  return back;
}

/** Emits with a callback ack and resolves with the ack's argument list. */
export function emitAck(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(T).emit(event, ...args, (err, ...ackArgs) => (err ? reject(err) : resolve(ackArgs)));
  });
}

export const MIXED = [
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

export const nestedBinary = () => ({
  file: Buffer.from([1, 2, 3, 0, 255]),
  list: [Buffer.from("abc"), { inner: bytes(1024, 5) }, "text", 42, null, Buffer.alloc(0)],
  meta: { name: "attachment", size: 5, deeper: { blob: Buffer.from([0x2d, 0x34, 0x35]) } },
});

/**
 * The core scenario in each transport mode, for the clients of `kit`; `mixed` replaces
 * MIXED as the arguments of the round-trip test.
 */
export function coreTests(kit, { label = "", mixed = MIXED } = {}) {
  const { connectedIn } = kit;
  for (const mode of Object.keys(MODES)) {
    describe(`socket.io-client core${label} over ${mode}`, () => {
      test("connects, gets its id and the auth echo ({} when no auth)", async () => {
        const { socket, auth } = await connectedIn(mode);
        assert.equal(typeof socket.id, "string");
        assert.ok(socket.id.length > 0);
        assert.deepStrictEqual(auth, {});
      });

      test("mixed arguments round trip exactly via message / message-back", async () => {
        const { socket } = await connectedIn(mode);
        const got = await roundTrip(socket, "message", "message-back", ...mixed);
        assert.deepStrictEqual(got, mixed);
        assert.equal(JSON.stringify(got), JSON.stringify(mixed), "key order / number text changed");
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
}

/** The features (websocket unless stated), for the clients of `kit`. */
export function featureTests(kit, { label = "" } = {}) {
  const { sockets, unique, client, connected } = kit;
  describe(`socket.io-client features${label} (websocket unless stated)`, () => {
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
        const manager = kit.manager({ transports });
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
      const manager = kit.manager({ transports: ["websocket"] });
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
  });
}
