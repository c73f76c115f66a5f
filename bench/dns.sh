#!/bin/bash
# DNS benchmark (issue: serve DNS): see docs/benchmarks.md, section DNS.
#
# Switchboard, NSD and Knot DNS side by side on loopback, each with one
# server thread and no rate limiting, answering the same zone: Switchboard
# derives it from examples/revelations (its zone's addresses extended with
# ::1) and 100,000 tenants seeded into its store by build/bench/seed_tenants;
# NSD and Knot serve what `switchboard zone export` prints for it, with the
# serial Switchboard serves. dnsperf (1 thread, 4 clients, up to 100 queries
# outstanding, no rate limit: maximum throughput) sends a fixed query file,
# 30% tenant hosts and the rest A/AAAA/SOA/NS/NXDOMAIN/NODATA
# (bench/dns/queries.py). Before timing, bench/dns/check.py checks that the
# three servers give the same answers to a sample of every category. Three
# rounds, the three servers interleaved in each (the order rotates), 1 s
# warm-up + 30 s measured per run; medians of queries/s, lost queries,
# average latency (dnsperf's), the server's CPU time per query (utime +
# stime of its processes, which include the loopback delivery done in their
# system calls), dnsperf's CPU, the machine's idle share, and RSS. Then three
# more interleaved rounds of 3 s per server at a fixed 20,000 queries/s with
# dnsperf -v, for latency percentiles (p50, p99, p99.9) below saturation.
#
# Memory: Switchboard's RSS with 0 tenants, with 1,000,000 tenants without
# DNS and with 1,000,000 tenants with DNS (the difference of the last two is
# the zone); NSD's and Knot's memory with the exported 1,000,000-tenant zone;
# and the figure of the unit test memory::one_million_tenants if
# build/asan/unit/test_dns is built.
#
# Needs dnsperf, nsd, knot (knotd), dig (bind9-dnsutils) and /usr/bin/python3
# with dnspython (python3-dnspython); builds build/switchboard and
# build/bench/seed_tenants if needed. Everything runs on 127.0.0.1 on free
# ports, in a temporary directory removed at exit (DNS_BENCH_KEEP=1 keeps
# it). Runs for about 6 minutes (DNS_BENCH_QUICK=1: a smoke test of the
# script, about 1 minute, not for figures). Exit status 1 when a check fails
# or a measured run lost queries.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
SB=$ROOT/build/switchboard
SEED=$ROOT/build/bench/seed_tenants
DD=$ROOT/bench/dns
ZONE=revelations.studio
PY=/usr/bin/python3

ROUNDS=3
WARMUP=1         # seconds
DURATION=30      # seconds (the issue's)
TENANTS=100000   # in the throughput runs
MEM_TENANTS=1000000
LAT_QPS=20000    # fixed rate of the latency runs
LAT_DURATION=3
if [ -n "${DNS_BENCH_QUICK:-}" ]; then # a smoke test of the script, not for figures
	ROUNDS=1 WARMUP=1 DURATION=3 TENANTS=10000 MEM_TENANTS=100000 LAT_DURATION=1
fi
CLIENTS=4
OUTSTANDING=100
NQUERIES=500000  # lines of the query file (dnsperf loops over it)

die() { echo "dns.sh: $*" >&2; exit 1; }

for tool in dnsperf:dnsperf nsd:nsd knotd:knot dig:bind9-dnsutils; do
	command -v "${tool%%:*}" >/dev/null 2>&1 ||
		die "${tool%%:*} is missing (Debian package ${tool#*:}); install it first"
done
[ -x "$PY" ] || die "$PY is missing (Debian package python3)"
"$PY" -c 'import dns.message' 2>/dev/null || die "dnspython is missing (Debian package python3-dnspython)"
make --no-print-directory -s build/switchboard build/bench/seed_tenants >/dev/null ||
	die "cannot build build/switchboard and build/bench/seed_tenants"

echo "== dns (Switchboard vs NSD vs Knot DNS, issue: serve DNS)"
bench_machine "(nothing pinned: dnsperf and the server share them)"
echo "nsd      $(nsd -v 2>&1 | head -n 1)"
echo "knot     $(knotd -V 2>&1 | head -n 1)"
echo "dnsperf  $(dnsperf -h 2>&1 | sed -n 's/^Version //p')"
echo "setup    dnsperf -c $CLIENTS -q $OUTSTANDING -l $DURATION (after ${WARMUP}s warm-up), $ROUNDS rounds;"
echo "         $TENANTS tenants; every server 1 thread, no rate limiting"
echo

