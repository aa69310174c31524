"""Serving throughput: `main.py serve` under 1, 4 and 16 concurrent clients against the same model's direct
``generate`` for one client (CPU by default).

The server runs as a subprocess (``python main.py serve --model_path MODEL``) so the clients' HTTP work does not
share its interpreter; each client loops over chat completions (greedy, ``--max_tokens`` new tokens, prompts
from a fixed list) for ``--seconds``; in-flight requests finish after the deadline and the elapsed time counts
them. Reported per level: requests served, errors (must be 0), p50/p95 latency, aggregate completion tokens/s.
The reference is one client calling ``model.generate`` directly (same prompts in the same order, chat template,
EOS ids and max_new_tokens) in this process; it and the 1-client server level alternate in rounds
(``--round_seconds``), so background load on a shared machine hits both alike, and never run at once.
Figures: server overhead = 1 - (1-client server tokens/s / direct tokens/s) (target <= 10%), and the batching
gain = 4-client tokens/s / 1-client tokens/s (target >= 2x).

Writes bench/results/bench_serve.json (date, versions, machine, load average before and after).
Usage: python bench/bench_serve.py [--model_path smollm2] [--seconds 60] [--clients 1 4 16] [--max_tokens 64]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROMPTS = ["What is a transformer model?", "Explain photosynthesis in two sentences.",
           "Give three tips for writing clear code.", "Why is the sky blue?", "What does a CPU cache do?",
           "Summarise the plot of Hamlet.", "How do vaccines work?", "What is retrieval-augmented generation?"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def summary(latencies: list[float], tokens: int, errors: int, elapsed: float, clients: int) -> dict:
    return {"clients": clients, "requests": len(latencies), "errors": errors, "seconds": round(elapsed, 2),
            "p50_latency_s": round(percentile(latencies, 0.5), 3), "p95_latency_s": round(percentile(latencies, 0.95), 3),
            "completion_tokens": tokens, "tokens_per_s": round(tokens / elapsed, 2) if elapsed else 0.0}


class DirectClient:
    """One client calling the model's generate in a loop, in this process (the reference)."""

    def __init__(self, model_path: str, max_tokens: int, device: str) -> None:
        from scripts.serving.served_models import load_served_model

        self.served = load_served_model(model_path, device=device)
        self.encoded = [self.served.encode_chat([{"role": "user", "content": p}]) for p in PROMPTS]
        self.max_tokens = max_tokens
        self.latencies: list[float] = []
        self.tokens = 0
        self.elapsed = 0.0
        self.next_prompt = 0
        self.once(self.encoded[0])  # warm-up

    def once(self, ids: list[int]) -> int:
        eos = self.served.eos_token_ids
        out = self.served.model.generate(torch.tensor([ids], device=self.served.device()),
                                         max_new_tokens=self.max_tokens, do_sample=False, eos_token_id=eos)
        new = out[0, len(ids):].tolist()
        return next((i + 1 for i, t in enumerate(new) if t in eos), len(new))

    def run(self, seconds: float) -> None:
        """Generate for ``seconds`` (the request under way at the deadline finishes and counts)."""
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            began = time.perf_counter()
            self.tokens += self.once(self.encoded[self.next_prompt % len(self.encoded)])
            self.latencies.append(time.perf_counter() - began)
            self.next_prompt += 1
        self.elapsed += time.perf_counter() - start

    def summary(self) -> dict:
        return summary(self.latencies, self.tokens, 0, self.elapsed, 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_path: str, port: int, device: str, max_batch_size: int) -> subprocess.Popen:
    command = [sys.executable, str(REPO / "main.py"), "serve", "--model_path", model_path, "--port", str(port),
               "--log_level", "warning", "--device", device, "--max_batch_size", str(max_batch_size)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {process.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("the server did not start in 600 s")


def load_level(url: str, model: str, clients: int, seconds: float, max_tokens: int, first_prompt: int = 0) -> dict:
    """``clients`` threads posting chat completions until the deadline (client i starts at prompt
    ``first_prompt + i``)."""
    latencies: list[float] = []
    counts = {"tokens": 0, "errors": 0}
    lock = threading.Lock()
    start = time.perf_counter()

    def client(index: int) -> None:
        with httpx.Client(timeout=600) as http:
            i = first_prompt + index
            while time.perf_counter() - start < seconds:
                body = {"model": model, "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                        "max_tokens": max_tokens, "temperature": 0}
                began = time.perf_counter()
                try:
                    response = http.post(f"{url}/v1/chat/completions", json=body)
                    ok = response.status_code == 200
                    used = response.json()["usage"]["completion_tokens"] if ok else 0
                except (httpx.HTTPError, ValueError, KeyError):
                    ok, used = False, 0
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - began)
                        counts["tokens"] += used
                    else:
                        counts["errors"] += 1
                i += clients

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = summary(latencies, counts["tokens"], counts["errors"], time.perf_counter() - start, clients)
    result["latencies"] = latencies
    return result


def merge(rounds: list[dict], clients: int) -> dict:
    """One summary of several rounds of one level."""
    latencies = [x for r in rounds for x in r["latencies"]]
    return summary(latencies, sum(r["completion_tokens"] for r in rounds), sum(r["errors"] for r in rounds),
                   sum(r["seconds"] for r in rounds), clients)


def versions() -> dict:
    import fastapi
    import sse_starlette
    import transformers
    import uvicorn

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "fastapi": fastapi.__version__, "uvicorn": uvicorn.__version__, "sse_starlette": sse_starlette.__version__}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, {platform.platform()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_path", default="smollm2")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max_tokens", type=int, default=64)
    parser.add_argument("--max_batch_size", type=int, default=16)
    parser.add_argument("--round_seconds", type=float, default=15.0,
                        help="direct and 1-client server runs alternate in rounds of about this long")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "bench_serve.json"))
    args = parser.parse_args()

    load_before = os.getloadavg()
    direct = DirectClient(args.model_path, args.max_tokens, args.device)
    port = free_port()
    server = start_server(args.model_path, port, args.device, args.max_batch_size)
    url = f"http://127.0.0.1:{port}"
    rounds = max(1, round(args.seconds / args.round_seconds))
    try:
        model = httpx.get(f"{url}/v1/models", timeout=10).json()["data"][0]["id"]
        load_level(url, model, 1, 0.0, 4)  # warm-up: one request
        print(f"direct generate and the server with 1 client, alternating {rounds} rounds of "
              f"{args.seconds / rounds:.0f} s each ...", flush=True)
        single = []
        for _ in range(rounds):  # alternating, so background load hits both alike; same prompts in order
            first = direct.next_prompt
            direct.run(args.seconds / rounds)
            single.append(load_level(url, model, 1, args.seconds / rounds, args.max_tokens, first))
        levels = []
        for clients in args.clients:
            if clients == 1:
                levels.append(merge(single, 1))
                continue
            print(f"server, {clients} clients, {args.seconds:.0f} s ...", flush=True)
            level = load_level(url, model, clients, args.seconds, args.max_tokens)
            levels.append(merge([level], clients))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    direct = direct.summary()
    load_after = os.getloadavg()

    one = next((level for level in levels if level["clients"] == 1), None)
    four = next((level for level in levels if level["clients"] == 4), None)
    overhead = 1 - one["tokens_per_s"] / direct["tokens_per_s"] if one and direct["tokens_per_s"] else None
    gain = four["tokens_per_s"] / one["tokens_per_s"] if one and four and one["tokens_per_s"] else None
    print(f"\n{'':<22}{'requests':>9}{'errors':>7}{'p50 s':>8}{'p95 s':>8}{'tokens/s':>10}{'vs direct':>10}")
    for name, row in [("direct generate (ref)", direct), *[(f"server, {r['clients']} client(s)", r) for r in levels]]:
        ratio = row["tokens_per_s"] / direct["tokens_per_s"] if direct["tokens_per_s"] else float("nan")
        print(f"{name:<22}{row['requests']:>9}{row['errors']:>7}{row['p50_latency_s']:>8.2f}"
              f"{row['p95_latency_s']:>8.2f}{row['tokens_per_s']:>10.1f}{ratio:>9.2f}x")
    if overhead is not None:
        print(f"server overhead at 1 client: {overhead * 100:.1f}% (target <= 10%)")
    if gain is not None:
        print(f"4 clients / 1 client tokens/s: {gain:.2f}x (target >= 2x)")
    result = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "versions": versions(),
              "machine": machine(), "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in load_after],
              "settings": {"model_path": args.model_path, "seconds": args.seconds, "rounds_1_client": rounds, "max_tokens": args.max_tokens,
                           "max_batch_size": args.max_batch_size, "device": args.device, "temperature": 0},
              "direct_generate": direct, "server": levels,
              "server_overhead_1_client": None if overhead is None else round(overhead, 4),
              "batching_gain_4_vs_1": None if gain is None else round(gain, 3),
              "errors_total": sum(level["errors"] for level in levels)}
    if args.out:
        from minillm.atomic import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0 if result["errors_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
