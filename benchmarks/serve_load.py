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
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVERS = {"micro-batched": [], "one-at-a-time": ["--max-batch-size", "1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", type=Path, default=ROOT / "runs" / "sst2-minilm")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "sst2" / "dev.tsv")
    parser.add_argument("--column", default="sentence")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "serve_load.json")
    args = parser.parse_args()
    if not (args.run_dir / "run_card.json").is_file():
        sys.exit(
            f"error: {args.run_dir} is not a finished run; `make demo` makes runs/sst2-minilm."
        )

    texts = read_texts(args.data, args.column)
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
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "TUNELAB_API_KEY"}
        command = [sys.executable, "-m", "tunelab.cli", "serve", str(run_dir)]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), *extra], env={**env, "HF_HUB_OFFLINE": "1"}
        )
        self.url = f"http://127.0.0.1:{self.port}"

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

    async def client_loop(client: httpx.AsyncClient, until: float, record: bool) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            start = next(turn) * per_request
            batch = [texts[(start + k) % len(texts)] for k in range(per_request)]
            began = time.perf_counter()
            try:
                response = await client.post("/v1/predict", json={"texts": batch})
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if record:
                if ok:
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


if __name__ == "__main__":
    main()
