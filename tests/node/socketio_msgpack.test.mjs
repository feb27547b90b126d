// Interop: npm `socket.io-client` with npm `socket.io-msgpack-parser` against the
// `conformance` contract server started with PARSER=msgpack (see socketio_client.test.mjs
// for the contract).
//
// Covered: everything of sio_suite.mjs with the msgpack parser (the core scenario over
// polling / websocket / polling then upgrade: events with mixed arguments, nested binary
// both ways, acks both ways with binary; auth; emitWithAck and timeouts; namespaces on one
// Manager; unknown namespace -> connect_error; rooms and broadcasts; server-side
// disconnect); that every packet the server sends is one binary message holding exactly
// what notepack.io would write for it; that malformed input closes only the offending
// connection; connection state recovery (offsets, replay) with msgpack.
//
// Run: INTEROP_IMPL=node node --test --test-concurrency=1 socketio_msgpack.test.mjs  (reference)
//      node --test --test-concurrency=1 socketio_msgpack.test.mjs                     (Rust example)
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import notepack from "notepack.io";
import parser from "socket.io-msgpack-parser";
import WebSocket from "ws";
import { IMPL, Recorder, isBinary, sleep, startServer, toBuffer, waitFor } from "./harness.mjs";
import { GRACE, MIXED, T, clientKit, coreTests, emitAck, featureTests, nestedBinary, roundTrip } from "./sio_suite.mjs";

let server;
const kit = clientKit(() => server, { parser });
const { sockets, rawSockets, unique, cleanup, client, connected } = kit;

before(async () => {
  server = await startServer("conformance", { PARSER: "msgpack" });
});

afterEach(cleanup);

after(async () => {
  cleanup();
  await server?.stop();
});

// notepack.io writes every integral number as a msgpack integer, so a client cannot send
// 1e300 (it wraps to 0 before it leaves the client, whatever the server).
const MIXED_MSGPACK = MIXED.filter((v) => v !== 1e300);
coreTests(kit, { label: " (msgpack)", mixed: MIXED_MSGPACK });
featureTests(kit, { label: " (msgpack)" });

/** socket.io-msgpack-parser with a decoder that also keeps every message it is given. */
function recordingParser(received) {
  class RecordingDecoder extends parser.Decoder {
    add(obj) {
      received.push(obj);
      super.add(obj);
    }
  }
  return { ...parser, Decoder: RecordingDecoder };
}

const KEY_ORDER = ["type", "data", "nsp", "id"];

