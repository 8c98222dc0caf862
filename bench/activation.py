"""Activation latency: the first request to an app that went idle, beside warm requests.

usage: activation.py API TOKEN INGRESS SHOAL_PID CYCLES NAME=PATH...

Each request is a fresh connection (GET, body read), timed from connect to the last byte.
For each app: 200 warm requests; then CYCLES times: wait (polling the API) until the app's
status says Idle, and time one request. Also reads Shoal's RSS with every app loaded, after
requests, and once every app went idle. Prints Markdown table rows.
"""

import http.client
import json
import statistics
import sys
import time
import urllib.parse
import urllib.request
import ssl
import os

api, token, ingress, pid, cycles = sys.argv[1:6]
apps = [a.split("=", 1) for a in sys.argv[6:]]
cycles = int(cycles)
host = urllib.parse.urlparse(ingress)


def get(path):
    start = time.perf_counter()
    c = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 200, (path, r.status)
    return (time.perf_counter() - start) * 1000


# The API is HTTPS with the CA `shoal up` made in its data dir.
tls = ssl.create_default_context(cafile=os.path.join(os.environ["SHOAL_DATA_DIR"], "tls", "ca.crt"))


def state(name):
    req = urllib.request.Request(
        f"{api}/v1/namespaces/default/apps/{name}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, context=tls) as resp:
        status = json.load(resp)["status"]
    return (status.get("scale") or {}).get("state")


def wait_idle(name):
    while state(name) != "Idle":
        time.sleep(0.05)


def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


loaded_rss = rss_mib()
for _, path in apps:
    for _ in range(50):
        get(path)
active_rss = rss_mib()
for name, _ in apps:
    wait_idle(name)
idle_rss = rss_mib()

print("| request | p50 ms | p99 ms |")
print("|---|---|---|")
for name, path in apps:
    for _ in range(20):
        get(path)
    warm = [get(path) for _ in range(200)]
    cold = []
    for _ in range(cycles):
        wait_idle(name)
        cold.append(get(path))
    print(f"| {name}: warm (app active) | {statistics.median(warm):.2f} | {pct(warm, 0.99):.2f} |")
    print(f"| {name}: activation (first request to the idle app) | {statistics.median(cold):.2f} | {pct(cold, 0.99):.2f} |")
print()
print(
    f"Shoal RSS: {loaded_rss:.0f} MiB with both apps loaded and never requested, "
    f"{active_rss:.0f} MiB after 50 requests to each, {idle_rss:.0f} MiB once both went idle"
)
