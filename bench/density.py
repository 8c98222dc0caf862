"""Helpers of bench/density.sh: unique components, readiness, cold requests, Zipf load."""

import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.parse


def leb128(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def custom_section(name, payload):
    body = leb128(len(name)) + name + payload
    return b"\x00" + leb128(len(body)) + body


def prepare(component, apps_dir, n):
    """N component files (each with its own custom section, so its own digest) and manifests."""
    base = open(component, "rb").read()
    for i in range(n):
        wasm = os.path.join(apps_dir, f"a{i}.wasm")
        with open(wasm, "wb") as f:
            f.write(base + custom_section(b"shoal-bench", f"app {i}".encode()))
        with open(os.path.join(apps_dir, f"a{i}.yaml"), "w") as f:
            f.write(
                "apiVersion: shoal/v1alpha1\nkind: App\n"
                f"metadata: {{name: a{i}}}\n"
                f"spec:\n  component: a{i}.wasm\n  routes: [{{path: /a{i}}}]\n"
            )


def wait_ready(n):
    while True:
        out = subprocess.run(
            [os.environ["shoal"], "get", "apps", "-o", "json"],
            check=True, capture_output=True, text=True,
        ).stdout
        apps = json.loads(out)
        failed = [a["metadata"]["name"] for a in apps if a["status"].get("phase") == "Failed"]
        if failed:
            sys.exit(f"apps failed: {failed[:5]}")
        if sum(a["status"].get("phase") == "Ready" for a in apps) >= n:
            return
        time.sleep(0.5)


def cold(url, n, samples=200):
    """p50/p99 of the first request to apps never requested before, over one keep-alive connection."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    picks = random.Random(1).sample(range(n), min(samples, n))
    times = []
    for i in picks:
        start = time.perf_counter()
        conn.request("GET", f"/a{i}")
        resp = conn.getresponse()
        body = resp.read()
        times.append((time.perf_counter() - start) * 1000)
        if resp.status != 200:
            sys.exit(f"/a{i}: {resp.status} {body!r}")
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return f"{statistics.median(times):.2f} / {p99:.2f} ms"


def zipf_lua(n, paths=20000, s=1.1):
    """A wrk script whose requests pick app i with probability ∝ 1 / (i+1)^s."""
    weights = [1 / (i + 1) ** s for i in range(n)]
    picks = random.Random(2).choices(range(n), weights=weights, k=paths)
    lines = ",".join(f'"/a{i}"' for i in picks)
    return (
        f"local paths = {{{lines}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        "  return wrk.format(nil, paths[i])\n"
        "end\n"
    )


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "prepare":
        prepare(args[0], args[1], int(args[2]))
    elif cmd == "wait-ready":
        wait_ready(int(args[0]))
    elif cmd == "cold":
        print(cold(args[0], int(args[1])))
    elif cmd == "zipf-lua":
        print(zipf_lua(int(args[0])))
