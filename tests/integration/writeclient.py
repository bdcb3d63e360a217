#!/usr/bin/env python3
"""Raw writes for the exactly-once and poison-entry tests: a SetRequest
with a chosen request id (and optional compare-and-set), sent to one node
without following redirects, or a Set whose value carries unknown fields.
Prints one JSON line: {"status", "revision", "current_revision"}.

usage: writeclient.py HOST:PORT set KEY VALUE CLIENT_HEX SEQ [CAS_REV]
       writeclient.py HOST:PORT poison KEY UNKNOWN_BYTES
"""
import json
import sys

from rawclient import Conn, field_bytes, field_varint, frame, hello, parse, status_of


def request_id(client_hex, seq):
    client = bytes.fromhex(client_hex)
    return field_bytes(1, client) + field_varint(2, seq)


def answer(c):
    resp = c.recv_frame()
    out = {"status": status_of(resp)}
    if resp is not None and 11 in resp:
        res = parse(resp[11][0])
        out["revision"] = res.get(1, [0])[0]
    if resp is not None and 2 in resp:
        err = parse(resp[2][0])
        if 5 in err:
            out["current_revision"] = err[5][0]
        if 2 in err:
            out["message"] = err[2][0].decode(errors="replace")
    return out


def main(argv):
    addr, cmd = argv[1], argv[2]
    c = Conn(addr)
    c.send(hello())
    if status_of(c.recv_frame()) != "OK":
        print(json.dumps({"status": "HELLO_FAILED"}))
        return 1
    if cmd == "set":
        key, value, client_hex, seq = argv[3], argv[4], argv[5], int(argv[6])
        body = field_bytes(1, key.encode()) + field_bytes(2, field_bytes(4, value.encode()))
        if len(argv) > 7:
            body += field_varint(5, int(argv[7]))
        body += field_bytes(6, request_id(client_hex, seq))
        c.send(frame(field_varint(1, 2) + field_bytes(11, body)))
    elif cmd == "poison":
        key, n = argv[3], int(argv[4])
        # Value{bool_value: true, field 100: n bytes}: F1 of the robustness
        # review, which once aborted every node at apply
        value = field_varint(1, 1) + field_bytes(100, b"j" * n)
        c.send(frame(field_varint(1, 2) + field_bytes(11, field_bytes(1, key.encode()) + field_bytes(2, value))))
    else:
        print(json.dumps({"status": "USAGE"}))
        return 2
    print(json.dumps(answer(c)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
