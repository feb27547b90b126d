// The Node member of the Redis interop cluster: socket.io 4.8 with
// @socket.io/redis-adapter (REDIS_MODE=classic: createAdapter; sharded:
// createShardedAdapter), driven by the same events as the Rust one
// (examples/cluster_node.rs documents them). Env: REDIS_URL, REDIS_PREFIX,
// REDIS_MODE, NODE_NAME; prints `listening on 127.0.0.1:<port>`.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const prefix = process.env.REDIS_PREFIX || "socket.io";
const name = process.env.NODE_NAME || "node";
const pub = createClient({ url: process.env.REDIS_URL });
const sub = pub.duplicate();
for (const c of [pub, sub]) c.on("error", () => {});
await Promise.all([pub.connect(), sub.connect()]);

const adapter =
  process.env.REDIS_MODE === "sharded"
    ? createShardedAdapter(pub, sub, { channelPrefix: prefix })
    : createAdapter(pub, sub, { key: prefix, requestsTimeout: 2000 });
const http = createServer();
const io = new Server(http, { adapter });

const select = (sel = {}) => io.to(sel.rooms || []).except(sel.except || []);
const answers = (err, responses) => ({ responses: responses || [], timedOut: Boolean(err) });

io.on("hello", (...args) => {
  const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
  io.local.emit("server-hello", ...args);
  if (cb) cb(name);
});

io.on("connection", (socket) => {
  socket.data = socket.handshake.auth?.data;
  socket.on("join", (room, cb) => (socket.join(room), cb?.(true)));
  socket.on("leave", (room, cb) => (socket.leave(room), cb?.(true)));
  socket.on("emit", (sel, ev, ...rest) => {
    const cb = rest.pop();
    select(sel).emit(ev, ...rest);
    cb(true);
  });
  socket.on("emit-ack", (sel, ev, ...rest) => {
    const cb = rest.pop();
    select(sel)
      .timeout(1500)
      .emit(ev, ...rest, (err, responses) => cb(answers(err, responses)));
  });
  socket.on("fetch", async (sel, cb) => {
    try {
      const found = await io.in(sel.rooms || []).except(sel.except || []).fetchSockets();
      const v = found.map((s) => ({
        id: s.id,
        rooms: [...s.rooms].sort(),
        data: s.data ?? null,
        // What a Node app reads of a remote socket's handshake.
        hs: { auth: s.handshake.auth, transport: s.handshake.query?.transport, issued: typeof s.handshake.issued, time: typeof s.handshake.time },
      }));
      v.sort((a, b) => (JSON.stringify(a.id) < JSON.stringify(b.id) ? -1 : 1));
      cb(v);
    } catch (e) {
      cb({ error: String(e) });
    }
  });
  socket.on("sockets-join", (sel, room, cb) => (io.in(sel.rooms || []).except(sel.except || []).socketsJoin(room), cb(true)));
  socket.on("sockets-leave", (sel, room, cb) => (io.in(sel.rooms || []).except(sel.except || []).socketsLeave(room), cb(true)));
  socket.on("disconnect-sockets", (sel, close, cb) => {
    cb(true);
    io.in(sel.rooms || []).except(sel.except || []).disconnectSockets(close);
  });
  socket.on("server-emit", (ev, ...rest) => {
    const cb = rest.pop();
    io.serverSideEmit(ev, ...rest);
    cb(true);
  });
  socket.on("server-emit-ack", (ev, ...rest) => {
    const cb = rest.pop();
    io.serverSideEmit(ev, ...rest, (err, responses) => cb(answers(err, responses)));
  });
});

http.listen(0, "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${http.address().port}`);
});
const stop = () => {
  io.close();
  Promise.allSettled([pub.quit(), sub.quit()]).finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
