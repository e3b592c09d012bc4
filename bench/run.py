#!/usr/bin/env python3
"""gantry benchmarks: `make bench` runs this with the release binary.

    python3 bench/run.py GANTRY_BINARY [--envoy PATH] [--fanout PATH] [--out BENCHMARKS.md]

Generates configs of 100, 1,000, 3,000 and 10,000 HTTPRoutes (each with its own
hostname, Service and EndpointSlice, one file per route) under .bench/, then measures:

- `gantry translate` wall time and peak RSS per size;
- `gantry serve` steady-state RSS with a stock Envoy connected and serving every route;
- at 3,000 routes: time from writing a new HTTPRoute file to the first 200 through
  Envoy for its hostname (20 routes), while a client loop on the existing routes
  counts every non-200;
- at 10,000 routes: time from a one-route change to Envoy's ACK (as gantry receives
  it), and the bytes and resources of the Delta pushes that change caused; the same
  for a change of one EndpointSlice only, to the ACK of the endpoint push;
- at 1,000 routes, without Envoy: one route change fanned out to 1,000 Delta ADS streams
  of the Gateway (gantry-bench-fanout, bench/fanout.rs, built with `--features bench`,
  found next to the gantry binary), write -> all ACKed, and gantry's RSS growth;
- for each change figure, gantry's share (write -> push sent) beside Envoy's (push -> ACK);
- at 10,000 routes, what serde-saphyr alone costs `translate` on every core: parsing the
  input files, and writing the output as YAML (gantry-bench-yaml, bench/yaml.rs).

Writes the report to BENCHMARKS.md (and prints it). Python 3 standard library only;
loopback traffic only; every process it starts is stopped by pid; every wait is bounded.
"""

import argparse
import asyncio
import datetime
import http.client
import json
import os
import platform
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, ".bench")
SIZES = [100, 1000, 3000, 10000]
GATEWAY = "default/eg"
DOMAIN = "bench.test"
CHURN_SIZE = 3000
CHURN_ROUTES = 20
CHANGE_SIZE = 10000
CHANGES = 10
TRANSLATE_RUNS = 3
FANOUT_SIZE = 1000
FANOUT_STREAMS = 1000
FANOUT_CHANGES = 5
MiB = 1024 * 1024

