#!/usr/bin/env python3
"""Overhead benchmark: the same load sent directly to the mock provider and through the gateway.

Pins the gateway to core 0 and the mock and the load generator (oha) to core 1 with taskset, so
runs are comparable. Reports medians over rounds, and the gateway's added latency as the
difference of medians. Writes a Markdown table to stdout (and --out).

Also runs, when built (`cargo build --release --example bare_proxy`), a bare axum + reqwest proxy
(no parsing, routing, logging or metrics) as the floor of what any proxy costs here, and a
failover scenario: the route's primary is down and its breaker open, compared with calling the
healthy deployment directly.

Usage: scripts/bench.py [--rate 2000] [--secs 10] [--rounds 3] [--out bench-results.md]
Needs: a release build (cargo build --release) and `oha` (cargo install oha).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "understudy")
BARE = os.path.join(ROOT, "target", "release", "examples", "bare_proxy")
BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Say hello."}]})
STREAM_BODY = json.dumps({"model": "bench", "stream": True, "messages": [{"role": "user", "content": "Say hello."}]})
DIRECT_BODY = BODY.replace('"bench"', '"gpt-4o"')
DIRECT_STREAM_BODY = STREAM_BODY.replace('"bench"', '"gpt-4o"')
FAILOVER_BODY = BODY.replace('"bench"', '"bench-failover"')


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def oha(url, body, secs, rate=None, conns=50, core="1"):
    cmd = ["taskset", "-c", core, "oha", "-z", f"{secs}s", "--no-tui", "--output-format", "json",
           "-m", "POST", "-H", "content-type: application/json", "-H", "authorization: Bearer bench-key",
           "-d", body, "-c", str(conns)]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    j = json.loads(out)
    pct = j["latencyPercentiles"]
    fb = j.get("firstBytePercentiles") or {}
    return {
        "rps": j["summary"]["requestsPerSec"],
        "ok": j["summary"]["successRate"],
        "p50": pct["p50"] * 1e3, "p99": pct["p99"] * 1e3,
        "fb50": (fb.get("p50") or 0) * 1e3, "fb99": (fb.get("p99") or 0) * 1e3,
        "n": sum(j.get("statusCodeDistribution", {}).values()) if "statusCodeDistribution" in j else None,
    }


def start(cmd, core):
    return subprocess.Popen(["taskset", "-c", core] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    for tool in ["oha", "taskset"]:
        if not shutil.which(tool):
            sys.exit(f"missing {tool}: cargo install oha / apt install util-linux")
    if not os.path.exists(BIN):
        sys.exit("missing target/release/understudy: cargo build --release")

    mock_port, gw_port = free_port(), free_port()
    mock = start([BIN, "mock", "--listen", f"127.0.0.1:{mock_port}", "--no-record"], "1")
    wait_port(mock_port)
    cfg = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    cfg.write(f"""server:
  listen: 127.0.0.1:{gw_port}
providers:
  mock: {{ kind: openai, base_url: "http://127.0.0.1:{mock_port}/v1", api_key: bench-key }}
  down: {{ kind: openai, base_url: "http://127.0.0.1:{mock_port}/v1", api_key: bench-key }}
routes:
  bench:
    fallback_chain:
      - {{ provider: mock, model: gpt-4o }}
  bench-failover:
    breaker: {{ consecutive_failures: 3, open_for: 60s, max_open_for: 60s }}
    fallback_chain:
      - {{ provider: down, model: "dead+error=unavailable" }}
      - {{ provider: mock, model: gpt-4o }}