START=$(date +%s)
TMP=$(mktemp -d /tmp/sb-dns-bench.XXXXXX)
PIDS=()
cleanup() { bench_cleanup "${DNS_BENCH_KEEP:-}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ports free for both UDP and TCP on 127.0.0.1
read -r -a PORTS <<<"$("$PY" -c '
import socket
out, keep = [], []
while len(out) < 12:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        continue
    keep += [t, u]; out.append(p)
print(" ".join(map(str, out)))')"

fill() { # template out key=value...
	local in=$1 out=$2 args=() kv
	shift 2
	for kv in "$@"; do args+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
	sed "${args[@]}" "$in" >"$out"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' /proc/"$1"/status 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/ { print $2 }' /proc/"$1"/smaps_rollup 2>/dev/null || echo 0; }
# utime + stime; the fields after "(comm) ", which may hold spaces ("nsd: server 1")
cpu_ticks() { sed 's/^.*) //' /proc/"$1"/stat 2>/dev/null | awk '{ print $12 + $13 }' || echo 0; }
# machine-wide "busy idle" jiffies from /proc/stat (idle includes iowait)
cpu_all() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }
children() { ps -o pid= --ppid "$1" | tr -d ' ' || true; }
descendants() { local c; for c in $(children "$1"); do echo "$c"; descendants "$c"; done; }

# soa_serial PORT: the serial served on PORT, or nothing
soa_serial() { dig +short +norec +time=1 +tries=1 -p "$1" @127.0.0.1 "$ZONE" SOA 2>/dev/null | awk '{ print $3 }'; }

# wait_dns NAME PID PORT LOG [SECONDS]: until PORT answers the SOA
wait_dns() {
	local name=$1 pid=$2 port=$3 log=$4 n=$((${5:-60} * 10))
	for _ in $(seq 1 "$n"); do
		[ -n "$(soa_serial "$port")" ] && return 0
		alive "$pid" || die "$name exited: $(tail -n 20 "$log")"
		sleep 0.1
	done
	die "$name does not answer on 127.0.0.1:$port: $(tail -n 20 "$log")"
}

# stop_pid PID [PID of a child]...: stop a process we started, forget it
stop_pid() {
	local p q keep=()
	kill -TERM "$1" 2>/dev/null || true
	for p in "$@"; do
		for _ in $(seq 1 100); do alive "$p" || break; sleep 0.1; done
		if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
	done
	wait "$1" 2>/dev/null || true
	for q in "${PIDS[@]}"; do
		for p in "$@"; do [ "$q" = "$p" ] && continue 2; done
		keep+=("$q")
	done
	PIDS=("${keep[@]}")
}

# ---- Switchboard's declaration ---------------------------------------------
# examples/revelations; the zone's addresses get ::1 (AAAA answers), the
# example's DNS address is dropped (--dns gives it), health checks of the
# (absent) upstreams once a minute, no access log: no HTTP traffic here.
DECL=$TMP/decl
cp -r "$ROOT/examples/revelations" "$DECL"
rm -rf "$DECL/.switchboard"
sed -i -E '/^dns[[:space:]]*=/d' "$DECL/switchboard.toml"
sed -i -E 's#^addresses = \["127\.0\.0\.1"\]#addresses = ["127.0.0.1", "::1"]#' "$DECL/switchboard.toml"
grep -q '^addresses = \["127.0.0.1", "::1"\]' "$DECL/switchboard.toml" ||
	die "could not add ::1 to the zone's addresses: bench/dns.sh must be updated"
grep -q '^\[http\]' "$DECL/switchboard.toml" &&
	die "examples/revelations/switchboard.toml has an [http] table: dns.sh must be updated"
printf '\n# added by bench/dns.sh\n[http]\naccess_log = "off"\nhealth_interval_ms = 60000\n' >>"$DECL/switchboard.toml"

