#!/usr/bin/env python3
"""The external load benchmark, run by `scripts/bench` (which builds the
release binaries and provides FerretDB and Redis). It seeds a database, starts
the server and the plain axum handler (examples/plain.rs) as their own
processes, drives them with vegeta, checks every response body for `errors`,
reads CPU and memory from /proc, and writes benches/RESULTS.md.

Closed loop: N connections, each sending its next request as soon as the last
one is answered (vegeta -rate 0 with N workers). Open loop: a fixed rate with
uniform arrivals (vegeta's constant pacer) whatever the answers take.

Knobs (environment): BENCH_SECONDS (per closed-loop run, 10), BENCH_RATE_SECONDS
(per open-loop run, BENCH_SECONDS), BENCH_SCALE (seed --scale, 4),
BENCH_CONNECTIONS ("1,16,256,1000"), BENCH_SCENARIOS (names, all by default),
BENCH_OPEN_CONNECTIONS (1000), BENCH_SEARCH (scenarios whose highest rate
under the p99 bound is searched, "readmix"), BENCH_P99_MS (100),
BENCH_MAX_RATE (20000), BENCH_TIMEOUT (seconds a request may take, 10),
BENCH_QUOTAS (`off` turns the quota check off), BENCH_SETTLE_SECONDS (how long the server may take to answer again after a
run before it is restarted, 30), BENCH_OUT (benches/RESULTS.md).

Baseline: with BENCH_BASELINE_BIN (a server binary built from an earlier
commit, BENCH_BASELINE_DIR its source tree for its config files,
BENCH_BASELINE_REV its name) the 100-asset page is first compared with that
server, in a database it migrates and seeds itself: before any other
scenario, so both servers are equally fresh, the two take turns
BENCH_PAGE_ROUNDS times (3) at each of BENCH_PAGE_CONNECTIONS ("1,16");
the summary gives the ratio of the medians of server CPU per request.
"""

import base64
import datetime
import gzip
import hashlib
import json
import os
import platform
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PAGE = ("{ assets(first: 100) { totalCount edges { cursor node { id name value "
        "{ amountMinor currency } assignedTo { id name } } } } }")
DEEP = ("{ disabilityPrograms(first: 10) { nodes { id enrollments(first: 10) { nodes "
        "{ id beneficiary { id fullName sessions(first: 5) { nodes { id therapist "
        "{ id name } } } } } } } } }")
# A 100-beneficiary page without and with the sealed fields: the difference
# is the cost of opening them (one key lookup per person, one AEAD per value).
PEOPLE = ("{ beneficiaries(first: 100) { totalCount edges { cursor node { id fullName "
          "birthYear severity } } } }")
PEOPLE_SEALED = ("{ beneficiaries(first: 100) { totalCount edges { cursor node { id fullName "
                 "birthYear severity nationalId dateOfBirth medicalNotes guardian { name phone } } } } }")
TYPENAME = "{ __typename }"
CACHEABLE = "{ assets(first: 10) { edges { node { id name status } } } }"
# An interface field: never answered from the response cache.
BY_NODE = ("query($id: ID!) { node(id: $id) { id ... on Asset { name status "
           "value { amountMinor currency } } } }")
UPDATE = ("mutation($id: ID!, $i: UpdateAssetInput!) { updateAsset(id: $id, input: $i) "
          "{ id location } }")
LOGIN = ("mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
         "{ accessToken } }")
USER = "admin@alawael.local"


def env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_list(name, default):
    value = os.environ.get(name, "").strip()
    return [v.strip() for v in (value or default).split(",") if v.strip()]


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


# ---------------------------------------------------------------------------
# Processes: every one started here is stopped on exit, failure or signal.
# ---------------------------------------------------------------------------

class Processes:
    def __init__(self):
        self.running = []

    def start(self, name, argv, env, log_path, cwd=None):
        out = open(log_path, "ab")
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=cwd)
        self.running.append((name, proc, out))
        return proc

    @staticmethod
    def _stop(name, proc, out):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop on SIGTERM; killing it")
                proc.kill()
                proc.wait()
        out.close()

    def stop(self, name):
        for entry in [e for e in self.running if e[0] == name]:
            self._stop(*entry)
            self.running.remove(entry)

    def stop_all(self):
        for entry in reversed(self.running):
            self._stop(*entry)
        self.running = []


