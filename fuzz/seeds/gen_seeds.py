#!/usr/bin/env python3
"""Writes the committed seed corpus, fuzz/seeds/<target>/<name>.

Run from anywhere: python3 fuzz/seeds/gen_seeds.py. The packets are the
ones the unit and interop tests use (src/engine/packet.rs, src/socketio/
packet.rs, tests/engine.rs, tests/socketio.rs), each wrapped in the input
format of its target (documented at the top of each fuzz_targets/*.rs).
"""

import base64
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def ws_frame(opcode, payload, fin=True, mask=b"\x12\x34\x56\x78"):
    if isinstance(payload, str):
        payload = payload.encode()
    out = bytearray([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        out.append(0x80 | n)
    elif n <= 0xFFFF:
        out.append(0x80 | 126)
        out += struct.pack(">H", n)
    else:
        out.append(0x80 | 127)
        out += struct.pack(">Q", n)
    out += mask
    out += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(out)


OPEN = '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
EIO_TEXT = [OPEN, "1", "2", "2probe", "3", "3probe", "4hello", "4", "5", "6",
            "4\u00e9t\u00e9 \U0001F600", '42["chat","hi"]', "7x", ""]
EIO_B64 = ["bAAEC/w==", "bAAEC/w", "b", "b!!", "bAQID"]

PH0 = '{"_placeholder":true,"num":0}'
PH1 = '{"_placeholder":true,"num":1}'
SIO = [
    "0", '0/admin,{"token":"x"}', "0/custom", "1/admin,", "1/admin", "1",
    '2["hello",1]', '2/chat,12["hi"]', '3/chat,7[]', '31[]',
    '51-["up",' + PH0 + ']', '62-/x,9[' + PH1 + ',' + PH0 + ']',
    '52-["x",' + PH1 + ',' + PH0 + ']',
    '2["m",{"b":1,"a":1.50,"3":[true]},1e3]', '2[1,"x"]',
    '2["e",{"_placeholder":true,"a":' + PH0 + '}]',
    '2["e",' + PH0 + ']',
    '4{"message":"x"}', '2["connect"]', '511-["x"]', '50-["x"]',
    '299999999999999999999["x"]', '2["x",' + "[" * 40 + "]" * 40 + ']',
    '0/' + 'a' * 300 + ',', '2abc["x"]', '2["x"]x',
]


def engine_packet():
    for i, t in enumerate(EIO_TEXT):
        write("engine_packet", f"ws-{i:02}", b"\x00" + t.encode())
        write("engine_packet", f"poll-{i:02}", b"\x01" + t.encode())
    for i, t in enumerate(EIO_B64):
        write("engine_packet", f"b64-{i:02}", b"\x01" + t.encode())
        write("engine_packet", f"raw64-{i:02}", b"\x02" + t[1:].encode())


def ws_frames():
    hdr = struct.pack(">H", 1000) + b"\x07"
    write("ws_frames", "text", hdr + ws_frame(1, "4hello"))
    write("ws_frames", "probe-upgrade", hdr + ws_frame(1, "2probe") + ws_frame(1, "5"))
    write("ws_frames", "fragments-ping", hdr + ws_frame(2, b"\x01\x02", fin=False)
          + ws_frame(9, "p") + ws_frame(0, b"\x03"))
    write("ws_frames", "close", hdr + ws_frame(8, struct.pack(">H", 1000)))
    write("ws_frames", "pong-close-empty", hdr + ws_frame(10, "") + ws_frame(8, ""))
    write("ws_frames", "medium", hdr + ws_frame(2, b"\x07" * 300))
    write("ws_frames", "too-big", struct.pack(">H", 10) + b"\x01" + ws_frame(1, "01234567890"))
    write("ws_frames", "unmasked", hdr + b"\x81\x01x")
    write("ws_frames", "bad-utf8", hdr + ws_frame(1, b"\xff\xfe"))
    write("ws_frames", "long-header", hdr + b"\x82\xff" + struct.pack(">Q", 1 << 40) + b"abcd")


def polling_payload():
    raws = ["4hello\x1ebAAEC/w==\x1e2", "4a\x1e9\x1e4b", "4a\x1e", "", "\x1e", "6",
            "2\x1e3\x1e3probe\x1e1", OPEN + "\x1e40", '42["a"]\x1ebAQID\x1eb']
    for i, r in enumerate(raws):
        write("polling_payload", f"raw-{i:02}", b"\x01" + r.encode())
    # Structured: parts (see the target): 0 text, 1 binary, 2 control, 3 empty, 4 huge text, 5 huge binary, 6 bad type.
    write("polling_payload", "parts-mixed",
          b"\x00" + b"\x00\x05hello" + b"\x01\x04\x00\x01\x02\xff\x00" + b"\x02\x00\x00" + b"\x02\x05probe\x01")
    write("polling_payload", "parts-empty", b"\x00" + b"\x00\x01a" + b"\x03" + b"\x00\x01b")
    write("polling_payload", "parts-huge", b"\x00" + b"\x04\x40\x03" + b"\x05\x20\x7f" + b"\x00\x00")
    write("polling_payload", "parts-badtype", b"\x00" + b"\x02\x00\x04" + b"\x06\x01" + b"\x01\x00\x01")


def sio_packet():
    # Limits: 10 attachments, ack id up to 2^53-1, namespace 255 bytes, depth 32; 1 extra attachment.
    hdr = bytes([10, 5, 255, 32, 1])
    for i, t in enumerate(SIO):
        write("sio_packet", f"p-{i:02}", hdr + t.encode())
    write("sio_packet", "tight-limits", bytes([1, 1, 4, 2, 3]) + b'62-/x,9[' + PH1.encode() + b']')


# What notepack.io (socket.io-msgpack-parser's library) writes for client packets,
# and a few edge cases (see src/socketio/packet/msgpack/tests.rs).
SIO_MSGPACK = [
    # {type:2, data:["hello",1,"x"], options:{compress:true}, nsp:"/"}
    "84a47479706502a46461746193a568656c6c6f01a178a76f7074696f6e7381a8636f6d7072657373c3a36e7370a12f",
    # {type:0, data:undefined, nsp:"/"}; {type:1, nsp:"/"}
    "83a47479706500a464617461d40000a36e7370a12f",
    "82a47479706501a36e7370a12f",
    # {type:2, data:["up", {file: Buffer, n:-5}, ArrayBuffer], id:7, nsp:"/admin"}
    "84a47479706502a46461746193a2757082a466696c65c403010203a16efbc7010009a2696407a36e7370a62f61646d696e",
    # {type:3, data:[1.5, null, true, 300, -200, 70000, 2**40], id:12, nsp:"/"}
    "84a47479706503a46461746197cb3ff8000000000000c0c3cd012cd1ff38ce00011170cf0000010000000000a269640ca36e7370a12f",
    # a Date; a 40-byte str 8; float 32; map 16 / array 16 / str 16 / bin 16 widths
    "83a47479706502a46461746192a164d7000000018d0cabc4bba36e7370a12f",
    "83a47479706502a46461746192a173d92878787878787878787878787878787878787878787878787878787878787878787878787878787878a36e7370a12f",
    "83a47479706502a36e7370a12fa46461746192a165ca3fc00000",
    "83a47479706502a36e7370a12fa464617461dc0002a165de0001da0001" + "61" + "c50002ffff",
    # refused: placeholder-shaped map, binary in CONNECT, ext type 5, 0xc1, duplicate key
    "83a47479706502a36e7370a12fa46461746192a16582ac5f706c616365686f6c646572c3a36e756d00",
    "83a47479706500a36e7370a12fa46461746181a162c40101",
    "83a47479706502a36e7370a12fa46461746192a178d40500",
    "82a474797065c1a36e7370a12f",
    "83a47479706501a47479706501a36e7370a12f",
]


def sio_msgpack():
    # Limits: 10 binary values, ack id up to 2^53-1, namespace 255 bytes, depth 32.
    hdr = bytes([10, 5, 255, 32])
    for i, h in enumerate(SIO_MSGPACK):
        write("sio_msgpack", f"m-{i:02}", hdr + bytes.fromhex(h))
    write("sio_msgpack", "tight-limits", bytes([1, 1, 4, 2]) + bytes.fromhex(SIO_MSGPACK[3]))


def sio_binary():
    SEP = b"\xff"

    def seed(name, flags, records, limit=10):
        body = SEP.join(r.encode() if isinstance(r, str) else r for r in records)
        write("sio_binary", name, bytes([flags, limit]) + body)

    up = '51-["up",' + PH0 + ']'
    two = '52-/admin,3["pair",' + PH1 + ',{"x":' + PH0 + '}]'
    for flags in (0, 1, 2):
        seed(f"complete-{flags}", flags, ["0", up, b"\x00\x01\x02", '2["after"]'])
        seed(f"too-few-{flags}", flags, ["0", '52-["x",' + PH0 + ',' + PH1 + ']', b"\x00A", '2["x"]'])
        seed(f"too-many-{flags}", flags, ["0", up, b"\x00A", b"\x00B"])
        seed(f"interleaved-{flags}", flags, ["0", "0/admin,", two, b"\x00A", '2["x"]', b"\x00B"])
        seed(f"ack-{flags}", flags, ["0", '61-7[' + PH0 + ']', b"\x00Z", '2["e",1]', "1", '2["x"]'])
    seed("namespaces", 0, ["0/admin,", '2/admin,5["hi"]', "0/nope,", '2/nope,["x"]'])
    seed("unexpected-binary", 1, ["0", b"\x00stray"])
    seed("dup-connect", 0, ["0", "0"])


# Session target: 5 config bytes, then operations (see fuzz_targets/session.rs).
HS_POLL, HS_WS, TICK, GET, POST_NUM, POST_RAW, POST_PONG, POST_CTRL, POST_BIN = 0, 1, 2, 3, 5, 7, 8, 9, 10
PROBE, UPGRADE, WS_TEXT, WS_BIN, WS_CTRL, WS_DROP, WS_RAW, SEND, SEND_MANY, CLOSE, READ = \
    11, 12, 13, 15, 16, 17, 18, 19, 21, 22, 23


def session():
    # interval 25 s / timeout 20 s; max payload 16+64*8; 8 packets / 32+64*16 bytes; disconnect; upgrades on.
    cfg = bytes([8, 0x0e, 64, 7, 64])
    cfg_drop = bytes([0, 0x0f, 64, 1, 4])  # 1 s / 0.5 s, 2 packets, drop-newest
    ops = {
        "poll-basic": [HS_POLL, GET, 0, SEND, 0, 1, POST_NUM, 0, 2, POST_PONG, 0, GET, 0, SEND, 0, 0],
        "poll-heartbeat": [HS_POLL, TICK, 40, GET, 0, POST_PONG, 0, TICK, 40, GET, 0, TICK, 255],
        "upgrade": [HS_POLL, GET, 0, SEND, 0, 1, PROBE, 0, 9, 9, 1, SEND, 0, 0, UPGRADE, 0,
                    WS_TEXT, 0, 1, SEND, 0, 1, READ, 0, SEND_MANY, 0, READ, 0],
        "upgrade-pending-get": [HS_POLL, GET, 0, PROBE, 0, 1, 1, 1, SEND, 0, 1, GET, 0, UPGRADE, 0, READ, 0],
        "ws-only": [HS_WS, 7, 7, WS_TEXT, 0, 0, WS_CTRL, 0, 0, WS_CTRL, 0, 1, SEND, 0, 1, READ, 0,
                    WS_BIN, 0, 3, 1, 2, 3, WS_CTRL, 0, 2],
        "closes": [HS_POLL, HS_WS, 1, 1, CLOSE, 0, POST_NUM, 0, 0, GET, 0, PROBE, 0, 1, 1, 1,
                   WS_CTRL, 1, 3, SEND, 1, 0, READ, 1],
        "errors": [HS_POLL, POST_CTRL, 0, 1, HS_POLL, POST_BIN, 1, GET, 0, GET, 0],
        "raw": [HS_POLL, POST_RAW, 0, 9, ord("4"), ord("a"), 0x1e, ord("b"), ord("A"), ord("A"),
                ord("E"), ord("C"), 0x1e, HS_WS, 0, 0, WS_RAW, 1, 6, 0x81, 0x80, 0, 0, 0, 0],
        "two-sockets": [HS_POLL, PROBE, 0, 0, 0, 1, UPGRADE, 0, PROBE, 0, 0, 0, 0x81, WS_TEXT, 0, 0,
                        READ, 0, WS_DROP, 0, TICK, 10],
        "overflow": [HS_POLL, SEND, 0, 0, SEND, 0, 0, SEND, 0, 0, SEND, 0, 0, SEND_MANY, 0, GET, 0],
    }
    cfg_pipe = bytes([26, 0x0e, 64, 7, 64])  # as cfg, with a 64-byte WebSocket pipe
    for name, o in ops.items():
        write("session", name, cfg + bytes(o))
        write("session", name + "-tight", cfg_drop + bytes(o))
        write("session", name + "-smallpipe", cfg_pipe + bytes(o))


def raw_deflate(data, level=6, flush_sync=True):
    import zlib
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = c.compress(data) + (c.flush(zlib.Z_SYNC_FLUSH) if flush_sync else c.flush())
    return out[:-4] if flush_sync and out.endswith(b"\x00\x00\xff\xff") else out


def ws_inflate():
    # limit (2 bytes), flags (bit 0: no context takeover), split point, data.
    roster = b'{"id":"s-001","name":"Student 1","present":true},' * 40
    write("ws_inflate", "roster", struct.pack(">HBB", 60000, 0, 255) + raw_deflate(roster))
    write("ws_inflate", "roster-small-limit", struct.pack(">HBB", 500, 1, 255) + raw_deflate(roster))
    write("ws_inflate", "bomb", struct.pack(">HBB", 65535, 0, 255) + raw_deflate(b"\0" * 2_000_000, 9))
    write("ws_inflate", "final-block", struct.pack(">HBB", 1000, 0, 255) + raw_deflate(b"hello hello", 6, False))
    # Two messages from one compressor: the second refers back to the first.
    import zlib
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    m1 = (c.compress(roster) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    m2 = (c.compress(roster) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(m1) < 256
    write("ws_inflate", "takeover", struct.pack(">HBB", 60000, 0, len(m1)) + m1 + m2)
    write("ws_inflate", "garbage", struct.pack(">HBB", 1000, 0, 3) + b"\xff\xfe\xfd\x00\x01")


def main():
    for t in ("engine_packet", "ws_frames", "polling_payload", "sio_packet", "sio_msgpack", "sio_binary",
              "session", "ws_inflate"):
        shutil.rmtree(os.path.join(HERE, t), ignore_errors=True)
    engine_packet()
    ws_frames()
    polling_payload()
    sio_packet()
    sio_msgpack()
    sio_binary()
    session()
    ws_inflate()


if __name__ == "__main__":
    main()
