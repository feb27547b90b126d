// Abuse resistance of the HTTP, Engine.IO and Socket.IO layers (SPEC.md §1.1, §2.16, §3.14),
// against the `conformance` server with its limits turned on and set low by environment.
//
// Every attack comes from a second loopback address (127.0.0.2 and up, as the source of raw
// sockets) while a legitimate npm `socket.io-client` from 127.0.0.1 keeps connecting and getting
// acks; after each attack the server's RSS (/proc/<pid>/status VmRSS) stays under RSS_BOUND_MB.
// Covered: a connection flood (429 per address at accept time), a handshake flood (429 code 6
// with Retry-After), the global session cap (503 code 7) and the early reclaim of sessions that
// never complete their first exchange, slow headers, a slow POST body (408, session closed),
// attachment abuse (many attachments over maxPayload, a half-sent binary event), big-argument
// events (size checked before parsing), a packet flood, the same abuse through socket.io-client
// itself, and the WebSocket Origin check.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { readFileSync } from "node:fs";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { sleep, startServer, waitFor, withTimeout } from "./harness.mjs";

const T = 8000;
const RSS_BOUND_MB = 300;

function rssMb(pid) {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return Number(line.split(/\s+/)[1]) / 1024;
}

/** One legitimate client: connects over WebSocket from 127.0.0.1, gets an ack, leaves. */
async function legit(url) {
  const s = io(url, { transports: ["websocket"], reconnection: false, forceNew: true, timeout: T });
  try {
    await waitFor(s, "connect", T, ["connect_error"]);
    assert.equal(await withTimeout(s.emitWithAck("message-with-ack", "hi"), T, "legit ack"), "hi");
  } finally {
    s.close();
  }
}

/**
 * Runs `attack` while legitimate clients connect one after another (paced at one per 150 ms,
 * within 127.0.0.1's own budget); returns the attack's result.
 */
async function during(url, attack) {
  let done = false;
  const running = attack().finally(() => {
    done = true;
  });
  let served = 0;
  do {
    await legit(url);
    served += 1;
    await sleep(150);
  } while (!done);
  const result = await running;
  await legit(url);
  assert.ok(served >= 1);
  return result;
}

/** A raw TCP request from `from`: resolves to { status, headers, body } or { closed: true }. */
function raw(port, from, text, { ms = T } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port, localAddress: from });
    let data = "";
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ timeout: true, data });
    }, ms);
    sock.on("connect", () => sock.write(text));
    sock.on("data", (d) => (data += d.toString("latin1")));
    const finish = () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d+)/.exec(data);
      if (!m) return resolve({ closed: true, data });
      const [head, body = ""] = data.split("\r\n\r\n");
      const headers = Object.fromEntries(
        head.split("\r\n").slice(1).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
      );
      resolve({ status: Number(m[1]), headers, body });
    };
    sock.on("close", finish);
    sock.on("error", () => {});
  });
}

const get = (path) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
const HANDSHAKE = "/socket.io/?EIO=4&transport=polling";

/** A WebSocket from `from` (raw Socket.IO packets), resolved once the CONNECT is answered. */
async function rawSocket(url, from) {
  const ws = new WebSocket(`${url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`, { localAddress: from });
  const msgs = [];
  ws.on("message", (d, isBinary) => msgs.push(isBinary ? d : d.toString()));
  await waitFor(ws, "open", T, ["error"]);
  ws.send("40");
  const t0 = Date.now();
  while (!msgs.some((m) => typeof m === "string" && m.startsWith("40"))) {
    if (Date.now() - t0 > T) throw new Error("no CONNECT answer");
    await sleep(10);
  }
  return { ws, msgs, closed: new Promise((r) => ws.on("close", () => r(Date.now()))) };
}

