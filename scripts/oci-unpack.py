#!/usr/bin/env python3
"""Unpacks one platform of a multi-arch OCI archive into a root filesystem.

Reads index.json, follows the manifest list (or the image manifest) to the
manifest whose platform is linux/ARCH, applies its layers in order (gzip or
plain tar; FROM scratch images have no whiteouts, any is refused) into ROOT,
and prints the image config as JSON (architecture, os, config.User,
Entrypoint, Cmd, Labels) on stdout.

Usage: oci-unpack.py ARCHIVE ARCH ROOT
"""
import io
import json
import os
import sys
import tarfile


def blob(tar, digest):
    algo, hexd = digest.split(":", 1)
    return tar.extractfile(f"blobs/{algo}/{hexd}").read()


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: oci-unpack.py ARCHIVE ARCH ROOT")
    path, arch, root = sys.argv[1:]
    with tarfile.open(path) as tar:
        index = json.loads(tar.extractfile("index.json").read())
        desc = index["manifests"][0]
        doc = json.loads(blob(tar, desc["digest"]))
        if "manifests" in doc:  # a manifest list: pick the platform
            found = [m for m in doc["manifests"]
                     if m.get("platform", {}).get("architecture") == arch
                     and m.get("platform", {}).get("os") == "linux"]
            if len(found) != 1:
                have = [m.get("platform") for m in doc["manifests"]]
                sys.exit(f"oci-unpack: {len(found)} manifests for linux/{arch} in {path} (have {have})")
            doc = json.loads(blob(tar, found[0]["digest"]))
        config = json.loads(blob(tar, doc["config"]["digest"]))
        os.makedirs(root, exist_ok=True)
        for layer in doc["layers"]:
            data = blob(tar, layer["digest"])
            with tarfile.open(fileobj=io.BytesIO(data)) as lt:
                for m in lt.getmembers():
                    if os.path.basename(m.name).startswith(".wh."):
                        sys.exit(f"oci-unpack: whiteout {m.name} in a FROM scratch image")
                lt.extractall(root, numeric_owner=True)
        json.dump({"architecture": config.get("architecture"), "os": config.get("os"),
                   "config": config.get("config", {}), "created": config.get("created"),
                   "platforms": [m.get("platform") for m in
                                 json.loads(blob(tar, desc["digest"])).get("manifests", [])]},
                  sys.stdout)


if __name__ == "__main__":
    main()
