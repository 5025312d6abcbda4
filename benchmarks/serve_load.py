"""`tunelab serve` under concurrent load: micro-batched vs one request at a time.

    python benchmarks/serve_load.py [RUN_DIR] [--clients 16] [--seconds 30] [--warmup 5]
        [--texts-per-request 1] [--data data/sst2/dev.tsv] [--column sentence]
        [--out benchmarks/serve_load.json]

RUN_DIR (default runs/sst2-minilm, from `make demo`) is served twice by the real CLI, each time in
its own process on a free loopback port: with the default settings (micro-batched) and with
`--max-batch-size 1` (one request per model call, the baseline). For each, `--clients` concurrent
clients (httpx.AsyncClient, one event loop) send POST /v1/predict back to back, first for
`--warmup` seconds (not counted), then for `--seconds`; each request carries
`--texts-per-request` texts taken in turn from the data file. Reported per server: requests/s,
texts/s, p50/p90/p99 latency (numpy percentiles of every request's latency, ms), errors (non-200
answers and exceptions), and texts per model call from the server's /metrics; then the ratios
micro-batched / one-at-a-time for throughput and p99. The clients run on the same machine as
the server, so on a small CPU they take some of its time: compare the two rows, not absolutes.

    python benchmarks/serve_load.py [RUN_DIR] --abusive [--clients 16] [--seconds 45]
        [--alone-seconds 15] [--out benchmarks/serve_load_abusive.json]

`--abusive` serves RUN_DIR once, with `tunelab serve`'s defaults, and runs the `--clients` good
clients alone for `--alone-seconds`, then the abusive clients alone for as long (their own
effect on the server's memory), then both together for `--seconds`. The abusive clients run in
a second process, every one of them bounded in number and time, on 127.0.0.1 only:

- bad-json: 4 keep-alive clients sending, back to back, a lone surrogate (`"\\ud800"`),
  truncated JSON, invalid UTF-8, a number for a text, an empty text (each must get its 4xx);
- oversized-chunked: 2 clients uploading chunked bodies (no Content-Length) of up to 64 MB,
  each in 64 KB chunks, back to back (the server must refuse each with 413 soon after its limit,
  not read it whole);
- slowloris: 200 connections sending a request head one header line per second, never
  finished; stalled: 100 connections that connect and send nothing; slow-body: 20 connections
  that send a head with Content-Length: 1000 and 12 bytes of it. Each reconnects once the server
  has closed it (408, after the head or body timeout);
- flood: every 10 s, `queue_size + 128` requests at once, each on a new connection.

Reported: p50/p99 latency and status counts of the good clients alone and with the abusive ones,
status counts (or how the connection ended) per abusive kind, the server's RSS after each phase
and at its peak in each abusive one, and whether the good clients got any 5xx (the exit code is
1 if so, or if /health fails afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import itertools
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVERS = {"micro-batched": [], "one-at-a-time": ["--max-batch-size", "1"]}
HOST = "127.0.0.1"  # every client here talks to loopback, and only to loopback
QUEUE_SIZE = 256  # tunelab serve's default --queue-size, which the abusive run keeps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", type=Path, default=ROOT / "runs" / "sst2-minilm")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=None, help="30; with --abusive 45")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "sst2" / "dev.tsv")
    parser.add_argument("--column", default="sentence")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--abusive", action="store_true", help="good and abusive clients at once")
    parser.add_argument("--alone-seconds", type=float, default=15)
    args = parser.parse_args()
    if not (args.run_dir / "run_card.json").is_file():
        sys.exit(
            f"error: {args.run_dir} is not a finished run; `make demo` makes runs/sst2-minilm."
        )

    texts = read_texts(args.data, args.column)
    if args.abusive:
        args.seconds = args.seconds or 45
        args.out = args.out or ROOT / "benchmarks" / "serve_load_abusive.json"
        sys.exit(abusive_run(args, texts))
    args.seconds = args.seconds or 30
    args.out = args.out or ROOT / "benchmarks" / "serve_load.json"
    results: dict[str, Any] = {}
    for name, extra in SERVERS.items():
        print(f"{name}: serving {args.run_dir} {' '.join(extra)}", flush=True)
        with serving(args.run_dir, extra) as url:
            results[name] = asyncio.run(
                drive(url, texts, args.clients, args.seconds, args.warmup, args.texts_per_request)
            )
            results[name]["texts_per_model_call"] = texts_per_model_call(url)
    batched, single = results["micro-batched"], results["one-at-a-time"]
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "run_dir": str(args.run_dir),
        "data": f"{args.data} ({args.column}, {len(texts)} texts)",
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "texts_per_request": args.texts_per_request,
        "cpu_count": os.cpu_count(),
        "servers": results,
        "throughput_ratio": batched["requests_per_second"] / single["requests_per_second"],
        "p99_ratio": batched["p99_ms"] / single["p99_ms"],
    }
    args.out.write_text(json.dumps(report, indent=2))
    print()
    print(
        "| server | requests/s | texts/s | p50 ms | p90 ms | p99 ms | errors | texts per model call |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['requests_per_second']:.1f} | {r['texts_per_second']:.1f} | "
            f"{r['p50_ms']:.0f} | {r['p90_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} | "
            f"{r['texts_per_model_call']:.1f} |"
        )
    print(
        f"micro-batched / one-at-a-time: throughput {report['throughput_ratio']:.2f}x, "
        f"p99 latency {report['p99_ratio']:.2f}x ({args.clients} clients, "
        f"{args.texts_per_request} text(s) per request, {args.seconds:g} s each)"
    )
    print(f"wrote {args.out}")


def read_texts(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or column not in rows[0]:
        sys.exit(f"error: {path} has no column '{column}'.")
    return [row[column].strip() for row in rows if row[column].strip()]


class serving:
    """`tunelab serve RUN_DIR` in a subprocess on a free loopback port, stopped with Ctrl+C."""

    def __init__(self, run_dir: Path, extra: list[str]) -> None:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            self.port = probe.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "TUNELAB_API_KEY"}
        command = [sys.executable, "-m", "tunelab.cli", "serve", str(run_dir)]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), *extra], env={**env, "HF_HUB_OFFLINE": "1"}
        )
        self.url = f"http://{HOST}:{self.port}"
        serving_pid[:] = [self.process.pid]

    def __enter__(self) -> str:
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"error: the server exited with code {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self.url
            except httpx.TransportError:
                time.sleep(0.2)
        self.__exit__()
        sys.exit("error: the server did not answer /health within 120 s")

    def __exit__(self, *_: object) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def drive(
    url: str, texts: list[str], clients: int, seconds: float, warmup: float, per_request: int
) -> dict[str, Any]:
    import httpx
    import numpy as np

    turn = itertools.count()
    latencies: list[float] = []
    errors = 0
    statuses: collections.Counter[str] = collections.Counter()

    async def client_loop(client: httpx.AsyncClient, until: float, record: bool) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            start = next(turn) * per_request
            batch = [texts[(start + k) % len(texts)] for k in range(per_request)]
            began = time.perf_counter()
            try:
                response = await client.post("/v1/predict", json={"texts": batch})
                status = str(response.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            if record:
                statuses[status] += 1
                if status == "200":
                    latencies.append(time.perf_counter() - began)
                else:
                    errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        until = time.perf_counter() + warmup
        await asyncio.gather(*(client_loop(client, until, False) for _ in range(clients)))
        began = time.perf_counter()
        until = began + seconds
        await asyncio.gather(*(client_loop(client, until, True) for _ in range(clients)))
        elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    return {
        "requests": len(latencies),
        "errors": errors,
        "statuses": dict(sorted(statuses.items())),
        "elapsed_seconds": elapsed,
        "requests_per_second": len(latencies) / elapsed,
        "texts_per_second": len(latencies) * per_request / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def texts_per_model_call(url: str) -> float:
    """Mean texts per model call over the whole run (warm-up included), from /metrics."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
        for s in family.samples
    }
    calls = samples.get("tunelab_batch_size_count", 0)
    return samples.get("tunelab_batch_size_sum", 0) / calls if calls else float("nan")


