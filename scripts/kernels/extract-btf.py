#!/usr/bin/env python3
"""Cuts a kernel's BTF blob out of its boot image (vmlinuz).

arm64's Image (gzipped by Debian) is the raw kernel; x86's bzImage carries the
kernel ELF compressed (gzip, xz, zstd or lz4, by the kernel's config) at the
payload offset its setup header names, and is decompressed here first. Either
way the .BTF section is in the kernel verbatim: a btf_header (magic 0xeB9F,
version 1, hdr_len 24) followed by the type and string sections it describes.
The largest well-formed blob is the kernel's. `bpftool btf dump file OUT
format c` then makes its vmlinux.h.

Usage: extract-btf.py IMAGE OUT
"""
import gzip
import lzma
import struct
import subprocess
import sys


def bzimage_payload(data):
    """The decompressed kernel of an x86 bzImage, or None if DATA is not one."""
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        return None
    setup_sects = data[0x1F1] or 4
    off, length = struct.unpack_from("<II", data, 0x248)
    payload = data[(setup_sects + 1) * 512 + off:][:length]
    if payload[:2] == b"\x1f\x8b":
        return gzip.decompress(payload)
    if payload[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(payload)
    # No zstd or lz4 module in the standard library: their command-line tools,
    # which complain of the 4-byte size the build appends after the frame but
    # write the kernel whole before that.
    for magic, tool in ((b"\x28\xb5\x2f\xfd", "zstd"), (b"\x02\x21\x4c\x18", "lz4")):
        if payload[:4] == magic:
            elf = subprocess.run([tool, "-dc"], input=payload, capture_output=True).stdout
            if elf[:4] != b"\x7fELF":
                sys.exit(f"extract-btf: {tool} could not decompress the bzImage payload")
            return elf
    sys.exit(f"extract-btf: bzImage payload in an unknown compression ({payload[:6].hex()})")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: extract-btf.py IMAGE OUT")
    data = open(sys.argv[1], "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    data = bzimage_payload(data) or data
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
