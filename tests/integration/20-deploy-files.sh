#!/usr/bin/env bash
# deploy/: everything that can be checked without a container engine or a cluster.
#
# - every YAML file parses; compose, Kubernetes and the configs agree with each other;
# - the worker.yaml of the ConfigMap and of compose pass `worker check-config` (real binary);
# - the systemd unit passes `systemd-analyze verify` (a copy whose paths point at the built
#   binary, so "not executable" cannot hide anything; any output at all fails);
# - the Dockerfile builds with the same commands as scripts/demo.sh (and scripts/test.sh),
#   after scripts/install-deps.sh, and its runtime stage installs the package of every shared
#   library the built binary needs;
# - the image's healthcheck script against a stand-in /healthz server;
# - the log events named in deploy/OPERATIONS.md exist in the code.
#
# Needs: python3 with yaml (Debian: python3-yaml), systemd-analyze (Debian: systemd),
# readelf, dpkg. Starts no PostgreSQL and no broker.
set -euo pipefail

SRC="${AW_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
BUILD="${AW_BUILD_DIR:-$SRC/build}"
WORKER="$BUILD/worker/worker"
DEPLOY="$SRC/deploy"
N=0
TMP="$(mktemp -d /tmp/aw-it.20-deploy-files.XXXXXX)"
SERVER_PID=""

cleanup() {
	if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

ok() {
	N=$((N + 1))
	echo "ok $N - $*"
}
fail() {
	echo "not ok - $*"
	exit 1
}
skip() {
	N=$((N + 1))
	echo "ok $N - # SKIP $*"
}

# ---- prerequisites ----

[[ -x "$WORKER" ]] || fail "no $WORKER: build first (AW_BUILD_DIR=$BUILD)"
command -v python3 >/dev/null 2>&1 ||
	fail "python3 is missing: install Debian's python3-yaml (scripts/install-deps.sh)"
python3 -c 'import yaml' 2>/dev/null ||
	fail "python3 cannot import yaml: install Debian's python3-yaml (scripts/install-deps.sh)"
command -v systemd-analyze >/dev/null 2>&1 ||
	fail "systemd-analyze is missing: install Debian's systemd"
ok "prerequisites: built worker, python3 with yaml, systemd-analyze"

# ---- YAML structure and cross-file agreement (python prints PASS/FAIL lines) ----

# Writes $TMP/configmap-worker.yaml, $TMP/compose-worker.yaml and $TMP/facts.sh.
yaml_rc=0
python3 - "$SRC" "$TMP" >"$TMP/yaml-checks.txt" 2>"$TMP/yaml-checks.err" <<'PY' || yaml_rc=$?
import glob, os, re, sys
import yaml

src, tmp = sys.argv[1], sys.argv[2]
dep = os.path.join(src, "deploy")
facts = {}

def result(ok, what, why=""):
    print(("PASS " if ok else "FAIL ") + what + ("" if ok else ": " + why))
    return ok

def check(what, cond, why=""):
    return result(bool(cond), what, why or "condition false")

def port_of(listen):
    m = re.fullmatch(r"(?:\[[^\]]*\]|[^:\[\]]*):(\d+)", str(listen))
    return int(m.group(1)) if m else None

def seconds(v):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(v))
    if not m:
        return None
    n = int(m.group(1))
    return {"ms": n / 1000, "s": n, None: n, "m": n * 60}[m.group(2)]

# 1. every YAML file under deploy/ parses
docs = {}
files = sorted(glob.glob(os.path.join(dep, "**", "*.yaml"), recursive=True) +
               glob.glob(os.path.join(dep, "**", "*.yml"), recursive=True))
bad = []
for f in files:
    try:
        with open(f, encoding="utf-8") as fh:
            docs[os.path.relpath(f, src)] = [d for d in yaml.safe_load_all(fh) if d is not None]
    except Exception as e:  # noqa: BLE001 - any parse error is the finding
        bad.append(f"{os.path.relpath(f, src)}: {e}")
check(f"{len(files)} YAML files under deploy/ parse", files and not bad, "; ".join(bad) or "none found")
if bad:
    sys.exit(0)

