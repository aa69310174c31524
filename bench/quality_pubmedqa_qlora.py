"""Quality: QLoRA on SmolLM2-135M-Instruct with PubMedQA (PQA-L dev half), yes/no/maybe accuracy before and after.

Data: ``../shared/data/pubmedqa/pqal_dev500.json`` (500 expert-labelled questions, yes 276 / no 169 / maybe 55;
MIT, Jin et al. 2019). Split, stratified by label: the PMIDs sorted and shuffled with ``random.Random(--seed)``,
the last items of each label in that order form the held-out set in the data's proportions (100: 55 yes / 34 no /
11 maybe, so the majority class scores 55%), the first ``--train`` of the rest train. The held-out items are never
trained on; they are the Trainer's validation set. (An unstratified first-400/last-100 cut of the same shuffle
would hold out 67 yes / 24 no / 9 maybe.)

Model: the product path, ``load_model_and_tokenizer("smollm2-135m", use_qlora=True, lora_r=16, lora_alpha=32,
lora_dropout=0.05, device="cpu")`` (peft LoRA over transformers' Llama with bitsandbytes NF4 projections),
``create_dataloaders(..., packing=False)`` on instruction records and our ``Trainer``.

Record (``--format``):
- ``label_first``: input = abstract (its tail kept to fit ``--max_length``; the RESULTS section comes
  last) + question + "Answer yes, no or maybe, then give the conclusion."; output = ``"yes. <LONG_ANSWER>"``.
  The loader cuts the long answer's tail where the row exceeds ``--max_length``, never the label.
- ``label_only`` (default): the same input ("Answer yes, no or maybe."), output = the label alone (all of the loss
  on the decision).

Scoring (before and after): by likelihood, never by generating. The prediction is the argmax of the
log-probabilities of the first answer token, ``yes`` / ``no`` / ``maybe`` (single tokens, as the tokenizer splits
``"yes. ..."``), after the chat-templated prompt. They are read off the Trainer's own validation pass (a forward
hook, see :class:`AnswerTap`): the logits before the first output token depend on the prompt alone, so one pass
gives both the accuracy and the held-out loss, with exactly the tokens training sees.
"Before" is the freshly wrapped model, whose LoRA ``B`` matrices are zero, so it computes the base model (checked).
The held-out loss is the Trainer's validation loss (token-weighted mean over the output tokens, the chat template's
end-of-turn included), before (``trainer.evaluate()`` ahead of training) and after. A secondary, prior-corrected
accuracy (``--calibrate``) moves the model's mean p(label) over 100 training questions to the training label
frequencies: it tells whether the scores rank questions at all, beyond a learned prior.

CPU speed: gradient checkpointing (on by the product path: peft's ``prepare_model_for_kbit_training``) is turned
off by default (``--gradient_checkpointing`` keeps it): it only saves memory, which a 135M model does not need,
and costs a second forward pass. ``--mixed_precision bf16`` (default) is the Trainer's autocast (AMX/AVX512-BF16).

Usage (17-20 min on 2 shared x86 cores with ``--threads 1``: ~10 s load, 1-2 min of evaluation before, the
``--max_minutes`` training budget (its evaluations included), 1-2 min after). The recorded attempts::

    nice -n 10 .venv/bin/python bench/quality_pubmedqa_qlora.py --train 400 --held_out 100 --epochs 2 \\
        --max_minutes 15 --threads 1 --format label_first --name "1: label_first L320 lr2e-4 bs4 15min"
    ... --format label_only --name "2: label_only L320 lr2e-4 bs4 15min"         # the defaults
    ... --format label_only --max_length 256 --lr 3e-4 --name "3: label_only L256 lr3e-4 bs4 15min"

Each run adds (or replaces, by ``--name``) one entry in ``bench/results/quality_pubmedqa_qlora.json`` and prints
the table of all entries.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import platform
import random
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "pubmedqa" / "pqal_dev500.json"
OUT = ROOT / "bench" / "results" / "quality_pubmedqa_qlora.json"
LABELS = ("yes", "no", "maybe")
INSTRUCTION = {
    "label_first": "Answer yes, no or maybe, then give the conclusion.",
    "label_only": "Answer yes, no or maybe.",
}


def load_split(path: Path, n_train: int, n_held: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, held-out) PubMedQA items, stratified by label so the held-out set has the data's label mix.

    PMIDs sorted, then shuffled with ``random.Random(seed)``; each label's items (in that order) give their
    share of the held-out set from the end (largest remainders round), the train set is the first ``n_train``
    of the rest (in the shuffled order).
    """
    data = json.loads(path.read_text())
    ids = sorted(data)
    random.Random(seed).shuffle(ids)
    if n_train + n_held > len(ids):
        raise SystemExit(f"--train {n_train} + --held_out {n_held} exceeds the {len(ids)} questions in {path}")
    items = [{"pmid": k, **data[k]} for k in ids]
    by_label = {label: [i for i in items if i["final_decision"] == label] for label in LABELS}
    exact = {label: n_held * len(group) / len(items) for label, group in by_label.items()}
    share = {label: int(x) for label, x in exact.items()}
    for label in sorted(exact, key=lambda lb: exact[lb] - share[lb], reverse=True)[: n_held - sum(share.values())]:
        share[label] += 1
    held = {i["pmid"] for label, group in by_label.items() for i in group[len(group) - share[label] :]}
    return [i for i in items if i["pmid"] not in held][:n_train], [i for i in items if i["pmid"] in held]


