// SPEC.md §4.23.6 in a real browser: the setup link printed by `rollcall
// serve` on an empty data directory opens the embedded form in Chromium
// (headless, driven by npm `playwright-core`); filling it in by keyboard
// creates the first admin, who can then log in; the same link a second
// time shows the server's refusal on the page.
//
// Needs Chromium at $CHROMIUM_PATH or /usr/bin/chromium; without it the test
// is skipped, saying so (CHROMIUM_REQUIRED=1 makes it fail instead).
//
// Run: node --test --test-concurrency=1 chromium_setup.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { withTimeout } from "./harness.mjs";
import { makeDataDir, removeDataDir } from "./attendance_helpers.mjs";
import { serve } from "./admin_helpers.mjs";

const T = 10000;
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SKIP =
  (process.env.INTEROP_IMPL === "node" && "no Node reference of the rollcall app") ||
  (!HAVE_CHROMIUM && process.env.CHROMIUM_REQUIRED !== "1" && `no Chromium at ${CHROMIUM}`);

let dataDir;
let server;
let browser;

before(async () => {
  if (SKIP) return;
  dataDir = makeDataDir("chromium-setup");
  server = await serve(dataDir, { waitFor: [/^setup: .*\/setup\?token=\S+/m] });
  const { chromium } = await import("playwright-core");
  browser = await withTimeout(
    chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] }),
    T,
    "chromium to start",
  );
});

after(async () => {
  await browser?.close();
  await server?.stop();
  removeDataDir(dataDir);
});

test("the setup page creates the first admin once", { skip: SKIP }, async () => {
  const link = /(http:\/\/\S+\/setup\?token=\S+)/.exec(server.out())[1];
  const page = await browser.newPage();
  const outside = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(server.url)) outside.push(r.url());
  });
  await page.goto(link);
  assert.equal(await page.title(), "rollcall: first-run setup");
  // Labelled fields, filled by keyboard.
  await page.getByLabel("Email").fill("admin@school.test");
  await page.getByLabel("Name").fill("School Admin");
  await page.getByLabel(/^Password/).fill("a good password");
  await page.getByLabel(/^Password/).press("Enter");
  const status = page.getByRole("status");
  await withTimeout(status.filter({ hasText: "created" }).waitFor(), T, "the admin to be created");
  assert.match(await status.textContent(), /Admin admin@school\.test created/);
  assert.deepEqual(outside, [], "no request leaves the server");

  const login = await fetch(`${server.url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "admin@school.test", password: "a good password" }),
  });
  const body = await login.json();
  assert.equal(login.status, 200);
  assert.equal(body.user.role, "admin");

  // The same link again: the page shows the refusal.
  const again = await browser.newPage();
  await again.goto(link);
  await again.getByLabel("Email").fill("second@school.test");
  await again.getByLabel("Name").fill("Second");
  await again.getByLabel(/^Password/).fill("another password");
  await again.getByRole("button", { name: "Create admin" }).click();
  const st = again.getByRole("status");
  await withTimeout(st.filter({ hasText: "setup_used" }).waitFor(), T, "the refusal");
});