# start_switchboard name data http_port [dns_port]: sets SB_PID; waits for DNS (or HTTP)
start_switchboard() {
	local name=$1 data=$2 hport=$3 dport=${4:-} log=$TMP/$1.log args=()
	[ -n "$dport" ] && args=(--dns "127.0.0.1:$dport")
	"$SB" serve -c "$DECL" --data "$data" --listen "127.0.0.1:$hport" "${args[@]}" --threads 1 \
		>"$TMP/$name.out" 2>"$log" &
	SB_PID=$!
	PIDS+=($SB_PID)
	for _ in $(seq 1 600); do
		grep -q 'listening on http://' "$log" && break
		alive "$SB_PID" || die "switchboard ($name) exited: $(cat "$log")"
		sleep 0.1
	done
	grep -q 'listening on http://' "$log" || die "switchboard ($name) did not start in 60 s"
	if [ -n "$dport" ]; then wait_dns "switchboard ($name)" "$SB_PID" "$dport" "$log"; fi
}

# start_nsd dir port zonefile: sets NSD_PID (the process started, which
# becomes xfrd), NSD_ALL (it and its descendants: main, server) and NSD_SRV
# (the server process: it answers the queries)
start_nsd() {
	local d=$1 port=$2 zf=$3
	mkdir -p "$d"
	fill "$DD/nsd.conf.in" "$d/nsd.conf" DIR="$d" PORT="$port" ZONE="$ZONE" ZONEFILE="$zf"
	nsd -d -c "$d/nsd.conf" >"$d/nsd.log" 2>&1 &
	NSD_PID=$!
	PIDS+=($NSD_PID)
	wait_dns nsd "$NSD_PID" "$port" "$d/nsd.log" 120
	local c
	NSD_SRV=""
	for _ in $(seq 1 100); do
		NSD_ALL="$NSD_PID $(descendants "$NSD_PID" | tr '\n' ' ')"
		for c in $NSD_ALL; do
			case "$(cat "/proc/$c/comm" 2>/dev/null)" in "nsd: server"*) NSD_SRV=$c ;; esac
		done
		[ -n "$NSD_SRV" ] && break
		sleep 0.1
	done
	for c in $NSD_ALL; do [ "$c" = "$NSD_PID" ] || PIDS+=("$c"); done
	[ -n "$NSD_SRV" ] || die "no NSD server process among $NSD_ALL ($d/nsd.log)"
}

# start_knot dir port zonefile: sets KNOT_PID
start_knot() {
	local d=$1 port=$2 zf=$3
	mkdir -p "$d"
	fill "$DD/knot.conf.in" "$d/knot.conf" DIR="$d" PORT="$port" ZONE="$ZONE" ZONEFILE="$zf"
	knotd -c "$d/knot.conf" >"$d/knot.log" 2>&1 &
	KNOT_PID=$!
	PIDS+=($KNOT_PID)
	wait_dns knot "$KNOT_PID" "$port" "$d/knot.log" 120
}

# group_cpu PID...: utime + stime of the processes, in ticks
group_cpu() { local s=0 p; for p in "$@"; do s=$((s + $(cpu_ticks "$p"))); done; echo $s; }
group_pss() { local s=0 p; for p in "$@"; do s=$((s + $(pss_kb "$p"))); done; echo $s; }