# The drain: how long a graceful stop may wait (worker/consume_loop.c), default 30 s.
drain_s = 30
try:
    with open(os.path.join(src, "worker", "consume_loop.c"), encoding="utf-8") as fh:
        m = re.search(r"#define\s+SHUTDOWN_FLUSH_MS\s+(\d+)", fh.read())
        if m:
            drain_s = int(m.group(1)) / 1000
except OSError:
    pass

# ---- Kubernetes ----
k8s = {}
for path, ds in docs.items():
    if path.startswith("deploy/kubernetes/"):
        for d in ds:
            if isinstance(d, dict) and "kind" in d:
                k8s.setdefault(d["kind"], []).append((path, d))

kust = docs.get("deploy/kubernetes/kustomization.yaml", [{}])[0]
listed = kust.get("resources", [])
present = sorted(os.path.basename(p) for p in docs if p.startswith("deploy/kubernetes/")
                 and not p.endswith("kustomization.yaml"))
check("kustomization.yaml lists every manifest of deploy/kubernetes, and only existing ones",
      sorted(listed) == present, f"listed {sorted(listed)}, present {present}")

def one(kind):
    items = k8s.get(kind, [])
    check(f"kubernetes: exactly one {kind}", len(items) == 1, f"found {len(items)}")
    return items[0][1] if items else {}

dep_obj, cm, secret, pdb, so = (one(k) for k in
                                ("Deployment", "ConfigMap", "Secret", "PodDisruptionBudget", "ScaledObject"))
svc = one("Service")

cm_yaml = (cm.get("data") or {}).get("worker.yaml", "")
check("ConfigMap carries worker.yaml", cm_yaml)
with open(os.path.join(tmp, "configmap-worker.yaml"), "w", encoding="utf-8") as fh:
    fh.write(cm_yaml)
cmc = yaml.safe_load(cm_yaml) or {}
listen = ((cmc.get("metrics") or {}).get("listen"))
mport = port_of(listen)
check(f"ConfigMap: metrics.listen {listen!r} names a port", mport)
check("ConfigMap: log.format json", (cmc.get("log") or {}).get("format") == "json")

spec = dep_obj.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
containers = pod.get("containers", [])
check("Deployment: 3 replicas", spec.get("replicas") == 3, f"replicas {spec.get('replicas')}")
tgps = pod.get("terminationGracePeriodSeconds", 30)
check(f"Deployment: terminationGracePeriodSeconds {tgps} > the worker's {drain_s:g} s drain",
      tgps > drain_s)
check("Deployment: one container", len(containers) == 1, f"{len(containers)} containers")
c = containers[0] if containers else {}
named = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
want = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
for probe, path in want.items():
    hg = (c.get(probe) or {}).get("httpGet") or {}
    p = hg.get("port")
    p = named.get(p, p)
    check(f"Deployment: {probe} GET {path} on the metrics.listen port {mport}",
          hg.get("path") == path and p == mport, f"got {hg.get('path')} on port {p}")
sp = (c.get("startupProbe") or {}).get("httpGet")
if sp:
    p = named.get(sp.get("port"), sp.get("port"))
    check("Deployment: startupProbe on the metrics.listen port", p == mport, f"port {p}")
psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
check("Deployment: runs as non-root with a read-only root filesystem",
      psc.get("runAsNonRoot") is True and (psc.get("runAsUser") or csc.get("runAsUser", 0)) != 0
      and csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False)
facts["K8S_UID"] = psc.get("runAsUser") or csc.get("runAsUser") or ""
res = c.get("resources") or {}
check("Deployment: resource requests and a memory limit",
      res.get("requests") and (res.get("limits") or {}).get("memory"))
args = c.get("args") or c.get("command") or []
cfg_path = args[args.index("--config") + 1] if "--config" in args else None
mounts = {m.get("name"): m.get("mountPath") for m in c.get("volumeMounts", [])}
vols = {v.get("name"): v for v in pod.get("volumes", [])}
cm_vol = [n for n, v in vols.items()
          if (v.get("configMap") or {}).get("name") == cm.get("metadata", {}).get("name")]
