"""Speed benchmark: naive vs optimized model calls on the same seeded searches, in one process.

Usage: ``PYTHONPATH=. python bench/bench_speed.py [--threads 1] [--write]``
       ``PYTHONPATH=. python bench/bench_speed.py --gpu --write``  (needs CUDA; not run on CPU-only machines)

Models: the bundled nano pack (models/nano/{policy,prm}) when both have weights, else a random
GPT-2 (4 layers x 256) saved to a temp dir and used as both policy and PRM.  `--gpu` always
builds a larger random GPT-2 (8 layers x 640, ~40M parameters) on CUDA.

* naive: one `generate` per node (one prompt, one sample per call), every prompt re-encoded from
  scratch (`kv_reuse=False`); the PRM is called once per step prefix (depth d costs d passes).
* optimized: the whole frontier in one batched call, children continuing from their parent's
  cached KV prefix (`kv_reuse=True`); the PRM reads every step of a path in one pass.

Rows: beam search (N=16, M=4, depth 6) and MCTS (64 simulations, expand width 3, duplicate
steps kept: `distinct=False`), plus MCTS with 8 parallel simulations per wave (optimized only:
its tree differs).  The task is arith with final answers disabled, so every run goes the full
depth and both ways do comparable work (the trees still differ: sampling draws are laid out
differently with and without batching).

* exp/s: nodes added per second of search (model loading excluded); fastest of `--repeats` runs.
* recompute: tokens the policy ran through the model / (root prompt tokens + tokens generated);
  1.0 means no token was encoded twice.  Batch padding is not counted (see "padded").
* PRM: 16 paths of 8 steps, one pass per path vs one pass per step prefix (best of 3).
* memory: Python heap peak (tracemalloc) and the process's peak RSS (VmHWM, reset before the pass
  where the kernel allows it), measured in a separate, untimed pass of the same search (tracemalloc
  halves a search's speed, so it is never on while exp/s is timed), plus the KV cache's bytes.
* `--gpu`: also decode tokens/s at batch 1 and batch 64 (64 new tokens, no stop).

Targets (2-core CPU): exp/s >= 4x naive; recompute <= 1.1; PRM >= 5x.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.hf import HFPRM, HFPolicy, load_policy, load_prm
from models.likelihood_prm import LikelihoodPRM
from search import Models, run_search
from search.models import Judgement, Proposal, StepScores
from search.tasks.arith import ArithTask

ROOT = Path(__file__).resolve().parent.parent
NANO = ROOT / "models" / "nano"
PROBLEM = "Start with 17. Add 25. Multiply by 3. Subtract 14. What is the result?"
SEARCHES: dict[str, tuple[str, dict[str, Any]]] = {
    "beam N=16 M=4 d=6": ("beam", {"n": 16, "beam_width": 4, "max_depth": 6, "temperature": 1.0}),
    # distinct=False: every simulation adds expand_width nodes both ways.  With copies merged, the two
    # ways' different sampling draws merge different numbers of copies, so nodes per simulation (and
    # exp/s with them) would differ for reasons that have nothing to do with the backend.
    "mcts 64 sims": (
        "mcts", {"simulations": 64, "expand_width": 3, "max_depth": 6, "temperature": 1.0, "distinct": False}
    ),
}
PARALLEL_ROW = ("mcts 64 sims parallel=8", ("mcts", {**SEARCHES["mcts 64 sims"][1], "parallel": 8}))


class FullDepthArith(ArithTask):
    """Arith with no final step: every path runs to max_depth, so both ways do the same work."""

    def is_final(self, step: str) -> bool:
        return False


class NaivePolicy:
    """One generate call per node: no batching across prompts or samples, nothing cached."""

    def __init__(self, inner: HFPolicy):
        self.inner, self.name = inner, inner.name

    def propose(self, prompts: Sequence[str], k: int, **options: Any) -> list[list[Proposal]]:
        seed = options.pop("seed")
        return [
            [self.inner.propose([p], 1, seed=seed + 7919 * i + j, **options)[0][0] for j in range(k)]
            for i, p in enumerate(prompts)
        ]

    def complete(self, prompts: Sequence[str], **options: Any) -> list[Proposal]:
        seed = options.pop("seed")
        return [self.inner.complete([p], seed=seed + i, **options)[0] for i, p in enumerate(prompts)]

    def judge(self, questions: Sequence[str]) -> list[Judgement]:
        return [self.inner.judge([q])[0] for q in questions]


class NaivePRM:
    """One PRM call per step prefix: the score of step i re-reads steps 1..i."""

    def __init__(self, inner: HFPRM | LikelihoodPRM):
        self.inner, self.name = inner, inner.name

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        out = []
        for path in paths:
            parts = [self.inner.score(problem, [list(path[: i + 1])])[0] for i in range(len(path))]
            out.append(
                StepScores(scores=tuple(p.scores[-1] for p in parts), tokens_read=sum(p.tokens_read for p in parts))
            )
        return out


@dataclass
class Row:
    name: str
    naive: dict[str, float] = field(default_factory=dict)
    fast: dict[str, float] = field(default_factory=dict)


# -- models ------------------------------------------------------------------------------------


def random_gpt2(directory: Path, n_layer: int, n_embd: int, n_head: int) -> Path:
    """A randomly initialised GPT-2 with the tiny arith tokenizer, saved as a checkpoint."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.tiny_checkpoints import EOS, PAD, build_tokenizer, corpus

    tokenizer = build_tokenizer(corpus())
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=1024,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        bos_token_id=tokenizer.convert_tokens_to_ids(EOS),
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD),
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def model_dirs(gpu: bool, tmp: Path) -> tuple[Path, Path, str]:
    """(policy dir, PRM dir, description)."""
    if gpu:
        path = random_gpt2(tmp / "gpt2-40m", n_layer=8, n_embd=640, n_head=10)
        return path, path, "random GPT-2 8x640 (policy and PRM)"
    if all((NANO / role / "model.safetensors").exists() for role in ("policy", "prm")):
        return NANO / "policy", NANO / "prm", "bundled nano pack"
    path = random_gpt2(tmp / "gpt2-small", n_layer=4, n_embd=256, n_head=4)
    return path, path, "random GPT-2 4x256 (policy and PRM)"


