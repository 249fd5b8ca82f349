#!/usr/bin/env bash
# Installs what building, testing and the demo need, from Debian's packages. Idempotent: when
# everything is present it only asks dpkg and returns.
set -euo pipefail

packages=(
	build-essential cmake pkg-config
	librdkafka-dev libpq-dev libyaml-dev libjansson-dev libcmocka-dev
	libmicrohttpd-dev # /metrics, /healthz, /readyz
	postgresql postgresql-contrib
	jq
	python3-yaml systemd # deploy/ checks: YAML parses, systemd-analyze verify
	time # tests/bench: CPU and peak RSS of the worker
	clang # libFuzzer
	# The loopback Apache Kafka broker (scripts/kafka.sh): Java, Maven to fetch Kafka's release
	# artifacts, the admin client, socat (connections cut), kcat (reading topics in tests).
	default-jre-headless maven python3-confluent-kafka socat kcat
)

missing=()
for pkg in "${packages[@]}"; do
	status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
	if [[ "$status" != "install ok installed" ]]; then
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} == 0)); then
	echo "install-deps: all ${#packages[@]} packages present"
	exit 0
fi

as_root=()
if ((EUID != 0)); then
	if command -v sudo >/dev/null 2>&1; then
		as_root=(sudo)
	else
		echo "install-deps: missing ${missing[*]}; run as root (no sudo here)" >&2
		exit 1
	fi
fi

echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
