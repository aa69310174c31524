"""The HTTP server behind ``main.py serve``: /predict and an OpenAI-compatible API (see :mod:`.app`).

Modules: :mod:`.served_models` (base + named adapters + tokenizer + context length), :mod:`.engine` (one worker
per model: a queue, batching, cancellation), :mod:`.detokenize` (incremental text and stop strings),
:mod:`.schemas` (request bodies), :mod:`.app` (routes), :mod:`.body_limit` and :mod:`.auth` (pure-ASGI guards),
:mod:`.errors` (OpenAI's error shape), :mod:`.rag_sources` (retrieval for ``--index_path``).
"""
