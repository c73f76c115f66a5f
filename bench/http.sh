#!/bin/bash
# HTTP proxy benchmark (issue: serve HTTP): see docs/benchmarks.md.
#
# Switchboard, nginx and HAProxy side by side on loopback, each with one
# worker thread (HTTP_BENCH_THREADS=N: N each; nginx then listens with
# reuseport, one socket per worker as Switchboard has per thread), in front
# of one upstream nginx (one worker) that answers a
# fixed 200 "ok\n". wrk (1 thread, 64 keep-alive connections) sends GET / with
# the Host header rotating over 10 hosts (codex + 9 tenants), then over
# 100,000 tenant hosts. Each proxy checks the host (registered tenant or
# codex: proxied; anything else: 404). Three rounds, the three proxies
# interleaved in each (the order rotates), 2 s warm-up + 10 s measured per run;
# medians of req/s, p50, p99, RSS and CPU per request. Then a tenant is added
# while wrk runs against Switchboard, five times: delay until it is served.
# Finally one run of Switchboard with its access log on, for comparison.
#
# Needs nginx (nginx-light), haproxy, wrk, curl and /usr/bin/python3; builds
# build/switchboard and build/bench/seed_tenants if needed. Everything runs on
# 127.0.0.1 on free ports, in a temporary directory removed at exit (set
# HTTP_BENCH_KEEP=1 to keep it). Runs for about 5 minutes. Exit status 1 when
# a check fails, or when any measured run saw an error (non-2xx response or
# socket error).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
SB=$ROOT/build/switchboard
SEED=$ROOT/build/bench/seed_tenants
HD=$ROOT/bench/http
ZONE=revelations.studio
PY=/usr/bin/python3

ROUNDS=3
WARMUP=2       # seconds
DURATION=10    # seconds
if [ -n "${HTTP_BENCH_QUICK:-}" ]; then # a smoke test of the script, not for figures
	ROUNDS=1 WARMUP=1 DURATION=2
fi
CONNS=64
THREADS=${HTTP_BENCH_THREADS:-1} # worker threads (processes for nginx) of each proxy
case $THREADS in '' | *[!0-9]* | 0) echo "http.sh: HTTP_BENCH_THREADS must be a positive integer" >&2; exit 1 ;; esac
BIG=100000     # tenants in the large configuration
# HTTP_BENCH_PEER_HEADERS=1: nginx and HAProxy add the headers Switchboard adds
# (bench/http/peer-headers-*), so that the upstream and wrk read the same bytes
# from all three; by default they add none.
PEER=${HTTP_BENCH_PEER_HEADERS:-0}
case $PEER in 0 | 1) ;; *) echo "http.sh: HTTP_BENCH_PEER_HEADERS must be 0 or 1" >&2; exit 1 ;; esac
ADDS=5         # tenants added under load

die() { echo "http.sh: $*" >&2; exit 1; }

for tool in nginx:nginx-light haproxy:haproxy wrk:wrk curl:curl; do
	command -v "${tool%%:*}" >/dev/null 2>&1 ||
		die "${tool%%:*} is missing (Debian package ${tool#*:}); install it first"
done
[ -x "$PY" ] || die "$PY is missing (Debian package python3)"
make --no-print-directory -s build/switchboard build/bench/seed_tenants >/dev/null ||
	die "cannot build build/switchboard and build/bench/seed_tenants"

echo "== http (Switchboard vs nginx vs HAProxy, issue: serve HTTP)"
bench_machine
echo "nginx    $(nginx -v 2>&1 | sed 's/^nginx version: //')"
echo "haproxy  $(haproxy -v 2>&1 | head -n 1)"
echo "wrk      $(wrk -v 2>&1 | head -n 1 | sed 's/ Copyright.*//')"
echo "setup    wrk -t1 -c$CONNS -d${DURATION}s --latency (after ${WARMUP}s warm-up), $ROUNDS rounds;"
echo "         every proxy $THREADS worker thread(s) (nginx: processes); upstream nginx 1 worker;" \
	"Switchboard access log off"
if [ "$PEER" = 1 ]; then
	echo "         nginx and HAProxy add Switchboard's headers (HTTP_BENCH_PEER_HEADERS=1, bench/http/peer-headers-*)"