class Prompts:
    """Instruction records and scoring prompts that fit ``max_length`` tokens (abstract tail kept)."""

    def __init__(self, tokenizer, fmt: str, max_length: int, answer_room: int) -> None:
        self.tok, self.fmt, self.max_length, self.answer_room = tokenizer, fmt, max_length, answer_room
        self.overhead = len(self.prompt_ids(self.user_turn("", "")))

    def user_turn(self, abstract: str, question: str) -> str:
        return f"Abstract: {abstract}\n\nQuestion: {question}\n{INSTRUCTION[self.fmt]}"

    def prompt_ids(self, user: str) -> list[int]:
        """The tokens before the answer, exactly as the training rows hold them (chat template + generation cue)."""
        text = self.tok.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                            tokenize=False)
        return self.tok.encode(text, add_special_tokens=False)

    def user(self, item: dict) -> tuple[str, bool]:
        """The user turn of ``item`` and whether its abstract was cut (its head dropped, the tail kept)."""
        question = item["QUESTION"]
        abstract = " ".join(item["CONTEXTS"])
        budget = self.max_length - self.answer_room - self.overhead - len(self.tok.encode(question, add_special_tokens=False))
        ids = self.tok.encode(abstract, add_special_tokens=False)
        cut = len(ids) > budget
        if cut:
            abstract = "..." + self.tok.decode(ids[len(ids) - max(budget - 2, 0) :]).lstrip()
        return self.user_turn(abstract, question), cut

    def record(self, item: dict) -> dict:
        label = item["final_decision"]
        output = label if self.fmt == "label_only" else f"{label}. {item['LONG_ANSWER']}"
        return {"input": self.user(item)[0], "output": output}


def label_token_ids(tokenizer) -> dict[str, int]:
    """First token of each answer as the training rows tokenize it ("yes. ..." -> "yes")."""
    ids = {}
    for label in LABELS:
        first = tokenizer.encode(f"{label}. The", add_special_tokens=False)[0]
        if tokenizer.decode([first]) != label:
            raise SystemExit(f"{label!r} is not one token for this tokenizer ({tokenizer.decode([first])!r})")
        ids[label] = first
    return ids