check("Deployment: runs `worker run` with the ConfigMap's worker.yaml",
      args[:1] == ["run"] and cm_vol and cfg_path
      == os.path.join(mounts.get(cm_vol[0], "?"), "worker.yaml"),
      f"args {args}, mounts {mounts}")
env_names = {e.get("name"): e for e in c.get("env", [])}
ref = ((env_names.get("PG_CONNINFO") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
sdata = secret.get("stringData") or {}
check("Deployment: PG_CONNINFO from the Secret's key; KAFKA_BROKERS set",
      ref.get("name") == secret.get("metadata", {}).get("name") and ref.get("key") in sdata
      and "KAFKA_BROKERS" in env_names, f"ref {ref}, secret keys {list(sdata)}")
conninfo = str(sdata.get("PG_CONNINFO", ""))
check("Secret: PG_CONNINFO is a placeholder (REPLACE_ME), not a real secret",
      "REPLACE_ME" in conninfo and not secret.get("data"), conninfo)
labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
sel = (pdb.get("spec") or {}).get("selector", {}).get("matchLabels", {})
check("PodDisruptionBudget: maxUnavailable 1, selects the workers",
      (pdb.get("spec") or {}).get("maxUnavailable") == 1 and sel
      and all(labels.get(k) == v for k, v in sel.items()))
ssel = (svc.get("spec") or {}).get("selector", {})
sports = (svc.get("spec") or {}).get("ports", [])
check("Service: selects the workers, targets the metrics port",
      ssel and all(labels.get(k) == v for k, v in ssel.items())
      and all(named.get(p.get("targetPort"), p.get("targetPort")) == mport for p in sports) and sports)

# ---- compose ----
comp = docs.get("deploy/compose/compose.yaml", [{}])[0]
services = comp.get("services", {})
workers = {n: s for n, s in services.items() if (s.get("command") or [None])[0] == "run"}
replicas = sum(((s.get("deploy") or {}).get("replicas", 1)) for s in workers.values())
check("compose: three workers running `worker run`", replicas == 3, f"{replicas}")
mig = {n: s for n, s in services.items() if (s.get("command") or [None])[0] == "migrate"}
check("compose: a one-shot migrate service", len(mig) == 1 and
      list(mig.values())[0].get("restart") == "no")
mig_name = next(iter(mig), None)
for n, s in workers.items():
    dep_on = s.get("depends_on") or {}
    check(f"compose: {n} starts after {mig_name} completed",
          (dep_on.get(mig_name) or {}).get("condition") == "service_completed_successfully")
    g = seconds(s.get("stop_grace_period", "10s"))
    check(f"compose: {n} stop_grace_period {s.get('stop_grace_period')} > the {drain_s:g} s drain",
          g and g > drain_s)
kafka = [s for s in services.values() if "kafka" in str(s.get("image", ""))
         and "KAFKA_PROCESS_ROLES" in (s.get("environment") or {})]
roles = str((kafka[0].get("environment") or {}).get("KAFKA_PROCESS_ROLES")) if kafka else ""
check("compose: a Kafka broker in KRaft mode (process roles broker,controller)",
      "controller" in roles and "broker" in roles, roles)
pg = [s for s in services.values() if str(s.get("image", "")).startswith("postgres:15")]
pgpw = str(((pg[0].get("environment") or {}) if pg else {}).get("POSTGRES_PASSWORD", ""))
check("compose: PostgreSQL 15 with its password from the env file (no literal password)",
      pg and re.fullmatch(r"\$\{POSTGRES_PASSWORD[:?][^}]*\}", pgpw), pgpw)
w0 = next(iter(workers.values()), {})
wenv = w0.get("environment") or {}
check("compose: workers get KAFKA_BROKERS and PG_CONNINFO",
      "KAFKA_BROKERS" in wenv and "PG_CONNINFO" in wenv, str(list(wenv)))
mount = [v for v in (w0.get("volumes") or []) if str(v).split(":")[1:2] == ["/etc/asset-worker/worker.yaml"]]
check("compose: worker.yaml mounted at /etc/asset-worker/worker.yaml", mount, str(w0.get("volumes")))
host_cfg = os.path.normpath(os.path.join(dep, "compose", str(mount[0]).split(":")[0])) if mount else ""
if host_cfg:
    with open(host_cfg, encoding="utf-8") as fh:
        ccfg_text = fh.read()
    with open(os.path.join(tmp, "compose-worker.yaml"), "w", encoding="utf-8") as fh:
        fh.write(ccfg_text)
    ccfg = yaml.safe_load(ccfg_text) or {}
    cport = port_of((ccfg.get("metrics") or {}).get("listen"))
    check(f"compose: AW_HEALTH_PORT is the port of its metrics.listen ({cport})",
          cport and str(wenv.get("AW_HEALTH_PORT")) == str(cport), str(wenv.get("AW_HEALTH_PORT")))
    init = " ".join(str(x) for s in services.values() if "kafka-topics.sh" in str(s.get("command"))
                    for x in (s.get("command") or []))
    topics = [(ccfg.get("kafka") or {}).get(k) for k in ("input_topic", "retry_topic", "dlq_topic")]
    created = dict(re.findall(r"--topic\s+(\S+)\s+--partitions\s+(\d+)", init))
    check(f"compose: an init container creates the three topics {topics}",
          all(t in created for t in topics), f"created {created}")
    # Same topics and group in the ConfigMap, KEDA scales on the same topic and group.
    ck = cmc.get("kafka") or {}
    trig = [t for t in (so.get("spec") or {}).get("triggers", []) if t.get("type") == "kafka"]
    md = trig[0].get("metadata", {}) if trig else {}
    sspec = so.get("spec") or {}
    check("KEDA: kafka trigger on the ConfigMap's input topic and consumer group, scaling the Deployment",
          md.get("topic") == ck.get("input_topic") and md.get("consumerGroup") == ck.get("group_id")
          and (sspec.get("scaleTargetRef") or {}).get("name") == dep_obj.get("metadata", {}).get("name")
          and md.get("lagThreshold"), str(md))
    parts = int(created.get(ck.get("input_topic"), 0))
    check(f"KEDA: minReplicaCount 1, maxReplicaCount = partitions of the input topic ({parts})",
          sspec.get("minReplicaCount") == 1 and sspec.get("maxReplicaCount") == parts,
          f"{sspec.get('minReplicaCount')}..{sspec.get('maxReplicaCount')}")

# Environment for check-config of each extracted worker.yaml.
with open(os.path.join(tmp, "facts.sh"), "w", encoding="utf-8") as fh:
    for k, v in facts.items():
        fh.write(f"{k}='{v}'\n")
    fh.write(f"COMPOSE_KAFKA_BROKERS='{wenv.get('KAFKA_BROKERS', '')}'\n")
    fh.write(f"COMPOSE_PG_CONNINFO='{wenv.get('PG_CONNINFO', '')}'\n")
PY

[[ -s "$TMP/yaml-checks.txt" ]] || fail "the YAML checks printed nothing"
while IFS= read -r line; do
	case "$line" in
	PASS\ *) ok "${line#PASS }" ;;
	FAIL\ *) fail "${line#FAIL }" ;;
	*) fail "unexpected output of the YAML checks: $line" ;;
	esac