else
	echo "         nginx and HAProxy add no headers (Switchboard adds X-Forwarded-*, ids, tenant, signature)"
fi
echo "http.peer_headers $PEER"
echo

TMP=$(mktemp -d /tmp/sb-http-bench.XXXXXX)
PIDS=()
cleanup() { bench_cleanup "${HTTP_BENCH_KEEP:-}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# nginx drops to "nobody" when started by root: keep the current user instead.
NGINX_USER=""
[ "$(id -u)" = 0 ] && NGINX_USER="user $(id -un) $(id -gn);"

read -r -a PORTS <<<"$("$PY" -c '
import socket
ss = []
for _ in range(10):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ss.append(s)
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
P_UP=${PORTS[0]}

fill() { # template out key=value... <key=file...: a line holding @key@ is replaced by the file
	local in=$1 out=$2 args=() kv
	shift 2
	for kv in "$@"; do
		case $kv in
		'<'*) kv=${kv#<}; args+=(-e "/@${kv%%=*}@/{r ${kv#*=}" -e "d}") ;;
		*) args+=(-e "s#@${kv%%=*}@#${kv#*=}#g") ;;
		esac
	done
	sed "${args[@]}" "$in" >"$out"
}

# wait_port PORT LOG: until something answers HTTP there (10 s at most)
wait_port() {
	for _ in $(seq 1 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null)" != 000 ] && return 0
		sleep 0.1
	done
	die "nothing answers on 127.0.0.1:$1: $(cat "$2")"
}

# children PID: the pids of PID's children (nginx workers)
children() { ps -o pid= --ppid "$1" | tr -d ' ' || true; }

# rss_kb "PID [PID...]", pss_kb "PID [PID...]", cpu_ticks "PID [PID...]":
# summed over the pids. Memory is compared by PSS over every process of a
# proxy (nginx: master and workers): nginx builds its map in the master and
# the workers share it, so a sum of RSS counts it once per process.
pss_kb() {
	local p s=0
	for p in $1; do s=$((s + $(awk '/^Pss:/ { print $2 }' /proc/"$p"/smaps_rollup 2>/dev/null || echo 0))); done
	echo "$s"
}
rss_kb() {
	local p s=0
	for p in $1; do s=$((s + $(awk '/^VmRSS:/ { print $2 }' /proc/"$p"/status 2>/dev/null || echo 0))); done
	echo "$s"
}
cpu_ticks() {
	local p s=0
	for p in $1; do s=$((s + $(awk '{ print $14 + $15 }' /proc/"$p"/stat 2>/dev/null || echo 0))); done
	echo "$s"
}

# ---- upstream --------------------------------------------------------------
mkdir -p "$TMP/upstream"
fill "$HD/upstream-nginx.conf.in" "$TMP/upstream/nginx.conf" DIR="$TMP/upstream" PORT="$P_UP" \
	USER="$NGINX_USER"
nginx -c "$TMP/upstream/nginx.conf" -p "$TMP/upstream/" -e "$TMP/upstream/error.log" \
	>"$TMP/upstream/out.log" 2>&1 &
