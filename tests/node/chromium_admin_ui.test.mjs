// The real admin UI of npm `@socket.io/admin-ui` (its `ui/dist`, served from
// node_modules by a tiny static server in this test, never copied into the repository)
// in Chromium (headless, driven by npm `playwright-core`), pointed at `rollcall serve`
// running a lecture: a teacher who started an attendance session and students who
// joined it, each a real socket.io-client socket.
//
// Covered: the UI's origin is allowed by CORS only through ADMIN_UI_ORIGIN (CLIENT_URL
// is another origin); logging in through the UI's form (a wrong password is refused and
// shown, the right one connects); the UI lists the lecture's sockets with their data and
// rooms and shows the server stats (namespaces, server id, pid, clients); a socket
// disconnected from the UI sees `io server disconnect`; sockets made to join a room from
// the UI are in that room on the server (a broadcast to it through /admin reaches them
// and only them).
//
// Needs Chromium at $CHROMIUM_PATH or /usr/bin/chromium (Debian: `apt-get install -y
// chromium`); without it the tests are skipped, saying so (CHROMIUM_REQUIRED=1: they fail).
//
// Run: node --test --test-concurrency=1 chromium_admin_ui.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { io } from "socket.io-client";
import { REPO_ROOT, sleep, waitFor, withTimeout } from "./harness.mjs";
import { ADMIN_PASSWORD, ADMIN_UI_BASIC, ADMIN_USER, Inbox } from "./admin_ui_helpers.mjs";
import { Clients, call, makeDataDir, seed, shutdown, startRollcall } from "./attendance_helpers.mjs";

const T = 10000;
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SKIP = !HAVE_CHROMIUM && process.env.CHROMIUM_REQUIRED !== "1" && `no Chromium at ${CHROMIUM}`;
const UI_DIST = path.join(REPO_ROOT, "tests", "node", "node_modules", "@socket.io", "admin-ui", "ui", "dist");
const SESSION = "math-101-lecture-1";

const clients = new Clients();
let site;
let server;
let dataDir;
let browser;
let page;
/** The lecture's sockets by user id. */
const lecture = {};

/** Serves the admin UI's `ui/dist` on 127.0.0.1 (files only, nothing outside the folder). */
function uiServer() {
  const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml" };
  const srv = http.createServer((req, res) => {
    let p = decodeURIComponent(new URL(req.url, "http://x").pathname);
    if (p === "/") p = "/index.html";
    const file = path.join(UI_DIST, path.normalize(p));
    if (!file.startsWith(UI_DIST + path.sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" }).end(readFileSync(file));
  });
  return new Promise((resolve) => {
    srv.listen(0, "127.0.0.1", () =>
      resolve({ origin: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => srv.close(r)) }),
    );
  });
}

before(async () => {
  if (!HAVE_CHROMIUM) return;
  assert.ok(existsSync(path.join(UI_DIST, "index.html")), `no admin UI at ${UI_DIST}: run npm ci in tests/node`);
  site = await uiServer();
  dataDir = makeDataDir("adminui-ui");
  const tokens = await seed(dataDir, {
    users: [
      { id: "t-ada", email: "ada@school.test", name: "Ada Teacher", role: "teacher" },
      { id: "s-sam", email: "sam@school.test", name: "Sam Student" },
      { id: "s-kim", email: "kim@school.test", name: "Kim Student" },
      { id: "s-lee", email: "lee@school.test", name: "Lee Student" },
    ],
    courses: [{ id: "math-101", teachers: ["t-ada"], students: ["s-sam", "s-kim", "s-lee"] }],
    tokens: ["t-ada", "s-sam", "s-kim", "s-lee"],
  });
  server = await startRollcall(dataDir, {
    ADMIN_UI: ADMIN_UI_BASIC,
    ADMIN_UI_MODE: "development",
    ADMIN_UI_ORIGIN: site.origin,
    ADMIN_UI_SERVER_ID: "rollcall-test-node",
    CLIENT_URL: "http://app.test",
  });
  lecture.teacher = await clients.connect(server.url, tokens["t-ada"]);
  const started = await call(lecture.teacher, "startAttendanceSession", { session_id: SESSION, course_id: "math-101" });
  assert.equal(started.ok, true);
  for (const id of ["s-sam", "s-kim", "s-lee"]) {
    lecture[id] = await clients.connect(server.url, tokens[id]);
    assert.equal((await call(lecture[id], "joinAttendanceSession", SESSION)).ok, true);
  }
  const { chromium } = await import("playwright-core");
  browser = await withTimeout(
    chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    }),
    T,
    "chromium to start",
  );
  page = await browser.newPage();
  page.setDefaultTimeout(T);
  // The UI's page asks for web fonts and icons from CDNs: nothing leaves loopback.
  await page.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => route.abort());
  await page.goto(`${site.origin}/`);
});

after(async () => {
  await browser?.close();
  await site?.close();
  await shutdown(clients, server, dataDir);
});

/** The cells of every row of the tables in the page's main area (innerText, trimmed). */
function tableRows() {
  return page.evaluate(() =>
    [...document.querySelectorAll("main tr")].map((tr) => [...tr.cells].map((c) => c.innerText.trim())),
  );
}