def params(policy: HFPolicy) -> int:
    return sum(p.numel() for p in policy.model.parameters())


# -- measuring ---------------------------------------------------------------------------------


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (Linux: writing 5 to clear_refs); harmless elsewhere."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(result, seconds) of one call, with no memory tracing on (tracemalloc halves a search's speed)."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def memory_of(fn: Callable[[], Any]) -> tuple[float, float]:
    """(Python heap peak MB, process peak RSS MB) of one call, traced in a pass of its own (never timed)."""
    reset_peak_rss()
    tracemalloc.start()
    try:
        fn()
        _, heap = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return heap / 2**20, peak_rss_mb()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_one(
    policy: HFPolicy, models: Models, strategy: str, config: dict[str, Any], seed: int, memory: bool = False
) -> dict[str, float]:
    """One seeded search, timed; with `memory`, run it a second time under tracemalloc for the memory columns."""
    task = FullDepthArith()
    root_tokens = len(policy.tokenizer(task.prompt(PROBLEM, []))["input_ids"])

    def search() -> Any:
        policy.tokens.reset()
        policy.kv_cache.clear()
        result = run_search(PROBLEM, task=task, strategy=strategy, models=models, config=config, seed=seed)
        sync(policy.device)
        return result

    result, seconds = timed(search)
    counts = policy.tokens
    tokens_encoded, tokens_padded, tokens_generated = counts.encoded, counts.padded, counts.generated
    kv_mb = policy.kv_cache.nbytes / 2**20
    heap, rss = memory_of(search) if memory else (float("nan"), float("nan"))
    assert result.status == "finished", result.error
    nodes = len(result.tree) - 1
    return {
        "nodes": nodes,
        "seconds": seconds,
        "exp_s": nodes / seconds,
        "recompute": tokens_encoded / (root_tokens + tokens_generated),
        "padded": tokens_padded / (root_tokens + tokens_generated),
        "heap_mb": heap,
        "rss_mb": rss,
        "kv_mb": kv_mb,
    }


