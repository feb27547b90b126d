// Interop: the @socket.io/admin-ui server protocol (SPEC.md §3.12), spoken by the
// `conformance` example (ADMIN_UI switches) and by `rollcall serve`, checked with the
// real socket.io-client in the role of the admin UI's client and of the watched clients.
//
// Covered: basic auth (refused without or with wrong credentials, accepted with them,
// the `session` id accepted on reconnect, a forged one refused); `config`; `server_stats`
// with the right client, polling-client and per-namespace socket counts and the
// aggregated connection events; development-mode `all_sockets`, `socket_connected`,
// `room_joined`, `room_left`, `event_received`, `event_sent`, `socket_disconnected`;
// each action (emit, join, leave, _disconnect with and without close) seen by the
// affected client; refused actions; production mode (no per-socket events); off
// (no namespace); the attendance server listing its users' sockets; CORS for the UI origin.
//
// Run: node --test --test-concurrency=1 admin_ui.test.mjs
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { io } from "socket.io-client";
import { IMPL, sleep, startServer, waitFor } from "./harness.mjs";
import { ADMIN_PASSWORD, ADMIN_UI_BASIC, ADMIN_USER, Inbox } from "./admin_ui_helpers.mjs";
import { Clients, makeDataDir, seed, shutdown, startRollcall } from "./attendance_helpers.mjs";

const SKIP = IMPL !== "rust" && "the admin UI protocol is rollcall's (INTEROP_IMPL=node has none)";
const T = 8000;

/** A socket.io-client socket with no reconnection; closed by `closeAll`. */
const opened = new Set();
function client(url, opts = {}) {
  const s = io(url, { forceNew: true, reconnection: false, transports: ["websocket"], ...opts });
  opened.add(s);
  return s;
}
function closeAll() {
  for (const s of opened) s.disconnect();
  opened.clear();
}
async function connected(s) {
  await waitFor(s, "connect", T, ["connect_error"]);
  return s;
}
async function refused(s) {
  const [err] = await waitFor(s, "connect_error", T, ["connect"]);
  s.disconnect();
  return err;
}

/** Connects an admin client to `base` + /admin with `auth`; resolves with {socket, inbox}. */
async function admin(base, auth, ns = "/admin") {
  const socket = client(base + ns, { auth });
  const inbox = new Inbox(socket);
  await connected(socket);
  return { socket, inbox };
}

