#!/usr/bin/env bash
# Container healthcheck of the asset-worker image (HEALTHCHECK in deploy/docker/Dockerfile).
#
# Healthy when the configuration the worker runs with is valid and, when metrics are on
# (AW_HEALTH_PORT = the port of metrics.listen), GET /healthz on loopback answers 200: the
# process is alive and its consume loop is turning. Exit 0 healthy, 1 unhealthy.
set -uo pipefail

config="${AW_CONFIG:-/etc/asset-worker/worker.yaml}"
port="${AW_HEALTH_PORT:-}"
timeout_s="${AW_HEALTH_TIMEOUT:-5}"

if ! out="$(worker check-config --config "$config" 2>&1)"; then
	echo "unhealthy: $out"
	exit 1
fi
[[ -z "$port" ]] && exit 0

# bash's /dev/tcp: no curl or wget in the image.
if ! exec 3<>"/dev/tcp/127.0.0.1/$port"; then
	echo "unhealthy: nothing listens on 127.0.0.1:$port"
	exit 1
fi
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
if ! IFS= read -r -t "$timeout_s" status <&3; then
	echo "unhealthy: no answer from /healthz within ${timeout_s}s"
	exit 1
fi
exec 3<&-
status="${status%$'\r'}"
if [[ "$status" =~ ^HTTP/[0-9.]+\ 200( |$) ]]; then
	exit 0
fi
echo "unhealthy: /healthz answered: $status"
exit 1
