// Helpers for the tests of the administration API and first run (SPEC.md
// §4.23): `rollcall serve` with all of its stdout kept (the setup link and
// the demo logins come after the listening line, which the shared harness
// reads alone). The child is tracked and killed by PID if this process
// exits early; every wait is bounded.
import { spawn } from "node:child_process";
import { sleep, track, untrack, withTimeout } from "./harness.mjs";
import { SECRET, binary } from "./attendance_helpers.mjs";

/**
 * Starts `rollcall serve [extra]` on `dataDir` and keeps all of its stdout.
 * Resolves once stdout matches every regex of `waitFor` (the first one must
 * be the listening line); { url, out(), stop(), exited }.
 */
export async function serve(dataDir, { env = {}, args = [], waitFor = [] } = {}) {
  const child = spawn(binary(), ["serve", ...args], {
    cwd: dataDir,
    env: { ...process.env, DATA_DIR: dataDir, ACCESS_TOKEN_SECRET: SECRET, RUST_LOG: "warn", HOST: "127.0.0.1", PORT: "0", CLIENT_URL: "*", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  track(child);
  let out = "";
  let err = "";
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => (untrack(child), resolve({ code, signal }))));
  child.stdout.setEncoding("utf8").on("data", (c) => (out += c));
  child.stderr.setEncoding("utf8").on("data", (c) => (err = (err + c).slice(-20000)));
  const all = [/^listening on 127\.0\.0\.1:(\d+)$/m, ...waitFor];
  const ready = (async () => {
    for (;;) {
      if (all.every((re) => re.test(out))) return;
      if (child.exitCode !== null) throw new Error(`rollcall exited (${child.exitCode}): ${err}`);
      await sleep(20);
    }
  })();
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    let timer;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    return exited;
  };
  try {
    await withTimeout(ready, 20000, "rollcall start");
  } catch (e) {
    await stop();
    throw e;
  }
  const port = Number(/^listening on 127\.0\.0\.1:(\d+)$/m.exec(out)[1]);
  return { url: `http://127.0.0.1:${port}`, out: () => out, stop, exited };
}