done <"$TMP/yaml-checks.txt"
((yaml_rc == 0)) || fail "the YAML checks crashed: $(tail -5 "$TMP/yaml-checks.err")"
# shellcheck source=/dev/null
source "$TMP/facts.sh"

if command -v kubectl >/dev/null 2>&1; then
	kubectl kustomize "$DEPLOY/kubernetes" >"$TMP/kustomized.yaml" 2>"$TMP/kustomize.err" ||
		fail "kubectl kustomize deploy/kubernetes: $(cat "$TMP/kustomize.err")"
	ok "kubectl kustomize deploy/kubernetes builds"
else
	skip "kubectl kustomize (kubectl not installed)"
fi

# ---- the worker.yaml files pass the real binary's check-config ----

check_config() { # file description KAFKA_BROKERS PG_CONNINFO
	local out
	if out="$(KAFKA_BROKERS="$3" PG_CONNINFO="$4" "$WORKER" check-config --config "$1" 2>&1)"; then
		ok "$2 passes worker check-config"
	else
		fail "$2 fails worker check-config: $out"
	fi
}
check_config "$TMP/configmap-worker.yaml" "the ConfigMap's worker.yaml" "kafka:9092" \
	"host=postgres dbname=assets user=asset_worker password=x"
check_config "$TMP/compose-worker.yaml" "compose's worker.yaml" "$COMPOSE_KAFKA_BROKERS" \
	"$COMPOSE_PG_CONNINFO"
