#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A minimal vmtide subscriber: prints each VM's CPU, steal, dirty rate and
I/O as agents publish them, and notices lost messages and agent restarts.

Needs python3-zmq and python3-msgpack (Debian). The wire protocol is in
docs/wire-protocol.md; this is all a client needs:

  - subscribe to the topic prefix "vmtide.v1." (or narrower: "vmtide.v1.vm.");
  - each message is two frames: topic, then a msgpack map;
  - keep the last `seq` per (host, epoch): a jump means lost messages,
    a new epoch means the publisher restarted;
  - ignore keys you do not know (newer agents may add some);
  - if the agent encrypts its stream (publish.curve_secret_key), be a CURVE
    client: the agent's public key as curve_serverkey, and any keypair of
    your own (docs/security.md).

usage: subscriber.py --connect tcp://kvm1:7470 [--connect ...] [--server-key FILE|Z85]
                     [--vm NAME] [--count N] [--timeout S]
"""
import argparse
import os
import sys
import time
import tomllib

import msgpack
import zmq


def describe(m):
    """One line for a vm message."""
    iv = m["interval_ns"] or 1
    line = (f"{m['host']:<12} {m['name']:<20} cpu {100 * m['cpu_ns'] / iv:6.1f}%"
            f"  steal {100 * m['steal_ns'] / iv:5.1f}%")
    dirty = m.get("dirty")
    if dirty and dirty.get("window_ns"):
        rate = dirty["pages"] * dirty["page_bytes"] / (dirty["window_ns"] / 1e9) / 2**20
        line += f"  dirty {rate:7.1f} MiB/s ({dirty['src']})"
    io = m.get("io")
    if io:
        line += f"  io {(io['rd_bytes'] + io['wr_bytes']) / (iv / 1e9) / 1e6:6.2f} MB/s"
    return line


def server_key(arg):
    """The agent's public key (40 Z85 characters) from a .pub file written by
    `vmtide keygen`, which is TOML, or given directly."""
    if os.path.exists(arg):
        with open(arg, "rb") as f:
            key = tomllib.load(f)["public-key"]
    else:
        key = arg
    if len(key) != 40:
        raise ValueError(f"{arg}: not a .pub file or a 40-character Z85 key")
    return key.encode("ascii")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connect", action="append", required=True, help="agent endpoint (repeatable)")
    ap.add_argument("--vm", action="append", default=[], help="only this VM, by name or id (repeatable)")
    ap.add_argument("--count", type=int, default=0, help="exit after this many vm lines")
    ap.add_argument("--timeout", type=float, default=0, help="exit with status 1 after this many seconds")
    ap.add_argument("--server-key", help="the agent's CURVE public key: its .pub file, or the 40 Z85 characters")
    args = ap.parse_args()

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.MAXMSGSIZE, 1 << 20)  # the protocol's body limit
    if args.server_key:
        if not zmq.has("curve"):
            print("this libzmq has no CURVE support", file=sys.stderr)
            return 1
        try:
            sub.curve_serverkey = server_key(args.server_key)
        except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as e:
            print(f"--server-key: {e}", file=sys.stderr)
            return 1
        # An ephemeral keypair: the agent accepts any client key (no allow-list yet).
        sub.curve_publickey, sub.curve_secretkey = zmq.curve_keypair()
    sub.setsockopt(zmq.SUBSCRIBE, b"vmtide.v1.")
    for ep in args.connect:
        sub.connect(ep)

    last_seq = {}  # (host, epoch) -> seq
    epochs = {}    # host -> epoch
    lost = printed = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while not args.count or printed < args.count:
        wait_ms = 1000 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        if deadline is not None and wait_ms == 0:
            print(f"timed out after {args.timeout} s", file=sys.stderr)
            return 1
        if not sub.poll(wait_ms):
            continue
        frames = sub.recv_multipart()
        if len(frames) != 2:
            continue  # not a v1 message
        try:
            m = msgpack.unpackb(frames[1], raw=False)
        except (ValueError, msgpack.ExtraData) as e:
            print(f"undecodable message: {e}", file=sys.stderr)
            continue
        if not isinstance(m, dict) or m.get("v", 0) > 1:
            continue  # a newer protocol version: skip rather than misread
        host, epoch, seq = m["host"], m["epoch"], m["seq"]
        if epochs.get(host) not in (None, epoch):
            print(f"{host}: publisher restarted (new epoch)")
        epochs[host] = epoch
        prev = last_seq.get((host, epoch))
        if prev is not None and seq > prev + 1:
            lost += seq - prev - 1
        last_seq[(host, epoch)] = seq
        wanted = not args.vm or m.get("name") in args.vm or m.get("id") in args.vm or m.get("vm") in args.vm
        if not wanted:
            continue
        if m["kind"] == "vm":
            print(describe(m), flush=True)
            printed += 1
        elif m["kind"] == "event":
            print(f"{host:<12} event {m['type']}: {m['detail']}", flush=True)
    print(f"{printed} samples, {lost} messages lost", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
