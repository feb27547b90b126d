// Interop: permessage-deflate negotiated by the real npm `socket.io-client` (its Node
// WebSocket is `ws`, which offers the extension by default; engine.io-client compresses
// packets of 1024 bytes and more) against the `conformance` contract server with DEFLATE=1.
//
// Covered: the extension is agreed (ws reports it) over websocket-only and after an upgrade
// from polling; events both ways, small and large, text and binary, acks; large messages
// really travel compressed in both directions (bytes counted on the client's TCP socket);
// a room broadcast reaches every member compressed; with DEFLATE off the offer is declined
// and everything still works uncompressed.
//
// Run: node --test --test-concurrency=1 deflate.test.mjs   (INTEROP_IMPL=node: the reference)
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { bytes, startServer, waitFor } from "./harness.mjs";

const T = 5000;

let zipped;
let plain;
const sockets = new Set();

before(async () => {
  zipped = await startServer("conformance", { DEFLATE: "1" });
  plain = await startServer("conformance", {});
});

afterEach(() => {
  for (const s of sockets) s.disconnect();
  sockets.clear();
});

after(async () => {
  await zipped?.stop();
  await plain?.stop();
});

async function connect(base, opts = {}) {
  const socket = io(base.url, { forceNew: true, reconnection: false, transports: ["websocket"], ...opts });
  sockets.add(socket);
  await waitFor(socket, "connect", T, ["connect_error"]);
  return socket;
}

/** The `ws` WebSocket under a connected socket.io-client socket. */
const wsOf = (socket) => socket.io.engine.transport.ws;

/** Bytes read and written so far on the socket's TCP connection. */
function wire(socket) {
  const tcp = wsOf(socket)._socket;
  return { read: tcp.bytesRead, written: tcp.bytesWritten };
}

/** A 100 KB JSON-friendly roster: compressible, like real payloads. */
function roster(n = 1500) {
  return Array.from({ length: n }, (_, i) => ({ id: `s-${i}`, name: `Student ${i}`, present: i % 3 === 0 }));
}

/** Waits until the upgrade to websocket is done. */
async function upgraded(socket) {
  if (socket.io.engine.transport.name === "websocket") return;
  await waitFor(socket.io.engine, "upgrade", T);
}

test("websocket: the extension is agreed; events both ways, small and large, compressed on the wire", async () => {
  const socket = await connect(zipped);
  assert.equal(wsOf(socket).extensions, "permessage-deflate");

  // Small: below the threshold, both ways.
  let back = waitFor(socket, "message-back", T);
  socket.emit("message", "hi", 1, { a: true });
  assert.deepEqual(await back, ["hi", 1, { a: true }]);

  // Large: compressed both ways.
  const big = roster();
  const json = JSON.stringify(big);
  assert.ok(json.length > 50_000);
  const before = wire(socket);
  back = waitFor(socket, "message-back", T);
  socket.emit("message", big);
  assert.deepEqual(await back, [big]);
  const after = wire(socket);
  const sent = after.written - before.written;
  const received = after.read - before.read;
  assert.ok(sent < json.length / 4, `client sent ${sent} bytes for ${json.length}`);
  assert.ok(received < json.length / 4, `client received ${received} bytes for ${json.length}`);

  // Acks with a large payload (emitWithAck resolves with the first argument).
  const reply = await socket.timeout(T).emitWithAck("message-with-ack", big);
  assert.deepEqual(reply, big);
});

test("websocket: binary attachments, small and large", async () => {
  const socket = await connect(zipped);
  const small = bytes(16);
  const large = Buffer.alloc(200_000, "attendance ");
  const noise = bytes(50_000, 7); // incompressible: goes as it is
  const before = wire(socket);
  const back = waitFor(socket, "message-back", T);
  socket.emit("message", { small, large, noise });
  const [got] = await back;
  assert.deepEqual(Buffer.from(got.small), small);
  assert.deepEqual(Buffer.from(got.large), large);
  assert.deepEqual(Buffer.from(got.noise), noise);
  const received = wire(socket).read - before.read;
  assert.ok(received < 50_000 + 200_000 / 4, `received ${received} bytes`);
});

test("polling then upgrade: the upgraded WebSocket agrees and compresses", async () => {
  const socket = await connect(zipped, { transports: ["polling", "websocket"] });
  await upgraded(socket);
  assert.equal(wsOf(socket).extensions, "permessage-deflate");
  const big = roster(800);
  const before = wire(socket);
  const back = waitFor(socket, "message-back", T);
  socket.emit("message", big);
  assert.deepEqual(await back, [big]);
  const received = wire(socket).read - before.read;
  assert.ok(received < JSON.stringify(big).length / 4, `received ${received} bytes`);
});

test("a room broadcast reaches every member compressed", async () => {
  const room = `hall-${process.pid}`;
  const members = await Promise.all([0, 1, 2].map(() => connect(zipped)));
  for (const m of members) assert.equal(await m.timeout(T).emitWithAck("join", room), true);
  const big = roster(300);
  const before = members.map(wire);
  const got = members.map((m) => waitFor(m, "bcast", T));
  await members[0].timeout(T).emitWithAck("broadcast", room, big);
  for (const [i, g] of got.entries()) {
    assert.deepEqual(await g, [big]);
    const received = wire(members[i]).read - before[i].read;
    assert.ok(received < JSON.stringify(big).length / 4, `member ${i} received ${received} bytes`);
  }
});

test("deflate off (the default): the offer is declined and large messages go uncompressed", async () => {
  const socket = await connect(plain);
  assert.equal(wsOf(socket).extensions, "");
  const big = roster(300);
  const before = wire(socket);
  const back = waitFor(socket, "message-back", T);
  socket.emit("message", big);
  assert.deepEqual(await back, [big]);
  const received = wire(socket).read - before.read;
  assert.ok(received > JSON.stringify(big).length, `received ${received} bytes`);
});
