#!/usr/bin/env bash
# Deployment artefacts check (I1, I2), for CI:
# - deploy/systemd/tapio-agent.service passes `systemd-analyze verify`;
# - deploy/kubernetes/*.yaml pass a strict schema check (`kubernetes-validate`
#   from PyPI, which ships the Kubernetes OpenAPI schemas: nothing is fetched
#   at run time), and a deliberately broken manifest fails it;
# - the least-privilege rules hold: no privileged pod, no hostPID, the agent
#   adds exactly BPF, PERFMON and NET_ADMIN;
# - the EvidenceProfile in the profile ConfigMap passes
#   `tapio-controller profile validate`, and the agent TOML in its ConfigMap
#   parses with the agent's own settings parser;
# - the controller is closed (issue 16): its token Secret is required (in the
#   agent too), it runs non-root with a read-only root filesystem, no
#   privilege escalation and no capability, without --insecure-no-auth, and a
#   NetworkPolicy admits only the agents and the reader label to its port;
#   each of these checks is shown to fail on a manifest that breaks it.
# Installs what is missing (systemd via apt, kubernetes-validate via pip).
#
# Usage: scripts/check-deploy.sh
# Env: CARGO_TARGET_DIR (default <repo>/target).
# Exit status: 0 when every check passed, 1 otherwise.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
fail() { echo "check-deploy: FAIL $*" >&2; failed=1; }
ok() { echo "check-deploy: ok   $*"; }

if ! command -v systemd-analyze >/dev/null; then
  echo "check-deploy: installing systemd (for systemd-analyze)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }
fi
if ! python3 -c 'import kubernetes_validate, yaml' 2>/dev/null; then
  echo "check-deploy: installing kubernetes-validate (PyPI)" >&2
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate \
    || python3 -m pip install --quiet --user --disable-pip-version-check kubernetes-validate
fi

cargo build -q -p tapio-agent -p tapio-controller || fail "cargo build (agent, controller)"

# ---- systemd ---------------------------------------------------------------
# `verify` insists that ExecStart's binary exists: check a copy that points at
# the freshly built agent, everything else unchanged.
unit=deploy/systemd/tapio-agent.service
sed "s#^ExecStart=/usr/local/bin/tapio-agent#ExecStart=$target/debug/tapio-agent#" "$unit" > "$work/tapio-agent.service"
if out=$(systemd-analyze verify "$work/tapio-agent.service" 2>&1) && [[ -z "$out" ]]; then
  ok "$unit: systemd-analyze verify"
else
  fail "$unit: systemd-analyze verify: $out"
fi
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
[[ "$caps" == "CAP_BPF CAP_PERFMON CAP_NET_ADMIN" ]] || fail "$unit: CapabilityBoundingSet is '$caps'"
for want in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes Restart=on-failure "RestartPreventExitStatus=2 3"; do
  grep -qx "$want" "$unit" || fail "$unit: missing $want"
done
if command -v systemd-analyze >/dev/null; then
  exposure=$(systemd-analyze security --offline=yes "$work/tapio-agent.service" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  [[ -n "$exposure" ]] && echo "check-deploy: systemd-analyze security exposure: $exposure (0 = locked down, 10 = unprotected)"
fi

# ---- Kubernetes ------------------------------------------------------------
if kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml; then
  ok "deploy/kubernetes/*.yaml: kubernetes-validate --strict"
else
  fail "deploy/kubernetes: schema validation"
fi
# The validator must reject what is wrong (a typo'd field, a wrong type).
cat > "$work/broken.yaml" <<'EOF'
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: broken}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      hostNetwrok: true
      containers: [{name: c, image: i, securityContext: {privileged: "yes"}}]
EOF
if kubernetes-validate --strict --quiet "$work/broken.yaml" >/dev/null 2>&1; then
  fail "kubernetes-validate accepted a broken manifest: the schema check is not working"
else
  ok "kubernetes-validate rejects a broken manifest"
fi

# The property checks live in one script so they can also be run against
# broken copies of the manifests, to show that they catch what they claim.
cat > "$work/props.py" <<'PY'
import sys, yaml, glob
src, work = sys.argv[1], sys.argv[2]
docs = {}
bad = []
for path in sorted(glob.glob(f"{src}/*.yaml")):
    for d in yaml.safe_load_all(open(path)):
        if d:
            docs[(d["kind"], d["metadata"]["name"])] = d
