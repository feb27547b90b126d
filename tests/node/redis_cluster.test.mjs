// A mixed cluster on a real redis-server: two rollcall nodes
// (examples/cluster_node) and one Node socket.io 4.8 node with
// @socket.io/redis-adapter 8.3.0, real socket.io-clients on each, plus an
// @socket.io/redis-emitter 5.1.0 publisher; every cross-node operation is
// issued from each kind of node. Then the sharded variant against Node's
// createShardedAdapter, and Redis restarted mid-test.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";
import { RedisServer, SKIP, startNode, client, ask, received, named } from "./redis_helpers.mjs";
import { sleep, toBuffer } from "./harness.mjs";

const PREFIX = "rc";
let redis;
let nodes = [];
let clients = {};

const ids = (list) => list.map((s) => s.id).sort();
const sockets = () => Object.values(clients);

/** Emits a fresh mark from `origin` to everyone and waits until all got it:
 *  whatever `origin`'s node published before has then arrived. */
async function settle(origin) {
  const mark = `m${Math.random()}`;
  await ask(origin, "emit", { rooms: [] }, "mark", mark);
  for (const s of sockets()) await received(s, (e) => e[0] === "mark" && e[1] === mark, 5000, `mark from ${origin.node}`);
}

before(async () => {
  if (SKIP) return;
  redis = await new RedisServer().start();
  const url = redis.url;
  nodes = await Promise.all([
    startNode("rust", { url, prefix: PREFIX, name: "r1" }),
    startNode("rust", { url, prefix: PREFIX, name: "r2" }),
    startNode("node", { url, prefix: PREFIX, name: "n" }),
  ]);
  const [r1, r2, n] = nodes;
  clients = {
    a: await client(r1, { user: "a" }),
    b: await client(r2, { user: "b" }),
    c: await client(n, { user: "c" }),
  };
  await ask(clients.a, "join", "room1");
  await ask(clients.c, "join", "room1");
  await ask(clients.b, "join", "room2");
});

after(async () => {
  for (const s of sockets()) s.disconnect();
  await Promise.all(nodes.map((n) => n.stop()));
  await redis?.close();
});

test("broadcasts to all, to a room, except a room, binary: from each kind of node", { skip: SKIP }, async () => {
  const { a, b, c } = clients;
  for (const origin of [a, b, c]) {
    const tag = origin.node;
    await ask(origin, "emit", { rooms: [] }, `all-${tag}`, 1, "two", { three: 3 });
    await ask(origin, "emit", { rooms: ["room1"] }, `r1-${tag}`);
    await ask(origin, "emit", { rooms: [], except: ["room1"] }, `ex-${tag}`);
    await ask(origin, "emit", { rooms: ["room1"] }, `bin-${tag}`, Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) });
    await settle(origin);
    for (const s of [a, b, c]) {
      assert.deepEqual(named(s, `all-${tag}`), [[`all-${tag}`, 1, "two", { three: 3 }]], `${s.node} all from ${tag}`);
    }
    assert.equal(named(a, `r1-${tag}`).length, 1);
    assert.equal(named(c, `r1-${tag}`).length, 1);
    assert.equal(named(b, `r1-${tag}`).length, 0, "b is not in room1");
    assert.deepEqual([a, b, c].map((s) => named(s, `ex-${tag}`).length), [0, 1, 0]);
    for (const s of [a, c]) {
      const [[, bin, obj]] = named(s, `bin-${tag}`);
      assert.deepEqual([...toBuffer(bin)], [1, 2, 3], `${s.node} binary from ${tag}`);
      assert.deepEqual([...toBuffer(obj.nested)], [4]);
    }
    assert.equal(named(b, `bin-${tag}`).length, 0);
  }
});

test("broadcast with acks across nodes, and partial results at the timeout", { skip: SKIP }, async () => {
  const { a, b, c } = clients;
  for (const s of [a, c]) s.on("ask", (x, cb) => cb(`${s.io.opts.auth.data.user}:${x}`));
  for (const origin of [a, b, c]) {
    const r = await ask(origin, "emit-ack", { rooms: ["room1"] }, "ask", 7);
    assert.deepEqual({ ...r, responses: r.responses.sort() }, { responses: ["a:7", "c:7"], timedOut: false }, `from ${origin.node}`);
    // b never answers "ask": the others' answers come with the timeout.
    const all = await ask(origin, "emit-ack", { rooms: [] }, "ask", 8);
    assert.deepEqual({ ...all, responses: all.responses.sort() }, { responses: ["a:8", "c:8"], timedOut: true }, `partial from ${origin.node}`);
  }
});