check_config "$SRC/worker.yaml" "the image's worker.yaml (repository root)" "" ""

# ---- systemd ----

unit="$DEPLOY/systemd/asset-worker@.service"
mkdir -p "$TMP/units"
# Point every path of the unit at the built binary: verify then checks the real commands.
sed "s#/usr/local/bin/worker#$WORKER#g" "$unit" >"$TMP/units/asset-worker@.service"
grep -q "$WORKER" "$TMP/units/asset-worker@.service" || fail "the unit does not run /usr/local/bin/worker"
if out="$(cd "$TMP/units" && systemd-analyze verify ./asset-worker@1.service 2>&1)" && [[ -z "$out" ]]; then
	ok "systemd-analyze verify asset-worker@1.service: no findings"
else
	fail "systemd-analyze verify: $out"
fi
# The check is meaningful: the same verify reports a broken copy.
cp "$TMP/units/asset-worker@.service" "$TMP/units/asset-worker-broken@.service"
printf '[Service]\nKillSignal=SIGNOPE\n' >>"$TMP/units/asset-worker-broken@.service"
out="$(cd "$TMP/units" && { systemd-analyze verify ./asset-worker-broken@1.service 2>&1 || true; })"
[[ "$out" == *SIGNOPE* ]] || fail "systemd-analyze verify did not report a bad KillSignal: [$out]"
ok "systemd-analyze verify reports a deliberately broken copy"
# shellcheck disable=SC2016 # $MAINPID is systemd's, literally
grep -qxF 'ExecReload=/bin/kill -HUP $MAINPID' "$unit" || fail "the unit has no ExecReload sending HUP"
ok "the unit reloads with SIGHUP"
stop="$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")"
if [[ -z "$stop" ]] || ((stop <= 30)); then fail "TimeoutStopSec [$stop] must exceed the 30 s drain"; fi
ok "the unit's TimeoutStopSec ${stop}s exceeds the drain"
if ! grep -q '^EnvironmentFile=-/etc/asset-worker/env$' "$unit" ||
	[[ ! -f "$DEPLOY/systemd/asset-worker.env.example" ]]; then
	fail "the unit's EnvironmentFile has no example in deploy/systemd/asset-worker.env.example"
fi
ok "the unit's environment file has an example"

# ---- Dockerfile ----

dockerfile="$DEPLOY/docker/Dockerfile"
docker_rc=0
python3 - "$dockerfile" "$SRC/scripts/demo.sh" "$SRC/scripts/test.sh" >"$TMP/docker-checks.txt" \
	2>"$TMP/docker-checks.err" <<'PY' || docker_rc=$?
import json, re, shlex, sys

dockerfile, demo, test = sys.argv[1:4]

def result(ok, what, why=""):
    print(("PASS " if ok else "FAIL ") + what + ("" if ok else ": " + why))

# Instructions, continuation lines joined, comments dropped.
instrs, cur = [], ""
for raw in open(dockerfile, encoding="utf-8"):
    line = raw.rstrip("\n")
    if not cur and (not line.strip() or line.lstrip().startswith("#")):
        continue
    if line.rstrip().endswith("\\"):
        cur += line.rstrip()[:-1] + " "
        continue
    cur += line
    word, _, rest = cur.strip().partition(" ")
    instrs.append((word.upper(), rest.strip()))
    cur = ""

