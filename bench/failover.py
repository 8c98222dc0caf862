"""Failover: a node holding an app is killed (SIGKILL) under load; how long until the
cluster notices, places the app elsewhere and serves it again, and how many requests failed.

usage: failover.py SHOAL_BINARY [runs] [replicas]

Starts etcd (free loopback ports), one `shoal server` and three `shoal node`s, applies the C
hello app (`replicas` of it, default 1), loads it through the nodes that do not hold it (or,
with every node a holder, through all but the one killed; keep-alive, one client thread per
node), kills a holder, and times from the kill:
  detected   the holder's status turns NotReady,
  placed     the app's placement names another node,
  serving    the first 200 after which no request fails.
"""

import http.client
import json
import os
import socket
import statistics
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

shoal = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
replicas = int(sys.argv[3]) if len(sys.argv) > 3 else 1
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(args, env=None, ready="API:"):
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env={**os.environ, **(env or {})})
    values = {}
    for line in p.stdout:
        line = line.strip()
        if ":" in line:
            k, v = line.split(":", 1)
            values[k] = v.strip()
        if line.startswith(ready):
            break
    return p, values


def one_run(tmp):
    client, peer = free_port(), free_port()
    etcd = subprocess.Popen(
        ["etcd", "--data-dir", f"{tmp}/etcd", "--name", "b",
         "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
         "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"b=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [etcd]
    try:
        time.sleep(0.1)
        server, s = start([shoal, "server", "--store", f"etcd://127.0.0.1:{client}", "--api", "127.0.0.1:0",
                           "--data-dir", f"{tmp}/server"])
        procs.append(server)
        api = s["API"]
        token = open(f"{tmp}/server/token").read().strip()
        join_token = open(f"{tmp}/server/join-token").read().strip()
        ca = f"{tmp}/server/tls/ca.crt"
        tls = ssl.create_default_context(cafile=ca)
        nodes = {}
        for name in ("n1", "n2", "n3"):
            p, v = start([shoal, "node", "--name", name, "--http", "127.0.0.1:0", "--max-instances", "64",
                          "--data-dir", f"{tmp}/{name}"],
                         env={"SHOAL_SERVER": api, "SHOAL_CA": ca, "SHOAL_JOIN_TOKEN": join_token}, ready="ingress:")
            procs.append(p)
            nodes[name] = (p, v["ingress"])

        def get(path):
            req = urllib.request.Request(f"{api}{path}", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, context=tls) as resp:
                return json.load(resp)

        while sum(n["status"]["phase"] == "Ready" for n in get("/v1/nodes")) < 3:
            time.sleep(0.05)
        env = {"SHOAL_SERVER": api, "SHOAL_CA": ca, "SHOAL_TOKEN": token}
        manifest = open(f"{root}/examples/hello-c/app.yaml").read().replace(
            "./hello.wasm", f"{root}/examples/hello-c/hello.wasm")
        manifest += f"  placement: {{replicas: {replicas}}}\n"
        subprocess.run([shoal, "apply", "-f", "-"], input=manifest.encode(), env={**os.environ, **env},
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([shoal, "wait", "app", "hello"], env={**os.environ, **env}, check=True,
                       stdout=subprocess.DEVNULL)
        placed = get("/v1/namespaces/default/apps/hello")["status"]["placement"]["nodes"]
        holder = placed[0]
        others = [url for name, (_, url) in nodes.items() if name not in placed] or \
                 [url for name, (_, url) in nodes.items() if name != holder]

        log, stop = [], threading.Event()

        def load(url):
            host = url.replace("http://", "")
            h, port = host.split(":")
            conn = None
            while not stop.is_set():
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(h, int(port), timeout=10)
                    conn.request("GET", "/hello")
                    r = conn.getresponse()
                    r.read()
                    log.append((time.monotonic(), r.status))
                except OSError:
                    log.append((time.monotonic(), 0))
                    conn = None

        threads = [threading.Thread(target=load, args=(u,)) for u in others]
        for t in threads:
            t.start()
        time.sleep(2)
        killed = time.monotonic()
        nodes[holder][0].kill()
        detected = placed = None
        while detected is None or placed is None:
            now = time.monotonic()
            if detected is None and any(n["metadata"]["name"] == holder and n["status"]["phase"] == "NotReady"
                                        for n in get("/v1/nodes")):
                detected = now - killed
            if placed is None and holder not in get("/v1/namespaces/default/apps/hello")["status"]["placement"]["nodes"]:
                placed = now - killed
            time.sleep(0.02)
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join()
        after = [(t - killed, s) for t, s in log if t >= killed]
        failed = [t for t, s in after if s != 200]
        serving = max(failed) if failed else 0.0
        return detected, placed, serving, len(failed), len(after)
    finally:
        for p in procs:
            p.kill()
            p.wait()


results = []
for i in range(runs):
    with tempfile.TemporaryDirectory() as tmp:
        results.append(one_run(tmp))
print(f"replicas: {replicas}")
print("| run | detected (s) | placed elsewhere (s) | serving again (s) | failed requests | requests after the kill |")
print("|---|---|---|---|---|---|")
for i, (d, p, s, f, n) in enumerate(results, 1):
    print(f"| {i} | {d:.2f} | {p:.2f} | {s:.2f} | {f} | {n} |")
med = lambda k: statistics.median(r[k] for r in results)
print(f"| median | {med(0):.2f} | {med(1):.2f} | {med(2):.2f} | {med(3):.0f} | |")
