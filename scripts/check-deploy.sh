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
#   parses with the agent's own settings parser.
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
for want in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes Restart=on-failure; do
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

python3 - "$work" <<'PY' || failed=1
import sys, yaml, glob
work = sys.argv[1]
docs = {}
bad = []
for path in sorted(glob.glob("deploy/kubernetes/*.yaml")):
    for d in yaml.safe_load_all(open(path)):
        if d:
            docs[(d["kind"], d["metadata"]["name"])] = d
for kind, name in [("DaemonSet", "tapio-agent"), ("Deployment", "tapio-controller"),
                   ("Service", "tapio-controller"), ("ConfigMap", "tapio-profile"),
                   ("ConfigMap", "tapio-agent-config")]:
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
        caps = sc.get("capabilities", {})
        if caps.get("drop") != ["ALL"]:
            bad.append(f"{kind}/{name}/{c['name']}: capabilities.drop is not [ALL]")
        want = ["BPF", "PERFMON", "NET_ADMIN"] if name == "tapio-agent" else []
        if sorted(caps.get("add", [])) != sorted(want):
            bad.append(f"{kind}/{name}/{c['name']}: capabilities.add {caps.get('add')} != {want}")
open(f"{work}/profile.yaml", "w").write(docs[("ConfigMap", "tapio-profile")]["data"]["profile.yaml"])
open(f"{work}/tapio.toml", "w").write(docs[("ConfigMap", "tapio-agent-config")]["data"]["tapio.toml"])
for b in bad:
    print(f"check-deploy: FAIL {b}", file=sys.stderr)
if not bad:
    print("check-deploy: ok   least privilege: no privileged pod, no hostPID, agent adds BPF PERFMON NET_ADMIN only")
sys.exit(1 if bad else 0)
PY

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