PIDS+=($!)
wait_port "$P_UP" "$TMP/upstream/out.log"
[ "$(curl -s "http://127.0.0.1:$P_UP/health")" = ok ] || die "the upstream does not answer ok"
PIDS+=($(children "${PIDS[-1]}"))

# ---- Switchboard's declaration ---------------------------------------------
# examples/revelations with every URL upstream pointed at the benchmark's
# upstream (codex-web production serves codex and the tenants), [http] added.
make_decl() { # dir access_log
	cp -r "$ROOT/examples/revelations" "$1"
	rm -rf "$1/.switchboard"
	grep -q '^\[http\]' "$1/switchboard.toml" &&
		die "examples/revelations/switchboard.toml has an [http] table: http.sh must be updated"
	sed -i -E "s#http://127\.0\.0\.1:91[0-9][0-9]#http://127.0.0.1:$P_UP#g" "$1/switchboard.toml"
	# DNS is not part of this benchmark (and must not take the example's port)
	sed -i -E '/^dns[[:space:]]*=/d' "$1/switchboard.toml"
	printf '\n# added by bench/http.sh\n[http]\naccess_log = "%s"\nhealth_interval_ms = 1000\n' \
		"$2" >>"$1/switchboard.toml"
	grep -q "upstream.production = \"http://127.0.0.1:$P_UP\"" "$1/switchboard.toml" ||
		die "could not point codex-web at the upstream"
}
DECL=$TMP/decl
make_decl "$DECL" off
DECL_LOG=$TMP/decl-log
make_decl "$DECL_LOG" "$TMP/access.log"

RESULTS=$TMP/results.txt # tag proxy round rps p50_ms p99_ms pss_kb cpu_us_per_req non2xx sockerr
: >"$RESULTS"
FAILED=0

# parse_wrk FILE: sets RPS P50 P99 REQS NON2XX SOCKERR
parse_wrk() {
	local f=$1
	to_ms() { awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else printf "nan" }'; }
	RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
	P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$f")")
	P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$f")")
	REQS=$(awk '/requests in/ { print $1 }' "$f")
	NON2XX=$(awk -F: '/Non-2xx or 3xx responses/ { gsub(/ /, "", $2); print $2 }' "$f")
	NON2XX=${NON2XX:-0}
	SOCKERR=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$f")
	SOCKERR=${SOCKERR:-0}
	[ -n "$RPS" ] && [ -n "$REQS" ] || die "cannot read wrk's output $f"
}

run_wrk() { # port hosts_file duration out [extra wrk args]
	local port=$1 hosts=$2 dur=$3 out=$4
	shift 4
	HOSTS_FILE=$hosts wrk -t1 -c"$CONNS" -d"${dur}s" --latency -s "$HD/hosts.lua" "$@" \
		"http://127.0.0.1:$port/" >"$out" 2>&1
}

