// Memory given back after a flood (SPEC.md §2.16; BENCHMARKS.md "Allocator"): starts
// `rollcall serve` (BIN, default target/release/rollcall) on a temporary data directory with
// the per-address limits off, samples its RSS (VmRSS) before, during and 60 s after a flood of
// FLOOD polling handshakes (default 5,000; CONC at a time, default 64), each followed by a
// POST of a BODY_KB Socket.IO event (default 512 KB), and prints one JSON line
// {before, peak, after60} in MB.
// Bounded: the flood stops after 120 s whatever happened. Loopback only.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";

const BIN = process.env.BIN || "target/release/rollcall";
const FLOOD = Number(process.env.FLOOD || 5000);
const AFTER_MS = Number(process.env.AFTER_MS || 60000);
const CONC = Number(process.env.CONC || 64);
const BODY_KB = Number(process.env.BODY_KB || 512);
const dir = mkdtempSync(path.join(os.tmpdir(), "rollcall-alloc-"));
const child = spawn(BIN, ["serve"], {
  env: {
    ...process.env,
    DATA_DIR: dir,
    HOST: "127.0.0.1",
    PORT: "0",
    CLIENT_URL: "*",
    CONN_RATE: "0",
    HANDSHAKE_RATE: "0",
    MAX_SESSIONS: "1000000",
    MAX_CONNECTIONS: "1000000",
    RUST_LOG: "error",
  },
  stdio: ["ignore", "pipe", "inherit"],
});
const rss = () => Number(readFileSync(`/proc/${child.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;
const port = await new Promise((resolve, reject) => {
  child.stdout.on("data", (d) => {
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(d.toString());
    if (m) resolve(Number(m[1]));
  });
  child.on("exit", () => reject(new Error("server exited")));
  setTimeout(() => reject(new Error("no start")), 20000);
});
const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });
const body = "4" + '2["flood","' + "a".repeat(BODY_KB * 1024) + '"]';
function request(method, p, data) {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: p, agent, headers: { cookie: "c=" + "x".repeat(4000) } }, (res) => {
      let out = "";
      res.on("data", (d) => (out += d));
      res.on("end", () => resolve(out));
    });
    req.on("error", () => resolve(""));
    req.end(data);
  });
}
await new Promise((r) => setTimeout(r, 1000));
const before = rss();
let peak = before;
const sampler = setInterval(() => (peak = Math.max(peak, rss())), 100);
const stopAt = Date.now() + 120000;
let next = 0;
async function worker() {
  while (next < FLOOD && Date.now() < stopAt) {
    next += 1;
    const open = await request("GET", "/socket.io/?EIO=4&transport=polling");
    const sid = /"sid":"([^"]+)"/.exec(open)?.[1];
    if (sid) await request("POST", `/socket.io/?EIO=4&transport=polling&sid=${sid}`, body);
  }
}
await Promise.all(Array.from({ length: CONC }, worker));
agent.destroy();
await new Promise((r) => setTimeout(r, AFTER_MS));
clearInterval(sampler);
const after60 = rss();
child.kill("SIGTERM");
await new Promise((r) => child.on("exit", r));
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ bin: BIN, flood: FLOOD, conc: CONC, bodyKb: BODY_KB, before: +before.toFixed(1), peak: +peak.toFixed(1), after60: +after60.toFixed(1) }));