test("fetchSockets from each kind of node: ids, rooms and data of every node's sockets", { skip: SKIP }, async () => {
  const { a, b, c } = clients;
  for (const origin of [a, b, c]) {
    const all = await ask(origin, "fetch", { rooms: [] });
    assert.deepEqual(ids(all), ids([a, b, c]), `from ${origin.node}`);
    for (const s of [a, b, c]) {
      const f = all.find((x) => x.id === s.id);
      assert.deepEqual(f.data, s.io.opts.auth.data);
      const want = [s.id, s === b ? "room2" : "room1"].sort();
      assert.deepEqual(f.rooms, want, `${s.node}'s rooms seen from ${origin.node}`);
    }
    if (origin === c) {
      for (const s of [a, b]) {
        const { hs } = all.find((x) => x.id === s.id);
        assert.deepEqual(hs, { auth: { data: s.io.opts.auth.data }, transport: "websocket", issued: "number", time: "string" }, `${s.node}'s handshake as Node sees it`);
      }
    }
    const r1 = await ask(origin, "fetch", { rooms: ["room1"] });
    assert.deepEqual(ids(r1), ids([a, c]));
    const notR1 = await ask(origin, "fetch", { rooms: [], except: ["room1"] });
    assert.deepEqual(ids(notR1), ids([b]));
  }
});

test("socketsJoin / socketsLeave from each kind of node", { skip: SKIP }, async () => {
  const { a, b, c } = clients;
  for (const origin of [a, b, c]) {
    const room = `joined-${origin.node}`;
    await ask(origin, "sockets-join", { rooms: ["room1"] }, room);
    await sleep(200);
    for (const asker of [a, b, c]) {
      assert.deepEqual(ids(await ask(asker, "fetch", { rooms: [room] })), ids([a, c]), `${room} seen from ${asker.node}`);
    }
    await ask(origin, "sockets-leave", { rooms: [room], except: ["room2"] }, room);
    await sleep(200);
    assert.deepEqual(await ask(b, "fetch", { rooms: [room] }), []);
  }
});

test("serverSideEmit with and without acks from each kind of node", { skip: SKIP }, async () => {
  const { a, b, c } = clients;
  const names = { r1: a, r2: b, n: c };
  for (const origin of [a, b, c]) {
    const arg = `hi-${origin.node}`;
    await ask(origin, "server-emit", "hello", arg);
    for (const [name, s] of Object.entries(names)) {
      if (name === origin.node) continue;
      await received(s, (e) => e[0] === "server-hello" && e[1] === arg, 5000, `server-hello on ${name}`);
    }
    const r = await ask(origin, "server-emit-ack", "hello", `${arg}-ack`);
    const others = Object.keys(names).filter((n) => n !== origin.node).sort();
    assert.deepEqual({ ...r, responses: r.responses.sort() }, { responses: others, timedOut: false }, `acks to ${origin.node}`);
    await settle(origin);
    assert.equal(named(origin, "server-hello").filter((e) => e[1] === arg).length, 0, "not to the emitting node");
  }
});

test("an @socket.io/redis-emitter process: broadcasts, socketsJoin, serverSideEmit", { skip: SKIP }, async () => {
  const { a, b, c } = clients;
  const pub = createClient({ url: redis.url });
  await pub.connect();
  try {
    const emitter = new Emitter(pub, { key: PREFIX });
    emitter.to("room1").emit("from-emitter", 1, Buffer.from([9]));
    emitter.except("room1").emit("emitter-except", 2);
    emitter.in("room2").socketsJoin("em-room");
    emitter.serverSideEmit("hello", "from-emitter");
    for (const s of [a, c]) {
      const [, n, bin] = await received(s, (e) => e[0] === "from-emitter");
      assert.deepEqual([n, [...toBuffer(bin)]], [1, [9]]);
    }
    await received(b, (e) => e[0] === "emitter-except");
    for (const s of [a, b, c]) await received(s, (e) => e[0] === "server-hello" && e[1] === "from-emitter");
    await sleep(200);
    assert.deepEqual(ids(await ask(c, "fetch", { rooms: ["em-room"] })), ids([b]));
    await settle(a);
    assert.equal(named(b, "from-emitter").length, 0);
    assert.equal(named(a, "emitter-except").length + named(c, "emitter-except").length, 0);
  } finally {
    await pub.quit();
  }
});

test("disconnectSockets from each kind of node", { skip: SKIP }, async () => {
  for (const origin of ["a", "b", "c"]) {
    const extra = await Promise.all(nodes.map((n) => client(n, { user: "x" })));
    for (const s of extra) await ask(s, "join", "dc");
    await ask(clients[origin], "disconnect-sockets", { rooms: ["dc"] }, false);
    for (const s of extra) {
      const deadline = Date.now() + 5000;
      while (s.connected && Date.now() < deadline) await sleep(10);
      assert.equal(s.disconnectReason, "io server disconnect", `${s.node} disconnected by ${origin}`);
    }
  }
  for (const s of sockets()) assert.ok(s.connected, `${s.node} untouched`);
});

