#!/bin/sh
# Route lookup benchmark (issue: core): see docs/benchmarks.md.
# Runs build/bench/route_bench from the repository root, after printing when
# and where it ran. Build first: `make build/bench/route_bench` (or `make bench`).
set -e
cd "$(dirname "$0")/.."
echo "== route_bench"
echo "date     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "kernel   $(uname -srm)"
echo "cpu      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "nproc    $(nproc)"
echo "memory   $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "commit   $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)')"
echo
exec build/bench/route_bench