# Targets from the issue.
TARGET_TRANSLATE_10K_S = 0.5
TARGET_RSS_MIB = {1000: 32, 10000: 150}
TARGET_PEAK_OVER_STEADY = 1.5
TARGET_PROPAGATION_P50_MS = 30
TARGET_CHANGE_ACK_MS = 100
TARGET_ENDPOINT_ACK_MS = 50
TARGET_FANOUT_S = 1.0
TARGET_FANOUT_RSS_GROWTH_MIB = 100


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def log(*args):
    print("[bench]", *args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def http_get(port, path, host=None, timeout=2.0):
    """(status, body) or (None, error text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    except OSError as e:
        return None, str(e)
    finally:
        conn.close()


def proc_status(pid, field):
    """A /proc/<pid>/status field in bytes (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def cpu_seconds(pid):
    """User + system CPU time a process has used so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are the 14th and 15th fields; fields[0] here is the 3rd.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mib(n):
    return n / MiB


def percentile(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


class Processes:
    """Every process the bench starts, so that all are stopped by pid."""

    def __init__(self):
        self.procs = []

    def start(self, name, args, log_path=None, **kwargs):
        out = open(log_path, "wb") if log_path else subprocess.DEVNULL
        proc = subprocess.Popen(args, stdout=kwargs.pop("stdout", out), stderr=out, **kwargs)
        proc.bench_name = name
        self.procs.append(proc)
        return proc

    def stop(self, proc, grace=5.0):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=grace)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self):
        for proc in reversed(list(self.procs)):
            try:
                self.stop(proc)
            except Exception as e:  # keep stopping the others
                log(f"stopping {proc.bench_name} (pid {proc.pid}): {e}")


# ---------------------------------------------------------------------------
# Config generation
# ---------------------------------------------------------------------------


def gateway_yaml(listener_port):
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: gantry
spec:
  controllerName: gantry.dev/gatewayclass-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: eg
  namespace: default
spec:
  gatewayClassName: gantry
  listeners:
    - name: http
      protocol: HTTP
      port: {listener_port}
"""


def route_yaml(name, backend_port, extra_filter=None, endpoint_port=None):
    """One HTTPRoute with its own hostname, Service and EndpointSlice. `endpoint_port`
    moves only the EndpointSlice's endpoint to another port (the Service's targetPort
    stays `backend_port`): the endpoint change of the EndpointSlice measurement."""
    if endpoint_port is None:
        endpoint_port = backend_port
    filters = ""
    if extra_filter is not None:
        filters = f"""      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set:
              - {{name: X-Bench, value: "{extra_filter}"}}
"""
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: default
spec:
  parentRefs:
    - name: eg
  hostnames: ["{name}.{DOMAIN}"]
  rules:
    - matches:
        - path: {{type: PathPrefix, value: /}}
{filters}      backendRefs:
        - {{name: {name}, port: 80}}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
spec:
  ports:
    - {{name: http, port: 80, targetPort: {backend_port}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: default
  labels:
    kubernetes.io/service-name: {name}
addressType: IPv4
ports:
  - {{name: http, port: {endpoint_port}}}
endpoints:
  - addresses: ["127.0.0.1"]
"""


def route_name(i):
    return f"r{i:05d}"


def generate(directory, n, listener_port, backend_port):
    if os.path.isdir(directory):
        shutil.rmtree(directory)
    os.makedirs(directory)
    with open(os.path.join(directory, "gateway.yaml"), "w") as f:
        f.write(gateway_yaml(listener_port))
    for i in range(n):
        name = route_name(i)
        with open(os.path.join(directory, f"{name}.yaml"), "w") as f:
            f.write(route_yaml(name, backend_port))


def write_atomically(path, text):
    """Writes a temp file (not *.yaml, so gantry ignores it) and renames it into place."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


# ---------------------------------------------------------------------------
# Helper processes: backend and client loop (this script, other modes)
# ---------------------------------------------------------------------------


async def backend_main(port):
    """A minimal keep-alive HTTP/1.1 server answering 200 "ok" to everything."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:].strip() or 0)
                if length:
                    await reader.readexactly(length)
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def client_main(port, n, rate, out_path):
    """Requests the existing routes round-robin over one keep-alive connection, at
    most `rate` requests per second, until SIGTERM; then writes its counts as JSON."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    total = 0
    failures = {}
    conn = None
    interval = 1.0 / rate
    next_at = time.monotonic()
    i = 0
    while not stop:
        host = f"{route_name(i % n)}.{DOMAIN}"
        i += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/", headers={"Host": host})
            response = conn.getresponse()
            response.read()
            status = str(response.status)
            if response.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            status = f"error: {type(e).__name__}"
            if conn is not None:
                conn.close()
            conn = None
        total += 1
        if status != "200":
            failures[status] = failures.get(status, 0) + 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
    with open(out_path, "w") as f:
        json.dump({"total": total, "failures": failures}, f)


# ---------------------------------------------------------------------------
# gantry + Envoy
# ---------------------------------------------------------------------------


class Metrics:
    """gantry's Prometheus text, parsed into {(name, labels): value}."""

    LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')

    def __init__(self, text):
        self.values = {}
        for line in text.splitlines():
            m = self.LINE.match(line)
            if m:
                self.values[(m.group(1), m.group(2) or "")] = float(m.group(3))

    def get(self, name, type_url=None):
        labels = ""
        if type_url is not None:
            labels = f'{{gateway="{GATEWAY}",type_url="{type_url}"}}'
        return self.values.get((name, labels), 0.0)

    def by_type(self, name):
        out = {}
        for (metric, labels), value in self.values.items():
            if metric == name:
                m = re.search(r'type_url="([^"]*)"', labels)
                if m:
                    out[m.group(1)] = value
        return out


class Stack:
    """gantry serve + one Envoy for the Gateway, on a config dir."""

    def __init__(self, procs, gantry, envoy, directory, listener_port, tag):
        self.procs = procs
        self.gantry_bin = gantry
        self.envoy_bin = envoy
        self.dir = directory
        self.listener_port = listener_port
        self.tag = tag
        self.xds_port = free_port()
        self.admin_port = free_port()
        self.logs = os.path.join(WORK, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.gantry = None
        self.envoy = None
        self.envoy_admin = None

    def serve_command(self):
        return [
            self.gantry_bin, "serve", "--config-dir", self.dir,
            "--xds-address", f"127.0.0.1:{self.xds_port}",
            "--admin-address", f"127.0.0.1:{self.admin_port}",
        ]

    def envoy_command(self, bootstrap, admin_path):
        return [
            self.envoy_bin, "-c", bootstrap, "--admin-address-path", admin_path,
            "--disable-hot-restart", "--concurrency", "1", "--log-level", "warn",
        ]

    def start_gantry(self):
        env = dict(os.environ, RUST_LOG="info")
        self.gantry_log = os.path.join(self.logs, f"gantry-{self.tag}.log")
        self.gantry = self.procs.start(
            "gantry", self.serve_command(), self.gantry_log, env=env)
        wait_until("gantry /healthz", lambda: self.admin("/healthz")[0] == 200, 60)

    def start(self):
        self.start_gantry()
        bootstrap = subprocess.run(
            [self.gantry_bin, "bootstrap", "--gateway", GATEWAY,
             "--xds-address", f"127.0.0.1:{self.xds_port}",
             "--admin-address", "127.0.0.1:0", "--ads", "delta", "--node-id", f"bench-{self.tag}"],
            check=True, capture_output=True, text=True, timeout=30).stdout
        bootstrap_path = os.path.join(self.logs, f"bootstrap-{self.tag}.yaml")
        with open(bootstrap_path, "w") as f:
            f.write(bootstrap)
        admin_path = os.path.join(self.logs, f"envoy-admin-{self.tag}.txt")
        if os.path.exists(admin_path):
            os.remove(admin_path)
        self.started_at = time.monotonic()
        self.envoy = self.procs.start(
            "envoy", self.envoy_command(bootstrap_path, admin_path),
            os.path.join(self.logs, f"envoy-{self.tag}.log"))

        def admin_address():
            if self.envoy.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.envoy.returncode}")
            try:
                with open(admin_path) as f:
                    return f.read().strip() or None
            except FileNotFoundError:
                return None
        self.envoy_admin = int(wait_until("envoy admin address", admin_address, 30).rsplit(":", 1)[1])

    def admin(self, path):
        return http_get(self.admin_port, path)

    def metrics(self):
        status, text = self.admin("/metrics")
        if status != 200:
            raise RuntimeError(f"gantry /metrics: {status} {text}")
        return Metrics(text)

    def envoy_stat(self, name):
        status, text = http_get(self.envoy_admin, f"/stats?filter=^{re.escape(name)}$")
        if status != 200:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return None

    def wait_all_routable(self, n, timeout):
        """Until the first and last route answer 200 through Envoy; returns seconds since Envoy started."""
        def routable():
            if self.gantry.poll() is not None:
                raise RuntimeError(f"gantry exited with {self.gantry.returncode}")
            return all(http_get(self.listener_port, "/", f"{route_name(i)}.{DOMAIN}")[0] == 200
                       for i in (n - 1, 0, n // 2))
        wait_until(f"{n} routes routable", routable, timeout, interval=0.1)
        elapsed = time.monotonic() - self.started_at
        self.wait_settled(timeout)
        return elapsed

    def wait_settled(self, timeout):
        """Every push ACKed: no xDS response left unanswered."""
        def settled():
            m = self.metrics()
            pushes = m.by_type("gantry_xds_pushes_total")
            acks = m.by_type("gantry_xds_acks_total")
            return all(acks.get(t, 0) >= v for t, v in pushes.items())
        wait_until("every push ACKed", settled, timeout, interval=0.2)

    def translation_durations(self):
        """duration_ms of every translation gantry logged so far."""
        with open(self.gantry_log, errors="replace") as f:
            text = f.read()
        return [float(m) for m in re.findall(r'duration_ms="?([0-9.]+)', text)]

    def stop(self):
        for proc in (self.envoy, self.gantry):
            if proc is not None:
                self.procs.stop(proc)


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------


def run_measured(args, stdout_path):
    """Runs a command to completion; returns (wall seconds, peak RSS bytes, exit code)."""
    with open(stdout_path, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE)
        # wait4 gives this child's own rusage (ru_maxrss is KiB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {stderr[-2000:]}")
    return wall, usage.ru_maxrss * 1024


def measure_translate(gantry, dirs):
    results = {}
    for n, directory in dirs.items():
        out_path = os.path.join(WORK, f"translate-{n}.yaml")
        runs = [run_measured([gantry, "translate", "-f", directory], out_path)
                for _ in range(TRANSLATE_RUNS)]
        json_wall, json_rss = run_measured(
            [gantry, "translate", "-f", directory, "-o", "json"], out_path + ".json")
        results[n] = {
            "wall_s": statistics.median(w for w, _ in runs),
            "wall_runs": [w for w, _ in runs],
            "peak_rss": max(r for _, r in runs),
            "output_bytes": os.path.getsize(out_path),
            "json_wall_s": json_wall,
            "json_peak_rss": json_rss,
        }
        log(f"translate {n}: median {results[n]['wall_s']:.3f}s, peak RSS {mib(results[n]['peak_rss']):.1f} MiB")
    return results


def measure_yaml_floor(yaml_bin, directory, n):
    """gantry-bench-yaml on the input `measure_translate` read and the JSON output it wrote."""
    translate_json = os.path.join(WORK, f"translate-{n}.yaml.json")
    out = subprocess.run([yaml_bin, "--input", directory, "--translate-json", translate_json],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"gantry-bench-yaml failed ({out.returncode}): {out.stderr[-2000:]}")
    floor = json.loads(out.stdout)
    log(f"yaml floor {n}: parse {floor['yaml_parse_s']:.3f}s, parse_file {floor['parse_file_s']:.3f}s, "
        f"write {floor['yaml_write_s']:.3f}s")
    return floor


def median_rss(pid):
    """Median of 5 VmRSS samples over 2 s, after 1 s of quiet."""
    time.sleep(1.0)
    samples = []
    for _ in range(5):
        samples.append(proc_status(pid, "VmRSS"))
        time.sleep(0.4)
    return statistics.median(samples)


def steady_rss(stack):
    """gantry's RSS after the config is fully applied: median of 5 samples over 2 s."""
    return {
        "rss": median_rss(stack.gantry.pid),
        "hwm": proc_status(stack.gantry.pid, "VmHWM"),
        "envoy_rss": proc_status(stack.envoy.pid, "VmRSS"),
    }


def measure_churn(stack, n, rate):
    """New HTTPRoute file -> first 200 through Envoy, with a client loop on the existing routes."""
    client_out = os.path.join(WORK, "client.json")
    if os.path.exists(client_out):
        os.remove(client_out)
    client = stack.procs.start(
        "client", [sys.executable, os.path.abspath(__file__), "--client",
                   str(stack.listener_port), str(n), str(rate), client_out],
        os.path.join(stack.logs, "client.log"))
    time.sleep(1.0)  # the client loop warms up on the steady config
    before = stack.metrics()
    translations_before = len(stack.translation_durations())
    latencies = []
    # Envoy's share of each new route: gantry's route push -> ACK over that change.
    route_push_to_ack = []
    conn = http.client.HTTPConnection("127.0.0.1", stack.listener_port, timeout=2)
    for k in range(CHURN_ROUTES):
        name = f"new{k:02d}"
        host = f"{name}.{DOMAIN}"
        text = route_yaml(name, stack.backend_port)
        path = os.path.join(stack.dir, f"{name}.yaml")
        route_before = stack.metrics()
        started = time.perf_counter()
        write_atomically(path, text)
        deadline = started + 10
        while True:
            try:
                conn.request("GET", "/", headers={"Host": host})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", stack.listener_port, timeout=2)
                status = None
            if status == 200:
                latencies.append(time.perf_counter() - started)
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{host} not routable within 10 s")
            time.sleep(0.001)
        time.sleep(0.3)  # let the change settle before the next one
        route_push_to_ack.append(histogram_mean(route_before, stack.metrics(), "route"))
    conn.close()
    time.sleep(1.0)
    after = stack.metrics()
    stack.procs.stop(client)
    with open(client_out) as f:
        counts = json.load(f)
    translations = stack.translation_durations()[translations_before:]
    # gantry's share: write -> route push sent = write -> first 200 - route push -> ACK
    # (what Envoy takes from the ACK to routing the first request is left in it).
    gantry_ms = [x * 1000 - a for x, a in zip(latencies, route_push_to_ack) if a is not None]
    return {
        "latencies_ms": [x * 1000 for x in latencies],
        "route_push_to_ack_ms": [a for a in route_push_to_ack if a is not None],
        "gantry_ms": gantry_ms,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "client": counts,
        "translate_ms": translations,
        "ack_route_ms": histogram_mean(before, after, "route"),
        "ack_cluster_ms": histogram_mean(before, after, "cluster"),
        "ack_endpoint_ms": histogram_mean(before, after, "endpoint"),
        "bytes": diff_by_type(before, after, "gantry_xds_push_bytes_total"),
    }


def histogram_mean(before, after, type_url):
    name = "gantry_xds_ack_duration_seconds"
    count = after.get(name + "_count", type_url) - before.get(name + "_count", type_url)
    total = after.get(name + "_sum", type_url) - before.get(name + "_sum", type_url)
    return (total / count * 1000) if count else None


def diff_by_type(before, after, name):
    a, b = after.by_type(name), before.by_type(name)
    return {t: a[t] - b.get(t, 0) for t in a if a[t] - b.get(t, 0)}


# The resource type whose ACK ends each change measurement.
CHANGE_ACK_TYPE = {"modify": "route", "add": "route", "endpoint": "endpoint"}


def measure_change_to_ack(stack, n, kind):
    """A one-route change -> gantry receiving Envoy's ACK of the push it causes.

    kind "modify": an existing route gets a header filter (only its RouteConfiguration changes);
    kind "add": a new route file (RouteConfiguration + one Cluster + one ClusterLoadAssignment);
    kind "endpoint": an existing route's EndpointSlice moves its endpoint to the second
    backend's port (only its ClusterLoadAssignment changes), timed to the endpoint ACK.

    Envoy's share is gantry's push -> ACK histogram over the timed ACK; gantry's share
    (write -> push sent) is the rest."""
    ack_type = CHANGE_ACK_TYPE[kind]
    samples = []
    for k in range(CHANGES):
        before = stack.metrics()
        acks_before = before.get("gantry_xds_acks_total", ack_type)
        translations_before = len(stack.translation_durations())
        if kind == "modify":
            name = route_name((k * 997) % n)
            text = route_yaml(name, stack.backend_port, extra_filter=f"change-{k}")
        elif kind == "endpoint":
            # Routes "modify" does not touch (k * 997 + 500 is never a multiple of 997 here).
            name = route_name((k * 997 + 500) % n)
            text = route_yaml(name, stack.backend_port, endpoint_port=stack.backend2_port)
        else:
            name = f"add{k:02d}"
            text = route_yaml(name, stack.backend_port)
        path = os.path.join(stack.dir, f"{name}.yaml")
        started = time.perf_counter()
        write_atomically(path, text)

        def acked():
            m = stack.metrics()
            return m if m.get("gantry_xds_acks_total", ack_type) > acks_before else None
        ack_metrics = wait_until(f"{ack_type} ACK", acked, 10, interval=0.002)
        elapsed = time.perf_counter() - started
        time.sleep(1.0)  # anything else the change causes (and its ACKs)
        after = stack.metrics()
        push_to_ack = histogram_mean(before, ack_metrics, ack_type)
        sample = {
            "ms": elapsed * 1000,
            "bytes": diff_by_type(before, after, "gantry_xds_push_bytes_total"),
            "resources": diff_by_type(before, after, "gantry_xds_pushed_resources_total"),
            "pushes": diff_by_type(before, after, "gantry_xds_pushes_total"),
            "translate_ms": stack.translation_durations()[translations_before:],
            "push_to_ack_ms": push_to_ack,
            "gantry_ms": elapsed * 1000 - push_to_ack if push_to_ack is not None else None,
        }
        if kind == "endpoint":
            # Envoy routes with the moved endpoint (checked after the timing).
            sample["status"] = http_get(stack.listener_port, "/", f"{name}.{DOMAIN}")[0]
        samples.append(sample)
    return samples


class FanoutClient:
    """bench/fanout.rs (gantry-bench-fanout): N Delta ADS streams in one process; its
    JSON-lines report is read by a thread into a queue."""

    def __init__(self, procs, binary, xds_port, streams, log_path):
        self.command = [binary, "--xds-address", f"127.0.0.1:{xds_port}",
                        "--streams", str(streams), "--node-cluster", GATEWAY]
        self.proc = procs.start("fanout", self.command, log_path, stdout=subprocess.PIPE)
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                log(f"fanout: {line!r}")

    def next_event(self, kind, timeout, predicate=lambda e: True):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no fanout event {kind} within {timeout}s")
            try:
                event = self.events.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gantry-bench-fanout exited with {self.proc.returncode}")
                continue
            if event["event"] == "stream_failed":
                raise RuntimeError(f"fanout stream failed: {event}")
            if event["event"] == kind and predicate(event):
                return event

    def drain(self):
        """Drops the events of the change before (a late second version, say)."""
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            if event["event"] == "stream_failed":
                raise RuntimeError(f"fanout stream failed: {event}")


def measure_fanout(procs, gantry, fanout_bin, directory, n, listener_port, backend_port):
    """One-route changes fanned out to FANOUT_STREAMS Delta ADS streams of the Gateway
    (gantry-bench-fanout; no Envoy), and gantry's RSS before and after the streams."""
    stack = Stack(procs, gantry, None, directory, listener_port, f"fanout-{n}")
    stack.backend_port = backend_port
    stack.start_gantry()
    try:
        wait_until("first translation", stack.translation_durations, 60)
        rss_before = median_rss(stack.gantry.pid)
        started = time.monotonic()
        client = FanoutClient(procs, fanout_bin, stack.xds_port, FANOUT_STREAMS,
                              os.path.join(stack.logs, "fanout.log"))
        try:
            synced = client.next_event("synced", 300)
            sync_s = synced["t"] - started
            stack.wait_settled(120)
            connected = stack.metrics().values.get(
                ("gantry_xds_connected_streams", f'{{gateway="{GATEWAY}",protocol="delta"}}'), 0)
            rss_synced = median_rss(stack.gantry.pid)
            hwm_synced = proc_status(stack.gantry.pid, "VmHWM")
            log(f"fanout: {FANOUT_STREAMS} streams synced in {sync_s:.2f}s ({int(connected)} connected); "
                f"gantry RSS {mib(rss_before):.1f} -> {mib(rss_synced):.1f} MiB")
            samples = []
            for k in range(FANOUT_CHANGES):
                client.drain()
                before = stack.metrics()
                acks_before = before.get("gantry_xds_acks_total", "route")
                translations_before = len(stack.translation_durations())
                name = route_name((k * 97) % n)
                text = route_yaml(name, stack.backend_port, extra_filter=f"fanout-{k}")
                path = os.path.join(stack.dir, f"{name}.yaml")
                cpu_before = (cpu_seconds(stack.gantry.pid), cpu_seconds(client.proc.pid))
                written = time.monotonic()
                write_atomically(path, text)
                event = client.next_event("all_acked", 60, lambda e: e["type"] == "route")
                cpu_after = (cpu_seconds(stack.gantry.pid), cpu_seconds(client.proc.pid))
                # gantry has counted every one of those ACKs too (checked after the timing,
                # so that no /metrics polling competes with the fan-out).
                wait_until("gantry counted every route ACK",
                           lambda: stack.metrics().get("gantry_xds_acks_total", "route")
                           >= acks_before + FANOUT_STREAMS, 30, interval=0.05)
                time.sleep(1.0)  # anything else the change causes (and its ACKs)
                after = stack.metrics()
                samples.append({
                    "ms": (event["last_acked"] - written) * 1000,
                    "first_received_ms": (event["first_received"] - written) * 1000,
                    "last_received_ms": (event["last_received"] - written) * 1000,
                    "client_ms": (event["last_acked"] - event["last_received"]) * 1000,
                    "gantry_cpu_s": cpu_after[0] - cpu_before[0],
                    "client_cpu_s": cpu_after[1] - cpu_before[1],
                    "translate_ms": stack.translation_durations()[translations_before:],
                    "push_to_ack_ms": histogram_mean(before, after, "route"),
                    "pushes": diff_by_type(before, after, "gantry_xds_pushes_total"),
                    "resources": diff_by_type(before, after, "gantry_xds_pushed_resources_total"),
                    "bytes": diff_by_type(before, after, "gantry_xds_push_bytes_total"),
                })
                log(f"fanout change {k}: all {FANOUT_STREAMS} ACKed {samples[-1]['ms']:.0f} ms "
                    f"after the write (first push received {samples[-1]['first_received_ms']:.0f} ms)")
            rss_after = median_rss(stack.gantry.pid)
            hwm = proc_status(stack.gantry.pid, "VmHWM")
            client_rss = proc_status(client.proc.pid, "VmRSS")
        finally:
            procs.stop(client.proc)
    finally:
        stack.stop()
    return {
        "streams": FANOUT_STREAMS,
        "connected": int(connected),
        "sync_s": sync_s,
        "rss_before": rss_before,
        "rss_synced": rss_synced,
        "hwm_synced": hwm_synced,
        "rss_after": rss_after,
        "hwm": hwm,
        "client_rss": client_rss,
        "samples": samples,
    }


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def verdict(ok):
    return "PASS" if ok else "MISS"


def fmt_ms(value):
    return "-" if value is None else f"{value:.0f} ms"


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def time_shares(ctx):
    """(label, total p50, gantry's share p50, translate median, Envoy's share p50) per change figure."""
    rows = []
    churn = ctx.get("churn")
    if churn:
        rows.append((f"New route at {CHURN_SIZE:,} → first 200 through Envoy",
                     churn["p50_ms"], median_or_none(churn["gantry_ms"]),
                     median_or_none(churn["translate_ms"]), median_or_none(churn["route_push_to_ack_ms"])))
    labels = {"modify": "one-route change (modify) → route ACK",
              "add": "one-route change (add) → route ACK",
              "endpoint": "EndpointSlice change → endpoint ACK"}
    for kind, samples in ctx["changes"].items():
        rows.append((f"{CHANGE_SIZE:,} routes, {labels[kind]}",
                     statistics.median(x["ms"] for x in samples),
                     median_or_none(x["gantry_ms"] for x in samples),
                     median_or_none(v for x in samples for v in x["translate_ms"]),
                     median_or_none(x["push_to_ack_ms"] for x in samples)))
    fo = ctx.get("fanout")
    if fo:
        samples = fo["samples"]
        rows.append((f"{fo['streams']:,} streams at {FANOUT_SIZE:,} routes, one-route change → all ACKed "
                     "(gantry: write → the last stream has received the push; the Envoy column is "
                     "the client's: last push received → last ACK sent)",
                     statistics.median(x["ms"] for x in samples),
                     median_or_none(x["last_received_ms"] for x in samples),
                     median_or_none(v for x in samples for v in x["translate_ms"]),
                     median_or_none(x["client_ms"] for x in samples)))
    return rows


def machine():
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {
        "load": load,
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def report(ctx):
    m = ctx["machine"]
    t = ctx["translate"]
    s = ctx["serve"]
    churn = ctx["churn"]
    lines = []
    add = lines.append
    add("# gantry benchmarks")
    add("")
    add("Generated by `make bench` (`bench/run.py`); numbers below are from one run on this machine.")
    add("")
    add(f"- Machine: {m['nproc']} CPUs (`nproc`), {m['cpu']}, {m['memory']} RAM, Linux {m['kernel']}")
    add(f"- Date: {m['date']}; load average (1, 5, 15 min) at start: {m['load']}, at end: {ctx['load_end']}")
    add(f"- gantry: `{ctx['gantry']}` (release profile), {ctx['gantry_version']}")
    add(f"- Envoy: `{ctx['envoy']}`, {ctx['envoy_version']}")
    add("- Input: one file per HTTPRoute `rNNNNN.yaml` holding the HTTPRoute (own hostname "
        f"`rNNNNN.{DOMAIN}`, one PathPrefix `/` rule), its Service and its EndpointSlice "
        "(127.0.0.1, one shared asyncio echo backend); plus `gateway.yaml` (GatewayClass + "
        "Gateway with one HTTP listener).")
    add("")
    add("## Summary")
    add("")
    add("| Figure | Measured | Target | |")
    add("|---|---|---|---|")
    t10 = t[10000]["wall_s"] if 10000 in t else None
    if t10 is not None:
        add(f"| `translate` 10,000 routes, wall | {t10 * 1000:.0f} ms | < {TARGET_TRANSLATE_10K_S} s | {verdict(t10 < TARGET_TRANSLATE_10K_S)} |")
        floor = ctx.get("yaml_floor")
        if floor:
            # serde-saphyr's own time for the two steps translate cannot skip (bench/yaml.rs).
            both = floor["yaml_parse_s"] + floor["yaml_write_s"]
            add(f"| of which serde-saphyr alone: parsing the input / writing the output, all cores | "
                f"{floor['yaml_parse_s'] * 1000:.0f} / {floor['yaml_write_s'] * 1000:.0f} ms "
                f"(together {both * 1000:.0f} ms) | (reported) | |")
    for n, limit in TARGET_RSS_MIB.items():
        if n in s:
            rss = mib(s[n]["rss"])
            add(f"| `serve` RSS at {n:,} routes, Envoy connected (steady) | {rss:.1f} MiB | < {limit} MiB | {verdict(rss < limit)} |")
            hwm = mib(s[n]["hwm"])
            add(f"| `serve` peak RSS (VmHWM) at {n:,} routes | {hwm:.1f} MiB | < {limit} MiB | {verdict(hwm < limit)} |")
            ratio = hwm / rss
            add(f"| `serve` peak / steady RSS at {n:,} routes | {ratio:.2f}x | < {TARGET_PEAK_OVER_STEADY}x steady | {verdict(ratio < TARGET_PEAK_OVER_STEADY)} |")
        if n in t:
            peak = mib(t[n]["peak_rss"])
            # A one-shot command holding its whole input and output; the targets are serve's.
            add(f"| `translate` peak RSS at {n:,} routes | {peak:.1f} MiB | (reported; `serve`'s limit is {limit} MiB) | |")
    if churn:
        add(f"| New route routable at {CHURN_SIZE:,} routes, p50 | {churn['p50_ms']:.0f} ms | < {TARGET_PROPAGATION_P50_MS} ms | {verdict(churn['p50_ms'] < TARGET_PROPAGATION_P50_MS)} |")
        add(f"| New route routable at {CHURN_SIZE:,} routes, p99 | {churn['p99_ms']:.0f} ms | (reported) | |")
        failed = sum(churn["client"]["failures"].values())
        add(f"| Failed requests during churn | {failed} of {churn['client']['total']:,} | 0 | {verdict(failed == 0)} |")
    for kind, samples in ctx["changes"].items():
        p50 = statistics.median(x["ms"] for x in samples)
        if kind == "endpoint":
            add(f"| {CHANGE_SIZE:,} routes, EndpointSlice change → Envoy ACK (endpoint), p50 | {p50:.0f} ms | < {TARGET_ENDPOINT_ACK_MS} ms | {verdict(p50 < TARGET_ENDPOINT_ACK_MS)} |")
        else:
            add(f"| {CHANGE_SIZE:,} routes, one-route change ({kind}) → Envoy ACK, p50 | {p50:.0f} ms | < {TARGET_CHANGE_ACK_MS} ms | {verdict(p50 < TARGET_CHANGE_ACK_MS)} |")
    for kind, samples in ctx["changes"].items():
        only = all(set(x["resources"]) <= ctx["expected_types"][kind] for x in samples)
        res = samples[-1]["resources"]
        carried = ", ".join(f"{int(v)} {k}" for k, v in sorted(res.items()))
        # Above --shard-routes-above (default 256) virtual hosts, the route resource
        # is the one shard of 64 that holds the host.
        why = "" if kind == "endpoint" else " (the route is the one shard of 64 holding the host)"
        add(f"| Delta push of that change ({kind}) carries only the changed resources | {carried}; "
            f"{sum(samples[-1]['bytes'].values()) / 1024:.0f} KiB{why} "
            f"| only changed | {verdict(only)} (per resource) |")
    if "endpoint" in ctx["changes"]:
        pushed = set().union(*(x["pushes"] for x in ctx["changes"]["endpoint"]))
        routed = [x["status"] for x in ctx["changes"]["endpoint"]]
        add(f"| EndpointSlice change: types pushed; Envoy routes to the moved endpoint | "
            f"{', '.join(sorted(pushed)) or '-'}; {routed.count(200)} of {len(routed)} answered 200 | "
            f"endpoint only; all | {verdict(pushed == {'endpoint'} and routed.count(200) == len(routed))} |")
    fo = ctx.get("fanout")
    if fo:
        p50 = statistics.median(x["ms"] for x in fo["samples"])
        add(f"| {fo['streams']:,} Delta ADS streams ({FANOUT_SIZE:,} routes), one-route change → all ACKed, p50 | "
            f"{p50:.0f} ms | < {TARGET_FANOUT_S:g} s | {verdict(p50 < TARGET_FANOUT_S * 1000)} |")
        growth = mib(fo["rss_after"] - fo["rss_before"])
        add(f"| gantry RSS growth with {fo['streams']:,} streams (steady after the changes − before the streams) | "
            f"{growth:.1f} MiB | < {TARGET_FANOUT_RSS_GROWTH_MIB} MiB | {verdict(growth < TARGET_FANOUT_RSS_GROWTH_MIB)} |")
        peak_growth = mib(fo["hwm"] - fo["rss_before"])
        add(f"| gantry peak (VmHWM) − RSS before the streams | {peak_growth:.1f} MiB | (reported) | |")
    shares = time_shares(ctx)
    if shares:
        add("")
        add("### Where the time goes: gantry's share beside Envoy's")
        add("")
        add("gantry's share is write → push sent; Envoy's is push → ACK as gantry measures it "
            "(`gantry_xds_ack_duration_seconds`, per change, of the type whose ACK ends the timing); "
            "gantry's share is the measured total minus Envoy's. translate+snapshot is gantry's log "
            "(`duration_ms`) and is inside gantry's share; the rest of it is the file event, reading "
            "and parsing the file, and the diff and push (gantry exports no metric for the file event, "
            "so these are not split further). Medians over the changes.")
        add("")
        add("| Change | Total (p50) | gantry: write → push sent | of which translate+snapshot | Envoy: push → ACK |")
        add("|---|---:|---:|---:|---:|")
        for label, total, gantry_part, translate, envoy_part in shares:
            add(f"| {label} | {fmt_ms(total)} | {fmt_ms(gantry_part)} | {fmt_ms(translate)} | {fmt_ms(envoy_part)} |")
    add("")
    add("## Commands")
    add("")
    add("```")
    for c in ctx["commands"]:
        add(c)
    add("```")
    add("")
    add("## translate")
    add("")
    add(f"`gantry translate -f DIR` (YAML to a file), median of {TRANSLATE_RUNS} runs; peak RSS is the child's "
        "`ru_maxrss` from `wait4`.")
    add("")
    add("| Routes | Wall (median) | Runs | Peak RSS | Output | `-o json` wall | `-o json` peak RSS |")
    add("|---:|---:|---|---:|---:|---:|---:|")
    for n, r in t.items():
        runs = ", ".join(f"{w * 1000:.0f}" for w in r["wall_runs"])
        add(f"| {n:,} | {r['wall_s'] * 1000:.0f} ms | {runs} ms | {mib(r['peak_rss']):.1f} MiB | "
            f"{r['output_bytes'] / MiB:.1f} MiB | {r['json_wall_s'] * 1000:.0f} ms | {mib(r['json_peak_rss']):.1f} MiB |")
    add("")
    add("## serve")
    add("")
    add("`gantry serve` with one Envoy (Delta ADS) connected and every route answering 200 through it; "
        "RSS is the median of 5 `VmRSS` samples over 2 s once every push is ACKed, HWM is `VmHWM`. "
        "Initial sync: Envoy start → first, middle and last route answer 200.")
    add("")
    add("| Routes | gantry RSS | gantry peak (VmHWM) | Envoy RSS | Initial sync | Translations logged (ms) |")
    add("|---:|---:|---:|---:|---:|---|")
    for n, r in s.items():
        tr = ", ".join(f"{x:.0f}" for x in r["translate_ms"][:3])
        add(f"| {n:,} | {mib(r['rss']):.1f} MiB | {mib(r['hwm']):.1f} MiB | {mib(r['envoy_rss']):.1f} MiB | "
            f"{r['sync_s']:.2f} s | {tr} |")
    add("")
    if churn:
        add(f"## Route propagation at {CHURN_SIZE:,} routes")
        add("")
        add(f"For each of {CHURN_ROUTES} new routes: write `newNN.yaml` (HTTPRoute + Service + "
            "EndpointSlice; written to a dot-file and renamed into place), then request its hostname "
            "through Envoy every ~1 ms until the first 200. Meanwhile one client process requests "
            f"the {CHURN_SIZE:,} existing hostnames round-robin over a keep-alive connection at up to "
            f"{ctx['client_rate']} req/s and counts every non-200 (and every connection error).")
        add("")
        lat = churn["latencies_ms"]
        add(f"- p50 **{churn['p50_ms']:.0f} ms**, p99 **{churn['p99_ms']:.0f} ms**, min {min(lat):.0f} ms, max {max(lat):.0f} ms")
        add(f"- all: {', '.join(f'{x:.0f}' for x in lat)} ms")
        failed = churn["client"]["failures"]
        add(f"- client loop: {churn['client']['total']:,} requests, non-200: "
            f"{sum(failed.values())} {json.dumps(failed) if failed else ''}")
        tr = churn["translate_ms"]
        if tr:
            add(f"- gantry translate+snapshot per change (from its log): median {statistics.median(tr):.1f} ms "
                f"({len(tr)} translations)")
        for t_ in ("cluster", "endpoint", "route"):
            v = churn[f"ack_{t_}_ms"]
            if v is not None:
                add(f"- push → ACK, {t_} (gantry's `gantry_xds_ack_duration_seconds`, mean): {v:.1f} ms")
        if churn.get("gantry_ms"):
            g_ = churn["gantry_ms"]
            add(f"- gantry's share per new route, write → route push sent (= write → first 200 − that "
                f"change's route push → ACK): median {statistics.median(g_):.0f} ms; all: "
                f"{', '.join(f'{x:.0f}' for x in g_)} ms")
            add(f"- Envoy's share, route push → ACK per new route: "
                f"{', '.join(f'{x:.0f}' for x in churn['route_push_to_ack_ms'])} ms")
        add("")
    for kind, samples in ctx["changes"].items():
        add(f"## One-route change at {CHANGE_SIZE:,} routes: {kind}")
        add("")
        add(ctx["change_text"][kind])
        add("")
        ack_type = CHANGE_ACK_TYPE[kind]
        http_col = kind == "endpoint"
        add(f"| # | write → ACK | gantry: write → push sent | translate+snapshot | push → ACK ({ack_type}) "
            f"| pushes | resources | bytes |{' HTTP |' if http_col else ''}")
        add(f"|---:|---:|---:|---:|---:|---|---|---|{'---:|' if http_col else ''}")
        for i, x in enumerate(samples):
            tr = ", ".join(f"{v:.0f}" for v in x["translate_ms"]) or "-"
            pa = f"{x['push_to_ack_ms']:.1f} ms" if x["push_to_ack_ms"] is not None else "-"
            pushes = ", ".join(f"{k} {int(v)}" for k, v in sorted(x["pushes"].items()))
            res = ", ".join(f"{k} {int(v)}" for k, v in sorted(x["resources"].items()))
            by = ", ".join(f"{k} {int(v):,}" for k, v in sorted(x["bytes"].items()))
            status = f" {x['status']} |" if http_col else ""
            add(f"| {i + 1} | {x['ms']:.0f} ms | {fmt_ms(x.get('gantry_ms'))} | {tr} ms | {pa} | {pushes} | {res} | {by} |{status}")
        ms = [x["ms"] for x in samples]
        add("")
        add(f"p50 **{statistics.median(ms):.0f} ms**, max {max(ms):.0f} ms.")
        add("")
    fo = ctx.get("fanout")
    if fo:
        add(f"## Fan-out: {fo['streams']:,} Delta ADS streams at {FANOUT_SIZE:,} routes")
        add("")
        add(f"`gantry serve` on the {FANOUT_SIZE:,}-route input, no Envoy: `gantry-bench-fanout` "
            f"(bench/fanout.rs, one process, one tokio thread) opens {fo['streams']:,} Delta ADS streams, "
            f"each on its own HTTP/2 connection with its own node id and `node.cluster` `{GATEWAY}`; "
            "each subscribes as Envoy does (wildcard CDS and LDS, then EDS and RDS for the names "
            "those carry) and ACKs every response at once. "
            f"{len(fo['samples'])} times: rewrite one route file as in the modify change above; timed from the "
            "start of the write to the last of the streams sending its ACK of the new "
            "RouteConfiguration version (the client's CLOCK_MONOTONIC, the clock of the bench's "
            "`time.monotonic()`); then gantry's `gantry_xds_acks_total{type_url=\"route\"}` is "
            f"checked to have grown by {fo['streams']:,}. RSS: median `VmRSS` before the streams "
            "connect, after their initial sync, and after the changes.")
        add("")
        add(f"- initial sync of all streams (start of the client → every stream has all it subscribed "
            f"to): {fo['sync_s']:.2f} s; streams connected per gantry's gauge: {fo['connected']:,}")
        add(f"- gantry RSS: before the streams {mib(fo['rss_before']):.1f} MiB, after their sync "
            f"{mib(fo['rss_synced']):.1f} MiB (VmHWM {mib(fo['hwm_synced']):.1f}), after the changes "
            f"{mib(fo['rss_after']):.1f} MiB (VmHWM {mib(fo['hwm']):.1f}); the client: "
            f"{mib(fo['client_rss']):.1f} MiB")
        add("")
        add("gantry's push → ACK histogram starts when a stream's response is queued for sending, so "
            "with many streams it holds the time responses wait to be written; the client's own part "
            "is last push received → last ACK sent. CPU is user+system time (`/proc/PID/stat`) of "
            "gantry and of the client from the write to the last ACK, on a machine of "
            f"{os.cpu_count()} CPUs.")
        add("")
        add("| # | write → all ACKed | write → first stream has it | write → last stream has it | "
            "translate+snapshot | push → ACK (gantry's histogram, mean) | gantry CPU | client CPU | pushes | bytes |")
        add("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for i, x in enumerate(fo["samples"]):
            tr = ", ".join(f"{v:.0f}" for v in x["translate_ms"]) or "-"
            pa = f"{x['push_to_ack_ms']:.1f} ms" if x["push_to_ack_ms"] is not None else "-"
            pushes = ", ".join(f"{k} {int(v)}" for k, v in sorted(x["pushes"].items()))
            by = ", ".join(f"{k} {int(v):,}" for k, v in sorted(x["bytes"].items()))
            add(f"| {i + 1} | {x['ms']:.0f} ms | {x['first_received_ms']:.0f} ms | "
                f"{x['last_received_ms']:.0f} ms | {tr} ms | {pa} | {x['gantry_cpu_s']:.2f} s | "
                f"{x['client_cpu_s']:.2f} s | {pushes} | {by} |")
        ms = [x["ms"] for x in fo["samples"]]
        add("")
        add(f"p50 **{statistics.median(ms):.0f} ms**, max {max(ms):.0f} ms.")
        add("")
    layouts = ctx.get("layouts", "").strip()
    if layouts:
        # bench/layouts.md, written by `gantry-bench-layouts` in the same `make bench`;
        # its headings go one level down to sit under this report's.
        add("## Envoy's side: route layouts (`bench/layouts.md`)")
        add("")
        for line in layouts.splitlines():
            add("#" + line if line.startswith("#") else line)
        add("")
    add(ctx.get("analysis", "").rstrip())
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gantry", help="the gantry binary (release build)")
    parser.add_argument("--envoy", default=os.environ.get(
        "GANTRY_ENVOY", os.path.join(ROOT, ".envoy/envoy/_bin/envoy")))
    parser.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--client-rate", type=int, default=500,
                        help="requests per second of the client loop during churn")
    parser.add_argument("--fanout", default=None,
                        help="gantry-bench-fanout (bench/fanout.rs; `cargo build --release "
                             "--features bench`); default: next to the gantry binary")
    parser.add_argument("--layouts", default=os.path.join(ROOT, "bench", "layouts.md"),
                        help="the route layout measurements (gantry-bench-layouts) included in the report")
    parser.add_argument("--analysis", default=os.path.join(ROOT, "bench", "analysis.md"),
                        help="hand-written analysis appended to the report")
    args = parser.parse_args()
    gantry = os.path.abspath(args.gantry)
    envoy = os.path.abspath(args.envoy)
    sizes = [int(x) for x in args.sizes.split(",")]
    fanout = os.path.abspath(args.fanout or os.path.join(os.path.dirname(gantry), "gantry-bench-fanout"))
    yaml_bin = os.path.join(os.path.dirname(gantry), "gantry-bench-yaml")
    bench_bins = ((fanout,) if FANOUT_SIZE in sizes else ()) + ((yaml_bin,) if 10000 in sizes else ())
    for binary in (gantry, envoy) + bench_bins:
        if not os.access(binary, os.X_OK):
            sys.exit(f"not executable: {binary}"
                     + (" (build it: cargo build --release --features bench)" if binary in bench_bins else ""))

    os.makedirs(WORK, exist_ok=True)
    procs = Processes()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    try:
        ctx = {
            "machine": machine(),
            "gantry": os.path.relpath(gantry, ROOT) if gantry.startswith(ROOT) else gantry,
            "envoy": os.path.relpath(envoy, ROOT) if envoy.startswith(ROOT) else envoy,
            "gantry_version": subprocess.run([gantry, "--version"], capture_output=True, text=True,
                                             timeout=10).stdout.strip(),
            "envoy_version": subprocess.run([envoy, "--version"], capture_output=True, text=True,
                                            timeout=10).stdout.strip().split("version:")[-1].strip(),
            "client_rate": args.client_rate,
            "changes": {},
            "change_text": {},
            "expected_types": {"modify": {"route"}, "add": {"route", "cluster", "endpoint"},
                               "endpoint": {"endpoint"}},
            "fanout": None,
            "churn": None,
        }
        backend_port = free_port()
        listener_port = free_port()
        backend = procs.start("backend", [sys.executable, os.path.abspath(__file__), "--backend",
                                          str(backend_port)],
                              os.path.join(WORK, "backend.log"))
        wait_until("backend", lambda: http_get(backend_port, "/")[0] == 200, 10)
        # Where the EndpointSlice change moves an endpoint to.
        backend2_port = free_port()
        procs.start("backend2", [sys.executable, os.path.abspath(__file__), "--backend",
                                 str(backend2_port)],
                    os.path.join(WORK, "backend2.log"))
        wait_until("backend2", lambda: http_get(backend2_port, "/")[0] == 200, 10)

        dirs = {}
        for n in sizes:
            dirs[n] = os.path.join(WORK, f"routes-{n}")
            generate(dirs[n], n, listener_port, backend_port)
        log(f"generated {sizes} routes in {time.monotonic() - began:.1f}s")
        g = ctx["gantry"]
        ctx["commands"] = [
            f"make bench        # = make envoy; cargo build --release --features bench; python3 bench/run.py {g}",
            f"{g} translate -f .bench/routes-N             # wall time, peak RSS (x{TRANSLATE_RUNS})",
            f"{g} translate -f .bench/routes-N -o json",
            f"{g} serve --config-dir .bench/routes-N --xds-address 127.0.0.1:XDS --admin-address 127.0.0.1:ADMIN",
            f"{g} bootstrap --gateway {GATEWAY} --xds-address 127.0.0.1:XDS --admin-address 127.0.0.1:0 --ads delta --node-id bench-N > bootstrap.yaml",
            f"{ctx['envoy']} -c bootstrap.yaml --admin-address-path FILE --disable-hot-restart --concurrency 1 --log-level warn",
            "python3 bench/run.py --backend PORT                 # echo backend (asyncio, 200 \"ok\")",
            f"python3 bench/run.py --client LISTENER_PORT N {args.client_rate} OUT.json   # client loop during churn",
            f"{os.path.relpath(fanout, ROOT) if fanout.startswith(ROOT) else fanout} --xds-address 127.0.0.1:XDS "
            f"--streams {FANOUT_STREAMS} --node-cluster {GATEWAY}   # fan-out: {FANOUT_STREAMS} Delta ADS streams, no Envoy",
            f"{os.path.dirname(os.path.relpath(fanout, ROOT) if fanout.startswith(ROOT) else fanout)}/gantry-bench-layouts "
            f"--envoy {ctx['envoy']} --sizes 1000,10000 --out bench/layouts.md   # Envoy's side: route layouts (run by make bench first)",
            f"{os.path.relpath(yaml_bin, ROOT) if yaml_bin.startswith(ROOT) else yaml_bin} --input .bench/routes-10000 "
            "--translate-json .bench/translate-10000.yaml.json   # serde-saphyr alone: parse the input, write the output",
        ]

        ctx["translate"] = measure_translate(gantry, dirs)
        if 10000 in dirs:
            ctx["yaml_floor"] = measure_yaml_floor(yaml_bin, dirs[10000], 10000)

        ctx["serve"] = {}
        for n in sizes:
            stack = Stack(procs, gantry, envoy, dirs[n], listener_port, str(n))
            stack.backend_port = backend_port
            stack.backend2_port = backend2_port
            stack.start()
            try:
                sync = stack.wait_all_routable(n, 180)
                r = steady_rss(stack)
                r["sync_s"] = sync
                r["translate_ms"] = stack.translation_durations()
                ctx["serve"][n] = r
                log(f"serve {n}: RSS {mib(r['rss']):.1f} MiB (HWM {mib(r['hwm']):.1f}), "
                    f"envoy {mib(r['envoy_rss']):.1f} MiB, sync {sync:.2f}s")
                if n == CHURN_SIZE:
                    ctx["churn"] = measure_churn(stack, n, args.client_rate)
                    c = ctx["churn"]
                    log(f"churn: p50 {c['p50_ms']:.0f} ms p99 {c['p99_ms']:.0f} ms, client {c['client']}")
                if n == CHANGE_SIZE:
                    for kind in ("modify", "add", "endpoint"):
                        ctx["changes"][kind] = measure_change_to_ack(stack, n, kind)
                        ms = [x["ms"] for x in ctx["changes"][kind]]
                        log(f"change ({kind}) -> ACK: p50 {statistics.median(ms):.0f} ms; "
                            f"last {ctx['changes'][kind][-1]}")
            finally:
                stack.stop()
            # Restore the generated input the churn/change steps added to.
            for name in os.listdir(dirs[n]):
                if name.startswith(("new", "add")):
                    os.remove(os.path.join(dirs[n], name))
            if n == FANOUT_SIZE:
                ctx["fanout"] = measure_fanout(procs, gantry, fanout, dirs[n], n, listener_port,
                                               backend_port)
                f_ = ctx["fanout"]
                log(f"fanout: p50 {statistics.median(x['ms'] for x in f_['samples']):.0f} ms, "
                    f"RSS {mib(f_['rss_before']):.1f} -> {mib(f_['rss_after']):.1f} MiB")
        ctx["change_text"] = {
            "modify": (f"{CHANGES} times: rewrite one existing route file so that its rule gains a "
                       "`RequestHeaderModifier` filter (a different value each time). Only the "
                       "RouteConfiguration changes. Timed from the start of the write to gantry "
                       "receiving Envoy's ACK of the route push (`gantry_xds_acks_total{type_url=\"route\"}` "
                       "polled every 2 ms); bytes/resources/pushes are the deltas of "
                       "`gantry_xds_push_bytes_total`, `gantry_xds_pushed_resources_total` and "
                       "`gantry_xds_pushes_total` over the change (1 s after the ACK)."),
            "add": (f"{CHANGES} times: write a new route file (HTTPRoute + Service + EndpointSlice). "
                    "The RouteConfiguration changes and one Cluster and one ClusterLoadAssignment are "
                    "added; gantry pushes the cluster and its endpoints first and the routes once "
                    "Envoy has them (make before break). Timed as above, to the route ACK."),
            "endpoint": (f"{CHANGES} times: rewrite one existing route file so that only its "
                         "EndpointSlice changes: the endpoint's port moves to a second echo backend "
                         "(the Service and its targetPort stay; what a rescheduled Pod looks like). "
                         "Only that ClusterLoadAssignment changes. Timed from the start of the write to "
                         "gantry receiving Envoy's ACK of the endpoint push "
                         "(`gantry_xds_acks_total{type_url=\"endpoint\"}` polled every 2 ms); after "
                         "the settle second, one request for the route's hostname through Envoy "
                         "(the HTTP column) shows Envoy routes to the moved endpoint."),
        }
        with open("/proc/loadavg") as f:
            ctx["load_end"] = " ".join(f.read().split()[:3])
        if os.path.exists(args.layouts):
            with open(args.layouts) as f:
                ctx["layouts"] = f.read()
        if os.path.exists(args.analysis):
            with open(args.analysis) as f:
                ctx["analysis"] = f.read()
        text = report(ctx)
        with open(args.out, "w") as f:
            f.write(text)
        print(text)
        log(f"done in {time.monotonic() - began:.0f}s; wrote {args.out}")
    finally:
        procs.stop_all()


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--backend":
        try:
            asyncio.run(backend_main(int(sys.argv[2])))
        except KeyboardInterrupt:
            pass
    elif len(sys.argv) >= 2 and sys.argv[1] == "--client":
        client_main(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        main()