# ---- the throughput configuration -------------------------------------------
D=$TMP/t
mkdir -p "$D"
echo "seed     $("$SEED" "$DECL" "$D/sbdata" "$TENANTS" "$D/tenants.txt") (build/bench/seed_tenants)"
P_SB=${PORTS[0]} P_NSD=${PORTS[1]} P_KNOT=${PORTS[2]} P_HTTP=${PORTS[3]}
start_switchboard sb "$D/sbdata" "$P_HTTP" "$P_SB"
PID_SB=$SB_PID
SERIAL=$(soa_serial "$P_SB")
"$SB" zone export -c "$DECL" --data "$D/sbdata" --serial "$SERIAL" "$ZONE" >"$D/zone"
echo "zone     $(grep -c $'\tIN\t' "$D/zone") records, $(wc -c <"$D/zone") bytes (switchboard zone export --serial $SERIAL)"
start_nsd "$D/nsd" "$P_NSD" "$D/zone"
start_knot "$D/knot" "$P_KNOT" "$D/zone"
for s in "sb:$P_SB" "nsd:$P_NSD" "knot:$P_KNOT"; do
	[ "$(soa_serial "${s#*:}")" = "$SERIAL" ] || die "${s%%:*} serves serial $(soa_serial "${s#*:}"), not $SERIAL"
done
"$PY" "$DD/queries.py" "$D/zone" "$D/tenants.txt" "$NQUERIES" "$D/queries.txt" "$D/sample.txt"
"$PY" "$DD/check.py" "$D/sample.txt" "switchboard=$P_SB" "nsd=$P_NSD" "knot=$P_KNOT" ||
	die "the servers disagree (see above): not timing"
echo "rss      idle, after start: switchboard $(rss_kb "$PID_SB") kB, nsd server $(rss_kb "$NSD_SRV") kB" \
	"(PSS of its 3 processes $(group_pss $NSD_ALL) kB), knot $(rss_kb "$KNOT_PID") kB"

RESULTS=$TMP/results.txt # server round qps lost_pct avg_ms cpu_us_per_q rss_kb util_pct completed lost client_util_pct idle_pct
: >"$RESULTS"
FAILED=0

# parse_dnsperf FILE: sets QPS LOSTPCT AVGMS SENT COMPLETED LOST RCODES
parse_dnsperf() {
	local f=$1
	QPS=$(awk '/Queries per second:/ { print $4 }' "$f")
	SENT=$(awk '/Queries sent:/ { print $3 }' "$f")
	COMPLETED=$(awk '/Queries completed:/ { print $3 }' "$f")
	LOST=$(awk '/Queries lost:/ { print $3 }' "$f")
	LOSTPCT=$(awk '/Queries lost:/ { gsub(/[()%]/, "", $4); print $4 }' "$f")
	AVGMS=$(awk '/Average Latency \(s\):/ { printf "%.3f", $4 * 1000 }' "$f")
	RCODES=$(sed -n 's/^ *Response codes: *//p' "$f")
	[ -n "$QPS" ] && [ -n "$LOST" ] || die "cannot read dnsperf's output $f: $(tail -n 5 "$f")"
}

run_dnsperf() { # port duration out [extra args]; sets CLIENT_CPU (dnsperf's CPU seconds)
	local port=$1 dur=$2 out=$3 TIMEFORMAT='%U %S'
	shift 3
	{ time dnsperf -s 127.0.0.1 -p "$port" -d "$D/queries.txt" -l "$dur" -c "$CLIENTS" -q "$OUTSTANDING" "$@" \
		>"$out" 2>&1; } 2>"$out.time" || die "dnsperf failed: $(tail -n 5 "$out")"
	CLIENT_CPU=$(awk '{ print $1 + $2 }' "$out.time")
}

# measure server round port pid cpu_pid...: RSS of pid, CPU of the cpu_pids
measure() {
	local server=$1 round=$2 port=$3 pid=$4
	shift 4
	local out=$TMP/$server-$round.perf
	run_dnsperf "$port" "$WARMUP" "$out.warm"
	local c0 a0 a1; c0=$(group_cpu "$@"); a0=$(cpu_all)
	run_dnsperf "$port" "$DURATION" "$out"
	local c1; c1=$(group_cpu "$@"); a1=$(cpu_all)
	local idle; idle=$(echo "$a0 $a1" | awk '{ b = $3 - $1; i = $4 - $2; printf "%.0f", (b + i) ? i * 100 / (b + i) : 0 }')
	parse_dnsperf "$out"
	local rss; rss=$(rss_kb "$pid")
	local hz; hz=$(getconf CLK_TCK)
	local cpu util
	cpu=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$COMPLETED" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }')
	util=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v d="$DURATION" 'BEGIN { printf "%.0f", t / hz / d * 100 }')
	local cutil; cutil=$(awk -v c="$CLIENT_CPU" -v d="$DURATION" 'BEGIN { printf "%.0f", c / d * 100 }')
	echo "$server $round $QPS $LOSTPCT $AVGMS $cpu $rss $util $COMPLETED $LOST $cutil $idle" >>"$RESULTS"
	printf 'run      %-11s round %d: %9.0f q/s  lost %s (%s%%)  avg %6.3f ms  CPU %6.3f us/q  server %s%% of a core, dnsperf %s%%, machine idle %s%%  RSS %6d kB\n' \
		"$server" "$round" "$QPS" "$LOST" "$LOSTPCT" "$AVGMS" "$cpu" "$util" "$cutil" "$idle" "$rss"
	echo "         rcodes: $RCODES"
	if [ "$LOST" != 0 ]; then
		echo "ERROR    $server round $round: $LOST queries lost ($out)" >&2
		FAILED=1
	fi
}

names=(switchboard nsd knot)
ports=("$P_SB" "$P_NSD" "$P_KNOT")
pids=("$PID_SB" "$NSD_SRV" "$KNOT_PID")
cpupids=("$PID_SB" "$NSD_ALL" "$KNOT_PID")
for round in $(seq 1 "$ROUNDS"); do
	for k in 0 1 2; do
		j=$(((k + round - 1) % 3)) # rotate who goes first
		# shellcheck disable=SC2086
		measure "${names[$j]}" "$round" "${ports[$j]}" "${pids[$j]}" ${cpupids[$j]}
	done
done

# ---- latency below saturation ------------------------------------------------
# percentiles of dnsperf -v's per-response latencies at a fixed rate; the
# servers interleaved, $ROUNDS rounds, medians
LAT=$TMP/latency.txt # server round p50 p99 p999 responses lost
: >"$LAT"
for round in $(seq 1 "$ROUNDS"); do
	for k in 0 1 2; do
		j=$(((k + round - 1) % 3))
		out=$TMP/${names[$j]}-lat-$round.perf
		run_dnsperf "${ports[$j]}" "$LAT_DURATION" "$out" -Q "$LAT_QPS" -v
		parse_dnsperf "$out"
		read -r p50 p99 p999 n <<<"$(awk '$1 == ">" && $NF ~ /^[0-9.]+$/ { print $NF * 1000 }' "$out" | sort -g |
			awk '{ a[NR] = $1 } END { if (!NR) { print "nan nan nan 0"; exit }
				printf "%.3f %.3f %.3f %d", a[int(NR * 0.5) + 1], a[int(NR * 0.99) + 1], a[int(NR * 0.999) + 1], NR }')"
		echo "${names[$j]} $round $p50 $p99 $p999 $n $LOST" >>"$LAT"
		printf 'latency  %-11s round %d at %d q/s for %d s: p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  (%d responses, %s lost)\n' \
			"${names[$j]}" "$round" "$LAT_QPS" "$LAT_DURATION" "$p50" "$p99" "$p999" "$n" "$LOST"
		if [ "$LOST" != 0 ]; then
			echo "ERROR    ${names[$j]}: $LOST queries lost at $LAT_QPS q/s ($out)" >&2
			FAILED=1
		fi
	done