class AnswerTap:
    """Reads the answer scores off the Trainer's own validation forward passes (a forward hook on the model).

    Validation rows are the chat-templated prompt followed by the output; the logits at the position before the
    first output token depend on the prompt alone (causal attention, right padding), so
    ``log p(first answer token | prompt)`` comes from the pass that also gives the held-out loss, with exactly
    the tokens training sees. Only eval-mode calls with labels are recorded; :meth:`take` returns and clears them.
    """

    def __init__(self, model, label_ids: dict[str, int]) -> None:
        self.model, self.wanted = model, torch.tensor([label_ids[label] for label in LABELS])
        self.rows: list[tuple[list[float], int]] = []  # (log-probs of yes/no/maybe, gold first answer token)
        model.register_forward_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs, output) -> None:
        labels = kwargs.get("labels")
        if module.training or labels is None:
            return
        for i in range(labels.shape[0]):
            first = int((labels[i] != -100).nonzero()[0])  # the first output token (the answer)
            logp = output.logits[i, first - 1].float().log_softmax(-1)
            self.rows.append((logp[self.wanted].tolist(), int(labels[i, first])))

    def take(self, items: list[dict], label_ids: dict[str, int]) -> list[list[float]]:
        """The log-probs of the last ``len(items)`` recorded rows (the latest pass over ``items``); clears the tap."""
        rows, self.rows = self.rows[-len(items) :], []
        if len(rows) != len(items):
            raise SystemExit(f"recorded {len(rows)} validation rows, expected {len(items)}")
        for (_, token), item in zip(rows, items, strict=True):
            if token != label_ids[item["final_decision"]]:
                raise SystemExit(f"a row starts its output with token {token}, not {item['final_decision']!r}")
        return [lp for lp, _ in rows]


def class_prior(logprobs: list[list[float]]) -> list[float]:
    """Mean over questions of p(label) renormalised over yes/no/maybe."""
    probs = torch.tensor(logprobs).softmax(-1)  # (N, 3)
    return probs.mean(0).tolist()


def metrics(logprobs: list[list[float]], items: list[dict], prior: list[float] | None = None,
            target: list[float] | None = None) -> dict:
    """Accuracy of argmax over yes/no/maybe; with ``prior`` (the model's mean p(label)) and ``target`` (the training
    label frequencies): of argmax of log p - log prior + log target, the model's prior moved to the training one."""
    scores = torch.tensor(logprobs)  # (N, 3)
    if prior is not None:
        scores = scores - torch.tensor(prior).log() + torch.tensor(target).log()
    predictions = [LABELS[j] for j in scores.argmax(-1).tolist()]
    gold = [item["final_decision"] for item in items]
    confusion = {g: {p: 0 for p in LABELS} for g in LABELS}
    for g, p in zip(gold, predictions, strict=True):
        confusion[g][p] += 1
    out = {
        "accuracy": sum(g == p for g, p in zip(gold, predictions, strict=True)) / len(items),
        "predicted": {label: predictions.count(label) for label in LABELS},
        "confusion_gold_to_predicted": confusion,
    }
    if prior is None:
        out["mean_prob_mass_on_yes_no_maybe"] = round(float(torch.tensor(logprobs).exp().sum(-1).mean()), 4)
    return out


@torch.no_grad()
def scoring_pass(model, loader, bf16: bool) -> None:
    """Eval-mode forward passes over ``loader`` (the tap records them), as the Trainer's evaluate() runs them."""
    was_training = model.training
    model.eval()
    for batch in loader:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(**batch)
    model.train(was_training)


def evaluation(logprobs: list[list[float]], held: list[dict], loss: float,
               calib_logprobs: list[list[float]] | None, target: list[float]) -> dict:
    """Raw and prior-corrected held-out figures of one model state."""
    out = {**metrics(logprobs, held), "held_out_loss": loss}
    if calib_logprobs is not None:
        prior = class_prior(calib_logprobs)
        out["model_prior_on_train_questions"] = [round(x, 4) for x in prior]
        out["prior_corrected"] = metrics(logprobs, held, prior, target)
    return out


def calibrate(model, tap: AnswerTap, loader, items: list[dict], label_ids: dict[str, int],
              bf16: bool) -> list[list[float]] | None:
    """Log-probs of the calibration (training) questions under the model as it is now."""
    if loader is None:
        return None
    scoring_pass(model, loader, bf16)
    return tap.take(items, label_ids)


def lora_b_is_zero(model) -> bool:
    return all(float(p.detach().abs().max()) == 0.0 for n, p in model.named_parameters() if "lora_B" in n)


