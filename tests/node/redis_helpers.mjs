// Helpers of the Redis cluster interop tests: a throwaway redis-server
// (loopback, free port, temporary directory, no persistence, killed by pid),
// the Rust cluster node (examples/cluster_node) and the Node one
// (redis_cluster_node.mjs), and socket.io-clients that record every event.
//
// Without redis-server the tests are skipped, saying so, unless CI=true or
// REDIS_REQUIRED=1 (then they fail).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { io } from "socket.io-client";
import { REPO_ROOT, spawnListening, track, untrack, withTimeout, sleep } from "./harness.mjs";
import { freePort } from "./recovery_helpers.mjs";

export const REDIS_BIN = process.env.REDIS_SERVER || "redis-server";
const HAVE_REDIS = spawnSync(REDIS_BIN, ["--version"]).status === 0;
const STRICT = process.env.CI === "true" || process.env.REDIS_REQUIRED === "1";
export const SKIP = !HAVE_REDIS && !STRICT && `no ${REDIS_BIN} installed`;

async function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

/** A redis-server on a free loopback port; restart() keeps the port. */
export class RedisServer {
  async start() {
    this.port ??= await freePort();
    this.dir ??= mkdtempSync(path.join(os.tmpdir(), "rollcall-redis-"));
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.dir];
    this.child = spawn(REDIS_BIN, args, { stdio: "ignore" });
    track(this.child);
    const child = this.child;
    this.exited = new Promise((resolve) => child.once("exit", () => (untrack(child), resolve())));
    const deadline = Date.now() + 10000;
    while (!(await portOpen(this.port))) {
      if (Date.now() > deadline) throw new Error("redis-server did not start");
      await sleep(20);
    }
    return this;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** SIGKILL by pid (a crash, as far as clients can tell). */
  async stop() {
    if (!this.child) return;
    try {
      process.kill(this.child.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await this.exited;
    this.child = null;
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  async close() {
    await this.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

function rustBinary(example = "cluster_node") {
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR) : path.join(REPO_ROOT, "target");
  const bin = path.join(target, "debug", "examples", example);
  if (!existsSync(bin)) throw new Error(`${bin} not found: build it with \`cargo build --examples\``);
  return bin;
}

/** Starts a cluster node: kind "rust" (examples/cluster_node), "conformance"
 *  (examples/conformance) or "node" (redis_cluster_node.mjs). */
export async function startNode(kind, { url, prefix, mode = "classic", name }) {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const [cmd, args, cwd] =
    kind === "node"
      ? [process.execPath, [path.join(here, "redis_cluster_node.mjs")], here]
      : [rustBinary(kind === "rust" ? "cluster_node" : kind), [], REPO_ROOT];
  const env = {
    ...process.env,
    HOST: "127.0.0.1",
    PORT: "0",
    REDIS_URL: url,
    REDIS_PREFIX: prefix,
    REDIS_MODE: mode,
    REDIS_REQUEST_TIMEOUT_MS: "2000",
    REDIS_STARTUP: "fail",
    NODE_NAME: name,
  };
  const node = await spawnListening({ label: name, cmd, args, cwd, env, startupMs: 15000, verbose: Boolean(process.env.INTEROP_VERBOSE) });
  return { kind, name, ...node, url: `http://127.0.0.1:${node.port}` };
}

/** A connected socket.io-client on `node`, recording every event in `events`. */
export async function client(node, data) {
  const socket = io(node.url, { transports: ["websocket"], reconnection: false, auth: { data }, timeout: 5000 });
  socket.events = [];
  socket.onAny((ev, ...args) => socket.events.push([ev, ...args]));
  socket.disconnectReason = null;
  socket.on("disconnect", (reason) => (socket.disconnectReason = reason));
  await withTimeout(new Promise((resolve, reject) => (socket.once("connect", resolve), socket.once("connect_error", reject))), 5000, `connect to ${node.name}`);
  socket.node = node.name;
  return socket;
}

/** Emits with an ack, bounded. */
export function ask(socket, ...args) {
  return withTimeout(socket.timeout(8000).emitWithAck(...args), 9000, `ack of ${args[0]} on ${socket.node}`);
}

/** Waits until `socket` has received an event matching `pred` (bounded). */
export async function received(socket, pred, ms = 5000, label = "an event") {
  const deadline = Date.now() + ms;
  for (;;) {
    const e = socket.events.find(pred);
    if (e) return e;
    if (Date.now() > deadline) throw new Error(`${socket.node}: no ${label} in ${ms} ms; got ${JSON.stringify(socket.events.map((x) => x[0]))}`);
    await sleep(10);
  }
}

/** The events named `ev` received so far. */
export const named = (socket, ev) => socket.events.filter((e) => e[0] === ev);
