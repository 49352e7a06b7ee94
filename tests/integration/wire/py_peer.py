#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Python side of the cross-language wire test (python_interop_test.cc), using
# only python3-zmq and python3-msgpack, as an integrator's subscriber would.
#
#   py_peer.py pub           bind an XPUB on 127.0.0.1, print its endpoint,
#                            publish one vm message once a subscriber is
#                            there, then print that message as JSON
#   py_peer.py sub ENDPOINT  subscribe to "vmtide.v1.", receive a vm and a
#                            host message, check their keys and types, and
#                            print each as JSON
#
# Prints "skip: <reason>" and exits 77 when a module is missing; any other
# failure exits 1 with the reason on stderr.
import json
import sys

try:
    import msgpack
    import zmq
except ImportError as e:
    print(f"skip: {e}", flush=True)
    sys.exit(77)

TIMEOUT_MS = 20_000

# The vm message "pub" sends, keys in wire order (docs/wire-protocol.md) so
# its JSON matches the C++ to_json of the decoded message byte for byte.
VM = {
    "v": 1, "kind": "vm", "host": "pyhost", "epoch": 1_700_000_000_123_456_789, "seq": 7,
    "ts_ns": 1_700_000_100_000_000_000, "mono_ns": 98_765_432_100, "interval_ns": 1_000_000_000,
    "id": "0f8e6c2a-1b3d-4e5f-8a9b-0c1d2e3f4a5b", "name": "py-vm", "pid": 31337, "vcpus": 2,
    "cpu_ns": 1_500_000_000, "steal_ns": 250_000_000, "ram_bytes": 2 << 30, "rss_bytes": 1_900_000_000,
    "steal_hist": [1, 0, 5, 9, 2],
    "preempt": [{"tgid": 1234, "comm": "ffmpeg", "ns": 180_000_000},
                {"tgid": 99, "comm": "kswapd0", "ns": 12_000_000}],
    "dirty": {"src": "qemu", "window_ns": 2_000_000_000, "pages": 70_000, "page_bytes": 4096,
              "curve": [[50_000_000, 4_000], [500_000_000, 30_000], [2_000_000_000, 70_000]]},
    "io": {"rd_bytes": 8192, "wr_bytes": 65536, "rd_ops": 2, "wr_ops": 16, "dstate_ns": 400_000,
           "lat_hist": [0, 3, 13]},
    "psi": {"cpu_some_us": 4000, "io_full_us": 10},
}

U, I, F, S, B, L, M = "uint", "int", "float", "str", "bool", "list", "map"
ENVELOPE = {"v": U, "kind": S, "host": S, "epoch": U, "seq": U, "ts_ns": I, "mono_ns": U, "interval_ns": U}
REQUIRED = {
    "vm": {"id": S, "name": S, "pid": U, "vcpus": U, "cpu_ns": U, "steal_ns": U, "ram_bytes": U, "rss_bytes": U},
    "host": {"cpus": U, "cpu_busy_ns": U, "mem_total_bytes": U, "mem_avail_bytes": U,
             "load1": F, "load5": F, "load15": F, "vms": U},
}
OPTIONAL = {
    "vm": {"steal_hist": L, "preempt": L, "dirty": M, "io": M, "psi": M},
    "host": {"psi": M, "link_bps": U, "cpu_steal_ns": U},
}


def fail(why):
    print(f"py_peer: {why}", file=sys.stderr, flush=True)
    sys.exit(1)


def check_type(path, value, want):
    ok = {
        U: lambda x: type(x) is int and x >= 0,
        I: lambda x: type(x) is int,
        F: lambda x: type(x) is float,  # the C++ encoder always sends float64
        S: lambda x: type(x) is str,
        B: lambda x: type(x) is bool,
        L: lambda x: type(x) is list,
        M: lambda x: type(x) is dict,
    }[want](value)
    if not ok:
        fail(f"{path}: expected {want}, got {value!r}")


def validate(topic, msg):
    if type(msg) is not dict:
        fail(f"body is not a map: {msg!r}")
    for key, want in ENVELOPE.items():
        if key not in msg:
            fail(f"missing envelope key {key}")
        check_type(key, msg[key], want)
    kind = msg["kind"]
    if msg["v"] != 1 or kind not in REQUIRED:
        fail(f"unexpected v={msg['v']} kind={kind}")
    if topic != f"vmtide.v1.{kind}.{msg['host']}":
        fail(f"topic {topic} does not match the body")
    for key, want in REQUIRED[kind].items():
        if key not in msg:
            fail(f"{kind}: missing {key}")
        check_type(f"{kind}.{key}", msg[key], want)
    for key, want in OPTIONAL[kind].items():
        if key in msg:
            check_type(f"{kind}.{key}", msg[key], want)
    unknown = set(msg) - set(ENVELOPE) - set(REQUIRED[kind]) - set(OPTIONAL[kind])
    if unknown:
        fail(f"{kind}: keys outside the v1 schema: {sorted(unknown)}")
    if kind == "vm":
        for i, p in enumerate(msg.get("preempt", [])):
            for key, want in {"tgid": U, "comm": S, "ns": U}.items():
                check_type(f"vm.preempt[{i}].{key}", p.get(key), want)
        for i, point in enumerate(msg.get("dirty", {}).get("curve", [])):
            if type(point) is not list or len(point) != 2:
                fail(f"vm.dirty.curve[{i}]: expected [tau_ns, pages]")
            check_type(f"vm.dirty.curve[{i}][0]", point[0], U)
            check_type(f"vm.dirty.curve[{i}][1]", point[1], U)


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def publish():
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, TIMEOUT_MS)
    pub.bind("tcp://127.0.0.1:*")
    print(pub.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    # XPUB hands us the subscription: once it arrives, the subscriber's
    # filter is in place and nothing we send is lost to the slow joiner.
    if not pub.poll(TIMEOUT_MS):
        fail("no subscriber within 20 s")
    subscription = pub.recv()
    if subscription[:1] != b"\x01":
        fail(f"unexpected XPUB frame {subscription!r}")
    # A key from a newer v1 that the C++ decoder must ignore.
    wire = dict(VM, x_future={"a": [1, None, 2.5]})
    topic = f"vmtide.v1.{VM['kind']}.{VM['host']}"
    pub.send_multipart([topic.encode(), msgpack.packb(wire, use_bin_type=True)])
    print(dumps(VM), flush=True)
    pub.close()
    ctx.term()


def subscribe(endpoint, count=2):
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.MAXMSGSIZE, 1 << 20)
    sub.setsockopt(zmq.SUBSCRIBE, b"vmtide.v1.")
    sub.connect(endpoint)
    for _ in range(count):
        if not sub.poll(TIMEOUT_MS):
            fail("no message within 20 s")
        frames = sub.recv_multipart()
        if len(frames) != 2:
            fail(f"expected 2 frames, got {len(frames)}")
        msg = msgpack.unpackb(frames[1], raw=False, strict_map_key=True)
        validate(frames[0].decode(), msg)
        print(dumps(msg), flush=True)
    sub.close()
    ctx.term()


def main(argv):
    if len(argv) == 2 and argv[1] == "pub":
        publish()
    elif len(argv) == 3 and argv[1] == "sub":
        subscribe(argv[2])
    else:
        fail("usage: py_peer.py pub | sub ENDPOINT")


if __name__ == "__main__":
    main(sys.argv)
