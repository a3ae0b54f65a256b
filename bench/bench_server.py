"""Transformers backend vs a vLLM server: the same seeded searches through both, ratios from one run.

Usage: ``PYTHONPATH=. python bench/bench_server.py --url http://127.0.0.1:8000 [--write]``
(or $THOUGHTSCOPE_TEST_VLLM_URL).  The server must serve the bundled nano policy (see
tests/test_vllm_server.py or .ci/start_vllm for the command); the PRM (the nano likelihood PRM)
runs in this process for both rows, so the rows differ only in the policy backend.

Rows: beam search (N=16, M=4, depth 6) and MCTS (64 simulations, expand width 3), temperature 1,
on arith with final answers disabled (every path runs the full depth), as in bench_speed.py.

* exp/s: nodes added per second of search (model loading excluded); fastest of `--repeats` runs.
* tokens/s: policy tokens generated per second of search.
* round trips / expansion: HTTP requests to the policy server per node added (server row only).

On a small CPU with the 0.87M-parameter nano policy the server is expected to be slower: each
frontier pays HTTP and scheduling overhead that a tiny model's forward pass cannot hide.  The
server's advantages (continuous batching, prefix caching, tensor parallelism) show on a GPU with
a real model; run this script there with a served random model of a real configuration.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import httpx
import torch

from models.factory import load_policy, load_prm
from models.server_policy import ServerPolicy
from models.specs import PolicySpec, RewardModelSpec
from search import Models, run_search
from search.tasks.arith import ArithTask

ROOT = Path(__file__).resolve().parent.parent
NANO = ROOT / "models" / "nano"
PROBLEM = "Start with 17. Add 25. Multiply by 3. Subtract 14. What is the result?"
SEARCHES: dict[str, tuple[str, dict[str, Any]]] = {
    "beam N=16 M=4 d=6": ("beam", {"n": 16, "beam_width": 4, "max_depth": 6, "temperature": 1.0}),
    "mcts 64 sims": (
        "mcts", {"simulations": 64, "expand_width": 3, "max_depth": 6, "temperature": 1.0, "distinct": False}
    ),
}


class FullDepthArith(ArithTask):
    """Arith with no final step: every path runs to max_depth, so both backends do the same work."""

    def is_final(self, step: str) -> bool:
        return False


def run_one(models: Models, strategy: str, config: dict[str, Any], seed: int) -> dict[str, float]:
    """nodes, seconds, exp/s, tokens/s and round trips per expansion of one seeded search."""
    start = time.perf_counter()
    result = run_search(PROBLEM, task=FullDepthArith(), strategy=strategy, models=models, config=config, seed=seed)
    seconds = time.perf_counter() - start
    assert result.status == "finished", result.error
    nodes = len(result.tree) - 1
    spend = result.tree.spend
    usage = getattr(models.policy, "usage", None)
    return {
        "nodes": nodes,
        "seconds": seconds,
        "exp_s": nodes / seconds,
        "tok_s": spend["tokens_generated"] / seconds,
        "trips": usage.requests / nodes if usage is not None else float("nan"),
    }


def fastest(repeats: int, *args: Any) -> dict[str, float]:
    return min((run_one(*args) for _ in range(max(1, repeats))), key=lambda r: r["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("THOUGHTSCOPE_TEST_VLLM_URL"), help="the vLLM server")
    parser.add_argument("--served", help="served model name (default: the first /v1/models lists)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the in-process models")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    if not args.url:
        raise SystemExit("give --url (or set THOUGHTSCOPE_TEST_VLLM_URL) of a vLLM server serving models/nano/policy")
    torch.set_num_threads(args.threads)
    served = args.served or httpx.get(args.url.rstrip("/") + "/v1/models", timeout=10).json()["data"][0]["id"]
    prm = load_prm(RewardModelSpec(str(NANO / "prm"), kind="likelihood", device="cpu"))
    backends = {
        "transformers": load_policy(PolicySpec(str(NANO / "policy"), device="cpu")),
        "vLLM server": load_policy(PolicySpec(served, url=args.url, tokenizer=str(NANO / "policy"))),
    }
    assert isinstance(backends["vLLM server"], ServerPolicy)
    for policy in backends.values():  # warm-up
        run_one(Models(policy=policy, prm=prm), "beam", {"n": 4, "beam_width": 2, "max_depth": 2}, args.seed)
    lines = [
        "| search | backend | nodes | exp/s | tokens/s | round trips / expansion | exp/s vs transformers |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (strategy, config) in SEARCHES.items():
        rows = {b: fastest(args.repeats, Models(policy=p, prm=prm), strategy, config, args.seed)
                for b, p in backends.items()}
        for backend, r in rows.items():
            trips = "-" if r["trips"] != r["trips"] else f"{r['trips']:.3f}"
            ratio = r["exp_s"] / rows["transformers"]["exp_s"]
            lines.append(f"| {name} | {backend} | {r['nodes']:.0f} | {r['exp_s']:.1f} | {r['tok_s']:.0f} | {trips} "
                         f"| {ratio:.2f}x |")
        print(name, rows, flush=True)
    header = (f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {args.threads} thread(s); nano policy "
              f"(0.87M) in process vs served by vLLM at {args.url}; nano likelihood PRM in process for both")
    report = "\n".join(lines)
    print("\n" + header + "\n\n" + report)
    if args.write:
        results = Path(__file__).with_name("RESULTS.md")
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results.write_text(f"{results.read_text()}\n## bench_server.py, {stamp}\n\n{header}\n\n{report}\n")


if __name__ == "__main__":
    main()
