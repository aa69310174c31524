"""serve: a model over HTTP: POST /predict ``{"question"}`` -> ``{"response"}`` (the seed's API; with
``--index_path`` also ``"sources"``), OpenAI-compatible /v1/models, /v1/chat/completions and /v1/completions
(streaming as server-sent events), and /health. See :mod:`scripts.serving` for the parts.

The model is anything ``generate`` takes (our checkpoints, HF directories, .gguf files, ``smollm2``, adapter
directories); ``--adapter NAME=PATH`` (repeatable, as in ``generate``) serves named LoRA adapters, picked by the
request's ``model`` field (the base answers to its name and to ``base``). The server binds 127.0.0.1 unless told
otherwise; a non-loopback ``--host`` without ``--api_key`` prints a warning.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from minillm.errors import InputError

EXAMPLES = """examples:
  python main.py serve                                          # SmolLM2 on http://127.0.0.1:8000
  python main.py serve --model_path checkpoints/default/best --port 8080
  python main.py serve --model_path smollm2 --adapter eli5=out/eli5 --adapter exec=out/executive
  python main.py serve --model_path smollm2 --index_path indexes/notes      # /predict answers with sources
  python main.py serve --host 0.0.0.0 --api_key "$(openssl rand -hex 16)"   # reachable from other machines
  curl -s http://127.0.0.1:8000/predict -H 'Content-Type: application/json' -d '{"question": "What is RAG?"}'
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_path", default="smollm2",
                        help="checkpoint, HF directory, .gguf file, adapter directory or alias (default: smollm2)")
    parser.add_argument("--tokenizer_path", default=None, help="tokenizer.json or a directory holding one")
    parser.add_argument("--adapter", action="append", default=None, metavar="NAME=PATH",
                        help="a LoRA adapter to serve (repeatable): PATH, NAME=PATH, or NAME in MODEL/adapters/ or "
                             "CHECKPOINTS_ROOT/adapters/; requests pick it with \"model\": NAME")
    parser.add_argument("--any_adapter_base", action="store_true",
                        help="load adapters even when their adapter_config.json names another base model")
    parser.add_argument("--checkpoints_root", default="checkpoints", help="where bare adapter names are looked up")
    parser.add_argument("--index_path", default=None, help="a RAG index (python main.py rag build ...): /predict "
                                                           "and chat completions retrieve and return sources")
    parser.add_argument("--top_k", type=int, default=3, help="passages retrieved per question (with --index_path)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api_key", default=None, help="require 'Authorization: Bearer KEY' (all but /health)")
    parser.add_argument("--max_request_bytes", type=int, default=1_000_000, help="larger bodies get 413")
    parser.add_argument("--max_batch_size", type=int, default=8, help="requests generated together at most")
    parser.add_argument("--batch_wait_ms", type=float, default=20.0,
                        help="after a batch of several requests, how long a new batch waits for more to join")
    parser.add_argument("--max_tokens_default", type=int, default=256,
                        help="max_tokens when a request gives none (capped by the context left)")
    parser.add_argument("--limit_concurrency", type=int, default=256,
                        help="open connections at most; more get 503")
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    parser.add_argument("--log_level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def _check(args: argparse.Namespace) -> None:
    checks = [
        ("port", 0 <= args.port <= 65535, "from 0 to 65535"),
        ("top_k", args.top_k >= 1, "an integer >= 1"),
        ("max_request_bytes", args.max_request_bytes >= 1, "an integer >= 1"),
        ("max_batch_size", args.max_batch_size >= 1, "an integer >= 1"),
        ("max_tokens_default", args.max_tokens_default >= 1, "an integer >= 1"),
        ("batch_wait_ms", 0 <= args.batch_wait_ms <= 10_000, "from 0 to 10000"),
        ("limit_concurrency", args.limit_concurrency >= 1, "an integer >= 1"),
    ]
    for name, valid, expected in checks:
        if not valid:
            raise InputError(f"--{name} {getattr(args, name)!r} is out of range; it must be {expected}")
    if args.api_key is not None and not args.api_key.strip():
        raise InputError("--api_key is empty; give the key clients must send, or leave the flag out")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(args: argparse.Namespace) -> int:
    import uvicorn

    from minillm.devices import resolve_device
    from scripts.generate import adapter_base_name, adapter_specs
    from scripts.serving.app import create_app
    from scripts.serving.engine import Engine
    from scripts.serving.rag_sources import open_index
    from scripts.serving.served_models import load_served_model

    _check(args)
    device = str(resolve_device(args.device))
    adapters = adapter_specs(args, args.model_path)  # bad --adapter values fail before the model loads
    index = open_index(Path(args.index_path)) if args.index_path else None
    served = load_served_model(args.model_path, adapters, args.tokenizer_path, device,
                               base_name=adapter_base_name(args.model_path) if adapters else None,
                               check_base=not args.any_adapter_base)
    engine = Engine(served, max_batch_size=args.max_batch_size, batch_wait_s=args.batch_wait_ms / 1000)
    app = create_app(engine, index=index, api_key=args.api_key, max_request_bytes=args.max_request_bytes,
                     max_tokens_default=args.max_tokens_default, top_k=args.top_k)
    if not is_loopback(args.host) and not args.api_key:
        print(f"warning: --host {args.host} makes the server reachable from other machines without an API key; "
              "pass --api_key KEY", file=sys.stderr)
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown_host}:{args.port}"
    auth = f" -H 'Authorization: Bearer {args.api_key}'" if args.api_key else ""
    print(f"serving {', '.join(served.names())} on {url} (context {served.context_length} tokens)")
    print(f"  curl -s {url}/predict -H 'Content-Type: application/json'{auth} -d '{{\"question\": \"Hello?\"}}'")
    print(f"  OpenAI clients: base_url={url}/v1, model={served.name}", flush=True)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            limit_concurrency=args.limit_concurrency, timeout_keep_alive=30)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":  # python scripts/serve.py ..., from the project root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from main import run_as_script

    run_as_script("serve")