/** A raw WebSocket that answers pings; resolves once the Engine.IO open packet arrived. */
async function rawSocket() {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket`);
  rawSockets.add(ws);
  const frames = new Recorder(ws, "message");
  ws.on("message", (data, binary) => {
    if (!binary && data.toString() === "2") ws.send("3");
  });
  const closed = waitFor(ws, "close", T);
  closed.catch(() => {});
  await waitFor(ws, "open", T, ["error", "close"]);
  const [[open]] = await frames.waitCount(1);
  assert.match(open.toString(), /^0\{/, "first frame is not the Engine.IO open packet");
  return { ws, frames, closed };
}

/** The next binary message on a raw socket, msgpack-decoded. */
async function nextPacket(frames, from) {
  for (let n = from + 1; ; n++) {
    const items = await frames.waitCount(n);
    const [data, binary] = items[n - 1];
    if (binary) return { packet: notepack.decode(data), count: n };
  }
}

describe("socket.io-msgpack-parser specifics", () => {
  test("every server packet is one binary message, byte-identical to notepack.io's encoding", async () => {
    const received = [];
    const p = recordingParser(received);
    const { socket } = await connected("/", { parser: p, auth: { token: "t", n: 1.5 } });
    await roundTrip(socket, "message", "message-back", ...MIXED_MSGPACK);
    await roundTrip(socket, "message", "message-back", nestedBinary(), new Uint8Array([7, 8]).buffer);
    await emitAck(socket, "message-with-ack", "a", { b: Buffer.from([1, 2]) }, -70000, 2 ** 40);
    socket.once("server-ack", (d, ack) => ack({ ok: true, blob: Buffer.from([3]) }));
    await roundTrip(socket, "please-ack", "server-ack-result", { q: Buffer.from([4]) });
    const room = unique("bytes");
    assert.equal(await socket.timeout(T).emitWithAck("join", room), true);
    const bcast = waitFor(socket, "bcast", T);
    assert.equal(await socket.timeout(T).emitWithAck("broadcast", room, { to: "room" }), true);
    await bcast;
    // namespaces on the same Manager: a CONNECT for /custom, a CONNECT_ERROR for /nope
    const custom = socket.io.socket("/custom");
    const bad = socket.io.socket("/nope");
    sockets.add(custom);
    sockets.add(bad);
    const customAuth = waitFor(custom, "auth", T, ["connect_error"]);
    const refused = waitFor(bad, "connect_error", T, ["connect"]);
    await Promise.all([customAuth, refused]);
    custom.disconnect();
    const disconnected = waitFor(socket, "disconnect", T);
    socket.emit("disconnect-me");
    await disconnected;

    const types = new Set();
    for (const msg of received) {
      assert.ok(isBinary(msg), `a text message reached the msgpack decoder: ${String(msg)}`);
      const buf = toBuffer(msg);
      const packet = notepack.decode(buf);
      types.add(packet.type);
      assert.ok(Number.isInteger(packet.type) && packet.type >= 0 && packet.type <= 4, `type ${packet.type}`);
      const keys = Object.keys(packet);
      assert.ok(keys.includes("type") && keys.includes("nsp"), `keys ${keys}`);
      assert.deepStrictEqual([...keys].sort(), KEY_ORDER.filter((k) => keys.includes(k)).sort(), `keys ${keys}`);
      // rollcall writes one key order for every packet (the reference's varies by type)
      if (IMPL === "rust") assert.deepStrictEqual(keys, KEY_ORDER.filter((k) => keys.includes(k)), `key order ${keys}`);
      assert.ok(
        buf.equals(notepack.encode(packet)),
        `not notepack's encoding: ${buf.toString("hex")} vs ${notepack.encode(packet).toString("hex")}`,
      );
    }
    // CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR were all seen
    assert.deepStrictEqual([...types].sort(), [0, 1, 2, 3, 4]);
  });

  test("binary as Buffer, ArrayBuffer and typed array goes in and comes back as binary", async () => {
    const { socket } = await connected();
    const ab = new Uint8Array([1, 2, 3]).buffer;
    const [got] = await roundTrip(socket, "message", "message-back", { ab, u8: new Uint8Array([4, 5]), buf: Buffer.from([6]) });
    assert.deepStrictEqual(Object.keys(got), ["ab", "u8", "buf"]);
    for (const v of Object.values(got)) assert.ok(isBinary(v), `not binary: ${v}`);
    assert.deepStrictEqual(Object.values(got).map(toBuffer), [Buffer.from([1, 2, 3]), Buffer.from([4, 5]), Buffer.from([6])]);
    // rollcall sends every binary value as msgpack bin (a Buffer in Node); the reference
    // echoes an ArrayBuffer (msgpack ext 0) as one
    if (IMPL === "rust") assert.ok(Object.values(got).every((v) => Buffer.isBuffer(v)));
    // a Date arrives as the string JSON.stringify makes of it (the reference keeps a Date)
    const when = new Date(1705314600123);
    const [date] = await roundTrip(socket, "message", "message-back", when);
    if (IMPL === "rust") assert.equal(date, "2024-01-15T10:30:00.123Z");
    else assert.deepStrictEqual(date, when);
    // an empty buffer and a large one (bin 32: over 65,535 bytes)
    const big = Buffer.alloc(70000, 7);
    const [empty, large] = await emitAck(socket, "message-with-ack", Buffer.alloc(0), big);
    assert.deepStrictEqual(empty, Buffer.alloc(0));
    assert.ok(big.equals(large));
  });

  test("malformed input closes only the offending connection", async () => {
    const { socket: good } = await connected();
    const enc = (p) => notepack.encode(p);
    const cases = {
      "a text message": "40",
      "the unused marker 0xc1": Buffer.from([0xc1]),
      "trailing bytes": Buffer.concat([enc({ type: 2, data: ["x"], nsp: "/" }), Buffer.from([0])]),
      "a truncated map": enc({ type: 2, data: ["x"], nsp: "/" }).subarray(0, 8),
      "event data that is not an array": enc({ type: 2, data: "x", nsp: "/" }),
      "no namespace": enc({ type: 2, data: ["x"] }),
      "CONNECT_ERROR from a client": enc({ type: 4, data: { message: "x" }, nsp: "/" }),
      "a binary packet type": enc({ type: 5, data: ["x"], nsp: "/" }),
      "a string ack id": enc({ type: 3, data: [], id: "1", nsp: "/" }),
    };
    // rollcall validates msgpack packets as it does JSON ones and refuses ext types it has
    // no value for; the reference's msgpack parser lets a reserved event name through (and
    // ignores the event) and hands an unknown ext type to the application as [type, bytes]
    if (IMPL === "rust") {
      cases["a reserved event name"] = enc({ type: 2, data: ["disconnect"], nsp: "/" });
      // {type: 2, nsp: "/", data: ["x", fixext 1 of type 5]}
      cases["an ext type other than 0"] = Buffer.from("83a47479706502a36e7370a12fa46461746192a178d40500", "hex");
    }
    for (const [name, bad] of Object.entries(cases)) {
      const { ws, frames, closed } = await rawSocket();
      ws.send(enc({ type: 0, nsp: "/" }));
      const { packet } = await nextPacket(frames, 1);
      assert.equal(packet.type, 0, `no CONNECT reply before sending ${name}`);
      assert.equal(typeof packet.data.sid, "string");
      ws.send(bad);
      await closed.catch((e) => assert.fail(`${name}: ${e.message}`));
      frames.stop();
      rawSockets.delete(ws);
      assert.ok(good.connected, `the well-behaved client was disconnected by ${name}`);
      assert.equal(await good.timeout(T).emitWithAck("message-with-ack", name), name);
    }
  });

  test("a raw msgpack client: CONNECT, event with binary, ack with id", async () => {
    const { ws, frames } = await rawSocket();
    ws.send(notepack.encode({ type: 0, data: { who: "raw" }, nsp: "/" }));
    let { packet, count } = await nextPacket(frames, 1);
    assert.deepStrictEqual(Object.keys(packet), ["type", "data", "nsp"]);
    assert.equal(packet.type, 0);
    ({ packet, count } = await nextPacket(frames, count));
    assert.deepStrictEqual(packet, { type: 2, data: ["auth", { who: "raw" }], nsp: "/" });
    ws.send(notepack.encode({ type: 2, data: ["message-with-ack", Buffer.from([1, 2]), 3], id: 41, nsp: "/" }));
    ({ packet } = await nextPacket(frames, count));
    assert.deepStrictEqual(packet, { type: 3, data: [Buffer.from([1, 2]), 3], nsp: "/", id: 41 });
  });
});