# check_proxy name port hosts_file: 200 "ok" for a sample of hosts, 404 otherwise
check_proxy() {
	local name=$1 port=$2 hosts=$3 h code body n=0
	for h in $( (head -n 3 "$hosts"; tail -n 3 "$hosts"; awk 'NR % 997 == 1' "$hosts" | head -n 40) | sort -u); do
		body=$(curl -s -H "Host: $h" -w ' %{http_code}' "http://127.0.0.1:$port/") || true
		[ "$body" = "ok
 200" ] || die "$name: Host $h answered '$body', expected 200 ok"
		n=$((n + 1))
	done
	for h in "codex.$ZONE" "CODEX.$ZONE"; do
		code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $h" "http://127.0.0.1:$port/")
		[ "$code" = 200 ] || die "$name: Host $h answered $code, expected 200"
	done
	for h in "nosuch-zz9zz.$ZONE" "www2.example.com" "codex-web.$ZONE.evil"; do
		code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $h" "http://127.0.0.1:$port/")
		[ "$code" = 404 ] || die "$name: unknown Host $h answered $code, expected 404"
	done
	echo "check    $name: $((n + 2)) known hosts answer 200 ok, 3 unknown hosts 404"
}

# check_headers name port host: what the upstream received through the proxy
# (bench/http/upstream-nginx.conf.in's /bench-headers); with
# HTTP_BENCH_PEER_HEADERS=1 every header Switchboard adds must be there
check_headers() {
	local name=$1 port=$2 host=$3 got f
	got=$(curl -s -H "Host: $host" "http://127.0.0.1:$port/bench-headers")
	echo "headers  $name, Host $host: $got"
	[ "$PEER" = 1 ] || return 0
	for f in x-forwarded-for x-forwarded-proto x-forwarded-host x-request-id traceparent \
		x-tenant-slug x-switchboard-environment x-switchboard-deployment x-switchboard-signature; do
		grep -Eq "(^| )$f=[^ ]" <<<"$got" || die "$name: the upstream got no $f ($got)"
	done
	curl -s -D - -o /dev/null -H "Host: $host" "http://127.0.0.1:$port/" | grep -qi '^x-request-id: ' ||
		die "$name: no X-Request-Id in the response"
}

# start_switchboard name decl data port: sets SB_PID
start_switchboard() {
	local name=$1 decl=$2 data=$3 port=$4 log=$TMP/$1.log
	"$SB" serve -c "$decl" --data "$data" --listen "127.0.0.1:$port" --threads "$THREADS" >"$TMP/$name.out" 2>"$log" &
	SB_PID=$!
	PIDS+=($SB_PID)
	for _ in $(seq 1 300); do
		grep -q 'listening on http://' "$log" && return 0
		alive "$SB_PID" || die "switchboard ($name) exited: $(cat "$log")"
		sleep 0.1
	done
	die "switchboard ($name) did not start in 30 s"
}

# stop_pid PID [PID of a child]...: stop a process we started, forget it
stop_pid() {
	local p q keep=()
	kill -TERM "$1" 2>/dev/null || true
	for p in "$@"; do
		for _ in $(seq 1 50); do alive "$p" || break; sleep 0.1; done
		if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
	done
	wait "$1" 2>/dev/null || true
	for q in "${PIDS[@]}"; do
		for p in "$@"; do [ "$q" = "$p" ] && continue 2; done
		keep+=("$q")
	done
	PIDS=("${keep[@]}")
}

# measure tag proxy round port "pid..." hosts_file
measure() {
	local tag=$1 proxy=$2 round=$3 port=$4 pid=$5 hosts=$6 out=$TMP/$1-$2-$3.wrk
	run_wrk "$port" "$hosts" "$WARMUP" "$out.warm"
	local c0; c0=$(cpu_ticks "$pid")
	run_wrk "$port" "$hosts" "$DURATION" "$out"
	local c1; c1=$(cpu_ticks "$pid")
	parse_wrk "$out"
	local rss; rss=$(pss_kb "$pid")
	local cpu; cpu=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$REQS" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
	echo "$tag $proxy $round $RPS $P50 $P99 $rss $cpu $NON2XX $SOCKERR" >>"$RESULTS"
	printf 'run      %-5s %-11s round %d: %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  PSS %6d kB  CPU %6.2f us/req  non-2xx %s  socket errors %s\n' \
		"$tag" "$proxy" "$round" "$RPS" "$P50" "$P99" "$rss" "$cpu" "$NON2XX" "$SOCKERR"
	if [ "$NON2XX" != 0 ] || [ "$SOCKERR" != 0 ]; then
		echo "ERROR    $tag $proxy round $round: $NON2XX non-2xx responses, $SOCKERR socket errors ($out)" >&2
		FAILED=1
		sed 's/^/    /' "$out" >&2
	fi
}

# add_under_load tag port data hosts_file: ADDS tenants added while wrk runs
add_under_load() {
	local tag=$1 port=$2 data=$3 hosts=$4 out=$TMP/$1-add.wrk i
	local dur=$((2 + ADDS * 2))
	run_wrk "$port" "$hosts" "$dur" "$out" &
	local wpid=$!
	sleep 1
	: >"$TMP/$tag-add.txt"
	for i in $(seq 1 "$ADDS"); do
		"$PY" "$HD/add_tenant.py" "$SB" "$DECL" "$data" "$port" "fresh-$tag-$i" "$ZONE" >>"$TMP/$tag-add.txt" ||
			{ FAILED=1; echo "ERROR    $tag: tenant fresh-$tag-$i was not served (see above)" >&2; }
		alive $wpid || { FAILED=1; echo "ERROR    $tag: wrk ended before add $i was done" >&2; }
		sleep 0.5
	done
	wait $wpid || true
	parse_wrk "$out"
	ADD_RPS=$RPS ADD_ERR=$((NON2XX + SOCKERR))
	ADD_MED=$(awk '{ print $1 }' "$TMP/$tag-add.txt" | sort -g | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : "nan") }')
	ADD_MAX=$(awk '{ print $1 }' "$TMP/$tag-add.txt" | sort -g | tail -n 1)
	ADD_CMD=$(awk '{ print $2 }' "$TMP/$tag-add.txt" | sort -g | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : "nan") }')
	echo "add      $tag: delays $(awk '{ printf "%s ", $1 }' "$TMP/$tag-add.txt")ms; add command median ${ADD_CMD} ms;" \
		"wrk meanwhile ${RPS} req/s, $NON2XX non-2xx, $SOCKERR socket errors"
	[ "$ADD_ERR" = 0 ] || { FAILED=1; echo "ERROR    $tag: wrk saw errors while tenants were added ($out)" >&2; }
	awk -v m="$ADD_MAX" 'BEGIN { exit !(m + 0 > 1000) }' && FAILED=1
	printf '%s %s %s %s %s %s\n' "$tag" "$ADD_MED" "$ADD_MAX" "$ADD_CMD" "$ADD_RPS" "$ADD_ERR" >>"$TMP/adds.txt"
	return 0
}