done
echo "rss      after the runs: switchboard $(rss_kb "$PID_SB") kB, nsd server $(rss_kb "$NSD_SRV") kB, knot $(rss_kb "$KNOT_PID") kB"
stop_pid "$PID_SB"
stop_pid $NSD_ALL
stop_pid "$KNOT_PID"
echo

# ---- memory with 1,000,000 tenants ---------------------------------------------
M=$TMP/m
mkdir -p "$M"
settle() { # pid: wait until RSS stops growing (1 s at most after start-up)
	local a b
	a=$(rss_kb "$1")
	for _ in 1 2 3 4 5 6 7 8 9 10; do sleep 0.1; b=$(rss_kb "$1"); [ "$a" = "$b" ] && break; a=$b; done
}
"$SEED" "$DECL" "$M/empty" 0 "$M/none.txt" >/dev/null
start_switchboard m0 "$M/empty" "${PORTS[4]}" "${PORTS[5]}"
settle "$SB_PID"
RSS_0=$(rss_kb "$SB_PID")
stop_pid "$SB_PID"
echo "seed     $("$SEED" "$DECL" "$M/data" "$MEM_TENANTS" "$M/tenants.txt") for the memory figures"
start_switchboard m1nodns "$M/data" "${PORTS[6]}"
settle "$SB_PID"
RSS_1N=$(rss_kb "$SB_PID")
stop_pid "$SB_PID"
t0=$(date +%s%N)
start_switchboard m1 "$M/data" "${PORTS[7]}" "${PORTS[8]}"
SB_LOAD_MS=$((($(date +%s%N) - t0) / 1000000))
settle "$SB_PID"
RSS_1=$(rss_kb "$SB_PID")
last=$(tail -n 1 "$M/tenants.txt")
[ "$(dig +short +norec -p "${PORTS[8]}" @127.0.0.1 "$last" A | head -n 1)" = 127.0.0.1 ] ||
	die "switchboard with $MEM_TENANTS tenants does not resolve $last"