/** Resolves with the first row of tableRows() that `pred` accepts, polling; rejects after `ms`. */
async function rowWhere(pred, what, ms = T) {
  const deadline = Date.now() + ms;
  for (;;) {
    const row = (await tableRows()).find(pred);
    if (row) return row;
    if (Date.now() > deadline) throw new Error(`no table row with ${what} within ${ms} ms`);
    await sleep(100);
  }
}

/** The rows of the Sockets page's table (the one with an "IP address" column). */
const socketRows = () => page.locator("main table:has(th:has-text('IP address')) tbody tr");

/** Fills the UI's connection form and submits it. */
async function login(password) {
  await page.getByLabel("Server URL").fill(server.url);
  await page.getByLabel("Username").fill(ADMIN_USER);
  await page.getByLabel("Password").fill(password);
  await page.locator("form button[type=submit]").click();
}

test("logs in through the UI's form (a wrong password is refused)", { skip: SKIP }, async () => {
  await login("not the password");
  await page.locator(".v-dialog--active").getByText("invalid credentials").waitFor();
  await login(ADMIN_PASSWORD);
  await page.locator(".v-dialog--active").waitFor({ state: "detached" });
  await page.locator("header").getByText("connected", { exact: true }).first().waitFor();
});

test("lists the lecture's sockets and shows the server stats", { skip: SKIP }, async () => {
  await page.goto(`${site.origin}/#/sockets`);
  const rows = socketRows();
  for (const key of ["teacher", "s-sam", "s-kim", "s-lee"]) {
    await rows.filter({ hasText: lecture[key].id }).waitFor();
  }
  assert.equal(await rows.count(), 4, "the lecture's four sockets in namespace /");

  // A student's details: the user data the application gives its sockets, and its rooms.
  await rows.filter({ hasText: lecture["s-sam"].id }).click();
  const main = page.locator("main");
  await main.getByText('"userId": "s-sam"').waitFor();
  for (const room of [`attendance_${SESSION}`, "user:s-sam", "role:student"]) {
    await main.locator("td", { hasText: new RegExp(`^${room}$`) }).waitFor();
  }

  // The dashboard: sockets per namespace; the servers page: this server's id, pid and clients.
  await page.goto(`${site.origin}/#/`);
  await rowWhere((r) => r[0] === "/" && r[1] === "4", "namespace / and 4 sockets");
  await rowWhere((r) => r[0] === "/admin" && r[1] === "1", "namespace /admin and 1 socket");
  await page.goto(`${site.origin}/#/servers`);
  const cells = await rowWhere((r) => r[0] === "rollcall-test-node", "the server id");
  assert.equal(cells[2], String(server.pid), "the pid of the rollcall process");
  assert.equal(cells[4], "5", "four lecture clients and the UI itself");
  assert.match(cells[6], /healthy/i);
});

test("disconnecting a socket from the UI disconnects that client", { skip: SKIP }, async () => {
  const lee = lecture["s-lee"];
  const id = lee.id;
  const gone = waitFor(lee, "disconnect", T);
  await page.goto(`${site.origin}/#/sockets`);
  const row = socketRows().filter({ hasText: id });
  await row.locator("button").click();
  assert.equal((await gone)[0], "io server disconnect");
  await row.waitFor({ state: "detached" });
  assert.ok(lecture.teacher.connected && lecture["s-sam"].connected, "the others stay");
});

test("making sockets join a room from the UI puts them in it on the server", { skip: SKIP }, async () => {
  const main = page.locator("main");
  for (const key of ["s-sam", "s-kim"]) {
    await page.goto(`${site.origin}/#/sockets`);
    await socketRows().filter({ hasText: lecture[key].id }).click();
    await page.getByLabel("Join a room").fill("study-group");
    await page.locator("form:has(.select-room) button[type=submit]").click();
    // The UI shows the join once the server reported it (room_joined).
    await main.locator("td", { hasText: /^study-group$/ }).waitFor();
  }

  // Server side, through a second admin client: the room has exactly those two sockets,
  // and a broadcast to it reaches them and not the teacher.
  const adminClient = io(`${server.url}/admin`, {
    forceNew: true,
    reconnection: false,
    transports: ["websocket"],
    auth: { username: ADMIN_USER, password: ADMIN_PASSWORD },
  });
  try {
    const inbox = new Inbox(adminClient);
    await waitFor(adminClient, "connect", T, ["connect_error"]);
    const [all] = await inbox.next("all_sockets");
    const inRoom = all.filter((s) => s.nsp === "/" && s.rooms.includes("study-group")).map((s) => s.id).sort();
    assert.deepEqual(inRoom, [lecture["s-sam"].id, lecture["s-kim"].id].sort());
    let teacherGot = false;
    lecture.teacher.once("notice", () => (teacherGot = true));
    const got = Promise.all(["s-sam", "s-kim"].map((k) => waitFor(lecture[k], "notice", T)));
    const reply = await adminClient.timeout(T).emitWithAck("emit", "/", "study-group", "notice", "see you after class");
    assert.deepEqual(reply, { ok: true });
    assert.deepEqual(await got, [["see you after class"], ["see you after class"]]);
    await sleep(200);
    assert.equal(teacherGot, false, "the teacher is not in the room");
  } finally {
    adminClient.disconnect();
  }
});