: >"$TMP/adds.txt"
LOGON=""

for scale in 10 "$BIG"; do
	if [ "$scale" = 10 ]; then tag=h10; ntenants=9; else tag=h100k; ntenants=$BIG; fi
	D=$TMP/$tag
	mkdir -p "$D"
	# the tenants: in Switchboard's store, nginx's map and HAProxy's list
	echo "seed     $tag: $("$SEED" "$DECL" "$D/sbdata" "$ntenants" "$D/tenants.txt")"
	{ echo "codex.$ZONE"; cat "$D/tenants.txt"; } >"$D/known.txt"
	if [ "$PEER" = 1 ]; then # the value is the slug ("-": codex, no tenant)
		{ echo "codex.$ZONE -;"; awk -F. '{ print $0 " " $1 ";" }' "$D/tenants.txt"; } >"$D/map.conf"
		NG_PEER=("<PEER_HTTP=$HD/peer-headers-nginx-http.conf" "<PEER_LOCATION=$HD/peer-headers-nginx-location.conf")
		HA_PEER=("<PEER_HEADERS=$HD/peer-headers-haproxy.cfg")
	else
		awk '{ print $1 " 1;" }' "$D/known.txt" >"$D/map.conf"
		NG_PEER=("<PEER_HTTP=/dev/null" "<PEER_LOCATION=/dev/null")
		HA_PEER=("<PEER_HEADERS=/dev/null")
	fi
	if [ "$scale" = 10 ]; then cp "$D/known.txt" "$D/load.txt"; else cp "$D/tenants.txt" "$D/load.txt"; fi
	echo "hosts    $tag: $(wc -l <"$D/known.txt") known hosts; wrk rotates over $(wc -l <"$D/load.txt")"

	if [ "$scale" = 10 ]; then P_SB=${PORTS[1]} P_NG=${PORTS[2]} P_HA=${PORTS[3]}; else P_SB=${PORTS[4]} P_NG=${PORTS[5]} P_HA=${PORTS[6]}; fi

	start_switchboard "sb-$tag" "$DECL" "$D/sbdata" "$P_SB"
	PID_SB=$SB_PID

	fill "$HD/front-nginx.conf.in" "$D/nginx.conf" DIR="$D" PORT="$P_NG" UPPORT="$P_UP" MAP="$D/map.conf" \
		USER="$NGINX_USER" WORKERS="$THREADS" ACCESS_LOG=off "${NG_PEER[@]}"
	mkdir -p "$D/nginx"
	nginx -c "$D/nginx.conf" -p "$D/nginx/" -e "$D/front-error.log" >"$D/nginx.out" 2>&1 &
	PID_NGM=$!
	PIDS+=($PID_NGM)
	wait_port "$P_NG" "$D/nginx.out"
	for _ in $(seq 1 50); do # all workers up
		PID_NG=$(children "$PID_NGM" | tr '\n' ' ' | sed 's/ $//')
		[ "$(wc -w <<<"$PID_NG")" -ge "$THREADS" ] && break
		sleep 0.1
	done
	[ -n "$PID_NG" ] || die "no nginx worker ($D/front-error.log)"
	# shellcheck disable=SC2206 # one pid per worker
	PIDS+=($PID_NG)

	fill "$HD/haproxy.cfg.in" "$D/haproxy.cfg" DIR="$D" PORT="$P_HA" UPPORT="$P_UP" HOSTS="$D/known.txt" \
		WORKERS="$THREADS" "${HA_PEER[@]}"
	haproxy -f "$D/haproxy.cfg" -db >"$D/haproxy.out" 2>&1 &
	PID_HA=$!
	PIDS+=($PID_HA)
	wait_port "$P_HA" "$D/haproxy.out"

	echo "rss      $tag idle, after start: switchboard $(rss_kb "$PID_SB") kB, nginx worker(s) $(rss_kb "$PID_NG") kB" \
		"(master $(rss_kb "$PID_NGM") kB), haproxy $(rss_kb "$PID_HA") kB"
	printf 'http.%s.switchboard.rss_idle %s kB\nhttp.%s.nginx.rss_idle %s kB\nhttp.%s.nginx_master.rss_idle %s kB\nhttp.%s.haproxy.rss_idle %s kB\n' \
		"$tag" "$(rss_kb "$PID_SB")" "$tag" "$(rss_kb "$PID_NG")" "$tag" "$(rss_kb "$PID_NGM")" "$tag" "$(rss_kb "$PID_HA")" >>"$TMP/extra.txt"

	check_proxy switchboard "$P_SB" "$D/known.txt"
	check_proxy nginx "$P_NG" "$D/known.txt"
	check_proxy haproxy "$P_HA" "$D/known.txt"
	if [ "$scale" = 10 ]; then
		th=$(head -n 1 "$D/tenants.txt")
		check_headers switchboard "$P_SB" "$th"
		check_headers nginx "$P_NG" "$th"
		check_headers haproxy "$P_HA" "$th"
	fi

	names=(switchboard nginx haproxy)
	ports=("$P_SB" "$P_NG" "$P_HA")
	pids=("$PID_SB" "$PID_NG $PID_NGM" "$PID_HA") # nginx: workers and master
	for round in $(seq 1 "$ROUNDS"); do
		for k in 0 1 2; do
			j=$(((k + round - 1) % 3)) # rotate who goes first
			measure "$tag" "${names[$j]}" "$round" "${ports[$j]}" "${pids[$j]}" "$D/load.txt"
		done
	done

	add_under_load "$tag" "$P_SB" "$D/sbdata" "$D/load.txt"

	if [ "$scale" = 10 ]; then
		# once, with the access log on: a second server, on a copy of the
		# store (one server per data directory: its admin socket is there)
		mkdir -p "$D/sbdata-log"
		"$PY" -c 'import sqlite3, sys
