// SPEC.md §4.23.8: the server serves the browser build of npm
// `socket.io-client` at `<socket path>/socket.io.min.js` (and `.map`), as the
// reference server does: the file is byte for byte the npm package's (the
// version pinned by package-lock.json, embedded by build.rs), with its ETag,
// Cache-Control and 304; and real Chromium (playwright-core) loads it from
// the server and connects with it.
//
// The Chromium part needs Chromium at $CHROMIUM_PATH or /usr/bin/chromium;
// without it that test is skipped, saying so (CHROMIUM_REQUIRED=1 fails it).
//
// Run: node --test --test-concurrency=1 client_bundle.test.mjs
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT, withTimeout } from "./harness.mjs";
import { cli, makeDataDir, mintToken, removeDataDir, startRollcall } from "./attendance_helpers.mjs";

const SKIP = process.env.INTEROP_IMPL === "node" ? "no Node reference of the rollcall app" : false;
const T = 10000;
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SKIP_BROWSER = SKIP || (!HAVE_CHROMIUM && process.env.CHROMIUM_REQUIRED !== "1" && `no Chromium at ${CHROMIUM}`);
const PKG = path.join(REPO_ROOT, "tests", "node", "node_modules", "socket.io-client");
const VERSION = JSON.parse(readFileSync(path.join(PKG, "package.json"), "utf8")).version;
const LOCKED = JSON.parse(readFileSync(path.join(REPO_ROOT, "tests", "node", "package-lock.json"), "utf8")).packages["node_modules/socket.io-client"].version;

describe("the socket.io-client bundle", { skip: SKIP }, () => {
  let dataDir;
  let server;
  let token;

  before(async () => {
    dataDir = makeDataDir("bundle");
    await cli(dataDir, ["user", "add", "--email", "b@s.test", "--name", "Browser", "--id", "b1"]);
    await cli(dataDir, ["course", "add", "--id", "bc", "--name", "Browser course"]);
    await cli(dataDir, ["enroll", "--course", "bc", "b1"]);
    token = await mintToken(dataDir, "b1");
    server = await startRollcall(dataDir, { SOCKET_PATH: "/api/socket" });
  });

  after(async () => {
    await server?.stop();
    removeDataDir(dataDir);
  });

  test("is the npm package's file, with the reference server's headers", async () => {
    assert.equal(VERSION, LOCKED, "node_modules has the locked version");
    const js = await fetch(`${server.url}/api/socket/socket.io.min.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get("content-type"), "application/javascript; charset=utf-8");
    assert.equal(js.headers.get("cache-control"), "public, max-age=0");
    assert.equal(js.headers.get("etag"), `"${VERSION}"`);
    assert.ok(Buffer.from(await js.arrayBuffer()).equals(readFileSync(path.join(PKG, "dist", "socket.io.min.js"))), "same bytes as the npm package");
    const map = await fetch(`${server.url}/api/socket/socket.io.min.js.map`);
    assert.equal(map.headers.get("content-type"), "application/json; charset=utf-8");
    assert.ok(Buffer.from(await map.arrayBuffer()).equals(readFileSync(path.join(PKG, "dist", "socket.io.min.js.map"))));
    const again = await fetch(`${server.url}/api/socket/socket.io.min.js`, { headers: { "if-none-match": `"${VERSION}"` } });
    assert.equal(again.status, 304);
    const head = await fetch(`${server.url}/api/socket/socket.io.min.js`, { method: "HEAD" });
    assert.equal(head.status, 200);
    // Only at the Socket.IO path.
    assert.equal((await fetch(`${server.url}/socket.io/socket.io.min.js`)).status, 404);
  });

  test("Chromium loads it from the server and connects with it", { skip: SKIP_BROWSER }, async () => {
    const { chromium } = await import("playwright-core");
    const browser = await withTimeout(
      chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] }),
      T,
      "chromium to start",
    );
    try {
      const page = await browser.newPage();
      // A page of the server's own origin (the setup form; no external assets).
      await page.goto(`${server.url}/setup`);
      await page.addScriptTag({ url: `${server.url}/api/socket/socket.io.min.js` });
      const out = await withTimeout(
        page.evaluate(
          ({ url, token }) =>
            new Promise((resolve, reject) => {
              const socket = window.io(url, { path: "/api/socket", auth: { token }, reconnection: false });
              socket.on("connect_error", (e) => reject(new Error(String(e))));
              socket.on("connect", () =>
                socket.timeout(5000).emit("checkActiveSessions", { course_id: "bc" }, (err, ack) => {
                  if (err) return reject(err);
                  resolve({ id: socket.id, transport: socket.io.engine.transport.name, ack });
                }),
              );
            }),
          { url: server.url, token },
        ),
        T,
        "the browser to connect",
      );
      assert.equal(typeof out.id, "string");
      assert.equal(out.ack?.ok, true, JSON.stringify(out.ack));
    } finally {
      await browser.close();
    }
  });
});