SERIAL=$(soa_serial "${PORTS[8]}")
stop_pid "$SB_PID"
"$SB" zone export -c "$DECL" --data "$M/data" --serial "$SERIAL" "$ZONE" >"$M/zone"
ZBYTES=$(wc -c <"$M/zone")
echo "zone     $(grep -c $'\tIN\t' "$M/zone") records, $ZBYTES bytes with $MEM_TENANTS tenants"
t0=$(date +%s%N)
start_nsd "$M/nsd" "${PORTS[9]}" "$M/zone"
NSD_LOAD_MS=$((($(date +%s%N) - t0) / 1000000))
settle "$NSD_SRV"
RSS_NSD=$(rss_kb "$NSD_SRV")
PSS_NSD=$(group_pss $NSD_ALL)
stop_pid $NSD_ALL
t0=$(date +%s%N)
start_knot "$M/knot" "${PORTS[10]}" "$M/zone"
KNOT_LOAD_MS=$((($(date +%s%N) - t0) / 1000000))
settle "$KNOT_PID"
RSS_KNOT=$(rss_kb "$KNOT_PID")
stop_pid "$KNOT_PID"

ZONE_KB=$((RSS_1 - RSS_1N))
printf 'memory   switchboard RSS: %d kB with 0 tenants (DNS on), %d kB with %d tenants without DNS, %d kB with DNS\n' \
	"$RSS_0" "$RSS_1N" "$MEM_TENANTS" "$RSS_1"
printf 'memory   the zone of %d tenants in switchboard: %d kB (%.1f MiB, %.1f B/tenant); all tenant state (set + zone + store load): %d kB (%.1f B/tenant)\n' \
	"$MEM_TENANTS" "$ZONE_KB" "$(awk -v k=$ZONE_KB 'BEGIN { print k / 1024 }')" \
	"$(awk -v k=$ZONE_KB -v n="$MEM_TENANTS" 'BEGIN { print k * 1024 / n }')" \
	$((RSS_1 - RSS_0)) "$(awk -v k=$((RSS_1 - RSS_0)) -v n="$MEM_TENANTS" 'BEGIN { print k * 1024 / n }')"
printf 'memory   switchboard with %d tenants and DNS: answering %d ms after start\n' "$MEM_TENANTS" "$SB_LOAD_MS"
printf 'memory   same zone file: nsd server RSS %d kB (PSS of its 3 processes %d kB), answering %d ms after start; knot RSS %d kB, answering %d ms after start\n' \
	"$RSS_NSD" "$PSS_NSD" "$NSD_LOAD_MS" "$RSS_KNOT" "$KNOT_LOAD_MS"
UNIT=""
if [ -x "$ROOT/build/asan/unit/test_dns" ]; then
	UNIT=$("$ROOT/build/asan/unit/test_dns" --filter 'memory/one_million_tenants' 2>&1 |
		sed -n 's/^dns: zone with //p' | head -n 1 || true)
	[ -n "$UNIT" ] && echo "memory   unit test memory::one_million_tenants (build/asan/unit/test_dns): zone with $UNIT"
fi
echo

# ---- summary -----------------------------------------------------------------
# stats server column: "median min max"
stats() {
	awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$RESULTS" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) printf "%s %s %s", a[int((NR + 1) / 2)], a[1], a[NR]; else printf "nan nan nan" }'
}
echo "Results: medians of $ROUNDS runs of ${DURATION} s (min-max); RSS of the serving process after each run"
echo
printf '| %-11s | %-27s | %-7s | %-21s | %-20s | %-8s | %-9s | %-9s |\n' server "queries/s" "lost" "avg latency ms" "CPU us/query" "CPU %" "dnsperf %" "RSS MiB"
printf '|-------------|-----------------------------|---------|-----------------------|----------------------|----------|-----------|-----------|\n'
: >"$TMP/lines.txt"
for s in switchboard nsd knot; do
	read -r qm ql qh <<<"$(stats $s 3)"
	read -r am al ah <<<"$(stats $s 5)"
	read -r cm cl ch <<<"$(stats $s 6)"
	read -r rm _ _ <<<"$(stats $s 7)"
	read -r um _ _ <<<"$(stats $s 8)"
	read -r dm _ _ <<<"$(stats $s 11)"
	lost=$(awk -v s=$s '$1 == s { l += $10; n += $9 + $10 } END { printf "%.4f", n ? l * 100 / n : 0 }' "$RESULTS")
	printf -v c_q '%.0f (%.0f-%.0f)' "$qm" "$ql" "$qh"
	printf -v c_a '%.3f (%.3f-%.3f)' "$am" "$al" "$ah"
	printf -v c_c '%.3f (%.3f-%.3f)' "$cm" "$cl" "$ch"
	printf '| %-11s | %-27s | %6s%% | %-21s | %-20s | %7s%% | %8s%% | %9.1f |\n' "$s" "$c_q" "$lost" "$c_a" "$c_c" "$um" "$dm" \
		"$(awk -v k="$rm" 'BEGIN { print k / 1024 }')"
	{
		echo "dns.$s.qps $qm q/s"
		echo "dns.$s.lost $lost %"
		echo "dns.$s.avg_latency $am ms"
		echo "dns.$s.cpu_per_query $cm us"
		echo "dns.$s.cpu_util $um %"
		echo "dns.$s.dnsperf_cpu_util $dm %"
		echo "dns.$s.rss $rm kB"
	} >>"$TMP/lines.txt"