src = sqlite3.connect(sys.argv[1]); dst = sqlite3.connect(sys.argv[2]); src.backup(dst)' \
			"$D/sbdata/switchboard.db" "$D/sbdata-log/switchboard.db"
		cp "$D/sbdata/secret.key" "$D/sbdata-log/" 2>/dev/null || true
		start_switchboard "sb-logon" "$DECL_LOG" "$D/sbdata-log" "${PORTS[7]}"
		measure "$tag" switchboard_log "${ROUNDS}" "${PORTS[7]}" "$SB_PID" "$D/load.txt"
		LOGON="$RPS $P50 $P99 $(wc -c <"$TMP/access.log")"
		stop_pid "$SB_PID"
		rm -f "$TMP/access.log"
	fi
	echo "rss      $tag after the runs: switchboard $(rss_kb "$PID_SB") kB, nginx master $(rss_kb "$PID_NGM") kB"
	stop_pid "$PID_SB"
	# shellcheck disable=SC2086 # one pid per worker
	stop_pid "$PID_NGM" $PID_NG
	stop_pid "$PID_HA"
	echo
done

# ---- summary -----------------------------------------------------------------
# stats tag proxy column: "median min max"
stats() {
	awk -v t="$1" -v p="$2" -v c="$3" '$1 == t && $2 == p { print $c }' "$RESULTS" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) printf "%s %s %s", a[int((NR + 1) / 2)], a[1], a[NR]; else printf "nan nan nan" }'
}

