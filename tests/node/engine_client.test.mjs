// Interop: the real npm `engine.io-client` (v6) against the `engine_echo` contract server.
//
// engine_echo: Engine.IO v4 at /engine.io/, echoes every message as it came (text as
// text, binary as binary); pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6.
// Every scenario runs over three transport modes: polling only, websocket only, and
// polling then upgrade to websocket (the upgrade is awaited and asserted first).
//
// Run: INTEROP_IMPL=node node --test --test-timeout=60000 --test-concurrency=1   (reference)
//      node --test --test-timeout=60000 --test-concurrency=1                      (Rust example)
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Socket } from "engine.io-client";
import { Recorder, bytes, isBinary, sleep, startServer, toBuffer, waitFor } from "./harness.mjs";

const T = 5000; // default bound for any single wait

let server;
const clients = new Set();

before(async () => {
  server = await startServer("engine_echo");
});

afterEach(() => {
  for (const c of clients) c.close();
  clients.clear();
});

after(async () => {
  for (const c of clients) c.close();
  clients.clear();
  await server?.stop();
});

const MODES = {
  polling: { transports: ["polling"], upgrade: false },
  websocket: { transports: ["websocket"], upgrade: false },
  "polling+upgrade": { transports: ["polling", "websocket"], upgrade: true },
};

function create(mode) {
  const { transports } = MODES[mode];
  const socket = new Socket(server.url, { path: "/engine.io/", transports });
  clients.add(socket);
  const handshake = waitFor(socket, "handshake", T, ["error", "close"]);
  handshake.catch(() => {}); // observed through `open` below
  return { socket, handshake };
}

/** Opens a client in `mode`; for polling+upgrade it also waits for the upgrade to complete. */
async function open(mode) {
  const { socket, handshake } = create(mode);
  const upgraded = MODES[mode].upgrade ? waitFor(socket, "upgrade", T, ["upgradeError", "close"]) : null;
  upgraded?.catch(() => {});
  await waitFor(socket, "open", T, ["error", "close"]);
  const [hs] = await handshake;
  if (upgraded) {
    await upgraded;
    assert.equal(socket.transport.name, "websocket");
  }
  return { socket, hs };
}

/** Sends `msg` and resolves with the next message echoed back. */
async function echo(socket, msg) {
  const reply = waitFor(socket, "message", T, ["close"]);
  socket.send(msg);
  const [data] = await reply;
  return data;
}

function assertSameBinary(got, sent) {
  assert.ok(isBinary(got), `expected binary, got ${typeof got}`);
  assert.deepEqual(toBuffer(got), toBuffer(sent));
}

/** The messages received are the ones sent, in order (strings equal, binaries byte for byte). */
function assertSameMessages(got, sent) {
  assert.equal(got.length, sent.length);
  got.forEach((g, i) => {
    if (typeof sent[i] === "string") assert.equal(g, sent[i], `message #${i}`);
    else assertSameBinary(g, sent[i]);
  });
}

const largeText = (n) => {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  let s = "";
  while (s.length < n) s += alphabet;
  return s.slice(0, n);
};