test("Redis restarted mid-test: local delivery goes on while it is down, cluster delivery resumes", { skip: SKIP }, async () => {
  const { a, b, c } = clients;
  await redis.stop();
  await sleep(300);
  await ask(a, "emit", { rooms: [] }, "while-down", 1);
  await received(a, (e) => e[0] === "while-down", 3000, "local delivery while Redis is down");
  await ask(c, "emit", { rooms: [] }, "node-while-down", 1);
  await received(c, (e) => e[0] === "node-while-down", 3000);
  await redis.restart();
  for (const [origin, targets] of [[a, [b, c]], [b, [a, c]], [c, [a, b]]]) {
    const deadline = Date.now() + 20000;
    let i = 0;
    for (;;) {
      const ev = `after-${origin.node}-${i++}`;
      await ask(origin, "emit", { rooms: [] }, ev);
      await sleep(200);
      if (targets.every((s) => named(s, ev).length === 1)) break;
      assert.ok(Date.now() < deadline, `cluster delivery from ${origin.node} never resumed`);
    }
  }
  assert.deepEqual(ids(await ask(b, "fetch", { rooms: [] })), ids([a, b, c]));
});

test("examples/conformance with REDIS_URL is a cluster node (its room broadcasts reach the other nodes)", { skip: SKIP }, async () => {
  const { a, b, c } = clients;
  const conf = await startNode("conformance", { url: redis.url, prefix: PREFIX, name: "conf" });
  try {
    const d = await client(conf, { user: "d" });
    await ask(d, "join", "room1");
    await ask(d, "broadcast", "room1", "from-conformance");
    for (const s of [a, c]) {
      const [, arg] = await received(s, (e) => e[0] === "bcast", 5000, "bcast from the conformance server");
      assert.equal(arg, "from-conformance");
    }
    await ask(b, "emit", { rooms: ["room1"] }, "to-conformance", 5);
    await received(d, (e) => e[0] === "to-conformance" && e[1] === 5, 5000, "a cluster broadcast on the conformance server");
    assert.deepEqual(ids(await ask(c, "fetch", { rooms: ["room1"] })), ids([a, c, d]));
    d.disconnect();
  } finally {
    await conf.stop();
  }
});

test("sharded: rollcall nodes and createShardedAdapter in one cluster", { skip: SKIP }, async () => {
  const url = redis.url;
  const sharded = await Promise.all([
    startNode("rust", { url, prefix: "sh", mode: "sharded", name: "s1" }),
    startNode("rust", { url, prefix: "sh", mode: "sharded", name: "s2" }),
    startNode("node", { url, prefix: "sh", mode: "sharded", name: "sn" }),
  ]);
  const cs = [];
  try {
    for (const n of sharded) cs.push(await client(n, { user: n.name }));
    const [x, y, z] = cs;
    await ask(x, "join", "pub-room");
    await ask(z, "join", "pub-room");
    await sleep(200); // the dynamic room channels are subscribed
    for (const origin of cs) {
      const tag = origin.node;
      await ask(origin, "emit", { rooms: [] }, `all-${tag}`, Buffer.from([7]));
      await ask(origin, "emit", { rooms: ["pub-room"] }, `room-${tag}`, 2);
      for (const s of cs) {
        const [, bin] = await received(s, (e) => e[0] === `all-${tag}`, 5000, `all-${tag}`);
        assert.deepEqual([...toBuffer(bin)], [7]);
      }
      await received(x, (e) => e[0] === `room-${tag}`, 5000, `room-${tag} on s1`);
      await received(z, (e) => e[0] === `room-${tag}`, 5000, `room-${tag} on sn`);
      assert.deepEqual(ids(await ask(origin, "fetch", { rooms: [] })), ids(cs), `fetch from ${tag}`);
      const r = await ask(origin, "server-emit-ack", "hello", 1);
      const others = sharded.map((n) => n.name).filter((n) => n !== tag).sort();
      assert.deepEqual({ ...r, responses: r.responses.sort() }, { responses: others, timedOut: false });
      await ask(origin, "sockets-join", { rooms: ["pub-room"] }, `sj-${tag}`);
      await sleep(200);
      assert.deepEqual(ids(await ask(y, "fetch", { rooms: [`sj-${tag}`] })), ids([x, z]));
    }
    for (const s of cs) s.on("ask", (v, cb) => cb(s.node));
    const r = await ask(y, "emit-ack", { rooms: ["pub-room"] }, "ask", 1);
    assert.deepEqual({ ...r, responses: r.responses.sort() }, { responses: ["s1", "sn"], timedOut: false });
    assert.equal(named(y, "room-s1").length, 0, "s2 has no socket in pub-room");
  } finally {
    for (const s of cs) s.disconnect();
    await Promise.all(sharded.map((n) => n.stop()));
  }
});