# --- --abusive: good clients together with abusive ones -------------------------------------

BAD_BODIES = [
    b'{"texts": ["\\ud800"]}',  # a lone surrogate: valid JSON, not Unicode
    b'{"texts": ["a good film", ',  # truncated JSON
    b'{"texts": ["\xff\xfe bad bytes"]}',  # not UTF-8
    b'{"texts": [3]}',  # a number for a text
    b'{"texts": ["   "]}',  # an empty text
]
KINDS = {  # kind: how many clients (connections) run it at once
    "bad-json": 4,
    "oversized-chunked": 2,
    "slowloris": 200,
    "stalled": 100,
    "slow-body": 20,
}
FLOOD_EVERY = 10.0
FLOOD_SIZE = QUEUE_SIZE + 128


def abusive_run(args: argparse.Namespace, texts: list[str]) -> int:
    """Serve once: good clients alone, abusive ones alone, then both; report; 1 if good got a 5xx."""
    import httpx

    print(f"abusive run: serving {args.run_dir} with tunelab serve's defaults", flush=True)
    rss: dict[str, float] = {}
    with serving(args.run_dir, []) as url:
        pid = serving_pid[0]
        rss["loaded"] = rss_mb(pid)
        good = {}
        print(f"good clients alone ({args.clients}, {args.alone_seconds:g} s)", flush=True)
        good["alone"] = asyncio.run(
            drive(url, texts, args.clients, args.alone_seconds, args.warmup, 1)
        )
        rss["after good clients alone"] = rss_mb(pid)
        print(f"abusive clients alone ({args.alone_seconds:g} s)", flush=True)
        with RssSampler(pid) as sampler, abusers(url, args.alone_seconds) as alone:
            pass
        rss["peak with abusive clients alone"] = sampler.peak
        rss["after abusive clients alone"] = rss_mb(pid)
        print(f"good clients with abusive ones ({args.seconds:g} s)", flush=True)
        with RssSampler(pid) as sampler, abusers(url, args.seconds) as abused:
            good["with abusive clients"] = asyncio.run(
                drive(url, texts, args.clients, args.seconds, 0, 1)
            )
        rss["peak with both"] = sampler.peak
        rss["after"] = rss_mb(pid)
        healthy = httpx.get(f"{url}/health", timeout=10).status_code == 200
    good_5xx = sum(
        n for r in good.values() for status, n in r["statuses"].items() if status.startswith("5")
    )
    good_failures = sum(r["errors"] for r in good.values())
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "run_dir": str(args.run_dir),
        "data": f"{args.data} ({args.column}, {len(texts)} texts)",
        "server": "tunelab serve defaults (queue 256, batch 32, header timeout 10 s, body "
        "timeout 30 s, limit_concurrency 1000)",
        "clients": args.clients,
        "alone_seconds": args.alone_seconds,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "cpu_count": os.cpu_count(),
        "good": good,
        "abusive_alone": alone,
        "abusive_with_good": abused,
        "abusive_clients": {
            **KINDS,
            "flood": f"{FLOOD_SIZE} new connections every {FLOOD_EVERY:g} s",
        },
        "server_rss_mb": rss,
        "server_healthy_after": healthy,
        "good_5xx": good_5xx,
        "good_failures": good_failures,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print()
    print("| clients | kind | requests or connections | outcomes | p50 ms | p99 ms |")
    print("|---|---|---:|---|---:|---:|")
    for phase, r in good.items():
        total = sum(r["statuses"].values())
        print(
            f"| {args.clients} | good, {phase} | {total} | {outcomes(r['statuses'])} | "
            f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} |"
        )
    for kind, counts in abused.items():
        many = KINDS.get(kind, f"{FLOOD_SIZE} per burst")
        print(f"| {many} | {kind} | {sum(counts.values())} | {outcomes(counts)} | | |")
    print("server RSS (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))
    print(f"/health after: {'200' if healthy else 'failed'}")
    print(f"good clients: {good_5xx} 5xx, {good_failures} non-200 answers or errors")
    print(f"wrote {args.out}")
    return 1 if good_5xx or not healthy else 0


class abusers:
    """The abusive clients for `seconds`, in a process of their own (their CPU is not the good
    clients' event loop); the `with` value is filled with their outcomes when it ends."""

    def __init__(self, url: str, seconds: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.seconds, self.results = seconds, context.Queue()
        self.process = context.Process(target=abuse_process, args=(url, seconds, self.results))
        self.outcomes: dict[str, dict[str, int]] = {}

    def __enter__(self) -> dict[str, dict[str, int]]:
        self.process.start()
        return self.outcomes

    def __exit__(self, *_: object) -> None:
        self.outcomes.update(self.results.get(timeout=self.seconds + 120))
        self.process.join(timeout=30)
        time.sleep(2)  # the server closes what the abusers left


def outcomes(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


serving_pid: list[int] = []  # the server's pid, set by `serving`


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """The server's peak RSS, sampled every 0.25 s while the `with` block runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.25)

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.running = False
        self.join()


def abuse_process(url: str, seconds: float, results: Any) -> None:
    """The abusive clients, in their own process (their CPU is not the good clients' loop)."""
    results.put(asyncio.run(abuse(url, seconds)))


async def abuse(url: str, seconds: float) -> dict[str, dict[str, int]]:
    port = int(url.rsplit(":", 1)[1])
    until = time.monotonic() + seconds
    counts: dict[str, collections.Counter[str]] = {
        k: collections.Counter() for k in [*KINDS, "flood"]
    }
    tasks = [bad_json(url, until, counts["bad-json"]) for _ in range(KINDS["bad-json"])]
    tasks += [
        chunked(url, until, counts["oversized-chunked"]) for _ in range(KINDS["oversized-chunked"])
    ]
    for kind, first in (
        ("slowloris", b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        ("stalled", b""),
        (
            "slow-body",
            b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"texts": ["',
        ),
    ):
        trickle = kind == "slowloris"
        tasks += [stall(port, first, trickle, until, counts[kind]) for _ in range(KINDS[kind])]
    tasks.append(flood(url, until, counts["flood"]))
    await asyncio.gather(*tasks)
    return {kind: dict(c) for kind, c in counts.items()}


async def bad_json(url: str, until: float, counts: collections.Counter[str]) -> None:
    import httpx

    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for body in itertools.cycle(BAD_BODIES):
            if time.monotonic() >= until:
                return
            try:
                response = await client.post("/v1/predict", content=body, headers=headers)
                counts[str(response.status_code)] += 1
            except httpx.HTTPError as exc:
                counts[type(exc).__name__] += 1


async def chunked(url: str, until: float, counts: collections.Counter[str]) -> None:
    import httpx

    async def body() -> Any:  # no length known: httpx sends it chunked
        yield b'{"texts": ["'
        for _ in range(1024):  # 64 MB at most
            yield b"x" * 65536
        yield b'"]}'

    headers = {"content-type": "application/json"}
    while time.monotonic() < until:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            try:
                response = await client.post("/v1/predict", content=body(), headers=headers)
                counts[str(response.status_code)] += 1
            except httpx.HTTPError as exc:
                counts[f"closed ({type(exc).__name__})"] += 1


async def stall(
    port: int, first: bytes, trickle: bool, until: float, counts: collections.Counter[str]
) -> None:
    """Connect, send `first` (and with `trickle`, one more header line a second), never finish;
    record how the server ended it, and connect again until the time is up."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError as exc:
            counts[f"connect failed ({type(exc).__name__})"] += 1
            await asyncio.sleep(1)
            continue
        outcome = "still open at the end"
        try:
            writer.write(first)
            line = 0
            while time.monotonic() < until:
                try:
                    data = await asyncio.wait_for(reader.read(65536), 1.0)
                except TimeoutError:
                    if trickle:
                        line += 1
                        writer.write(b"X-Slow-%d: y\r\n" % line)
                    continue
                if data.startswith(b"HTTP/1.1 "):
                    outcome = data[9:12].decode() + " + closed"
                else:
                    outcome = "closed without an answer"
                break
        except ConnectionError as exc:
            outcome = f"reset ({type(exc).__name__})"
        finally:
            writer.close()
        counts[outcome] += 1


async def flood(url: str, until: float, counts: collections.Counter[str]) -> None:
    """Every FLOOD_EVERY seconds, FLOOD_SIZE requests at once, each on a new connection."""
    import httpx

    limits = httpx.Limits(max_connections=FLOOD_SIZE, max_keepalive_connections=0)
    body = {"texts": ["a flood of requests"]}
    await asyncio.sleep(2)
    while time.monotonic() < until - 5:
        began = time.monotonic()
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

            async def one() -> None:
                try:
                    counts[str((await client.post("/v1/predict", json=body)).status_code)] += 1
                except httpx.HTTPError as exc:
                    counts[type(exc).__name__] += 1

            await asyncio.gather(*(one() for _ in range(FLOOD_SIZE)))
        await asyncio.sleep(max(0.0, FLOOD_EVERY - (time.monotonic() - began)))


if __name__ == "__main__":
    main()
