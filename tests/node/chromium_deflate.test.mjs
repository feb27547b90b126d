// Interop: permessage-deflate negotiated by Chromium (headless, driven by npm
// `playwright-core`) running the browser build of `socket.io-client`, against the
// `conformance` contract server with DEFLATE=1. The browser's connection goes through a
// byte-counting TCP proxy in this process, so the test sees what travels on the wire.
//
// Covered: the browser agrees the extension (WebSocket.extensions); events both ways,
// small and large, text and binary; large messages travel compressed in both directions
// (Chromium compresses what it sends, the server what it sends back).
//
// Needs Chromium at $CHROMIUM_PATH or /usr/bin/chromium (Debian: `apt-get install -y
// chromium`); without it the tests are skipped, saying so.
//
// Run: node --test --test-concurrency=1 chromium_deflate.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { REPO_ROOT, startServer, withTimeout } from "./harness.mjs";

const T = 10000;
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
// CI sets CHROMIUM_REQUIRED=1: there a missing browser fails the tests
// instead of skipping them.
const SKIP = !HAVE_CHROMIUM && process.env.CHROMIUM_REQUIRED !== "1" && `no Chromium at ${CHROMIUM}`;
const CLIENT_JS = path.join(REPO_ROOT, "tests", "node", "node_modules", "socket.io-client", "dist", "socket.io.min.js");

let server;
let proxy;
let site;
let browser;
let page;
const wire = { up: 0, down: 0 };

/** A TCP proxy to `port` on 127.0.0.1 that counts the bytes in each direction. */
function countingProxy(port) {
  const sockets = new Set();
  const srv = net.createServer((client) => {
    const upstream = net.connect(port, "127.0.0.1");
    sockets.add(client).add(upstream);
    client.on("data", (b) => (wire.up += b.length));
    upstream.on("data", (b) => (wire.down += b.length));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  return new Promise((resolve) => {
    srv.listen(0, "127.0.0.1", () =>
      resolve({
        port: srv.address().port,
        close: () => {
          for (const s of sockets) s.destroy();
          return new Promise((r) => srv.close(r));
        },
      }),
    );
  });
}

/**
 * The page's own origin on 127.0.0.1 (serving a blank page and the client bundle): a page
 * from elsewhere (about:blank) may not open connections to loopback under Chromium's
 * local network access checks.
 */
function pageServer() {
  const js = readFileSync(CLIENT_JS);
  const srv = http.createServer((req, res) => {
    if (req.url === "/socket.io.min.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(js);
    } else {
      res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>rollcall</title>");
    }
  });
  return new Promise((resolve) => {
    srv.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${srv.address().port}/`, close: () => new Promise((r) => srv.close(r)) }),
    );
  });
}

before(async () => {
  if (!HAVE_CHROMIUM) return;
  site = await pageServer();
  const { chromium } = await import("playwright-core");
  server = await startServer("conformance", { DEFLATE: "1" });
  proxy = await countingProxy(server.port);
  browser = await withTimeout(
    chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    }),
    T,
    "chromium to start",
  );
  page = await browser.newPage();
  await page.goto(site.url);
  await page.addScriptTag({ url: `${site.url}socket.io.min.js` });
  // Helpers inside the page: connect, and one round trip of `message` -> `message-back`.
  await page.evaluate((url) => {
    window.connectWs = () =>
      new Promise((resolve, reject) => {
        const socket = window.io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
        socket.on("connect", () => resolve(socket));
        socket.on("connect_error", (e) => reject(new Error(String(e))));
      });
    window.echo = (socket, ...args) =>
      new Promise((resolve) => {
        socket.once("message-back", (...back) => resolve(back));
        socket.emit("message", ...args);
      });
    window.roster = (n) =>
      Array.from({ length: n }, (_, i) => ({ id: `s-${i}`, name: `Student ${i}`, present: i % 3 === 0 }));
  }, `http://127.0.0.1:${proxy.port}`);
});

after(async () => {
  await browser?.close();
  await proxy?.close();
  await site?.close();
  await server?.stop();
});

test("chromium agrees permessage-deflate; events both ways, small and large, compressed on the wire", { skip: SKIP }, async () => {
  const result = await withTimeout(
    page.evaluate(async () => {
      const socket = await window.connectWs();
      const extensions = socket.io.engine.transport.ws.extensions;
      const small = await window.echo(socket, "hi", 1, { a: true });
      const big = window.roster(1500);
      const json = JSON.stringify(big);
      return { socket: socket.id, extensions, small, json };
    }),
    T,
    "the browser to connect",
  );
  assert.equal(result.extensions, "permessage-deflate; server_no_context_takeover");
  assert.deepEqual(result.small, ["hi", 1, { a: true }]);

  const before = { ...wire };
  const back = await withTimeout(
    page.evaluate(async () => {
      const socket = await window.connectWs();
      const big = window.roster(1500);
      const [got] = await window.echo(socket, big);
      const ok = JSON.stringify(got) === JSON.stringify(big);
      socket.disconnect();
      return { ok, len: JSON.stringify(big).length };
    }),
    T,
    "a large round trip",
  );
  assert.ok(back.ok, "the large roster came back intact");
  const up = wire.up - before.up;
  const down = wire.down - before.down;
  assert.ok(back.len > 50_000);
  assert.ok(up < back.len / 4, `browser sent ${up} bytes for ${back.len}`);
  assert.ok(down < back.len / 4, `browser received ${down} bytes for ${back.len}`);
});

test("chromium: binary, small and large, compressed on the wire", { skip: SKIP }, async () => {
  const before = { ...wire };
  const result = await withTimeout(
    page.evaluate(async () => {
      const socket = await window.connectWs();
      const small = new Uint8Array([1, 2, 3, 255]);
      const large = new Uint8Array(200_000).map((_, i) => "attendance ".charCodeAt(i % 11));
      const [got] = await window.echo(socket, { small, large });
      const same = (a, b) => a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
      socket.disconnect();
      return { small: same(new Uint8Array(got.small), small), large: same(new Uint8Array(got.large), large) };
    }),
    T,
    "a binary round trip",
  );
  assert.deepEqual(result, { small: true, large: true });
  const up = wire.up - before.up;
  const down = wire.down - before.down;
  assert.ok(up < 200_000 / 4, `browser sent ${up} bytes`);
  assert.ok(down < 200_000 / 4, `browser received ${down} bytes`);
});
