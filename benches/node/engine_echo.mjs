// Reference Engine.IO v4 echo server (npm `engine.io`) for the rollcall interop contract.
//
// Env: PORT (0 = ephemeral, default 0), HOST (default 127.0.0.1).
// First stdout line: `listening on 127.0.0.1:<port>`. Exits on SIGTERM/SIGINT.
// Path /engine.io/, pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6, CORS any origin.
// Every message is sent back as it came: text as text, binary as binary.
import { createServer } from "node:http";
import { attach } from "engine.io";

const HOST = process.env.HOST || "127.0.0.1";
const PORT = Number(process.env.PORT || 0);

const httpServer = createServer();
const engine = attach(httpServer, {
  path: "/engine.io/",
  pingInterval: 300,
  pingTimeout: 200,
  maxHttpBufferSize: 1_000_000,
  cors: { origin: "*" },
});

engine.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
});

httpServer.listen(PORT, HOST, () => {
  console.log(`listening on ${HOST}:${httpServer.address().port}`);
});

const shutdown = () => {
  engine.close();
  httpServer.close();
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