describe("admin UI, basic auth, development mode", { skip: SKIP }, () => {
  let server;
  let base;
  before(async () => {
    server = await startServer("conformance", { ADMIN_UI: ADMIN_UI_BASIC, ADMIN_UI_MODE: "development" });
    base = `http://127.0.0.1:${server.port}`;
  });
  after(async () => {
    closeAll();
    await server?.stop();
  });

  test("refuses a connection without or with wrong credentials", async () => {
    for (const auth of [undefined, {}, { username: ADMIN_USER, password: "wrong" }, { username: "root", password: ADMIN_PASSWORD }]) {
      const err = await refused(client(`${base}/admin`, auth ? { auth } : {}));
      assert.equal(err.message, "invalid credentials", JSON.stringify(auth));
      assert.deepEqual(err.data, { code: "invalid_credentials" });
    }
  });

  test("accepts the credentials, sends session, config, server_stats and all_sockets", async () => {
    const watched = await connected(client(base));
    const { socket, inbox } = await admin(base, { username: ADMIN_USER, password: ADMIN_PASSWORD });
    const [session] = await inbox.next("session");
    assert.equal(typeof session, "string");
    const [config] = await inbox.next("config");
    assert.deepEqual(config.supportedFeatures, [
      "EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS",
    ]);
    const [stats] = await inbox.next("server_stats");
    for (const key of ["serverId", "hostname"]) assert.equal(typeof stats[key], "string");
    assert.equal(typeof stats.pid, "number");
    assert.ok(stats.uptime >= 0);
    const [all] = await inbox.next("all_sockets");
    const mine = all.find((s) => s.id === watched.id);
    assert.ok(mine, "the watched socket is listed");
    assert.equal(mine.nsp, "/");
    assert.equal(mine.transport, "websocket");
    assert.deepEqual(mine.rooms, [watched.id]);
    assert.equal(mine.handshake.query.EIO, "4");
    assert.ok(all.some((s) => s.id === socket.id && s.nsp === "/admin"), "the admin socket itself is listed");

    // The session id logs in again without the password (as the UI does on reload) ...
    const again = await admin(base, { sessionId: session });
    await again.inbox.next("config");
    assert.equal(again.inbox.all("session").length, 0, "no new session id for a session login");
    // ... a forged one does not.
    const forged = session.replace(/.$/, (c) => (c === "0" ? "1" : "0"));
    const err = await refused(client(`${base}/admin`, { auth: { sessionId: forged } }));
    assert.equal(err.message, "invalid credentials");
    assert.deepEqual(err.data, { code: "invalid_session" });
  });

  test("server_stats counts clients, polling clients, sockets per namespace and connections", async () => {
    closeAll();
    await sleep(300);
    const { inbox } = await admin(base, { username: ADMIN_USER, password: ADMIN_PASSWORD });
    // The first periodic stats after the admin connected take every count made before.
    const from = inbox.mark();
    await inbox.next("server_stats", (s) => s.aggregatedEvents.length > 0, T, from);
    const start = inbox.mark();
    await Promise.all([
      connected(client(base)),
      connected(client(base)),
      connected(client(base, { transports: ["polling"] })),
      connected(client(`${base}/custom`)),
    ]);
    const [stats] = await inbox.next(
      "server_stats",
      (s) => s.clientsCount === 5 && s.pollingClientsCount === 1,
      T,
      start,
    );
    const count = (name) => stats.namespaces.find((n) => n.name === name)?.socketsCount;
    assert.equal(count("/"), 3);
    assert.equal(count("/custom"), 1);
    assert.equal(count("/admin"), 1);
    // Each connection is counted once, in the stats sent since.
    await inbox.next("server_stats", () => true, T, inbox.mark());
    const since = inbox.items.slice(start).filter(([n]) => n === "server_stats").flatMap(([, s]) => s.aggregatedEvents);
    const raw = since.filter((e) => e.type === "rawConnection").reduce((n, e) => n + e.count, 0);
    assert.equal(raw, 4, "four connections opened since the counts were taken");
    const packetsIn = since.filter((e) => e.type === "packetsIn");
    assert.ok(packetsIn.length > 0, "the clients' CONNECT packets are counted");
    assert.ok(packetsIn.every((e) => typeof e.timestamp === "number" && e.count > 0));
  });

  test("development mode reports connects, joins, events, leaves and disconnects", async () => {
    const { inbox } = await admin(base, { username: ADMIN_USER, password: ADMIN_PASSWORD });
    await inbox.next("all_sockets");
    const from = inbox.mark();
    const c = await connected(client(base));
    const id = c.id;
    const [sock, at] = await inbox.next("socket_connected", (s) => s.id === id, T, from);
    assert.equal(sock.nsp, "/");
    assert.ok(!Number.isNaN(Date.parse(at)));
    // The conformance server greets every socket with an "auth" event.
    const [, , sentArgs] = await inbox.next("event_sent", (nsp, sid, args) => sid === id && args[0] === "auth", T, from);
    assert.equal(sentArgs.length, 2);
    assert.equal(await c.timeout(T).emitWithAck("join", "room-1"), true);
    await inbox.next("event_received", (nsp, sid, args) => sid === id && args[0] === "join" && args[1] === "room-1", T, from);
    await inbox.next("room_joined", (nsp, room, sid) => nsp === "/" && room === "room-1" && sid === id, T, from);
    assert.equal(await c.timeout(T).emitWithAck("leave", "room-1"), true);
    await inbox.next("room_left", (nsp, room, sid) => room === "room-1" && sid === id, T, from);
    c.disconnect();
    const [nsp, , reason] = await inbox.next("socket_disconnected", (n, sid) => sid === id, T, from);
    assert.equal(nsp, "/");
    assert.equal(reason, "client namespace disconnect");
  });

  test("actions: emit, join, leave and _disconnect reach the affected client", async () => {
    const { socket: adminSocket, inbox } = await admin(base, { username: ADMIN_USER, password: ADMIN_PASSWORD });
    const target = await connected(client(base));
    const other = await connected(client(base));

    // emit to one socket (its id is a room)
    const got = waitFor(target, "hello", T);
    assert.deepEqual(await adminSocket.timeout(T).emitWithAck("emit", "/", target.id, "hello", { n: 1 }), { ok: true });
    assert.deepEqual(await got, [{ n: 1 }]);

    // join: a broadcast to the room now reaches it
    const from = inbox.mark();
    adminSocket.emit("join", "/", "admins-room", target.id);
    await inbox.next("room_joined", (nsp, room, sid) => room === "admins-room" && sid === target.id, T, from);
    const bcast = waitFor(target, "bcast", T);
    assert.equal(await other.timeout(T).emitWithAck("broadcast", "admins-room", "to the room"), true);
    assert.deepEqual(await bcast, ["to the room"]);

    // leave: it no longer does
    adminSocket.emit("leave", "/", "admins-room", target.id);
    await inbox.next("room_left", (nsp, room, sid) => room === "admins-room" && sid === target.id, T, from);
    let late = false;
    target.once("bcast", () => (late = true));
    assert.equal(await other.timeout(T).emitWithAck("broadcast", "admins-room", "after leave"), true);
    await sleep(300);
    assert.equal(late, false, "a socket that left gets no broadcast to the room");

    // _disconnect without close: the namespace only; with close: the connection
    const gone = waitFor(target, "disconnect", T);
    adminSocket.emit("_disconnect", "/", false, target.id);
    assert.equal((await gone)[0], "io server disconnect");
    const closed = waitFor(other, "disconnect", T);
    adminSocket.emit("_disconnect", "/", true, other.id);
    assert.equal((await closed)[0], "transport close");
  });

  test("a malformed action changes nothing and is answered with an error", async () => {
    const { socket: adminSocket, inbox } = await admin(base, { username: ADMIN_USER, password: ADMIN_PASSWORD });
    const bad = [
      ["join", "/nowhere", "r"],
      ["join", "/", ""],
      ["emit", "/", null, 42],
      ["_disconnect", "/", "yes"],
      ["leave", "/", "r", { room: "x" }],
    ];
    for (const [action, ...args] of bad) {
      const from = inbox.mark();
      const reply = await adminSocket.timeout(T).emitWithAck(action, ...args);
      assert.equal(reply.ok, false, action);
      assert.equal(reply.error.code, "invalid_payload");
      const [e] = await inbox.next("admin_error", () => true, T, from);
      assert.equal(e.action, action);
      assert.equal(e.message, reply.error.message);
    }
    const still = await connected(client(base));
    assert.ok(still.connected);
  });
});

