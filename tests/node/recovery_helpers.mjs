// Helpers of the recovery-across-restart tests: the conformance server on a
// fixed port with a durable recovery log (so that it can be stopped and
// started again on the same port and directory), a TCP proxy that cuts
// connections, and socket.io-client sockets that reconnect quickly.
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { io } from "socket.io-client";
import { startServer, waitFor } from "./harness.mjs";

/** A free TCP port on 127.0.0.1 (free when asked; the server binds it next). */
export async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/**
 * A conformance server with recovery in a durable log: `start()` (again
 * after `stop()` / `kill()`) runs it on the same port and directory.
 */
export class RestartableServer {
  constructor({ recoveryMs = 30000, flushMs = 50, env = {} } = {}) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), "rollcall-recovery-"));
    this.env = {
      RECOVERY_MS: String(recoveryMs),
      RECOVERY_DIR: this.dir,
      RECOVERY_FLUSH_MS: String(flushMs),
      ...env,
    };
    this.server = null;
  }

  async start() {
    this.port ??= await freePort();
    this.server = await startServer("conformance", { ...this.env, PORT: String(this.port) });
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /** SIGTERM; resolves with the exit {code, signal}. */
  async stop() {
    const s = this.server;
    this.server = null;
    return s ? s.stop() : { code: 0, signal: null };
  }

  /** SIGKILL; resolves with the exit {code, signal}. */
  async kill() {
    const s = this.server;
    this.server = null;
    return s ? s.kill() : { code: null, signal: "SIGKILL" };
  }

  async dispose() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A TCP proxy to 127.0.0.1:`target`: `cut(ms)` destroys every proxied
 * connection (both sides, so the server sees a transport close) and refuses
 * new ones for `ms`.
 */
export class CuttingProxy {
  constructor(target) {
    this.target = target;
    this.pairs = new Set();
    this.downUntil = 0;
    this.server = net.createServer((client) => {
      if (Date.now() < this.downUntil) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.target, "127.0.0.1");
      const pair = [client, upstream];
      this.pairs.add(pair);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      for (const s of pair) {
        s.on("error", end);
        s.on("close", end);
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  cut(ms) {
    this.downUntil = Date.now() + ms;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  close() {
    this.cut(0);
    this.server.close();
  }
}

/** A WebSocket socket.io-client socket that reconnects within about a second. */
export function recoveringClient(url, opts = {}) {
  return io(url, {
    forceNew: true,
    transports: ["websocket"],
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    ...opts,
  });
}

/** Connects a recovering client and waits for its first connect. */
export async function connectedClient(url, opts = {}, ms = 5000) {
  const s = recoveringClient(url, opts);
  await waitFor(s, "connect", ms, ["connect_error"]);
  return s;
}
