#!/usr/bin/env python3
"""Cuts a kernel's BTF blob out of its uncompressed boot Image (arm64 vmlinuz).

The Image is the raw kernel with no section table, but the .BTF section is in
it verbatim: a btf_header (magic 0xeB9F, version 1, hdr_len 24) followed by the
type and string sections it describes. The largest well-formed blob is the
kernel's. `bpftool btf dump file OUT format c` then makes its vmlinux.h.

Usage: extract-btf.py IMAGE OUT
"""
import gzip
import struct
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: extract-btf.py IMAGE OUT")
    data = open(sys.argv[1], "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    magic = struct.pack("<HBBI", 0xEB9F, 1, 0, 24)
    best = None
    at = data.find(magic)
    while at >= 0:
        type_off, type_len, str_off, str_len = struct.unpack_from("<4I", data, at + 8)
        end = 24 + max(type_off + type_len, str_off + str_len)
        ok = type_off == 0 and str_off == type_len and at + end <= len(data)
        # The string section starts with a NUL and ends with one.
        if ok and data[at + 24 + str_off] == 0 and data[at + end - 1] == 0:
            if best is None or end > best[1]:
                best = (at, end)
        at = data.find(magic, at + 1)
    if best is None:
        sys.exit(f"extract-btf: no BTF blob in {sys.argv[1]}")
    at, end = best
    with open(sys.argv[2], "wb") as f:
        f.write(data[at:at + end])
    print(f"extract-btf: {end} bytes of BTF at offset {at:#x}", file=sys.stderr)


if __name__ == "__main__":
    main()