describe("admin UI, open access, production mode", { skip: SKIP }, () => {
  let server;
  let base;
  before(async () => {
    server = await startServer("conformance", { ADMIN_UI: "open", ADMIN_UI_NAMESPACE: "/ops" });
    base = `http://127.0.0.1:${server.port}`;
  });
  after(async () => {
    closeAll();
    await server?.stop();
  });

  test("anyone connects; stats only, no per-socket events", async () => {
    const { inbox } = await admin(base, undefined, "/ops");
    const [config] = await inbox.next("config");
    assert.ok(!config.supportedFeatures.includes("ALL_EVENTS"));
    assert.ok(config.supportedFeatures.includes("AGGREGATED_EVENTS"));
    const from = inbox.mark();
    const c = await connected(client(base));
    await c.timeout(T).emitWithAck("join", "x");
    await inbox.next("server_stats", (s) => s.namespaces.find((n) => n.name === "/")?.socketsCount === 1, T, from);
    c.disconnect();
    await inbox.next("server_stats", () => true, T, inbox.mark());
    const names = new Set(inbox.items.map(([n]) => n));
    for (const dev of ["all_sockets", "socket_connected", "room_joined", "event_received", "event_sent", "socket_disconnected"]) {
      assert.ok(!names.has(dev), `no ${dev} in production mode`);
    }
    const err = await refused(client(`${base}/admin`));
    assert.equal(err.message, "Invalid namespace");
  });
});

describe("admin UI off (the default)", { skip: SKIP }, () => {
  let server;
  before(async () => {
    server = await startServer("conformance", { ADMIN_UI: "" });
  });
  after(async () => {
    closeAll();
    await server?.stop();
  });

  test("there is no admin namespace", async () => {
    const err = await refused(client(`http://127.0.0.1:${server.port}/admin`));
    assert.equal(err.message, "Invalid namespace");
  });
});

describe("admin UI on the attendance server", { skip: SKIP }, () => {
  const clients = new Clients();
  let server;
  let dataDir;
  let tokens;
  before(async () => {
    dataDir = makeDataDir("adminui");
    tokens = await seed(dataDir, {
      users: [
        { id: "t-ada", email: "ada@school.test", name: "Ada Teacher", role: "teacher" },
        { id: "s-sam", email: "sam@school.test", name: "Sam Student" },
      ],
      courses: [{ id: "math-101", teachers: ["t-ada"], students: ["s-sam"] }],
      tokens: ["t-ada", "s-sam"],
    });
    server = await startRollcall(dataDir, {
      ADMIN_UI: ADMIN_UI_BASIC,
      ADMIN_UI_MODE: "development",
      CLIENT_URL: "http://app.test",
      ADMIN_UI_ORIGIN: "http://ui.test",
    });
  });
  after(async () => {
    closeAll();
    await shutdown(clients, server, dataDir);
  });

  test("lists the users' sockets with their data and rooms; disconnects one", async () => {
    const teacher = await clients.connect(server.url, tokens["t-ada"]);
    const student = await clients.connect(server.url, tokens["s-sam"]);
    const { socket: adminSocket, inbox } = await admin(server.url, { username: ADMIN_USER, password: ADMIN_PASSWORD });
    const [all] = await inbox.next("all_sockets");
    const t = all.find((s) => s.id === teacher.id);
    assert.deepEqual(t.data, { userId: "t-ada", name: "Ada Teacher", role: "teacher" });
    assert.ok(t.rooms.includes("user:t-ada") && t.rooms.includes("role:teacher"));
    assert.equal(t.handshake.headers.authorization, undefined);
    assert.ok(!JSON.stringify(all).includes(tokens["t-ada"]), "no token in what the admin sees");
    const gone = waitFor(student, "disconnect", T);
    adminSocket.emit("_disconnect", "/", false, student.id);
    assert.equal((await gone)[0], "io server disconnect");
  });

  test("CORS lets the UI's origin in, with credentials", async () => {
    const headers = await new Promise((resolve, reject) => {
      const req = http.get(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: "http://ui.test" } }, (res) => {
        res.resume();
        resolve(res.headers);
      });
      req.on("error", reject);
      req.setTimeout(T, () => req.destroy(new Error("timeout")));
    });
    assert.equal(headers["access-control-allow-origin"], "http://ui.test");
    assert.equal(headers["access-control-allow-credentials"], "true");
  });
});