echo "Results: medians of $ROUNDS runs (min-max); PSS of every process of the proxy after each run (nginx: master and workers)"
echo
printf '| %-6s | %-11s | %-24s | %-21s | %-21s | %-9s | %-11s | %s |\n' hosts proxy "req/s" "p50 ms" "p99 ms" "PSS MiB" "CPU us/req" errors
printf '|--------|-------------|--------------------------|-----------------------|-----------------------|-----------|-------------|--------|\n'
for tag in h10 h100k; do
	for proxy in switchboard nginx haproxy; do
		read -r rm rl rh <<<"$(stats $tag $proxy 4)"
		read -r pm pl ph <<<"$(stats $tag $proxy 5)"
		read -r qm ql qh <<<"$(stats $tag $proxy 6)"
		read -r sm _ _ <<<"$(stats $tag $proxy 7)"
		read -r cm _ _ <<<"$(stats $tag $proxy 8)"
		errs=$(awk -v t=$tag -v p=$proxy '$1 == t && $2 == p { s += $9 + $10 } END { print s + 0 }' "$RESULTS")
		printf -v c_rps '%.0f (%.0f-%.0f)' "$rm" "$rl" "$rh"
		printf -v c_p50 '%.3f (%.3f-%.3f)' "$pm" "$pl" "$ph"
		printf -v c_p99 '%.3f (%.3f-%.3f)' "$qm" "$ql" "$qh"
		printf '| %-6s | %-11s | %-24s | %-21s | %-21s | %9.1f | %11.2f | %6s |\n' \
			"$tag" "$proxy" "$c_rps" "$c_p50" "$c_p99" "$(awk -v k="$sm" 'BEGIN { print k / 1024 }')" "$cm" "$errs"
		{
			echo "http.$tag.$proxy.rps $rm req/s"
			echo "http.$tag.$proxy.p50 $pm ms"
			echo "http.$tag.$proxy.p99 $qm ms"
			echo "http.$tag.$proxy.pss $sm kB"
			echo "http.$tag.$proxy.cpu_per_req $cm us"
			echo "http.$tag.$proxy.errors $errs count"
		} >>"$TMP/lines.txt"
	done
done
echo
for tag in h10 h100k; do
	sb=$(stats $tag switchboard 4 | cut -d' ' -f1)
	ng=$(stats $tag nginx 4 | cut -d' ' -f1)
	ha=$(stats $tag haproxy 4 | cut -d' ' -f1)
	sq=$(stats $tag switchboard 6 | cut -d' ' -f1)
	nq=$(stats $tag nginx 6 | cut -d' ' -f1)
	hq=$(stats $tag haproxy 6 | cut -d' ' -f1)
	ratio=$(awk -v s="$sb" -v n="$ng" -v h="$ha" 'BEGIN { b = n > h ? n : h; printf "%.3f", s / b }')
	better=$(awk -v n="$ng" -v h="$ha" 'BEGIN { print (n > h ? "nginx" : "haproxy") }')
	echo "target   $tag: Switchboard req/s / $better req/s = $ratio (target >= 1.0);" \
		"p99 $sq ms vs nginx $nq ms, haproxy $hq ms (target: no higher)"
	echo "http.$tag.rps_ratio_vs_best $ratio x" >>"$TMP/lines.txt"
done
s10=$(stats h10 switchboard 4 | cut -d' ' -f1)
s100=$(stats h100k switchboard 4 | cut -d' ' -f1)
drop=$(awk -v a="$s10" -v b="$s100" 'BEGIN { printf "%.3f", b / a }')
echo "target   Switchboard req/s at 100,000 tenants / at 10 hosts = $drop (target: no drop)"
echo "http.switchboard.rps_100k_over_10 $drop x" >>"$TMP/lines.txt"
while read -r tag med max cmd rps err; do
	echo "target   tenant added under load ($tag mix): median $med ms, max $max ms after the add returned" \
		"(add command median $cmd ms), wrk errors $err (target: <= 1000 ms, 0 errors)"
	{
		echo "http.$tag.add.delay_median $med ms"
		echo "http.$tag.add.delay_max $max ms"
		echo "http.$tag.add.command_median $cmd ms"
		echo "http.$tag.add.wrk_rps $rps req/s"
		echo "http.$tag.add.wrk_errors $err count"
	} >>"$TMP/lines.txt"
done <"$TMP/adds.txt"
if [ -n "$LOGON" ]; then
	read -r lr lp lq lb <<<"$LOGON"
	echo "logon    Switchboard, h10, access log on (one run): $lr req/s, p50 $lp ms, p99 $lq ms," \
		"$((lb / 1048576)) MiB of log (vs the log-off median $s10 req/s)"
	{
		echo "http.h10.switchboard_log.rps $lr req/s"
		echo "http.h10.switchboard_log.p99 $lq ms"
	} >>"$TMP/lines.txt"
fi
echo
echo "http.threads $THREADS count"
cat "$TMP/lines.txt" "$TMP/extra.txt"
if [ "$FAILED" != 0 ]; then
	echo "http.sh: some checks failed (see ERROR lines above)" >&2
	exit 1
fi