def fastest(repeats: int, *args: Any) -> dict[str, float]:
    """The quickest of `repeats` identical seeded `run_one(*args)` (the machine is shared; noise only slows),
    with the memory columns from one more, traced pass."""
    best = min((run_one(*args) for _ in range(max(1, repeats))), key=lambda r: r["seconds"])
    traced = run_one(*args, memory=True)
    return {**best, "heap_mb": traced["heap_mb"], "rss_mb": traced["rss_mb"]}


def prm_paths() -> list[list[str]]:
    """16 arithmetic paths of 8 steps each."""
    paths = []
    for p in range(16):
        value, steps = 10 + p, []
        for i in range(8):
            n = (3 * p + 5 * i) % 17 + 1
            steps.append(f"{value} + {n} = {value + n}")
            value += n
        paths.append(steps)
    return paths


def best_time(fn: Callable[[], Any], device: torch.device, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def bench_prm(plain: HFPRM | LikelihoodPRM, cached: HFPRM | LikelihoodPRM) -> dict[str, float]:
    """Seconds to score 16 paths of 8 steps: one pass per path vs one pass per step prefix (no
    cache either way); and, as a search sees them, depth 1..8 in turn with vs without the KV cache."""
    paths, naive = prm_paths(), NaivePRM(plain)

    def rounds(prm: HFPRM | LikelihoodPRM) -> None:
        prm.clear_cache()
        for depth in range(1, 9):
            prm.score(PROBLEM, [p[:depth] for p in paths])

    return {
        "one_pass": best_time(lambda: plain.score(PROBLEM, paths), plain.device),
        "per_prefix": best_time(lambda: naive.score(PROBLEM, paths), plain.device),
        "rounds_plain": best_time(lambda: rounds(plain), plain.device),
        "rounds_cached": best_time(lambda: rounds(cached), plain.device),
    }


def decode_rate(policy: HFPolicy, batch: int, tokens: int = 64) -> float:
    """New tokens per second for `batch` rows decoding `tokens` each (no stop, sampling)."""
    prompts = [FullDepthArith().prompt(PROBLEM, [])] * batch
    policy.complete(prompts[:1], temperature=1.0, max_new_tokens=4, seed=0)  # warm-up
    sync(policy.device)
    start = time.perf_counter()
    out = policy.complete(prompts, temperature=1.0, max_new_tokens=tokens, seed=1)
    sync(policy.device)
    return sum(p.token_count for p in out) / (time.perf_counter() - start)


# -- report ------------------------------------------------------------------------------------


def table(rows: list[Row], prm: dict[str, float], extra: list[str]) -> str:
    lines = [
        "| search | nodes naive / opt | exp/s naive | exp/s opt | speed-up | recompute naive | recompute opt "
        "| padded opt | heap MB naive / opt | peak RSS MB naive / opt | KV cache MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        n, f = row.naive, row.fast
        if n:
            lines.append(
                f"| {row.name} | {n['nodes']:.0f} / {f['nodes']:.0f} | {n['exp_s']:.1f} | {f['exp_s']:.1f} "
                f"| {f['exp_s'] / n['exp_s']:.1f}x | {n['recompute']:.2f} | {f['recompute']:.2f} | {f['padded']:.2f} "
                f"| {n['heap_mb']:.1f} / {f['heap_mb']:.1f} | {n['rss_mb']:.0f} / {f['rss_mb']:.0f} "
                f"| {f['kv_mb']:.1f} |"
            )
        else:
            lines.append(
                f"| {row.name} | - / {f['nodes']:.0f} | - | {f['exp_s']:.1f} | - | - | {f['recompute']:.2f} "
                f"| {f['padded']:.2f} | - / {f['heap_mb']:.1f} | - / {f['rss_mb']:.0f} | {f['kv_mb']:.1f} |"
            )
    lines += [
        "",
        "| PRM, 16 paths x 8 steps | fast s | slow s | speed-up |",
        "|---|---|---|---|",
        f"| one pass per path vs one per step prefix | {prm['one_pass']:.4f} | {prm['per_prefix']:.4f} "
        f"| {prm['per_prefix'] / prm['one_pass']:.1f}x |",
        f"| depths 1..8 in turn: KV cache vs one pass each | {prm['rounds_cached']:.4f} | {prm['rounds_plain']:.4f} "
        f"| {prm['rounds_plain'] / prm['rounds_cached']:.1f}x |",
    ]
    return "\n".join(lines + (["", *extra] if extra else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpu", action="store_true", help="CUDA, a ~40M random GPT-2, decode tokens/s")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (CPU mode)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prm-kind", choices=("likelihood", "tag"), default="likelihood",
                        help="how the PRM is read (the nano pack ships a likelihood PRM)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per search and way; the fastest is shown")
    parser.add_argument("--write", action="store_true", help="append the tables to bench/RESULTS.md")
    args = parser.parse_args()
    device = "cuda" if args.gpu else "cpu"
    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        policy_dir, prm_dir, what = model_dirs(args.gpu, Path(tmp))
        naive_policy = load_policy(str(policy_dir), device=device, kv_reuse=False, max_batch=1)
        fast_policy = load_policy(str(policy_dir), device=device, kv_reuse=True)
        naive_prm = load_prm(str(prm_dir), kind=args.prm_kind, device=device, kv_reuse=False)
        prm = load_prm(str(prm_dir), kind=args.prm_kind, device=device, kv_reuse=True)
    header = (f"device {device} ({args.threads} threads), {what}, policy {params(fast_policy) / 1e6:.1f}M params, "
              f"{args.prm_kind} PRM")
    print(header, flush=True)
    naive_models = Models(policy=NaivePolicy(naive_policy), prm=NaivePRM(naive_prm))  # type: ignore[arg-type]
    fast_models = Models(policy=fast_policy, prm=prm)
    run_one(fast_policy, fast_models, "beam", {"n": 4, "beam_width": 2, "max_depth": 2}, args.seed)  # warm-up
    rows = []
    for name, (strategy, config) in SEARCHES.items():
        row = Row(name)
        row.naive = fastest(args.repeats, naive_policy, naive_models, strategy, config, args.seed)
        row.fast = fastest(args.repeats, fast_policy, fast_models, strategy, config, args.seed)
        print(name, "naive", row.naive, "\n", name, "opt", row.fast, flush=True)
        rows.append(row)
    name, (strategy, config) = PARALLEL_ROW
    rows.append(Row(name, fast=fastest(args.repeats, fast_policy, fast_models, strategy, config, args.seed)))
    prm_times = bench_prm(naive_prm, prm)
    extra = []
    if args.gpu:
        rates = {batch: decode_rate(fast_policy, batch) for batch in (1, 64)}
        extra.append(f"decode tokens/s: batch 1 {rates[1]:.0f}, batch 64 {rates[64]:.0f}")
    report = table(rows, prm_times, extra)
    print("\n" + header + "\n\n" + report)
    if args.write:
        results = Path(__file__).with_name("RESULTS.md")
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        old = results.read_text() if results.exists() else "# Benchmark results\n"
        results.write_text(f"{old}\n## bench_speed.py, {stamp}\n\n{header}\n\n{report}\n")
    print("median exp/s speed-up:", statistics.median(r.fast["exp_s"] / r.naive["exp_s"] for r in rows if r.naive))


if __name__ == "__main__":
    main()
