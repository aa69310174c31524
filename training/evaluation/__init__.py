"""Evaluation: run a question bank through any model (ours, transformers, + adapter, merged), score the answers,
measure perplexity on held-out text, and compare runs (baseline, QLoRA, full fine-tune) in Markdown and a PNG.

- :mod:`.question_bank`  the seed's bank format (and ``pubmedqa[:N]``), checked item by item
- :mod:`.answering`      prompt + ``model.generate`` (the protocol only), timed
- :mod:`.scoring`        accuracy (yes/no/maybe), ROUGE-L, keyword coverage; their means
- :mod:`.perplexity`     exp(mean token NLL) over held-out text in windows of the model's context
- :mod:`.results`        the results list (seed's fields + ours) and its ``.meta.json`` sidecar
- :mod:`.runner`         :func:`evaluate_bank`: answer, score, write after every question, resume
- :mod:`.comparison`, :mod:`.report`, :mod:`.chart`   what ``compare`` reads and writes

Submodules are imported on use (``from training.evaluation.runner import evaluate_bank``), so importing the
package costs nothing.
"""