def cpu_ms(pid):
    """utime + stime of a process (all its threads), in milliseconds."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


def memory_mib(pid):
    """(VmHWM, VmRSS) of a process in MiB."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    values[key] = int(rest.split()[0]) / 1024.0
    except OSError:
        return None, None
    return values.get("VmHWM"), values.get("VmRSS")


def established(port):
    """Established TCP connections whose local end is 127.0.0.1:port."""
    wanted = f"0100007F:{port:04X}"
    count = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1] == wanted and parts[3] == "01":
                    count += 1
    except OSError:
        return 0
    return count


class ConnectionSampler(threading.Thread):
    """The peak number of connections the server holds during a run."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.peak, self.done = port, 0, threading.Event()

    def run(self):
        while not self.done.wait(0.5):
            self.peak = max(self.peak, established(self.port))

    def stop(self):
        self.done.set()
        self.join()
        return self.peak


# ---------------------------------------------------------------------------
# GraphQL over plain HTTP (setup only; the load is vegeta's)
# ---------------------------------------------------------------------------

def graphql(url, body, token=None, timeout=60):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if answer.get("errors"):
        raise RuntimeError(f"setup request failed: {json.dumps(answer)[:500]}")
    return answer


# ---------------------------------------------------------------------------
# Scenarios: each is a list of vegeta JSON targets, cycled in order.
# ---------------------------------------------------------------------------

def target(url, token, body, extra_headers=None):
    headers = {"Content-Type": ["application/json"], "Accept-Encoding": ["gzip"]}
    if token:
        headers["Authorization"] = [f"Bearer {token}"]
    for key, value in (extra_headers or {}).items():
        headers[key] = [value]
    return {"method": "POST", "url": url, "header": headers,
            "body": base64.b64encode(json.dumps(body).encode()).decode()}


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(text, cache_status=False):
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}}
    if cache_status:
        extensions["cacheStatus"] = True
    return {"extensions": extensions}


def build_scenarios(url, plain_url, token, asset_ids):
    fresh = {"Cache-Control": "no-cache"}  # past the response cache: the real work
    watch = {"cacheStatus": True}

    def uncached_read(i):
        return target(url, token, {"query": BY_NODE, "variables": {"id": asset_ids[i % len(asset_ids)]},
                                   "extensions": watch})

    read_mix = []
    for i in range(10):
        # 40% persisted hashes and 40% full texts of a cacheable read, 20% uncached.
        for kind in ("persisted", "cached", "persisted", "cached", "uncached"):
            if kind == "persisted":
                read_mix.append(target(url, token, persisted(CACHEABLE, cache_status=True)))
            elif kind == "cached":
                read_mix.append(target(url, token, {"query": CACHEABLE, "extensions": watch}))
            else:
                read_mix.append(uncached_read(i))
    write_mix = []
    for i in range(10):
        for _ in range(4):
            write_mix.append(uncached_read(len(write_mix)))
        # Updates only, so the data every other scenario reads keeps its size.
        body = {"query": UPDATE, "variables": {
            "id": asset_ids[i % len(asset_ids)], "i": {"location": f"Bench room {i}"}}}
        write_mix.append(target(url, token, body))
    # Answers from the caches first, the runs that overload FerretDB last.
    return {
        "typename": ("`{ __typename }`", [target(url, token, {"query": TYPENAME})]),
        "persisted": ("persisted query hit (`assets(first: 10)` by hash, answered from the response cache)",
                      [target(url, token, persisted(CACHEABLE, cache_status=True))]),
        "cached": ("response-cache hit (`assets(first: 10)`)",
                   [target(url, token, {"query": CACHEABLE, "extensions": watch})]),
        "pagecached": ("100-asset page, answered from the response cache (private, per caller)",
                       [target(url, token, {"query": PAGE, "extensions": watch})]),
        "readmix": ("read mix, 80% answerable from caches", read_mix),
        "plain": ("plain axum handler (ceiling)", [target(plain_url, None, {"query": TYPENAME})]),
        "page": ("100-asset page", [target(url, token, {"query": PAGE}, fresh)]),
        "people": ("100-beneficiary page, no sealed field",
                   [target(url, token, {"query": PEOPLE}, fresh)]),
        "sealed": ("100-beneficiary page, 4 sealed fields opened per row",
                   [target(url, token, {"query": PEOPLE_SEALED}, fresh)]),
        "deep": ("deep query (programmes > enrolments > beneficiary > sessions)",
                 [target(url, token, {"query": DEEP}, fresh)]),
        "writemix": ("mix with 20% writes (`updateAsset`)", write_mix),
    }


# ---------------------------------------------------------------------------
# One vegeta run and its figures
# ---------------------------------------------------------------------------

def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(len(sorted_values) * p))
    return sorted_values[index]


def body_of(result):
    raw = base64.b64decode(result.get("body") or "")
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw


def judge(result):
    """(ok, cacheStatus or None, why) for one decoded vegeta result."""
    if result.get("error"):
        # Without the address, so that equal errors read the same.
        return False, None, result["error"].split(": ", 1)[-1][:120]
    if result.get("code") != 200:
        return False, None, f"HTTP {result.get('code')}"
    try:
        answer = json.loads(body_of(result))
    except (ValueError, OSError) as e:
        return False, None, f"unreadable body: {e}"
    if not isinstance(answer, dict) or "errors" in answer or "data" not in answer:
        return False, None, json.dumps(answer)[:160]
    status = (answer.get("extensions") or {}).get("cacheStatus")
    return True, status, None


class Bench:
    def __init__(self, vegeta, workdir, server, plain, ferret_pid, probes, restart, settings):
        self.vegeta, self.workdir = vegeta, workdir
        self.server, self.plain, self.ferret_pid = server, plain, ferret_pid
        self.probes, self.restart = probes, restart
        self.timeout, self.settle_limit = settings

    def settle(self):
        """Waits until the server answers a plain and a database-backed probe
        again (a previous overload may hold it up). Returns a note, or None
        when it answered at once; restarts it after `settle_limit` seconds."""
        started = time.time()
        while True:
            try:
                for probe in self.probes:
                    probe()
                waited = time.time() - started
                return None if waited < 1 else f"server answered again after {waited:.0f} s"
            except (OSError, RuntimeError, ValueError):
                if time.time() - started > self.settle_limit:
                    break
                time.sleep(1)
        log(f"the server did not answer for {self.settle_limit} s; restarting it")
        self.server = self.restart()
        return f"server restarted: it did not answer for {self.settle_limit} s"

    def quiet(self, limit=60):
        """Waits (at most `limit` s) until FerretDB and the server are idle
        (under 5% of a CPU over half a second), so work a previous overload
        left in the database does not bill the next run."""
        started = time.time()
        while time.time() - started < limit:
            pids = [self.ferret_pid, self.server[0].pid]
            before = [cpu_ms(p) or 0.0 for p in pids]
            time.sleep(0.5)
            after = [cpu_ms(p) or 0.0 for p in pids]
            if all(a - b < 25.0 for a, b in zip(after, before)):
                waited = time.time() - started
                return None if waited < 2 else f"waited {waited:.0f} s for FerretDB to go idle"
        return f"FerretDB still busy after {limit} s"

    def run(self, scenario, targets, seconds, connections, rate=None, hold=0):
        """Closed loop over `connections` when rate is None, else open loop at
        `rate` (vegeta's form: "10000/1m")."""
        is_plain = scenario == "plain"
        note = None if is_plain else self.settle()
        idle = self.quiet()
        note = "; ".join(n for n in (note, idle) if n) or None
        proc, port = self.plain if is_plain else self.server
        targets_path = os.path.join(self.workdir, "targets.json")
        with open(targets_path, "w") as f:
            for t in targets:
                f.write(json.dumps(t) + "\n")
        results_path = os.path.join(self.workdir, "results.bin")
        argv = [self.vegeta, "attack", "-format", "json", "-targets", targets_path,
                "-duration", f"{seconds}s", "-connections", str(connections),
                "-max-connections", str(connections), "-timeout", f"{self.timeout}s",
                "-output", results_path]
        if rate is None:
            argv += ["-rate", "0", "-workers", str(connections), "-max-workers", str(connections)]
        else:
            argv += ["-rate", rate, "-workers", str(min(connections, 100))]
        held = hold_connections(port, hold) if hold else []
        sampler = ConnectionSampler(port)
        sampler.start()
        server_before = cpu_ms(proc.pid)
        ferret_before = None if is_plain else cpu_ms(self.ferret_pid)
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        server_after = cpu_ms(proc.pid)
        ferret_after = None if is_plain else cpu_ms(self.ferret_pid)
        peak_connections = sampler.stop()
        for s in held:
            s.close()
        hwm, rss = memory_mib(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(f"the {'plain handler' if is_plain else 'server'} exited during {scenario}")
        f = self.figures(results_path, server_before, server_after, ferret_before,
                         ferret_after, hwm, rss, peak_connections)
        f["note"] = note
        return f

    def figures(self, results_path, s0, s1, f0, f1, hwm, rss, peak_connections):
        encoded = subprocess.run([self.vegeta, "encode", "--to", "json", results_path],
                                 check=True, capture_output=True).stdout
        latencies, errors, first, last, statuses, samples = [], 0, None, None, {}, []
        for line in encoded.splitlines():
            result = json.loads(line)
            ok, status, why = judge(result)
            stamp = datetime.datetime.fromisoformat(result["timestamp"].replace("Z", "+00:00"))
            start = stamp.timestamp()
            latency = result["latency"] / 1e9
            first = start if first is None else min(first, start)
            last = start + latency if last is None else max(last, start + latency)
            latencies.append(latency * 1e3)
            if status:
                statuses[status] = statuses.get(status, 0) + 1
            if not ok:
                errors += 1
                if len(samples) < 3:
                    samples.append(why)
        os.remove(results_path)
        requests = len(latencies)
        latencies.sort()
        span = (last - first) if requests and last > first else 1.0
        return {
            "requests": requests,
            "throughput": (requests - errors) / span,
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
            "errors": errors,
            "error_samples": samples,
            "server_cpu": (s1 - s0) / requests if requests and s0 is not None else None,
            "ferret_cpu": (f1 - f0) / requests if requests and f0 is not None and f1 is not None else None,
            "hwm": hwm,
            "rss": rss,
            "connections": peak_connections,
            "cache": statuses,
            "note": None,
        }


def hold_connections(port, count):
    """Opens `count` keep-alive connections that each send one `{ __typename }`
    and then stay idle, so the server holds them while the load runs."""
    body = json.dumps({"query": TYPENAME}).encode()
    request = (f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    held = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(request)
        held.append(s)
    for s in held:
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("a held connection was closed")
            answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"a held connection was refused: {answer[:80]!r}")
    return held


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def fmt(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


def notes(f):
    total = sum(f["cache"].values())
    parts = [f"cacheStatus {k} {100 * v / total:.0f}%" for k, v in sorted(f["cache"].items())]
    if f["note"]:
        parts.append(f["note"] + " (before this run)")
    return "; ".join(parts)


HEADER = ("| scenario | conns | rate | requests | req/s | p50 ms | p99 ms | errors | "
          "server CPU ms/req | FerretDB CPU ms/req | server VmHWM MiB | VmRSS after MiB | "
          "conns held | notes |")
RULE = "|" + "---|" * (HEADER.count("|") - 1)


def row(label, connections, rate, f):
    return (f"| {label} | {connections} | {rate} | {f['requests']} | {f['throughput']:.0f} | "
            f"{f['p50']:.2f} | {f['p99']:.2f} | {f['errors']} | {fmt(f['server_cpu'], 3)} | "
            f"{fmt(f['ferret_cpu'], 3)} | {fmt(f['hwm'])} | {fmt(f['rss'])} | "
            f"{f['connections']} | {notes(f)} |")


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            total_kib = int(f.readline().split()[1])
    except OSError:
        total_kib = 0
    return (f"{os.cpu_count()} CPUs ({model}), {total_kib / 1048576:.1f} GiB memory, "
            f"{platform.system()} {platform.release()}")


def git_commit():
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def main():
    seconds = env_int("BENCH_SECONDS", 10)
    rate_seconds = env_int("BENCH_RATE_SECONDS", seconds)
    scale = env_int("BENCH_SCALE", 4)
    levels = [int(c) for c in env_list("BENCH_CONNECTIONS", "1,16,256,1000")]
    page_levels = [int(c) for c in env_list("BENCH_PAGE_CONNECTIONS", "1,16")]
    page_rounds = env_int("BENCH_PAGE_ROUNDS", 3)
    open_connections = env_int("BENCH_OPEN_CONNECTIONS", 1000)
    p99_bound = env_int("BENCH_P99_MS", 100)
    max_rate = env_int("BENCH_MAX_RATE", 20000)
    timeout = env_int("BENCH_TIMEOUT", 10)
    settle_limit = env_int("BENCH_SETTLE_SECONDS", 30)
    out_path = os.environ.get("BENCH_OUT", os.path.join(ROOT, "benches", "RESULTS.md"))
    binary = os.environ["BENCH_SERVER_BIN"]
    plain_binary = os.environ["BENCH_PLAIN_BIN"]
    vegeta = os.environ["BENCH_VEGETA"]
    ferret_pid = env_int("FERRETDB_PID", 0) or None
    started_at = datetime.datetime.now(datetime.timezone.utc)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 4 * max(levels + [open_connections]):
        log(f"the open-files limit is {hard}: high connection counts may fail")

    uri = urllib.parse.urlsplit(os.environ["MONGODB_URI"])
    database = f"alawael_bench_{secrets.token_hex(4)}"
    env = dict(os.environ)
    env.update({
        "MONGODB_URI": urllib.parse.urlunsplit(uri._replace(path="/" + database)),
        "ALAWAEL_ENV": "production",
        "JWT_SECRET": secrets.token_hex(32),
        "SEED_PASSWORD": secrets.token_hex(12),
        "ALAWAEL_MASTER_KEY": "bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        # One account sends everything: its quota is checked (BENCH_QUOTAS=off
        # turns the check off, to measure what it costs) but never reached.
        "ALAWAEL__QUOTAS__ENABLED": "false" if os.environ.get("BENCH_QUOTAS") == "off" else "true",
        "ALAWAEL__QUOTAS__ADMIN__PER_MINUTE": "100000000000",
        "ALAWAEL__QUOTAS__ADMIN__BURST": "100000000000",
        "ALAWAEL__QUOTAS__LOGIN__BURST": "1000",
        # One login serves the whole run.
        "ALAWAEL__AUTH__ACCESS_TOKEN_TTL_SECS": "86400",
        "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
    })

    processes = Processes()

    def on_signal(signum, _frame):
        # Once: a second signal must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    workdir = tempfile.mkdtemp(prefix="alawael-bench-")
    try:
        log(f"database {database}: migrations and seed --scale {scale}")
        subprocess.run([binary, "migrate", "up"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([binary, "seed", "--scale", str(scale)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        port, plain_port = free_port(), free_port()
        start_server, restart_server = server_controls(processes, "server", binary, port, env,
                                                       workdir)
        server = start_server()
        plain = processes.start("plain", [plain_binary, f"127.0.0.1:{plain_port}"], env,
                                os.path.join(workdir, "plain.log"))
        if not wait_for_port(port, 60) or not wait_for_port(plain_port, 30):
            raise RuntimeError("the server or the plain handler did not start")
        url = f"http://127.0.0.1:{port}/graphql"
        plain_url = f"http://127.0.0.1:{plain_port}/graphql"
        token = graphql(url, {"query": LOGIN, "variables": {
            "e": USER, "p": env["SEED_PASSWORD"]}})["data"]["login"]["accessToken"]
        page = graphql(url, {"query": PAGE}, token)
        asset_ids = [e["node"]["id"] for e in page["data"]["assets"]["edges"]][:20]
        for text in (TYPENAME, CACHEABLE):
            graphql(url, {"query": text, **persisted(text)}, token)
        graphql(url, {"query": DEEP}, token)

        scenarios = build_scenarios(url, plain_url, token, asset_ids)
        baseline = start_baseline(processes, env, uri, scale, workdir, (timeout, settle_limit),
                                  vegeta, ferret_pid)
        chosen = env_list("BENCH_SCENARIOS", ",".join(scenarios))
        unknown = [s for s in chosen if s not in scenarios]
        if unknown:
            raise RuntimeError(f"unknown scenarios {unknown}; known: {', '.join(scenarios)}")
        probes = [lambda: graphql(url, {"query": TYPENAME}, token, timeout=5),
                  lambda: graphql(url, {"query": BY_NODE, "variables": {"id": asset_ids[0]}},
                                  token, timeout=5)]
        bench = Bench(vegeta, workdir, (server, port), (plain, plain_port), ferret_pid, probes,
                      restart_server, (timeout, settle_limit))
        closed, fixed, search, compared = [], [], [], []

        if baseline and "page" in chosen:
            base_bench, base_targets, rev = baseline
            label, targets = scenarios["page"]
            base_label = f"100-asset page, baseline {rev}"
            for connections in page_levels:
                for turn in range(1, page_rounds + 1):
                    log(f"page against baseline {rev}: turn {turn}, {connections} connections")
                    f = bench.run("page", targets, seconds, connections)
                    fb = base_bench.run("page", base_targets, seconds, connections)
                    compared.append((connections, turn, f, fb))
                    print(row(f"{label}, turn {turn}", connections, "closed", f), flush=True)
                    print(row(f"{base_label}, turn {turn}", connections, "closed", fb), flush=True)

        for name in chosen:
            label, targets = scenarios[name]
            for connections in levels:
                log(f"{name}: closed loop, {connections} connections, {seconds}s")
                f = bench.run(name, targets, seconds, connections)
                closed.append((name, label, connections, f))
                print(row(label, connections, "closed", f), flush=True)

        planned = 10000 / 60
        for name in chosen:
            label, targets = scenarios[name]
            hold = max(0, open_connections - 50)
            log(f"{name}: open loop, 10,000 requests a minute, {open_connections} connections")
            f = bench.run(name, targets, rate_seconds, open_connections, rate="10000/1m",
                          hold=hold)
            fixed.append((name, label, f))
            print(row(label, open_connections, "167/s", f), flush=True)

        for name in env_list("BENCH_SEARCH", "readmix"):
            if name not in chosen:
                continue
            label, targets = scenarios[name]
            rate = planned
            while rate <= max_rate:
                log(f"{name}: open loop at {rate:.0f}/s")
                f = bench.run(name, targets, rate_seconds, open_connections,
                              rate=f"{round(rate)}/1s", hold=max(0, open_connections - 50))
                passed = f["errors"] == 0 and f["p99"] < p99_bound and f["throughput"] >= 0.95 * rate
                search.append((name, label, rate, f, passed))
                print(row(label, open_connections, f"{rate:.0f}/s", f) + (" pass" if passed else " FAIL"),
                      flush=True)
                if not passed:
                    break
                rate *= 1.5

        write_results(out_path, started_at, scale, seconds, rate_seconds, open_connections,
                      p99_bound, max_rate, closed, fixed, search, levels, compared)
        log(f"results written to {os.path.relpath(out_path, ROOT)}")
        server_log = os.path.join(workdir, "server.log")
        if os.path.getsize(server_log):
            with open(server_log, errors="replace") as f:
                tail = f.read()[-1500:]
            log(f"the server's log (warnings and errors), last lines:\n{tail}")
    finally:
        processes.stop_all()
        subprocess.run(["rm", "-rf", workdir], check=False)


def server_controls(processes, name, binary, port, env, workdir, cwd=None):
    """(start, restart) of a server process `name` on `port`; restart waits
    until it listens and returns (process, port)."""
    def start():
        return processes.start(name, [binary, "serve", "--bind", f"127.0.0.1:{port}"],
                               env, os.path.join(workdir, f"{name}.log"), cwd=cwd)

    def restart():
        processes.stop(name)
        proc = start()
        if not wait_for_port(port, 60):
            raise RuntimeError(f"the {name} did not start again")
        return proc, port

    return start, restart


def start_baseline(processes, env, uri, scale, workdir, settings, vegeta, ferret_pid):
    """Starts the baseline server (BENCH_BASELINE_BIN) in a database of its
    own, seeded by itself; returns (its Bench, the page's targets, its name)
    or None when no baseline is asked for."""
    binary = os.environ.get("BENCH_BASELINE_BIN")
    if not binary:
        return None
    source = os.environ["BENCH_BASELINE_DIR"]
    rev = os.environ.get("BENCH_BASELINE_REV", "baseline")
    database = f"alawael_bench_base_{secrets.token_hex(4)}"
    # A baseline older than the quotas refuses their settings (unknown keys
    # are errors) and checks no quota: run the bench with BENCH_QUOTAS=off
    # to compare like with like.
    base_env = {k: v for k, v in env.items() if not k.startswith("ALAWAEL__QUOTAS__")}
    base_env["MONGODB_URI"] = urllib.parse.urlunsplit(uri._replace(path="/" + database))
    log(f"baseline {rev}: database {database}, migrations and seed --scale {scale}")
    subprocess.run([binary, "migrate", "up"], env=base_env, cwd=source, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([binary, "seed", "--scale", str(scale)], env=base_env, cwd=source,
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    start, restart = server_controls(processes, "baseline", binary, port, base_env, workdir,
                                     cwd=source)
    proc = start()
    if not wait_for_port(port, 60):
        raise RuntimeError("the baseline server did not start")
    url = f"http://127.0.0.1:{port}/graphql"
    token = graphql(url, {"query": LOGIN, "variables": {
        "e": USER, "p": env["SEED_PASSWORD"]}})["data"]["login"]["accessToken"]
    graphql(url, {"query": PAGE}, token)
    probes = [lambda: graphql(url, {"query": TYPENAME}, token, timeout=5)]
    bench = Bench(vegeta, workdir, (proc, port), None, ferret_pid, probes, restart, settings)
    targets = [target(url, token, {"query": PAGE}, {"Cache-Control": "no-cache"})]
    return bench, targets, rev


def write_results(path, started_at, scale, seconds, rate_seconds, open_connections, p99_bound,
                  max_rate, closed, fixed, search, levels, compared):
    lines = [
        "# Load benchmark results",
        "",
        "Written by `scripts/bench` (see the README). The server (release build, "
        "`ALAWAEL_ENV=production`) and the plain axum handler (`examples/plain.rs`) run as "
        "their own processes; vegeta drives them over loopback from the same machine, so "
        "the load generator shares the CPUs with the server, FerretDB and Redis.",
        "",
        f"- Date: {started_at.strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Commit: {git_commit()}",
        f"- Machine: {machine()}",
        f"- Command: `{os.environ.get('BENCH_COMMAND', 'scripts/bench')}`"
        f" (BENCH_SECONDS={seconds}, BENCH_RATE_SECONDS={rate_seconds}, BENCH_SCALE={scale})",
        f"- Data: `alawael seed --scale {scale}` in a fresh database; requests as "
        f"{USER} with one access token (its TTL raised to a day through "
        "`ALAWAEL__AUTH__ACCESS_TOKEN_TTL_SECS`; the server has no other rate limit that "
        "these requests meet: only logins and analytics events are throttled).",
        "- Errors: any transport error, any status but 200, and any body with an `errors` "
        "member or without `data` (every body is decoded and checked). req/s counts answers "
        "without errors over the run's span.",
        "- Server CPU is the server process's utime+stime (/proc/PID/stat) over the run, "
        "divided by the requests sent; FerretDB's the same for its process. VmHWM is the "
        "server's peak resident memory since it started (cumulative over the runs); VmRSS "
        "is read after each run. \"conns held\" is the peak of established connections "
        "to the server, sampled twice a second.",
        "- The 100-asset page and the deep query send `Cache-Control: no-cache`, so they "
        "measure the work itself, not the response cache. The cache scenarios send "
        "`extensions.cacheStatus` and the last column tells what the answers said.",
        "",
    ]
    rev = os.environ.get("BENCH_BASELINE_REV", "baseline")
    if compared:
        lines += [
            f"## The 100-asset page against the baseline {rev}",
            "",
            "Run first, before any other scenario, so that both servers are equally fresh "
            "(each has answered a login and one page); the two take turns, closed loop, "
            "each in its own database seeded alike. The summary compares the medians of "
            "server CPU per request.",
            "",
            HEADER, RULE,
        ]
        for c, turn, f, fb in compared:
            lines.append(row(f"100-asset page, turn {turn}", c, "closed", f))
            lines.append(row(f"100-asset page, baseline {rev}, turn {turn}", c, "closed", fb))
        lines.append("")
    lines += [
        "## Closed loop",
        "",
        "Each connection sends its next request when the previous one is answered "
        "(`vegeta attack -rate 0 -workers N -max-workers N -connections N -max-connections N`).",
        "",
        HEADER, RULE,
    ]
    lines += [row(label, c, "closed", f) for _, label, c, f in closed]
    by = {(n, c): f for n, _, c, f in closed}
    ratios = []
    for c in levels:
        if ("persisted", c) in by and ("plain", c) in by and by[("plain", c)]["throughput"]:
            ratios.append((c, by[("persisted", c)]["throughput"] / by[("plain", c)]["throughput"]))
    lines += [
        "",
        "## Open loop: 10,000 requests a minute over "
        f"{open_connections} connections",
        "",
        f"`vegeta attack -rate 10000/1m -connections {open_connections} "
        f"-max-connections {open_connections}`: uniform arrivals. vegeta reuses its idle "
        "connections, so at this rate it opens only a few itself; the driver also holds "
        f"{max(0, open_connections - 50)} keep-alive connections to the server (each sent one "
        "`{ __typename }`, then idles) for the run, so the server holds about "
        f"{open_connections} connections (see \"conns held\").",
        "",
        HEADER, RULE,
    ]
    lines += [row(label, open_connections, "167/s", f) for _, label, f in fixed]
    if search:
        lines += [
            "",
            f"## Open loop: the highest rate with p99 under {p99_bound} ms",
            "",
            "Rates rise by half from 10,000 a minute until a run has errors, a p99 of "
            f"{p99_bound} ms or more, or delivers under 95% of the rate.",
            "",
            HEADER, RULE,
        ]
        lines += [row(label, open_connections, f"{rate:.0f}/s", f) + ("" if ok else " **over**")
                  for _, label, rate, f, ok in search]
    lines += ["", "## Summary", ""]
    for c, ratio in ratios:
        lines.append(f"- Persisted-query hit / plain handler throughput at {c} connections: "
                     f"{ratio:.2f}")
    for c in sorted({c for c, _, _, _ in compared}):
        ours = [f["server_cpu"] for k, _, f, _ in compared if k == c and f["server_cpu"]]
        theirs = [fb["server_cpu"] for k, _, _, fb in compared if k == c and fb["server_cpu"]]
        if ours and theirs:
            a, b = statistics.median(ours), statistics.median(theirs)
            lines.append(f"- 100-asset page against the baseline {rev} at {c} connections, "
                         f"median server CPU per request of {len(ours)} turns: {a:.3f} ms "
                         f"against {b:.3f} ms, ratio {a / b:.2f} (turns: "
                         + ", ".join(f"{x:.3f}" for x in ours) + " against "
                         + ", ".join(f"{x:.3f}" for x in theirs) + ")")
    for _, _, c, f in [x for x in closed if x[0] == "page"]:
        lines.append(f"- 100-asset page among the other scenarios, server CPU per request at "
                     f"{c} connections: {fmt(f['server_cpu'], 3)} ms "
                     f"(FerretDB {fmt(f['ferret_cpu'], 3)} ms)")
    for name, _, f in fixed:
        if name == "readmix":
            lines.append(f"- Read mix (80% from caches) at 10,000 requests a minute over "
                         f"{open_connections} connections: p99 {f['p99']:.2f} ms, "
                         f"{f['errors']} errors in {f['requests']} requests")
    outcome = {}
    for _, label, rate, f, ok in search:
        best, stopped = outcome.get(label, (None, False))
        outcome[label] = (rate if ok else best, stopped or not ok)
    for label, (best, stopped) in outcome.items():
        if best is None:
            lines.append(f"- {label}: no rate tried kept p99 under {p99_bound} ms "
                         "(10,000 a minute was already over)")
        else:
            limit = "" if stopped else f" (the largest tried; BENCH_MAX_RATE={max_rate} stopped the search)"
            lines.append(f"- {label}: highest rate with p99 under {p99_bound} ms: {best:.0f}/s "
                         f"({best * 60:.0f} a minute){limit}")
    seen = {}
    for label, f in ([(label, f) for _, label, _, f in closed] + [(label, f) for _, label, f in fixed]
                     + [(label, f) for _, label, _, f, _ in search]):
        for sample in f["error_samples"]:
            kinds = seen.setdefault(label, [])
            if sample not in kinds and len(kinds) < 3:
                kinds.append(sample)
    if seen:
        lines += ["", "## Error samples (distinct, at most three a scenario)", ""]
        for label, kinds in seen.items():
            lines += [f"- {label}: `{kind}`" for kind in kinds]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        log("interrupted; every process started here was stopped")
        sys.exit(130)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        log(f"failed: {e}")
        sys.exit(1)