def machine() -> str:
    import bitsandbytes
    import peft
    import transformers

    return (f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
            f"bitsandbytes {bitsandbytes.__version__}, python {platform.python_version()}, {platform.machine()}, "
            f"{os.cpu_count()} cores, {torch.get_num_threads()} threads")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--held_out", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="split shuffle and training seed")
    parser.add_argument("--format", choices=sorted(INSTRUCTION), default="label_only")
    parser.add_argument("--max_length", type=int, default=320, help="tokens per row (abstract tail kept to fit)")
    parser.add_argument("--answer_room", type=int, default=24, help="tokens left for the output in each row")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max_minutes", type=float, default=15.0, help="training budget (evaluations included)")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--warmup_steps", type=int, default=5)
    parser.add_argument("--mixed_precision", choices=["bf16", "none"], default="bf16")
    parser.add_argument("--gradient_checkpointing", action="store_true", help="keep the product path's default")
    parser.add_argument("--calibrate", type=int, default=100,
                        help="training questions whose mean p(label) gives the prior-corrected figure (0: none)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--name", default=None, help="entry name in the results file (default: from the flags)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    if not args.data.is_file():
        raise SystemExit(f"PubMedQA not found at {args.data} (the shared data folder); pass --data")

    from training import Trainer, create_dataloaders, load_model_and_tokenizer

    wall0 = time.perf_counter()
    torch.manual_seed(args.seed)  # the LoRA A matrices' initialisation
    model, tok = load_model_and_tokenizer("smollm2-135m", use_qlora=True, lora_r=16, lora_alpha=32,
                                          lora_dropout=0.05, device="cpu")
    if not args.gradient_checkpointing:
        model.get_base_model().gradient_checkpointing_disable()
    bf16 = args.mixed_precision == "bf16"
    train_items, held_items = load_split(args.data, args.train, args.held_out, args.seed)
    prompts = Prompts(tok, args.format, args.max_length, args.answer_room)
    train_records = [prompts.record(item) for item in train_items]
    held_records = [prompts.record(item) for item in held_items]
    cut = sum(prompts.user(item)[1] for item in train_items + held_items)
    label_ids = label_token_ids(tok)
    train_loader, val_loader = create_dataloaders(train_records, held_records, tok, batch_size=args.batch_size,
                                                  max_length=args.max_length, packing=False, seed=args.seed)
    calib_items = train_items[: args.calibrate]
    calib_loader = None
    if calib_items:  # the loaders' unshuffled second one: the first --calibrate training questions, in order
        calib_records = train_records[: len(calib_items)]
        calib_loader = create_dataloaders(calib_records, calib_records, tok, batch_size=args.batch_size,
                                          max_length=args.max_length, packing=False, seed=args.seed)[1]
    print(f"loaded in {time.perf_counter() - wall0:.0f}s; {len(train_records)} train / {len(held_records)} held-out "
          f"records, {cut} abstracts cut to fit {args.max_length} tokens", flush=True)

    held_gold = collections.Counter(item["final_decision"] for item in held_items)
    train_gold = collections.Counter(item["final_decision"] for item in train_items)
    majority = train_gold.most_common(1)[0][0]
    target = [train_gold[label] / len(train_items) for label in LABELS]  # training label frequencies
    with tempfile.TemporaryDirectory(prefix="pubmedqa-qlora-") as tmp:
        trainer = Trainer(model=model, train_dataloader=train_loader, val_dataloader=val_loader,
                          learning_rate=args.lr, checkpoint_dir=tmp, device="cpu", early_stopping_patience=None,
                          progress_bar=True, tensorboard=False, plot=False, seed=args.seed,
                          gradient_accumulation_steps=args.gradient_accumulation_steps,
                          warmup_steps=args.warmup_steps, lr_scheduler="cosine", max_minutes=args.max_minutes,
                          mixed_precision=args.mixed_precision if bf16 else None, save_total_limit=1)
        tap = AnswerTap(model, label_ids)
        t = time.perf_counter()
        base_equal = lora_b_is_zero(model)
        calib_before = calibrate(model, tap, calib_loader, calib_items, label_ids, bf16)
        loss_before = trainer.evaluate()
        lp_before = tap.take(held_items, label_ids)
        before = evaluation(lp_before, held_items, loss_before, calib_before, target)
        eval_seconds = time.perf_counter() - t
        print(f"before: accuracy {before['accuracy']:.2%}, held-out loss {before['held_out_loss']:.4f} "
              f"({eval_seconds:.0f}s)", flush=True)
        t = time.perf_counter()
        result = trainer.train(epochs=args.epochs)
        train_minutes = (time.perf_counter() - t) / 60
    lp_after = tap.take(held_items, label_ids)  # the Trainer's last evaluation: the final model
    calib_after = calibrate(model, tap, calib_loader, calib_items, label_ids, bf16)
    after = evaluation(lp_after, held_items, result["history"][-1]["val_loss"], calib_after, target)
    entry = {
        "name": args.name or f"{args.format} L{args.max_length} lr{args.lr:g} ep{args.epochs} {args.max_minutes:g}min",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in ("out", "name", "data")},
        "split": f"stratified by label: sorted PMIDs, random.Random({args.seed}).shuffle, the last of each label "
                 f"held out in the data's proportions ({args.held_out}), the first {args.train} of the rest train",
        "scoring": "likelihood: argmax of log p(first answer token in {yes, no, maybe} | chat-templated prompt), "
                   "read off the Trainer's validation pass",
        "held_out_labels": {label: held_gold.get(label, 0) for label in LABELS},
        "train_labels": {label: train_gold.get(label, 0) for label in LABELS},
        "majority_class": majority,
        "majority_accuracy": held_gold.get(majority, 0) / len(held_items),
        "abstracts_cut": cut,
        "prior_correction": f"secondary figure: argmax of log p(label) - log prior + log train_freq; prior = the "
                            f"model's mean renormalised p(label) over the first {len(calib_items)} training questions "
                            "(same model state), train_freq = the training label frequencies",
        "before": before,
        "before_equals_base_model": base_equal,
        "after": after,
        "optimizer_steps": result["global_step"],
        "epochs_completed": result["epochs_completed"],
        "stop_reason": result["stop_reason"],
        "train_tokens_seen": result["tokens_seen"],
        "train_minutes": round(train_minutes, 1),
        "total_minutes": round((time.perf_counter() - wall0) / 60, 1),
        "history": [{k: r[k] for k in ("step", "epoch", "train_loss", "val_loss")} for r in result["history"]],
        "per_item_logprobs_yes_no_maybe": [
            {"pmid": item["pmid"], "gold": item["final_decision"], "before": [round(x, 3) for x in b],
             "after": [round(x, 3) for x in a]} for item, b, a in zip(held_items, lp_before, lp_after, strict=True)],
        "machine": machine(),
    }
    save(args.out, entry)