stages, stage = [], None
for word, rest in instrs:
    if word == "FROM":
        stage = {"from": rest, "instrs": []}
        stages.append(stage)
    elif stage is not None:
        stage["instrs"].append((word, rest))
result(len(stages) == 2 and all(s["from"].split()[0] == "debian:bookworm-slim" for s in stages),
       "Dockerfile: two stages, both FROM debian:bookworm-slim", str([s["from"] for s in stages]))
if len(stages) != 2:
    sys.exit(0)
build, run = stages

def run_cmds(stage):
    out = []
    for w, r in stage["instrs"]:
        if w == "RUN":
            out += [c.strip() for c in re.split(r"&&|;", r) if c.strip()]
    return out

def norm(cmd, drop_type=False):
    toks = []
    for t in shlex.split(cmd):
        if t.startswith(">") or t.startswith("2>") or t == "$@":
            continue
        t = {"$repo": ".", "$build": "build", "$dir": "build"}.get(t, t)
        if t.startswith("-j"):
            t = "-j<jobs>"
        if drop_type and t.startswith("-DCMAKE_BUILD_TYPE="):
            continue
        toks.append(t)
    return toks

bcmds = run_cmds(build)
result(any(c.split()[0] in ("scripts/install-deps.sh", "./scripts/install-deps.sh") for c in bcmds),
       "Dockerfile: the build stage runs scripts/install-deps.sh", str(bcmds))
dcmake = [norm(c) for c in run_cmds(build) if c.startswith("cmake ")]
demo_cmake = [norm(l.strip()) for l in open(demo, encoding="utf-8") if l.strip().startswith("cmake ")]
result(len(demo_cmake) >= 2 and dcmake == demo_cmake,
       "Dockerfile: the build commands are scripts/demo.sh's: " + " ; ".join(" ".join(c) for c in demo_cmake),
       f"Dockerfile {dcmake}, demo.sh {demo_cmake}")
test_cmake = [norm(l.strip(), True) for l in open(test, encoding="utf-8") if l.strip().startswith("cmake ")]
result(test_cmake and test_cmake == [norm(" ".join(c), True) for c in dcmake],
       "Dockerfile: same command shape as scripts/test.sh (configure -S/-B, then --build)",
       f"Dockerfile {dcmake}, test.sh {test_cmake}")

rcmds = run_cmds(run)
pkgs = []
for c in rcmds:
    toks = c.split()
    if "apt-get" in toks and "install" in toks:
        pkgs += [t for t in toks[toks.index("install") + 1:] if not t.startswith("-")]
result(pkgs, "Dockerfile: the runtime stage installs packages", str(rcmds))
print("PKGS " + " ".join(pkgs))
result(not any("-dev" in p for p in pkgs) and "build-essential" not in pkgs,
       "Dockerfile: no -dev packages or compilers at runtime", str(pkgs))

def last(word):
    v = [r for w, r in run["instrs"] if w == word]
    return v[-1] if v else None

user = last("USER") or "root"
uid = user.split(":")[0]
result(uid not in ("root", "0"), f"Dockerfile: runs as user {user}, not root")
print("UID " + uid)
def exec_form(v):
    try:
        return json.loads(v)
    except Exception:  # noqa: BLE001
        return None
result(exec_form(last("ENTRYPOINT") or "") == ["worker"], "Dockerfile: ENTRYPOINT [\"worker\"]",
       str(last("ENTRYPOINT")))
result(exec_form(last("CMD") or "") == ["run", "--config", "/etc/asset-worker/worker.yaml"],
       "Dockerfile: CMD run --config /etc/asset-worker/worker.yaml", str(last("CMD")))
result(last("STOPSIGNAL") == "SIGTERM", "Dockerfile: STOPSIGNAL SIGTERM", str(last("STOPSIGNAL")))
hc = last("HEALTHCHECK") or ""
result(" CMD " in f" {hc} " and "NONE" not in hc.split(), "Dockerfile: a HEALTHCHECK", hc)
copies = [r for w, r in run["instrs"] if w == "COPY"]
result(any(c.split()[-1] == "/usr/local/bin/worker" and "--from=" in c for c in copies)
       and any(c.split()[-1] == "/etc/asset-worker/worker.yaml" for c in copies),
       "Dockerfile: copies the built worker and worker.yaml", str(copies))