describe("abuse limits of the engine and Socket.IO layers", () => {
  let server;
  before(async () => {
    server = await startServer("conformance", {
      CONN_RATE: "20",
      CONN_BURST: "40",
      HANDSHAKE_RATE: "10",
      HANDSHAKE_BURST: "30",
      HEADER_TIMEOUT_MS: "1000",
      BODY_TIMEOUT_MS: "1000",
      BODY_MIN_RATE: "1000",
      BINARY_DEADLINE_MS: "1000",
      MAX_EVENT_BYTES: "100000",
      PACKET_RATE: "100",
      PACKET_BURST: "200",
      CORS_ORIGINS: "http://ok.test",
      PING_INTERVAL: "25000",
      PING_TIMEOUT: "20000",
    });
  });
  after(() => server?.stop());

  test("a connection flood from one address is refused at accept time; others still connect", async () => {
    const results = await during(server.url, () =>
      Promise.all(Array.from({ length: 300 }, () => raw(server.port, "127.0.0.2", get("/nope"), { ms: 4000 }))),
    );
    const refused = results.filter((r) => r.status === 429 || r.closed).length;
    const served = results.filter((r) => r.status === 404).length;
    assert.ok(served <= 60, `served ${served}`);
    assert.ok(refused >= 200, `refused ${refused}`);
    const r429 = results.find((r) => r.status === 429);
    if (r429) {
      assert.equal(r429.headers["retry-after"], "1");
      assert.deepEqual(JSON.parse(r429.body), { code: 6, message: "Too many requests" });
    }
    assert.ok(rssMb(server.pid) < RSS_BOUND_MB);
  });

  test("a handshake flood gets 429 code 6 with Retry-After; the legitimate client is served", async () => {
    await sleep(2500); // 127.0.0.2's connection bucket refills; these use 127.0.0.3
    const results = await during(server.url, async () => {
      const out = [];
      for (let i = 0; i < 8; i++) {
        out.push(...(await Promise.all(Array.from({ length: 10 }, () => raw(server.port, "127.0.0.3", get(HANDSHAKE))))));
      }
      return out;
    });
    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.status === 429);
    assert.ok(ok >= 20 && ok <= 40, `ok ${ok}`);
    assert.ok(limited.length >= 35, `limited ${limited.length}`);
    assert.equal(limited[0].headers["retry-after"], "1");
    assert.deepEqual(JSON.parse(limited[0].body), { code: 6, message: "Too many requests" });
    assert.ok(rssMb(server.pid) < RSS_BOUND_MB);
  });

  test("slow headers are dropped after the header timeout", async () => {
    const t0 = Date.now();
    const slow = await during(server.url, () =>
      Promise.all(
        Array.from({ length: 20 }, () =>
          new Promise((resolve) => {
            const sock = net.connect({ host: "127.0.0.1", port: server.port, localAddress: "127.0.0.4" });
            sock.on("error", () => {});
            sock.on("connect", () => sock.write("GET / HTTP/1.1\r\nHost: x\r\n"));
            const drip = setInterval(() => sock.writable && sock.write("X-A: b\r\n"), 200);
            const give = setTimeout(() => sock.destroy(), 6000);
            sock.on("close", () => {
              clearInterval(drip);
              clearTimeout(give);
              resolve(Date.now() - t0);
            });
          }),
        ),
      ),
    );
    for (const ms of slow) assert.ok(ms < 4000, `held ${ms} ms`);
    assert.ok(rssMb(server.pid) < RSS_BOUND_MB);
  });

  test("a slow POST body gets 408 and its session is closed", async () => {
    const hs = await raw(server.port, "127.0.0.5", get(HANDSHAKE));
    assert.equal(hs.status, 200);
    const sid = JSON.parse(hs.body.slice(1)).sid;
    const t0 = Date.now();
    const res = await during(server.url, () =>
      new Promise((resolve) => {
        const sock = net.connect({ host: "127.0.0.1", port: server.port, localAddress: "127.0.0.5" });
        let data = "";
        sock.on("error", () => {});
        sock.on("data", (d) => (data += d));
        sock.on("connect", () =>
          sock.write(`POST /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n`),
        );
        const drip = setInterval(() => sock.writable && sock.write("4x"), 300);
        sock.on("close", () => {
          clearInterval(drip);
          resolve({ data, ms: Date.now() - t0 });
        });
        setTimeout(() => sock.destroy(), 8000);
      }),
    );
    assert.match(res.data, /^HTTP\/1\.1 408/);
    assert.ok(res.ms < 5000, `took ${res.ms}`);
    const poll = await raw(server.port, "127.0.0.5", get(`/socket.io/?EIO=4&transport=polling&sid=${sid}`));
    assert.deepEqual(JSON.parse(poll.body), { code: 1, message: "Session ID unknown" });
  });

  test("attachments over maxPayload close the connection; a half-sent binary event expires", async () => {
    const a = await rawSocket(server.url, "127.0.0.6");
    const placeholders = Array.from({ length: 10 }, (_, num) => ({ _placeholder: true, num }));
    const closedAt = await during(server.url, async () => {
      a.ws.send(`4510-["message",${JSON.stringify(placeholders)}]`);
      for (let i = 0; i < 10 && a.ws.readyState === WebSocket.OPEN; i++) a.ws.send(Buffer.alloc(300_000, i));
      return withTimeout(a.closed, T, "close after oversized attachments");
    });
    assert.ok(a.msgs.includes("1") || closedAt > 0);
    assert.ok(!a.msgs.some((m) => typeof m === "string" && m.startsWith('42["message-back"')), "the event was not delivered");

    const b = await rawSocket(server.url, "127.0.0.6");
    const t0 = Date.now();
    await during(server.url, async () => {
      b.ws.send(`452-["message",${JSON.stringify(placeholders.slice(0, 2))}]`);
      b.ws.send(Buffer.alloc(500_000, 1));
      await withTimeout(b.closed, T, "close after the binary deadline");
    });
    const held = Date.now() - t0;
    assert.ok(held >= 900 && held < 4000, `held ${held} ms`);
    assert.ok(rssMb(server.pid) < RSS_BOUND_MB);
  });

  test("an event over the size limit is refused before it is parsed; a packet flood disconnects", async () => {
    const big = await rawSocket(server.url, "127.0.0.7");
    await during(server.url, async () => {
      big.ws.send(`42["message-with-ack",[${Array(100_000).fill(0).join(",")}]]`);
      await withTimeout(big.closed, T, "close after a big event");
    });
    assert.ok(!big.msgs.some((m) => typeof m === "string" && m.startsWith("43")), "no ack for the refused event");

    const flood = await rawSocket(server.url, "127.0.0.7");
    await during(server.url, async () => {
      for (let i = 0; i < 1000 && flood.ws.readyState === WebSocket.OPEN; i++) flood.ws.send(`42["message",${i}]`);
      await withTimeout(flood.closed, T, "close after a packet flood");
    });
    const echoed = flood.msgs.filter((m) => typeof m === "string" && m.startsWith("42")).length;
    assert.ok(echoed <= 260, `echoed ${echoed}`);
    assert.ok(rssMb(server.pid) < RSS_BOUND_MB);
  });

  test("through socket.io-client: a big argument and oversized attachments disconnect that client only", async () => {
    for (const args of [[Array(100_000).fill(0)], Array.from({ length: 10 }, (_, i) => Buffer.alloc(150_000, i))]) {
      const s = io(server.url, { transports: ["websocket"], reconnection: false, forceNew: true, timeout: T });
      await waitFor(s, "connect", T, ["connect_error"]);
      const gone = waitFor(s, "disconnect", T);
      let acked = false;
      s.emit("message-with-ack", ...args, () => (acked = true));
      const [reason] = await gone;
      assert.notEqual(reason, "io client disconnect");
      assert.equal(acked, false);
      await legit(server.url);
    }
    assert.ok(rssMb(server.pid) < RSS_BOUND_MB);
  });

  test("WebSocket Origin: refused (403 code 4), allowed, and missing", async () => {
    const url = `ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket`;
    const evil = new WebSocket(url, { origin: "http://evil.test" });
    evil.on("error", () => {});
    const [req, res] = await waitFor(evil, "unexpected-response", T, ["open"]);
    assert.equal(res.statusCode, 403);
    let body = "";
    for await (const chunk of res) body += chunk;
    assert.deepEqual(JSON.parse(body), { code: 4, message: "Forbidden" });
    req.destroy();
    for (const origin of ["http://ok.test", undefined]) {
      const ws = new WebSocket(url, origin ? { origin } : {});
      const [data] = await waitFor(ws, "message", T, ["unexpected-response", "error"]);
      assert.match(data.toString(), /^0\{"sid"/);
      ws.close();
    }
  });
});

describe("the global session cap and the first-exchange deadline", () => {
  let server;
  before(async () => {
    server = await startServer("conformance", { MAX_SESSIONS: "3", FIRST_EXCHANGE_MS: "700" });
  });
  after(() => server?.stop());

  test("over the cap: 503 code 7; sessions that never poll are reclaimed early", async () => {
    const opened = await Promise.all(Array.from({ length: 3 }, () => raw(server.port, "127.0.0.8", get(HANDSHAKE))));
    for (const r of opened) assert.equal(r.status, 200);
    const busy = await raw(server.port, "127.0.0.8", get(HANDSHAKE));
    assert.equal(busy.status, 503);
    assert.equal(busy.headers["retry-after"], "5");
    assert.deepEqual(JSON.parse(busy.body), { code: 7, message: "Server busy" });
    await sleep(1200);
    const sid = JSON.parse(opened[0].body.slice(1)).sid;
    const gone = await raw(server.port, "127.0.0.8", get(`/socket.io/?EIO=4&transport=polling&sid=${sid}`));
    assert.deepEqual(JSON.parse(gone.body), { code: 1, message: "Session ID unknown" });
    await legit(server.url);
  });
});
