# Shell helpers shared by bench/http.sh and bench/dns.sh (sourced, not run:
# not executable, so `make bench` does not start it).

# bench_machine [NPROC_NOTE]: the lines that say what machine and commit the
# figures come from.
bench_machine() {
	echo "date     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "kernel   $(uname -srm)"
	echo "cpu      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	echo "nproc    $(nproc)${1:+ $1}"
	echo "memory   $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "load     $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "commit   $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)')"
}

# alive PID: running (a zombie is not: this machine's init may never reap one)
alive() {
	local st
	st=$(sed 's/^.*) //' /proc/"$1"/stat 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# bench_cleanup KEEP: stop every PID in PIDS (TERM, then KILL after 2 s) and
# remove $TMP unless KEEP is set.
bench_cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		local any=0
		for p in "${PIDS[@]}"; do if alive "$p"; then any=1; fi; done
		[ $any = 0 ] && break
		sleep 0.2
	done
	for p in "${PIDS[@]}"; do if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi; done
	wait 2>/dev/null || true
	if [ -n "${1:-}" ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