for c in copies:
    toks = [t for t in c.split() if not t.startswith("--")]
    if "--from=" not in c:
        for s in toks[:-1]:
            print("CTX " + s)
PY
[[ -s "$TMP/docker-checks.txt" ]] || fail "the Dockerfile checks printed nothing"
runtime_pkgs=()
ctx_files=()
image_uid=""
while IFS= read -r line; do
	case "$line" in
	PASS\ *) ok "${line#PASS }" ;;
	FAIL\ *) fail "${line#FAIL }" ;;
	PKGS\ *) read -ra runtime_pkgs <<<"${line#PKGS }" ;;
	UID\ *) image_uid="${line#UID }" ;;
	CTX\ *) ctx_files+=("${line#CTX }") ;;
	*) fail "unexpected output of the Dockerfile checks: $line" ;;
	esac
done <"$TMP/docker-checks.txt"
((docker_rc == 0)) || fail "the Dockerfile checks crashed: $(tail -5 "$TMP/docker-checks.err")"

[[ "$image_uid" == "$K8S_UID" ]] || fail "the image's USER $image_uid differs from the Deployment's runAsUser $K8S_UID"
ok "the image's user ($image_uid) is the Deployment's runAsUser"

for f in "${ctx_files[@]}" "scripts/install-deps.sh"; do
	[[ -e "$SRC/$f" ]] || fail "the Dockerfile copies $f, which does not exist"
