// Helpers for the end-to-end tests of the `rollcall` attendance server and its
// benchmark: a fresh sled data directory, the admin CLI (run while no server
// holds the directory), the server binary itself, socket.io-client sockets,
// hand-made JWTs.
//
// Every child process started here is tracked and killed by PID if this
// process exits early; every wait is bounded.
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { io } from "socket.io-client";
import { REPO_ROOT, spawnListening, track, untrack, waitFor, withTimeout } from "./harness.mjs";

export { REPO_ROOT, waitFor, withTimeout };

/** The secret the server and the CLI share (ACCESS_TOKEN_SECRET). */
export const SECRET = "rollcall-e2e-secret-0123456789abcdef";

const STARTUP_TIMEOUT_MS = Number(process.env.ROLLCALL_STARTUP_TIMEOUT_MS || 20000);
const CLI_TIMEOUT_MS = 60000;

/** Path of the rollcall binary of `profile` ("debug" | "release"). */
export function binary(profile = "debug") {
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR)
    : path.join(REPO_ROOT, "target");
  const bin = path.join(targetDir, profile, "rollcall");
  if (!existsSync(bin)) {
    throw new Error(`${bin} not found: build it with \`cargo build ${profile === "release" ? "--release " : ""}--bin rollcall\``);
  }
  return bin;
}

/** A new empty data directory; remove it with removeDataDir. */
export function makeDataDir(tag = "e2e") {
  return mkdtempSync(path.join(os.tmpdir(), `rollcall-${tag}-`));
}