describe("connection state recovery with msgpack (RECOVERY_MS=5000)", () => {
  let recoveryServer;
  before(async () => {
    recoveryServer = await startServer("conformance", { RECOVERY_MS: "5000", PARSER: "msgpack" });
  });
  after(async () => {
    cleanup();
    await recoveryServer?.stop();
  });

  test("broadcasts carry their offset; the missed ones (with binary) are replayed after a drop", async () => {
    const room = unique("recovery");
    const a = client("/", { reconnection: true, reconnectionDelay: 500, reconnectionDelayMax: 500, randomizationFactor: 0 }, recoveryServer);
    await waitFor(a, "connect", T, ["connect_error"]);
    assert.equal(await a.timeout(T).emitWithAck("join", room), true);
    const oldId = a.id;
    const { socket: b } = await connected("/", {}, recoveryServer);
    const warmup = waitFor(a, "bcast", T);
    assert.equal(await b.timeout(T).emitWithAck("broadcast", room, { warmup: true }), true);
    const [, offset] = await warmup;
    assert.equal(typeof offset, "string", "a stored broadcast should carry its offset as last argument");

    const missed = new Recorder(a, "bcast");
    const disconnected = waitFor(a, "disconnect", T);
    const reconnected = waitFor(a, "connect", 10000);
    a.io.engine.close();
    await disconnected;
    for (let i = 0; i < 3; i++) {
      assert.equal(await b.timeout(T).emitWithAck("broadcast", room, { missed: i, bin: Buffer.from([i]) }), true);
    }
    await reconnected;
    assert.equal(a.recovered, true, "socket.recovered should be true");
    assert.equal(a.id, oldId);
    const got = await missed.waitCount(3);
    assert.deepStrictEqual(
      got.map((args) => args[0]),
      [0, 1, 2].map((i) => ({ missed: i, bin: Buffer.from([i]) })),
    );
    await sleep(GRACE);
    assert.equal(missed.items.length, 3, "duplicate broadcasts after recovery");
  });
});
