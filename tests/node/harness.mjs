// Shared helpers for the rollcall interop tests (node:test, no framework).
//
// startServer(name, env) spawns one of the contract servers and resolves once it
// printed its first stdout line, `listening on 127.0.0.1:<port>`:
//   INTEROP_IMPL=node -> node <repo>/benches/node/<name>.mjs   (npm reference)
//   otherwise         -> ${CARGO_TARGET_DIR:-<repo>/target}/debug/examples/<name>
// The server's stderr is kept (last 64 KiB) and shown if startup fails; set
// INTEROP_VERBOSE=1 to stream it live.
//
// Every wait here is bounded: waitFor / Recorder.waitCount reject after a timeout.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, "..", "..");
export const IMPL = process.env.INTEROP_IMPL === "node" ? "node" : "rust";

const STARTUP_TIMEOUT_MS = Number(process.env.INTEROP_STARTUP_TIMEOUT_MS || 15000);
const STOP_TIMEOUT_MS = 5000;
const LISTENING_RE = /^listening on 127\.0\.0\.1:(\d+)$/;

/**
 * Children still alive; killed synchronously by PID if the test process exits
 * early, or is itself terminated (node --test kills a file that hits --test-timeout).
 */
const live = new Set();
function killLive() {
  for (const child of live) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}
process.on("exit", killLive);
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) {
  process.once(sig, () => {
    killLive();
    process.exit(128 + os.constants.signals[sig]);
  });
}

function command(name) {
  if (IMPL === "node") {
    const script = path.join(REPO_ROOT, "benches", "node", `${name}.mjs`);
    return { cmd: process.execPath, args: [script], cwd: path.dirname(script) };
  }
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR)
    : path.join(REPO_ROOT, "target");
  const bin = path.join(targetDir, "debug", "examples", name);
  if (!existsSync(bin)) {
    throw new Error(`${bin} not found: build it with \`cargo build --examples\` (or set INTEROP_IMPL=node)`);
  }
  return { cmd: bin, args: [], cwd: REPO_ROOT };
}

/** Tracks a child process: killed by PID if this process exits or is terminated first. */
export function track(child) {
  live.add(child);
}

/** Stops tracking a child (it exited, or never started). */
export function untrack(child) {
  live.delete(child);
}

/**
 * Spawns `cmd args` (in `cwd`, with exactly `env`) and resolves once its first
 * stdout line is `listening on 127.0.0.1:<port>`, within `startupMs`. `label`
 * names it in errors (and prefixes its stderr when `verbose`). Resolves to
 * { port, url, child, pid, stop(), kill(), exited, stderr() }: stop() sends
 * SIGTERM and awaits the exit (SIGKILL after 5 s), kill() is SIGKILL; both
 * resolve once the process has exited and are safe to call more than once.
 * On a failed start the child is stopped (or killed, with `killOnFailure`)
 * and the error carries its stderr (last 64 KiB).
 */
export async function spawnListening({ label, cmd, args, cwd, env, startupMs, verbose = false, killOnFailure = false }) {
  const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  track(child);
  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      untrack(child);
      resolve({ code, signal });
    });
  });

  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    if (verbose) process.stderr.write(`[${label}] ${chunk}`);
    stderr = (stderr + chunk).slice(-65536);
  });

  const alive = () => child.exitCode === null && child.signalCode === null;
  const signal = (sig) => {
    if (!alive()) return;
    try {
      process.kill(child.pid, sig);
    } catch {
      // already gone
    }
  };
  const kill = () => {
    signal("SIGKILL");
    return exited;
  };
  let stopping;
  const stop = () => {
    stopping ??= (async () => {
      if (alive()) {
        signal("SIGTERM");
        let timer;
        await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS)))]);
        clearTimeout(timer);
        signal("SIGKILL");
      }
      return exited;
    })();
    return stopping;
  };

  try {
    const port = await new Promise((resolve, reject) => {
      let buf = "";
      let done = false;
      const finish = (err, value) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value);
      };
      const timer = setTimeout(
        () => finish(new Error(`${label}: no "listening on" line within ${startupMs} ms`)),
        startupMs,
      );
      child.once("error", (err) => finish(err));
      child.once("exit", (code, signal) =>
        finish(new Error(`${label} exited before listening (code ${code}, signal ${signal})`)),
      );
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk) => {
        if (done) return; // keep draining the pipe, ignore the rest
        buf += chunk;
        const nl = buf.indexOf("\n");
        if (nl === -1) return;
        const first = buf.slice(0, nl).replace(/\r$/, "");
        const m = LISTENING_RE.exec(first);
        if (m) finish(null, Number(m[1]));
        else finish(new Error(`${label}: first stdout line is not "listening on 127.0.0.1:<port>": ${JSON.stringify(first)}`));
      });
    });
    return { port, url: `http://127.0.0.1:${port}`, child, pid: child.pid, stop, kill, exited, stderr: () => stderr };
  } catch (err) {
    await (killOnFailure ? kill() : stop());
    err.message += stderr ? `\n--- ${label} stderr ---\n${stderr}` : "";
    throw err;
  }
}