export function removeDataDir(dir) {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

function baseEnv(dataDir, extra = {}) {
  const env = { ...process.env, DATA_DIR: dataDir, ACCESS_TOKEN_SECRET: SECRET, RUST_LOG: "warn", ...extra };
  // Settings that must not leak in from the caller's environment.
  delete env.JWT_SECRET;
  delete env.CHAT_PORT;
  return env;
}

/**
 * Runs `rollcall <args...>` on `dataDir` (no server may be running on it) and
 * resolves with its stdout; rejects with its stderr on a non-zero exit.
 */
export function cli(dataDir, args, { input, profile = "debug", env = {} } = {}) {
  const bin = binary(profile);
  return withTimeout(
    new Promise((resolve, reject) => {
      const child = spawn(bin, args, { cwd: dataDir, env: baseEnv(dataDir, env), stdio: ["pipe", "pipe", "pipe"] });
      track(child);
      let out = "";
      let err = "";
      child.stdout.setEncoding("utf8").on("data", (c) => (out += c));
      child.stderr.setEncoding("utf8").on("data", (c) => (err += c));
      child.once("error", (e) => {
        untrack(child);
        reject(e);
      });
      child.once("exit", (code, signal) => {
        untrack(child);
        if (code === 0) resolve(out);
        else reject(new Error(`rollcall ${args.join(" ")} failed (code ${code}, signal ${signal}): ${err.trim()}`));
      });
      child.stdin.end(input ?? "");
    }),
    CLI_TIMEOUT_MS,
    `rollcall ${args.slice(0, 3).join(" ")}`,
  );
}

/** `user import`: users are {id, email, name, role?, password?}. */
export async function importUsers(dataDir, users, opts) {
  const out = await cli(dataDir, ["user", "import"], { ...opts, input: users.map((u) => JSON.stringify(u)).join("\n") + "\n" });
  if (!out.includes(`imported ${users.length} users`)) throw new Error(`unexpected import output: ${out}`);
}

/** `course add` with its teachers, then `enroll` of the students (if any). */
export async function addCourse(dataDir, { id, name = id, teachers = [], students = [] }, opts) {
  await cli(dataDir, ["course", "add", "--id", id, "--name", name, ...teachers.flatMap((t) => ["--teacher", t])], opts);
  if (students.length) await cli(dataDir, ["enroll", "--course", id, ...students], opts);
}

/** `token <user>`: a JWT minted by the CLI. */
export async function mintToken(dataDir, userId, opts) {
  return (await cli(dataDir, ["token", userId], opts)).trim();
}

/** Tokens for many users, minted one after another (sled: one process at a time). */
export async function mintTokens(dataDir, userIds, opts) {
  const out = {};
  for (const id of userIds) out[id] = await mintToken(dataDir, id, opts);
  return out;
}

/**
 * Seeds `dataDir` for one group of tests: imports `users`, adds `courses` (in
 * order, see addCourse) and resolves with a CLI-minted token for each id of `tokens`.
 */
export async function seed(dataDir, { users, courses = [], tokens = [] }, opts) {
  await importUsers(dataDir, users, opts);
  for (const course of courses) await addCourse(dataDir, course, opts);
  return mintTokens(dataDir, tokens, opts);
}

/** The end of a group of tests: closes its clients, stops its server, removes its data directory. */
export async function shutdown(clients, server, dataDir) {
  clients.closeAll();
  await server?.stop();
  removeDataDir(dataDir);
}

/**
 * Starts `rollcall serve` on `dataDir` (PORT=0, HOST=127.0.0.1) with extra env.
 * Resolves with { port, url, child, pid, stop(), kill(), exited, stderr() } once it printed
 * `listening on 127.0.0.1:<port>` (see spawnListening). stop() is SIGTERM (SIGKILL after 5 s);
 * kill() is SIGKILL. Both resolve once the process has exited.
 */
export async function startRollcall(dataDir, env = {}, { profile = "debug" } = {}) {
  return spawnListening({
    label: "rollcall",
    cmd: binary(profile),
    args: ["serve"],
    cwd: dataDir,
    env: baseEnv(dataDir, { HOST: "127.0.0.1", PORT: "0", CLIENT_URL: "*", ...env }),
    startupMs: STARTUP_TIMEOUT_MS,
    verbose: Boolean(process.env.ROLLCALL_VERBOSE),
    killOnFailure: true,
  });
}

/** Tracks client sockets so a test can close all of its sockets at once. */
export class Clients {
  constructor() {
    this.sockets = new Set();
  }

  /** A new socket (own Manager, no reconnection, websocket unless `opts` says otherwise). */
  socket(url, token, opts = {}) {
    const socket = io(url, {
      forceNew: true,
      reconnection: false,
      transports: ["websocket"],
      ...(token === undefined ? {} : { auth: { token } }),
      ...opts,
    });
    this.sockets.add(socket);
    return socket;
  }

  /** Connects and resolves with the socket; rejects on connect_error. */
  async connect(url, token, opts = {}, ms = 10000) {
    const socket = this.socket(url, token, opts);
    await waitFor(socket, "connect", ms, ["connect_error"]);
    return socket;
  }

  /** Connects many sockets, a few at a time. */
  async connectMany(url, tokens, opts = {}) {
    const out = new Array(tokens.length);
    const width = 16;
    for (let i = 0; i < tokens.length; i += width) {
      const part = await Promise.all(tokens.slice(i, i + width).map((t) => this.connect(url, t, opts)));
      part.forEach((s, j) => (out[i + j] = s));
    }
    return out;
  }

  /** Resolves with the Error of the connect_error a connection attempt gets. */
  async refused(url, token, opts = {}, ms = 10000) {
    const socket = this.socket(url, token, opts);
    const [err] = await waitFor(socket, "connect_error", ms, ["connect"]);
    socket.disconnect();
    return err;
  }

  closeAll() {
    for (const s of this.sockets) {
      s.io.reconnection(false);
      s.disconnect();
      s.io.engine?.close();
    }
    this.sockets.clear();
  }
}

/** Emits with an ack and resolves with the ack's first argument. */
export function call(socket, event, payload, ms = 10000) {
  const args = payload === undefined ? [] : [payload];
  return socket.timeout(ms).emitWithAck(event, ...args);
}

/** Base64url of a string or Buffer. */
const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** A JWT with the given claims, signed with `secret` by HMAC `alg` (HS256/384/512; unsigned for alg none). */
export function craftJwt(claims, { secret = SECRET, alg = "HS256" } = {}) {
  const head = b64url({ alg, typ: "JWT" });
  const body = b64url(claims);
  if (alg === "none") return `${head}.${body}.`;
  const hash = { HS256: "sha256", HS384: "sha384", HS512: "sha512" }[alg];
  if (!hash) throw new Error(`unsupported alg ${alg}`);
  const sig = crypto.createHmac(hash, secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/** Claims like the server's: {sub, role, ver, exp, iat}. */
export function claimsFor(sub, { role = "student", ver = 0, ttl = 3600, now = Math.floor(Date.now() / 1000) } = {}) {
  return { sub, role, ver, exp: now + ttl, iat: now };
}

/** Zero-padded ids: ids("s", 3, 30) -> ["s001", ..., "s030"]. */
export function ids(prefix, width, n, from = 1) {
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i + from).padStart(width, "0")}`);
}
