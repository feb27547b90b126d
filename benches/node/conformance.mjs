// Reference Socket.IO v5 conformance server (npm `socket.io`) for the rollcall interop contract.
//
// Env: PORT (0 = ephemeral, default 0), HOST (default 127.0.0.1),
//      PING_INTERVAL / PING_TIMEOUT in ms (default 300 / 200),
//      RECOVERY_MS: when set, connection state recovery is on with that
//      maxDisconnectionDuration (ms) and skipMiddlewares: true; off otherwise.
//      PARSER: "msgpack" for socket.io-msgpack-parser (default: the JSON parser).
//      DEFLATE=1: perMessageDeflate on (threshold DEFLATE_THRESHOLD bytes,
//      default 1024, as in `ws`); off otherwise (the socket.io default).
//      REDIS_URL: when set, a cluster node with @socket.io/redis-adapter
//      (createAdapter, key REDIS_PREFIX, default "socket.io"); the packages
//      are loaded only then.
// First stdout line: `listening on 127.0.0.1:<port>`. Exits on SIGTERM/SIGINT.
// Path /socket.io/, maxPayload 1e6, connectTimeout 1000 ms, CORS any origin with credentials.
//
// Namespace "/":
//   on connection        -> emit "auth" (CONNECT payload; {} when none)
//   "message" ...args    -> emit "message-back" ...args
//   "message-with-ack" ...args, ack -> ack(...args)
//   "join" room [, ack]  -> join room, ack(true)
//   "leave" room [, ack] -> leave room, ack(true)
//   "broadcast" room, payload [, ack] -> emit "bcast" payload to everyone in room, ack(true)
//   "please-ack" data    -> emit "server-ack" data with an ack; on ack v -> emit "server-ack-result" v
//   "disconnect-me"      -> socket.disconnect() (client sees "io server disconnect")
//   "set-data" value [, ack] -> socket.data = value, ack(true)
//   "get-data" ack       -> ack(socket.data ?? null)
// Namespace "/custom": on connection -> emit "auth" (CONNECT payload).
// Any other namespace: CONNECT_ERROR {"message":"Invalid namespace"} (socket.io default).
import { createServer } from "node:http";
import { Server } from "socket.io";

const HOST = process.env.HOST || "127.0.0.1";
const PORT = Number(process.env.PORT || 0);
const PING_INTERVAL = Number(process.env.PING_INTERVAL || 300);
const PING_TIMEOUT = Number(process.env.PING_TIMEOUT || 200);
const RECOVERY_MS = process.env.RECOVERY_MS;
const parser = process.env.PARSER === "msgpack" ? (await import("socket.io-msgpack-parser")).default : undefined;
const DEFLATE = process.env.DEFLATE === "1";
const DEFLATE_THRESHOLD = Number(process.env.DEFLATE_THRESHOLD || 1024);

let adapter;
if (process.env.REDIS_URL) {
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const { createClient } = await import("redis");
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  adapter = createAdapter(pub, sub, { key: process.env.REDIS_PREFIX || "socket.io" });
}

const httpServer = createServer();
const io = new Server(httpServer, {
  path: "/socket.io/",
  serveClient: false,
  pingInterval: PING_INTERVAL,
  pingTimeout: PING_TIMEOUT,
  maxHttpBufferSize: 1_000_000,
  connectTimeout: 1000,
  // "any origin with credentials": the request Origin is reflected (a literal "*"
  // is not allowed together with Access-Control-Allow-Credentials: true).
  cors: { origin: true, credentials: true },
  ...(parser ? { parser } : {}),
  ...(adapter ? { adapter } : {}),
  ...(DEFLATE ? { perMessageDeflate: { threshold: DEFLATE_THRESHOLD } } : {}),
  ...(RECOVERY_MS
    ? {
        connectionStateRecovery: {
          maxDisconnectionDuration: Number(RECOVERY_MS),
          skipMiddlewares: true,
        },
      }
    : {}),
});

// Splits a trailing acknowledgement callback off an event's arguments.
const splitAck = (args) =>
  typeof args[args.length - 1] === "function" ? [args.slice(0, -1), args[args.length - 1]] : [args, undefined];

io.on("connection", (socket) => {
  socket.emit("auth", socket.handshake.auth);

  socket.on("message", (...raw) => {
    const [args] = splitAck(raw);
    socket.emit("message-back", ...args);
  });

  socket.on("message-with-ack", (...raw) => {
    const [args, ack] = splitAck(raw);
    ack?.(...args);
  });

  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack(true);
  });

  socket.on("leave", (room, ack) => {
    socket.leave(room);
    if (typeof ack === "function") ack(true);
  });

  socket.on("broadcast", (room, payload, ack) => {
    io.to(room).emit("bcast", payload);
    if (typeof ack === "function") ack(true);
  });

  socket.on("please-ack", (data) => {
    socket.emit("server-ack", data, (v) => socket.emit("server-ack-result", v));
  });

  socket.on("disconnect-me", () => {
    socket.disconnect();
  });

  socket.on("set-data", (value, ack) => {
    socket.data = value;
    if (typeof ack === "function") ack(true);
  });

  socket.on("get-data", (ack) => {
    if (typeof ack === "function") ack(socket.data ?? null);
  });
});

io.of("/custom").on("connection", (socket) => {
  socket.emit("auth", socket.handshake.auth);
});

httpServer.listen(PORT, HOST, () => {
  console.log(`listening on ${HOST}:${httpServer.address().port}`);
});

const shutdown = () => {
  io.close();
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