done
lstats() { # server column: median min max of the latency runs
	awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$LAT" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) printf "%s %s %s", a[int((NR + 1) / 2)], a[1], a[NR]; else printf "nan nan nan" }'
}
echo
echo "Latency at a fixed $LAT_QPS q/s (dnsperf -Q $LAT_QPS -v, $LAT_DURATION s per run), medians of $ROUNDS runs (min-max)"
echo
printf '| %-11s | %-21s | %-21s | %-21s |\n' server "p50 ms" "p99 ms" "p99.9 ms"
printf '|-------------|-----------------------|-----------------------|-----------------------|\n'
for s in switchboard nsd knot; do
	read -r a al ah <<<"$(lstats $s 3)"
	read -r b bl bh <<<"$(lstats $s 4)"
	read -r c cl ch <<<"$(lstats $s 5)"
	printf '| %-11s | %-21s | %-21s | %-21s |\n' "$s" "$a ($al-$ah)" "$b ($bl-$bh)" "$c ($cl-$ch)"
	{
		echo "dns.$s.fixed_rate.p50 $a ms"
		echo "dns.$s.fixed_rate.p99 $b ms"
		echo "dns.$s.fixed_rate.p999 $c ms"
	} >>"$TMP/lines.txt"
done
echo
sq=$(stats switchboard 3 | cut -d' ' -f1)
kq=$(stats knot 3 | cut -d' ' -f1)
nq=$(stats nsd 3 | cut -d' ' -f1)
ratio=$(awk -v s="$sq" -v k="$kq" 'BEGIN { printf "%.3f", s / k }')
ratio_nsd=$(awk -v s="$sq" -v k="$nq" 'BEGIN { printf "%.3f", s / k }')
lost_sb=$(awk '$1 == "switchboard" { l += $10 } END { print l + 0 }' "$RESULTS")
echo "target   Switchboard q/s / Knot q/s = $ratio (target >= 1.0); / NSD q/s = $ratio_nsd;" \
	"Switchboard lost $lost_sb queries in $ROUNDS runs (target: 0%)"
echo "target   memory of the zone for $MEM_TENANTS tenants: $ZONE_KB kB (RSS with DNS - RSS without)"
{
	echo "dns.qps_ratio_vs_knot $ratio x"
	echo "dns.qps_ratio_vs_nsd $ratio_nsd x"
	echo "dns.tenants $TENANTS count"
	echo "dns.mem.tenants $MEM_TENANTS count"
	echo "dns.mem.switchboard.rss_0 $RSS_0 kB"
	echo "dns.mem.switchboard.rss_nodns $RSS_1N kB"
	echo "dns.mem.switchboard.rss_dns $RSS_1 kB"
	echo "dns.mem.switchboard.zone $ZONE_KB kB"
	echo "dns.mem.switchboard.start $SB_LOAD_MS ms"
	echo "dns.mem.zonefile $ZBYTES B"
	echo "dns.mem.nsd.rss $RSS_NSD kB"
	echo "dns.mem.nsd.pss_total $PSS_NSD kB"
	echo "dns.mem.nsd.load $NSD_LOAD_MS ms"
	echo "dns.mem.knot.rss $RSS_KNOT kB"
	echo "dns.mem.knot.load $KNOT_LOAD_MS ms"
	if [ -n "$UNIT" ]; then echo "dns.mem.unit_test $(echo "$UNIT" | sed -n 's/.*: \([0-9]*\) bytes.*/\1/p') B"; fi
} >>"$TMP/lines.txt"
echo "elapsed  $(($(date +%s) - START)) s"
echo
cat "$TMP/lines.txt"
if [ "$FAILED" != 0 ]; then
	echo "dns.sh: some checks failed (see ERROR lines above)" >&2
	exit 1
fi