done
ignore="$DEPLOY/docker/Dockerfile.dockerignore"
[[ -f "$ignore" ]] || fail "no $ignore"
# What the build needs must not be filtered out of the context (patterns are root-relative).
while IFS= read -r pat; do
	[[ -z "$pat" || "$pat" == \#* ]] && continue
	for f in "${ctx_files[@]}" scripts/install-deps.sh CMakeLists.txt worker/main.c common tools tests; do
		# shellcheck disable=SC2053
		[[ "$f" == $pat || "$f" == $pat/* ]] && fail "$ignore: '$pat' excludes $f, which the build needs"
	done
done <"$ignore"
if ! grep -qx 'build\*' "$ignore" || ! grep -qx '.git' "$ignore"; then
	fail "$ignore must exclude build trees and .git"
fi
ok "Dockerfile.dockerignore keeps the sources, drops build trees and .git"

# Every shared library the built binary needs comes from a runtime package (or libc6). The
# sanitizer runtimes of an AW_SANITIZE build are not the image's business.
readelf -d "$WORKER" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
	grep -vE '^lib(asan|ubsan|lsan|tsan)\.so' >"$TMP/needed.txt" || true
[[ -s "$TMP/needed.txt" ]] || fail "readelf found no NEEDED entries in $WORKER"
while IFS= read -r lib; do
	path="$(ldd "$WORKER" | awk -v l="$lib" '$1 == l { print $3 }')"
	[[ -n "$path" ]] || fail "ldd cannot resolve $lib"
	pkg=""
	for p in "$path" "$(readlink -f "$path")" "${path#/usr}" "/usr$path"; do
		pkg="$(dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1)" && [[ -n "$pkg" ]] && break
	done
	[[ -n "$pkg" ]] || fail "no Debian package owns $path ($lib)"
	[[ "$pkg" == libc6 || " ${runtime_pkgs[*]} " == *" $pkg "* ]] ||
		fail "the binary needs $lib from $pkg, which the runtime stage does not install (${runtime_pkgs[*]})"
done <"$TMP/needed.txt"
ok "the runtime stage installs the package of every library the binary needs ($(tr '\n' ' ' <"$TMP/needed.txt"))"

if apt-cache show libc6 >/dev/null 2>&1; then
	for p in "${runtime_pkgs[@]}"; do
		apt-cache show "$p" >/dev/null 2>&1 || fail "runtime package $p is not in Debian's archive"
	done
	ok "every runtime package exists in Debian (${runtime_pkgs[*]})"
else
	skip "runtime packages in the archive (no apt lists here)"
fi

# ---- the image's healthcheck script, against a stand-in /healthz ----

hc="$DEPLOY/docker/healthcheck.sh"
bash -n "$hc" || fail "$hc: syntax error"
export PATH="$BUILD/worker:$PATH"
AW_CONFIG="$SRC/worker.yaml" AW_HEALTH_PORT="" bash "$hc" >/dev/null ||
	fail "healthcheck: a valid config without metrics is unhealthy"
printf 'kafka:\n  bogus: 1\n' >"$TMP/bad.yaml"
if AW_CONFIG="$TMP/bad.yaml" AW_HEALTH_PORT="" bash "$hc" >/dev/null; then
	fail "healthcheck: an invalid config is healthy"
fi
ok "healthcheck: check-config decides without metrics"

python3 - "$TMP/port" <<'PY' &
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        sick = os.path.exists(sys.argv[1] + ".sick")
        code = 200 if self.path == "/healthz" and not sick else 503
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok\n" if code == 200 else b"no\n")
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_port))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
SERVER_PID=$!
for _ in $(seq 50); do [[ -s "$TMP/port" ]] && break; sleep 0.1; done
port="$(cat "$TMP/port" 2>/dev/null)" || fail "the stand-in /healthz server did not start"
AW_CONFIG="$SRC/worker.yaml" AW_HEALTH_PORT="$port" bash "$hc" >/dev/null ||
	fail "healthcheck: /healthz answering 200 is unhealthy"
touch "$TMP/port.sick"
if AW_CONFIG="$SRC/worker.yaml" AW_HEALTH_PORT="$port" bash "$hc" >/dev/null; then
	fail "healthcheck: /healthz answering 503 is healthy"
fi
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
if AW_CONFIG="$SRC/worker.yaml" AW_HEALTH_PORT="$port" bash "$hc" >/dev/null 2>&1; then
	fail "healthcheck: nothing listening is healthy"
fi
ok "healthcheck: /healthz 200 is healthy; 503 or nothing listening is not"

# ---- OPERATIONS.md names real log events ----

ops="$DEPLOY/OPERATIONS.md"
[[ -f "$ops" ]] || fail "no $ops"
# Rows of its log events table: | `event` | ...
# shellcheck disable=SC2016 # backquotes of Markdown
mapfile -t events < <(sed -n '/^## Reading the logs/,/^## /p' "$ops" | sed -n 's/^| `\([a-z_]*\)`.*/\1/p')
((${#events[@]} >= 8)) || fail "$ops: the log events table lists ${#events[@]} events"
for e in "${events[@]}"; do
	grep -rqF "\"$e\"" "$SRC/worker" "$SRC/common" || fail "$ops names log event '$e', which the code never logs"
done
ok "the ${#events[@]} log events of OPERATIONS.md exist in the code"
# Metric names: the code renders "asset_worker_" + a name string.
mapfile -t metrics < <(grep -oE 'asset_worker_[a-z_]+' "$ops" | sed 's/^asset_worker_//; s/_\(bucket\|sum\|count\)$//' | sort -u)
((${#metrics[@]} >= 8)) || fail "$ops names ${#metrics[@]} metrics"
for m in "${metrics[@]}"; do
	grep -rqE "\"(asset_worker_)?${m}[\"{ ]" "$SRC/worker" "$SRC/common" ||
		fail "$ops names metric asset_worker_$m, which the code never renders"
done
ok "the ${#metrics[@]} metrics of OPERATIONS.md exist in the code"

# ---- nothing machine-specific or secret in deploy/ ----

if grep -rnE '(/home/|/root/|/work/|/tmp/aw-|BEGIN [A-Z ]*PRIVATE KEY)' "$DEPLOY" >"$TMP/leaks.txt"; then
	fail "machine-specific path or key in deploy/: $(head -3 "$TMP/leaks.txt")"
fi
ok "no machine-specific paths or keys in deploy/"

echo "$N passed, 0 failed"
