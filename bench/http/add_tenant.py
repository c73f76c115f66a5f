#!/usr/bin/python3
"""Tenant added under load (bench/http.sh).

    add_tenant.py SWITCHBOARD DECL DATA PORT SLUG ZONE

Checks that SLUG.ZONE answers 404 on 127.0.0.1:PORT, runs
`SWITCHBOARD tenants add SLUG -c DECL --data DATA`, then, from the moment that
command returns, sends GET / with that Host every 20 ms (a new connection each
time, like curl) until one answers 200, and 5 more to check it stays 200.
Prints one line: "delay_ms ADD_MS POLLS" where delay_ms is from the add's
return to the first 200, ADD_MS how long the add command took, POLLS the
requests sent. Exits 1 if the tenant is not served within 5 s, or on anything
unexpected.
"""
import http.client
import subprocess
import sys
import time


def status(port, host):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def main():
    sb, decl, data, port, slug, zone = sys.argv[1:7]
    port = int(port)
    host = f"{slug}.{zone}"
    before = status(port, host)
    if before != 404:
        print(f"add_tenant: {host} answered {before} before it was added (expected 404)",
              file=sys.stderr)
        return 1
    t0 = time.monotonic()
    p = subprocess.run([sb, "tenants", "add", slug, "-c", decl, "--data", data],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t1 = time.monotonic()
    if p.returncode != 0:
        print(f"add_tenant: tenants add {slug} failed: {p.stderr.strip()}", file=sys.stderr)
        return 1
    polls = 0
    tick = t1
    while True:
        polls += 1
        st = status(port, host)
        if st == 200:
            t2 = time.monotonic()
            break
        if st != 404:
            print(f"add_tenant: {host} answered {st} while waiting (expected 404 then 200)",
                  file=sys.stderr)
            return 1
        if time.monotonic() - t1 > 5.0:
            print(f"add_tenant: {host} not served 5 s after the add", file=sys.stderr)
            return 1
        tick += 0.020
        time.sleep(max(0.0, tick - time.monotonic()))
    for _ in range(5):
        st = status(port, host)
        if st != 200:
            print(f"add_tenant: {host} answered {st} after a first 200", file=sys.stderr)
            return 1
    print(f"{(t2 - t1) * 1000:.1f} {(t1 - t0) * 1000:.1f} {polls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
