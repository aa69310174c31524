"""Trainer speed on CPU: (a) overhead against a bare PyTorch loop, (b) tokens/s against transformers' Trainer.

Same model and data everywhere: decoder d_model 256, 4 layers, 4 heads, vocab 4096, sequence 128, batch 8,
AdamW (decay on 2-D weights), gradient clipping at 1.0, shuffled DataLoader.

(a) our Trainer vs a bare loop (forward, backward, clip, step, zero_grad, loss.item()) on our DecoderOnlyModel.
(b) our Trainer vs transformers.Trainer on LlamaForCausalLM of the identical config (and our Trainer on that
    same LlamaForCausalLM, to separate the trainer from the model).

Per-step cost is the time between the starts of consecutive forward passes (a forward pre-hook on the model),
so it holds everything a step does (data, forward, backward, clipping, optimizer, the trainer's bookkeeping and
progress bar) but not start-up or the final checkpoint write. The first steps are warm-up; runs alternate and
the median over all steps of all repeats is reported (the machine is shared; medians resist the noise).
Usage: python bench/bench_trainer.py [--steps 12] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time

import torch
from torch.utils.data import DataLoader, Dataset

VOCAB, SEQ, BATCH = 4096, 128, 8
CONFIG = {"model_type": "decoder_only", "vocab_size": VOCAB, "d_model": 256, "num_heads": 4, "num_layers": 4, "max_seq_len": SEQ,
              "tie_word_embeddings": False}


class Tokens(Dataset):
    def __init__(self, n: int = 512) -> None:
        self.ids = torch.randint(0, VOCAB, (n, SEQ), generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def our_model():
    from minillm import DecoderOnlyModel

    torch.manual_seed(0)
    return DecoderOnlyModel(CONFIG)


def llama_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    ours = our_model()
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=256, intermediate_size=ours.config.d_ff, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=SEQ,
                         tie_word_embeddings=False)
    config._attn_implementation = "sdpa"
    model = LlamaForCausalLM(config)
    model.load_state_dict(ours.state_dict(), strict=False)
    return model


def loader() -> DataLoader:
    return DataLoader(Tokens(), batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0))


class StepClock:
    """Forward pre-hook recording when each forward pass starts, in wall time and in this process's CPU time."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.starts: list[tuple[float, float]] = []
        model.register_forward_pre_hook(lambda *_: self.starts.append((time.perf_counter(), time.process_time())))

    def durations(self, warmup: int = 2) -> list[tuple[float, float]]:
        """(wall, cpu) seconds of each step after the warm-up ones."""
        pairs = zip(self.starts, self.starts[1:])
        return [(b[0] - a[0], b[1] - a[1]) for a, b in pairs][warmup:]


def bare_loop(steps: int, make_model=our_model) -> list[float]:
    model = make_model().train()
    clock = StepClock(model)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                  lr=1e-4)
    done = 0
    while done < steps:
        for batch in loader():
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss.item()
            done += 1
            if done == steps:
                break
    model(**next(iter(loader())))  # closes the last step's interval
    return clock.durations()


def our_trainer(steps: int, make_model=our_model) -> list[float]:
    from training import Trainer

    model = make_model()
    clock = StepClock(model)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model=model, train_dataloader=loader(), learning_rate=1e-4, checkpoint_dir=tmp,
                          device="cpu", max_steps=steps + 1, early_stopping_patience=None, progress_bar=True,
                          tensorboard=False, plot=False)  # default log_every=10
        trainer.train(epochs=1)
    return clock.durations()[: steps - 2]  # the forward after the last step is the final evaluation


def hf_trainer(steps: int) -> list[float]:
    from transformers import Trainer, TrainingArguments

    model = llama_model()
    clock = StepClock(model)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=BATCH, max_steps=steps + 1,
                                 learning_rate=1e-4, weight_decay=0.01, max_grad_norm=1.0,
                                 lr_scheduler_type="constant", use_cpu=True, save_strategy="no", eval_strategy="no",
                                 logging_steps=10, report_to="none", disable_tqdm=False, dataloader_pin_memory=False,
                                 seed=0)
        Trainer(model=model, args=args, train_dataset=Tokens()).train()
    return clock.durations()[: steps - 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    import transformers

    runs = {
        "bare loop, our model": bare_loop,
        "our Trainer, our model": our_trainer,
        "HF Trainer, Llama": hf_trainer,
        "our Trainer, Llama": lambda n: our_trainer(n, llama_model),
        "bare loop, Llama": lambda n: bare_loop(n, llama_model),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):  # alternate so background load hits every variant alike
        for name, run in runs.items():
            times[name].extend(run(args.steps))
    print(f"\ntorch {torch.__version__}, transformers {transformers.__version__}, python "
          f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} "
          f"thread(s), {args.steps} steps x {args.repeats} repeats, median step (shared machine: CPU time is the "
          f"steadier figure)")
    print(f"{'':28}{'wall ms/step':>14}{'CPU ms/step':>13}{'CPU p25-p75':>14}{'tokens/s (wall)':>17}"
          f"{'tokens/s (CPU)':>16}")
    wall = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
    cpu = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
    for name in runs:
        q = statistics.quantiles([t[1] * 1e3 for t in times[name]], n=4)
        print(f"{name:28}{wall[name] * 1e3:14.1f}{cpu[name] * 1e3:13.1f}{f'{q[0]:.0f}-{q[2]:.0f}':>14}"
              f"{BATCH * SEQ / wall[name]:17.0f}{BATCH * SEQ / cpu[name]:16.0f}")
    for label, m in (("wall", wall), ("CPU", cpu)):
        ours, bare, hf = m["our Trainer, our model"], m["bare loop, our model"], m["HF Trainer, Llama"]
        print(f"\n[{label}] (a) our Trainer overhead vs bare loop (our model): {ours / bare - 1:+.1%} (target <= 5%);"
              f" on Llama: ours {m['our Trainer, Llama'] / m['bare loop, Llama'] - 1:+.1%}, "
              f"HF Trainer {hf / m['bare loop, Llama'] - 1:+.1%}")
        print(f"[{label}] (b) tokens/s our Trainer+our model / HF Trainer+Llama: {hf / ours:.2f}x; "
              f"same Llama model, our Trainer / HF Trainer: {hf / m['our Trainer, Llama']:.2f}x")


if __name__ == "__main__":
    main()