""")
    cfg.close()
    env = dict(os.environ, UNDERSTUDY_LOG="info")
    gw = subprocess.Popen(["taskset", "-c", "0", BIN, "serve", "--config", cfg.name], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, env=env)
    wait_port(gw_port)
    direct = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
    via = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
    bare = None
    bare_port = free_port()
    if os.path.exists(BARE):
        bare = subprocess.Popen(["taskset", "-c", "0", BARE, f"127.0.0.1:{bare_port}", direct],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(bare_port)
    floor = f"http://127.0.0.1:{bare_port}/v1/chat/completions"
    try:
        time.sleep(0.5)
        rss_idle = rss_mb(gw.pid)
        log("warm-up")
        oha(direct, DIRECT_BODY, 2, a.rate)
        oha(via, BODY, 2, a.rate)
        results = {k: [] for k in ["direct", "gateway", "direct_stream", "gateway_stream", "floor", "failover"]}
        cpu = []
        floor_cpu = []
        # Trip the failover route's breaker before measuring it.
        oha(via, FAILOVER_BODY, 1, 50)
        rss_load = 0.0
        for r in range(a.rounds):
            log(f"round {r + 1}/{a.rounds}: non-streaming at {a.rate} req/s, {a.secs}s each")
            results["direct"].append(oha(direct, DIRECT_BODY, a.secs, a.rate))
            c0 = cpu_seconds(gw.pid)
            res = oha(via, BODY, a.secs, a.rate)
            c1 = cpu_seconds(gw.pid)
            rss_load = max(rss_load, rss_mb(gw.pid))
            results["gateway"].append(res)
            cpu.append((c1 - c0) / (res["rps"] * a.secs) * 1000)
            log(f"round {r + 1}/{a.rounds}: streaming at {a.rate} req/s")
            results["direct_stream"].append(oha(direct, DIRECT_STREAM_BODY, a.secs, a.rate))
            results["gateway_stream"].append(oha(via, STREAM_BODY, a.secs, a.rate))
            log(f"round {r + 1}/{a.rounds}: primary down (breaker open) at {a.rate} req/s")
            results["failover"].append(oha(via, FAILOVER_BODY, a.secs, a.rate))
            if bare:
                log(f"round {r + 1}/{a.rounds}: bare proxy floor at {a.rate} req/s")
                c0 = cpu_seconds(bare.pid)
                res = oha(floor, DIRECT_BODY, a.secs, a.rate)
                c1 = cpu_seconds(bare.pid)
                results["floor"].append(res)
                floor_cpu.append((c1 - c0) / (res["rps"] * a.secs) * 1000)
        log("max throughput: gateway on core 0, 10s, 64 connections")
        max_gw = oha(via, BODY, 10, None, conns=64)
        max_bare = oha(floor, DIRECT_BODY, 10, None, conns=64) if bare else None
        gw.send_signal(signal.SIGINT)
        gw.wait(5)
        mock.send_signal(signal.SIGINT)
        mock.wait(5)
        log("max throughput: mock alone on core 0, 10s, 64 connections")
        mock = start([BIN, "mock", "--listen", f"127.0.0.1:{mock_port}", "--no-record"], "0")
        wait_port(mock_port)
        max_mock = oha(direct, DIRECT_BODY, 10, None, conns=64)
    finally:
        for p in (gw, mock, bare):
            if p is not None and p.poll() is None:
                p.kill()
        os.unlink(cfg.name)

    med = lambda k, f: statistics.median(x[f] for x in results[k])
    lines = []
    lines.append(f"fixed rate {a.rate} req/s, {a.secs}s x {a.rounds} rounds, medians of per-round percentiles (ms)\n")
    lines.append("| scenario | direct p50 | gateway p50 | added p50 | direct p99 | gateway p99 | added p99 |")
    lines.append("|---|---|---|---|---|---|---|")
    scenarios = [("non-streaming, total", "direct", "gateway", "p50", "p99"),
                 ("streaming, first byte", "direct_stream", "gateway_stream", "fb50", "fb99"),
                 ("streaming, total", "direct_stream", "gateway_stream", "p50", "p99"),
                 ("primary down, breaker open (vs direct to the healthy one)", "direct", "failover", "p50", "p99")]
    if results["floor"]:
        scenarios.append(("bare axum+reqwest proxy (the floor)", "direct", "floor", "p50", "p99"))
    for name, d, g, f50, f99 in scenarios:
        dp50, gp50, dp99, gp99 = med(d, f50), med(g, f50), med(d, f99), med(g, f99)
        lines.append(f"| {name} | {dp50:.3f} | {gp50:.3f} | {gp50 - dp50:+.3f} | {dp99:.3f} | {gp99:.3f} | {gp99 - dp99:+.3f} |")
    ok = min(x["ok"] for k in results for x in results[k])
    lines.append("")
    lines.append(f"- success rate (worst run): {ok * 100:.2f}%")
    lines.append(f"- max throughput, gateway on one core: {max_gw['rps']:.0f} req/s; mock alone on one core: {max_mock['rps']:.0f} req/s (ratio {max_gw['rps'] / max_mock['rps']:.2f})")
    if max_bare:
        lines.append(f"- max throughput, bare proxy on one core: {max_bare['rps']:.0f} req/s (gateway/bare {max_gw['rps'] / max_bare['rps']:.2f})")
    lines.append(f"- gateway CPU per 1,000 requests at {a.rate} req/s: {statistics.median(cpu):.3f} s (median of rounds)")
    if floor_cpu:
        lines.append(f"- bare proxy CPU per 1,000 requests at {a.rate} req/s: {statistics.median(floor_cpu):.3f} s")
    lines.append(f"- gateway resident memory: {rss_idle:.1f} MB idle, {rss_load:.1f} MB under load")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