for (const mode of Object.keys(MODES)) {
  describe(`engine.io-client over ${mode}`, () => {
    test("handshake fields as the client sees them", async () => {
      const { socket, hs } = await open(mode);
      assert.equal(typeof hs.sid, "string");
      assert.ok(hs.sid.length > 0, "sid is empty");
      assert.equal(socket.id, hs.sid);
      assert.equal(hs.pingInterval, 300);
      assert.equal(hs.pingTimeout, 200);
      assert.equal(hs.maxPayload, 1_000_000);
      assert.ok(Array.isArray(hs.upgrades), "upgrades is not an array");
      if (mode === "websocket") {
        assert.deepEqual(hs.upgrades, []);
      } else {
        assert.deepEqual(hs.upgrades, ["websocket"]);
      }
      assert.equal(socket.transport.name, mode === "polling" ? "polling" : "websocket");
    });

    test("text messages are echoed exactly, as text", async () => {
      const { socket } = await open(mode);
      // An empty message is packet "4" with no data: engine.io-parser hands it to the
      // application as `undefined`, so only check that it comes back empty.
      assert.equal((await echo(socket, "")) ?? "", "");
      for (const msg of [
        "hello",
        "unicode: héllo wörld — 日本語 — 🚀🎉 👩‍👩‍👧",
        'json-looking {"a":[1,2,3]} and quotes "\' \\ /',
        "control \n\r\t \u0000 \u2028\u2029 chars",
        "4not-a-packet-type 2probe 6 1",
      ]) {
        const got = await echo(socket, msg);
        assert.equal(typeof got, "string");
        assert.equal(got, msg);
      }
    });

    test("binary messages are echoed exactly, as binary (Buffer and Uint8Array)", async () => {
      const { socket } = await open(mode);
      const buf = Buffer.from([0, 1, 2, 3, 0xfe, 0xff]);
      assertSameBinary(await echo(socket, buf), buf);
      const u8 = new Uint8Array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 255]);
      assertSameBinary(await echo(socket, u8), u8);
      const single = Buffer.from([0x34]); // looks like the "message" packet type byte
      assertSameBinary(await echo(socket, single), single);
      const empty = Buffer.alloc(0);
      assertSameBinary(await echo(socket, empty), empty);
      const rand = bytes(4096, 7);
      assertSameBinary(await echo(socket, rand), rand);
    });

    test("many messages in a row keep their order (text and binary interleaved)", async () => {
      const { socket } = await open(mode);
      const sent = [];
      for (let i = 0; i < 60; i++) {
        sent.push(i % 3 === 2 ? bytes(16 + i, i + 1) : `msg-${i}-${"é".repeat(i % 5)}`);
      }
      const rec = new Recorder(socket, "message");
      for (const m of sent) socket.send(m);
      const got = (await rec.waitCount(sent.length, 10000)).map(([d]) => d);
      rec.stop();
      assertSameMessages(got, sent);
    });

    test("large messages are echoed (500 KB text, 400 KB binary)", async () => {
      const { socket } = await open(mode);
      const text = largeText(500_000);
      const gotText = await echo(socket, text);
      assert.equal(typeof gotText, "string");
      assert.equal(gotText.length, text.length);
      assert.ok(gotText === text, "500 KB text differs");
      const bin = bytes(400_000, 3);
      assertSameBinary(await echo(socket, bin), bin);
    });

    test("heartbeat keeps the connection alive well past pingInterval + pingTimeout", async () => {
      const { socket } = await open(mode);
      const pings = new Recorder(socket, "ping");
      let closed = null;
      socket.on("close", (reason) => {
        closed = reason;
      });
      // 1200 ms is > 2 x (pingInterval + pingTimeout): the server must ping and accept pongs.
      await sleep(1200);
      pings.stop();
      assert.equal(closed, null, `connection closed: ${closed}`);
      assert.equal(socket.readyState, "open");
      assert.ok(pings.items.length >= 2, `expected >= 2 server pings in 1.2 s, got ${pings.items.length}`);
      assert.equal(await echo(socket, "still alive"), "still alive");
    });
  });
}

describe("engine.io-client polling -> websocket upgrade", () => {
  test("the upgrade happens and the transport is websocket afterwards", async () => {
    const { socket } = create("polling+upgrade");
    const upgrading = waitFor(socket, "upgrading", T, ["upgradeError", "close"]);
    const upgrade = waitFor(socket, "upgrade", T, ["upgradeError", "close"]);
    await waitFor(socket, "open", T, ["error", "close"]);
    assert.equal(socket.transport.name, "polling");
    await upgrading;
    const [transport] = await upgrade;
    assert.equal(transport.name, "websocket");
    assert.equal(socket.transport.name, "websocket");
    assert.equal(await echo(socket, "after upgrade"), "after upgrade");
  });

  test("messages sent before, during and after the upgrade arrive in order", async () => {
    const { socket } = create("polling+upgrade");
    const rec = new Recorder(socket, "message");
    const sent = [];
    const send = (m) => {
      sent.push(m);
      socket.send(m);
    };
    const upgradingSeen = new Promise((resolve) => {
      // "upgrading" fires once the websocket probe succeeded, while polling is being
      // paused and drained: whatever is sent now is buffered across the switch.
      socket.once("upgrading", () => {
        for (let i = 0; i < 10; i++) send(i % 2 ? `during-${i}` : bytes(8, 100 + i));
        resolve();
      });
    });
    const upgrade = waitFor(socket, "upgrade", T, ["upgradeError", "close"]);
    await waitFor(socket, "open", T, ["error", "close"]);
    for (let i = 0; i < 10; i++) send(i % 2 ? bytes(8, 200 + i) : `before-${i}`);
    await upgradingSeen;
    await upgrade;
    assert.equal(socket.transport.name, "websocket");
    for (let i = 0; i < 10; i++) send(`after-${i}`);
    const got = (await rec.waitCount(sent.length, 10000)).map(([d]) => d);
    rec.stop();
    assertSameMessages(got, sent);
  });
});