def save(path: Path, entry: dict) -> None:
    """Add ``entry`` to the results file (replacing one of the same name) and print the table of all entries."""
    results = json.loads(path.read_text()) if path.is_file() else {}
    attempts = [a for a in results.get("attempts", []) if a["name"] != entry["name"]] + [entry]
    results = {
        "benchmark": "PubMedQA PQA-L dev half, QLoRA SmolLM2-135M-Instruct, held-out accuracy (likelihood scoring)",
        "machine": entry["machine"],
        "attempts": attempts,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{'attempt':44}{'acc before':>11}{'acc after':>10}{'majority':>9}{'loss before':>12}"
          f"{'loss after':>11}{'steps':>6}{'train min':>10}{'prior-corr. before/after':>26}")
    for a in attempts:
        corrected = (f"{a['before']['prior_corrected']['accuracy']:.0%} / {a['after']['prior_corrected']['accuracy']:.0%}"
                     if "prior_corrected" in a["after"] else "-")
        print(f"{a['name'][:43]:44}{a['before']['accuracy']:11.0%}{a['after']['accuracy']:10.0%}"
              f"{a['majority_accuracy']:9.0%}{a['before']['held_out_loss']:12.4f}{a['after']['held_out_loss']:11.4f}"
              f"{a['optimizer_steps']:6d}{a['train_minutes']:10.1f}{corrected:>26}")
    last = attempts[-1]
    print(f"held-out labels {last['held_out_labels']}; predicted before {last['before']['predicted']}, after "
          f"{last['after']['predicted']}; written to {path}")


if __name__ == "__main__":
    main()