for kind, name in [("DaemonSet", "tapio-agent"), ("Deployment", "tapio-controller"),
                   ("Service", "tapio-controller"), ("ConfigMap", "tapio-profile"),
                   ("ConfigMap", "tapio-agent-config"), ("NetworkPolicy", "tapio-controller")]:
    if (kind, name) not in docs:
        bad.append(f"missing {kind}/{name}")
for (kind, name), d in docs.items():
    spec = d.get("spec", {}).get("template", {}).get("spec")
    if not spec:
        continue
    if spec.get("hostPID"):
        bad.append(f"{kind}/{name}: hostPID")
    for c in spec.get("containers", []):
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            bad.append(f"{kind}/{name}/{c['name']}: privileged")
        if sc.get("allowPrivilegeEscalation", True):
            bad.append(f"{kind}/{name}/{c['name']}: allowPrivilegeEscalation not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            bad.append(f"{kind}/{name}/{c['name']}: readOnlyRootFilesystem not true")
        caps = sc.get("capabilities", {})
        if caps.get("drop") != ["ALL"]:
            bad.append(f"{kind}/{name}/{c['name']}: capabilities.drop is not [ALL]")
        want = ["BPF", "PERFMON", "NET_ADMIN"] if name == "tapio-agent" else []
        if sorted(caps.get("add", [])) != sorted(want):
            bad.append(f"{kind}/{name}/{c['name']}: capabilities.add {caps.get('add')} != {want}")
        # The token Secret is required wherever the token is used (issue 16).
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if e["name"] == "TAPIO_CONTROLLER_TOKEN" and (not ref or ref.get("optional", False)):
                bad.append(f"{kind}/{name}/{c['name']}: TAPIO_CONTROLLER_TOKEN is not a required secretKeyRef")

# The controller: closed by default, non-root.
ctl = docs.get(("Deployment", "tapio-controller"))
if ctl:
    pod = ctl["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("runAsUser", 0) == 0:
        bad.append("Deployment/tapio-controller: not runAsNonRoot with a non-zero runAsUser")
    for c in pod["containers"]:
        if any(a.startswith("--insecure-no-auth") for a in c.get("args", [])):
            bad.append("Deployment/tapio-controller: --insecure-no-auth")
        names = [e["name"] for e in c.get("env", [])]
        if "TAPIO_CONTROLLER_TOKEN" not in names and not any(a.startswith("--token-file") for a in c.get("args", [])):
            bad.append("Deployment/tapio-controller: no token (TAPIO_CONTROLLER_TOKEN or --token-file)")

# The NetworkPolicy: selects the controller pods, admits on the controller
# port only the agents, the named reader label (same namespace) and ipBlocks.
np = docs.get(("NetworkPolicy", "tapio-controller"))
if np and ctl:
    s = np["spec"]
    ctl_labels = ctl["spec"]["template"]["metadata"]["labels"]
    sel = s.get("podSelector", {}).get("matchLabels", {})
    if not sel or any(ctl_labels.get(k) != v for k, v in sel.items()):
        bad.append(f"NetworkPolicy/tapio-controller: podSelector {sel} does not select the controller pods")
    if "Ingress" not in s.get("policyTypes", []):
        bad.append("NetworkPolicy/tapio-controller: policyTypes lacks Ingress")
    agent_labels = docs.get(("DaemonSet", "tapio-agent"), {}).get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    ports = [c["containerPort"] for c in ctl["spec"]["template"]["spec"]["containers"][0].get("ports", [])]
    rules = s.get("ingress", [])
    if not rules:
        bad.append("NetworkPolicy/tapio-controller: no ingress rule (nothing admitted, not even agents)")
    seen_agent = seen_reader = False
    for r in rules:
        if [(p.get("protocol", "TCP"), p.get("port")) for p in r.get("ports", [])] != [("TCP", ports[0] if ports else None)]:
            bad.append(f"NetworkPolicy/tapio-controller: rule ports {r.get('ports')} are not exactly the controller port")
        peers = r.get("from")
        if not peers:
            bad.append("NetworkPolicy/tapio-controller: a rule without `from` admits everyone")
            continue
        for p in peers:
            if "namespaceSelector" in p:
                bad.append(f"NetworkPolicy/tapio-controller: peer {p} reaches beyond the namespace")
            elif "podSelector" in p:
                m = p["podSelector"].get("matchLabels", {})
                if m and all(agent_labels.get(k) == v for k, v in m.items()):
                    seen_agent = True
                elif m == {"tapio.dev/controller-reader": "true"}:
                    seen_reader = True
                else:
                    bad.append(f"NetworkPolicy/tapio-controller: unexpected pod peer {m}")
            elif "ipBlock" in p:
                cidr = p["ipBlock"]["cidr"]
                if cidr.endswith("/0"):
                    bad.append(f"NetworkPolicy/tapio-controller: ipBlock {cidr} admits every address")
            else:
                bad.append(f"NetworkPolicy/tapio-controller: unexpected peer {p}")
    if not seen_agent:
        bad.append("NetworkPolicy/tapio-controller: agents are not admitted")
    if not seen_reader:
        bad.append("NetworkPolicy/tapio-controller: the reader label tapio.dev/controller-reader is not admitted")

if ("ConfigMap", "tapio-profile") in docs and ("ConfigMap", "tapio-agent-config") in docs:
    open(f"{work}/profile.yaml", "w").write(docs[("ConfigMap", "tapio-profile")]["data"]["profile.yaml"])
    open(f"{work}/tapio.toml", "w").write(docs[("ConfigMap", "tapio-agent-config")]["data"]["tapio.toml"])
for b in bad:
    print(f"check-deploy: FAIL {b}", file=sys.stderr)
if not bad:
    print("check-deploy: ok   least privilege: no privileged pod, no hostPID, agent adds BPF PERFMON NET_ADMIN only")
    print("check-deploy: ok   controller closed: token Secret required, non-root, read-only root fs, NetworkPolicy admits agents and readers only")
sys.exit(1 if bad else 0)
PY
python3 "$work/props.py" deploy/kubernetes "$work" || failed=1

# The property checks must reject what they claim to catch: each mutation of
# a copy of the manifests has to fail them.
mutate() {
  # mutate NAME PYTHON-EXPR-ON-TEXT: copies the manifests, rewrites them,
  # expects the property check to fail.
  local name=$1 expr=$2 dir=$work/mut
  rm -rf "$dir" && mkdir -p "$dir/out" && cp deploy/kubernetes/*.yaml "$dir/"
  python3 - "$dir" "$expr" <<'PY'
import glob, sys
d, expr = sys.argv[1], sys.argv[2]
for p in glob.glob(f"{d}/*.yaml"):
    t = open(p).read()
    t2 = eval(expr, {"t": t, "p": p})
    open(p, "w").write(t2)
PY
  if python3 "$work/props.py" "$dir" "$dir/out" >/dev/null 2>&1; then
    fail "property check accepted a manifest with $name"
  else
    ok "property check rejects $name"
  fi
}
mutate "an optional token Secret" 't.replace("optional: false", "optional: true")'
mutate "no NetworkPolicy" '"" if p.endswith("controller-networkpolicy.yaml") else t'
mutate "a NetworkPolicy open to every namespace" 't.replace("        - podSelector:\n            matchLabels:\n              tapio.dev/controller-reader", "        - namespaceSelector: {}\n          podSelector:\n            matchLabels:\n              tapio.dev/controller-reader")'
mutate "--insecure-no-auth" 't.replace("- --listen=0.0.0.0:8080", "- --listen=0.0.0.0:8080\n            - --insecure-no-auth")'
mutate "a root controller" 't.replace("runAsNonRoot: true\n        runAsUser: 65532", "runAsNonRoot: false\n        runAsUser: 0")'
mutate "a writable root filesystem" '(t.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false") if p.endswith("/controller.yaml") else t)'

if [[ -f "$work/profile.yaml" ]]; then
  if out=$("$target/debug/tapio-controller" profile validate "$work/profile.yaml" 2>&1); then
    ok "profile ConfigMap: tapio-controller profile validate"
  else
    fail "profile ConfigMap: $out"
  fi
  # Exit 2 is the agent's "bad flags or config"; anything else means the TOML
  # was accepted (the run then stops at the host check or the missing objects).
  timeout 10 "$target/debug/tapio-agent" --config "$work/tapio.toml" --ebpf-dir "$work/none" \
    >/dev/null 2>"$work/agent.err"
  rc=$?
  if [[ $rc == 2 ]]; then
    fail "agent ConfigMap tapio.toml rejected: $(cat "$work/agent.err")"
  else
    ok "agent ConfigMap: tapio.toml accepted by the agent's parser (exit $rc)"
  fi
fi

if ((failed)); then
  echo "check-deploy: FAILED"
  exit 1
fi
echo "check-deploy: passed"