/**
 * Spawns server `name` ("engine_echo" | "conformance") with extra env vars.
 * Resolves to { name, port, url, child, stop(), ... } (see spawnListening).
 */
export async function startServer(name, env = {}) {
  const { cmd, args, cwd } = command(name);
  const server = await spawnListening({
    label: name,
    cmd,
    args,
    cwd,
    env: { ...process.env, HOST: "127.0.0.1", PORT: "0", ...env },
    startupMs: STARTUP_TIMEOUT_MS,
    verbose: Boolean(process.env.INTEROP_VERBOSE),
  });
  return { name, ...server };
}

/** Rejects with a labelled error if `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, label = "operation") {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Resolves with the argument array of the next `event` on `emitter` (an
 * engine.io-client / socket.io-client Emitter, or a Node EventEmitter).
 * Rejects after `ms`, or as soon as one of `failOn` events fires.
 */
export function waitFor(emitter, event, ms = 5000, failOn = []) {
  return new Promise((resolve, reject) => {
    const cleanups = [];
    const done = (fn, value) => {
      clearTimeout(timer);
      for (const c of cleanups) c();
      fn(value);
    };
    const timer = setTimeout(() => done(reject, new Error(`timed out after ${ms} ms waiting for "${event}"`)), ms);
    const onEvent = (...args) => done(resolve, args);
    emitter.on(event, onEvent);
    cleanups.push(() => emitter.off(event, onEvent));
    for (const bad of failOn) {
      const onBad = (...args) =>
        done(reject, new Error(`got "${bad}" while waiting for "${event}": ${args.map(describe).join(", ")}`));
      emitter.on(bad, onBad);
      cleanups.push(() => emitter.off(bad, onBad));
    }
  });
}

function describe(v) {
  if (v instanceof Error) return v.message;
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** Promise-based sleep, only for grace periods that assert the absence of something. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Records every occurrence of `event` (its argument arrays) from the moment it
 * is created; waitCount(n, ms) resolves once n were seen.
 */
export class Recorder {
  constructor(emitter, event) {
    this.items = [];
    this.waiters = [];
    this.emitter = emitter;
    this.event = event;
    this.listener = (...args) => {
      this.items.push(args);
      this.waiters = this.waiters.filter((w) => {
        if (this.items.length >= w.n) {
          clearTimeout(w.timer);
          w.resolve(this.items.slice());
          return false;
        }
        return true;
      });
    };
    emitter.on(event, this.listener);
  }

  waitCount(n, ms = 5000) {
    if (this.items.length >= n) return Promise.resolve(this.items.slice());
    return new Promise((resolve, reject) => {
      const w = { n, resolve };
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out after ${ms} ms waiting for ${n} "${this.event}" (got ${this.items.length})`));
      }, ms);
      this.waiters.push(w);
    });
  }

  stop() {
    this.emitter.off(this.event, this.listener);
  }
}

/** Normalizes Buffer / ArrayBuffer / typed array views to a Buffer (for byte comparison). */
export function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`not binary: ${typeof data}`);
}

/** True for anything engine.io / socket.io treat as binary. */
export const isBinary = (data) => Buffer.isBuffer(data) || data instanceof ArrayBuffer || ArrayBuffer.isView(data);

/** Deterministic pseudo-random bytes (so failures are reproducible). */
export function bytes(n, seed = 1) {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
