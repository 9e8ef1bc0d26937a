#!/usr/bin/env python3
"""Lists the maps a libbpf-style eBPF object declares, from its BTF.

Usage: bpf-maps.py OBJECT.o   (needs bpftool)
Prints one JSON object per map: name, type (BPF_MAP_TYPE_* number and name),
max_entries, key_size, value_size and an estimate of the kernel memory the
map asks for (ring buffers: max_entries bytes; per-CPU maps: times the
number of possible CPUs is NOT included; it is an order-of-magnitude guard).
Internal maps for global data (.bss/.data/.rodata) are listed too, by
section name, because the loader creates a map for each of them.
"""
import json
import subprocess
import sys

MAP_TYPES = {
    1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array",
    5: "percpu_hash", 6: "percpu_array", 7: "stack_trace", 8: "cgroup_array",
    9: "lru_hash", 10: "lru_percpu_hash", 11: "lpm_trie", 12: "array_of_maps",
    13: "hash_of_maps", 24: "sk_storage", 27: "ringbuf", 29: "task_storage",
    30: "bloom_filter",
}


def main(path):
    raw = subprocess.run(["bpftool", "-j", "btf", "dump", "file", path],
                         check=True, capture_output=True, text=True).stdout
    types = {t["id"]: t for t in json.loads(raw)["types"]}

    def resolve(tid):
        # Skips typedefs and qualifiers.
        t = types.get(tid)
        while t and t["kind"] in ("TYPEDEF", "VOLATILE", "CONST", "RESTRICT", "TYPE_TAG"):
            t = types.get(t["type_id"])
        return t

    def size_of(tid):
        t = resolve(tid)
        if t is None:
            return 0
        if t["kind"] == "ARRAY":
            return t["nr_elems"] * size_of(t["type_id"])
        if t["kind"] == "PTR":
            return 8
        return t.get("size", 0)

    def uint_field(member):
        # __uint(name, N) is `int (*name)[N]`: a pointer to an N-element array.
        ptr = types[member["type_id"]]
        return types[ptr["type_id"]]["nr_elems"]

    out = []
    for sec in (t for t in types.values() if t["kind"] == "DATASEC"):
        if sec["name"] == ".maps":
            for v in sec["vars"]:
                var = types[v["type_id"]]
                st = resolve(var["type_id"])
                m = {"name": var["name"], "key_size": 0, "value_size": 0,
                     "max_entries": 0, "type_id": 0}
                for mem in st["members"]:
                    n = mem["name"]
                    if n == "type":
                        m["type_id"] = uint_field(mem)
                    elif n in ("max_entries", "key_size", "value_size"):
                        m[n] = uint_field(mem)
                    elif n in ("key", "value"):
                        m[n + "_size"] = size_of(types[mem["type_id"]]["type_id"])
                m["type"] = MAP_TYPES.get(m["type_id"], "type%d" % m["type_id"])
                if m["type"] == "ringbuf":
                    m["bytes"] = m["max_entries"]
                else:
                    m["bytes"] = m["max_entries"] * (m["key_size"] + m["value_size"])
                out.append(m)
        elif sec["name"].startswith((".bss", ".data", ".rodata")) and sec.get("size", 0) > 0:
            out.append({"name": sec["name"], "type": "array", "type_id": 2,
                        "max_entries": 1, "key_size": 4,
                        "value_size": sec["size"], "bytes": sec["size"]})
    for m in out:
        print(json.dumps(m, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
