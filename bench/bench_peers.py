"""ThoughtScope's beam search vs a peer's on the same work: llm-reasoners 1.0.2 (PyPI), ratios from one run.

Usage: ``PYTHONPATH=. python bench/bench_peers.py [--problems 8] [--write]``

The peer runs as a subprocess in its own virtual environment, which this script makes on first
use under ~/.cache/thoughtscope/llm-reasoners (reused while `import reasoners` works there):
``pip install torch==2.13.0 llm-reasoners==1.0.2 accelerate`` with this interpreter's Python
(torch pinned so that pip takes the CPU wheel already on this machine instead of a CUDA one;
accelerate because llm-reasoners' HFModel imports it without declaring it).  The glue and the
peer's settings are in bench/peer_llm_reasoners.py: its `HFModel` (batch size N, the
checkpoint's own fast tokenizer) and `BeamSearch` (N/M beams by the last step's score), steps
sampled per kept beam, the nano likelihood PRM scoring each frontier in one batch.

Both sides: the nano policy and PRM (models/nano), held-out arith problems (nano.data's
held-out stream), the same N, M, depth, temperature and max step tokens; torch on 1 thread.
expansions/s = steps generated (tree nodes) / seconds of search, model loading and one warm-up
problem excluded; summed over the problems.  Target (issue 14): ours >= 3x the peer's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from models.factory import load_policy, load_prm
from models.specs import PolicySpec, RewardModelSpec
from nano.data import heldout_problems
from search import Models, run_search
from search.tasks.arith import ArithTask

ROOT = Path(__file__).resolve().parent.parent
NANO = ROOT / "models" / "nano"
PEER_ENV = Path.home() / ".cache" / "thoughtscope" / "llm-reasoners"
PEER_PACKAGES = ["torch==2.13.0", "llm-reasoners==1.0.2", "accelerate"]


def peer_python() -> Path:
    """The peer venv's interpreter, made and filled on first use; SystemExit saying why when it cannot be."""
    python = PEER_ENV / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import reasoners.lm"], capture_output=True).returncode == 0:
        return python
    print(f"installing {' '.join(PEER_PACKAGES)} into {PEER_ENV} (once) ...", flush=True)
    steps = [[sys.executable, "-m", "venv", str(PEER_ENV)], [python, "-m", "pip", "install", "-q", *PEER_PACKAGES]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            command = " ".join(map(str, step))
            raise SystemExit(f"could not set up the peer environment ({command}):\n{done.stderr[-2000:]}")
    return python


def ours(problems: list[str], job: dict, threads: int) -> dict[str, float]:
    """ThoughtScope's beam search on each problem: expansions, seconds, correct answers."""
    torch.set_num_threads(threads)
    models = Models(policy=load_policy(PolicySpec(str(NANO / "policy"), device="cpu")),
                    prm=load_prm(RewardModelSpec(str(NANO / "prm"), kind="likelihood", device="cpu")))
    config = {k: job[k] for k in ("n", "beam_width", "max_depth", "temperature")}
    task = ArithTask()
    run_search(task.example(), task=task, strategy="beam", models=models, config=config, seed=job["seed"])  # warm-up
    totals = {"expansions": 0.0, "seconds": 0.0, "correct": 0.0}
    for i, problem in enumerate(problems):
        start = time.perf_counter()
        result = run_search(problem, task=task, strategy="beam", models=models, config=config, seed=job["seed"] + i,
                            reference=task.reference_answer(problem))
        totals["seconds"] += time.perf_counter() - start
        assert result.status == "finished", result.error
        totals["expansions"] += len(result.tree) - 1
        totals["correct"] += bool(result.correct)
    return totals


def peer(problems: list[str], job: dict) -> dict[str, float]:
    """llm-reasoners' beam search on the same problems, in its own venv (bench/peer_llm_reasoners.py)."""
    task = ArithTask()
    calib = json.loads((NANO / "prm" / "config.json").read_text()).get("likelihood_prm")
    payload = {**job, "policy": str(NANO / "policy"), "prm": str(NANO / "prm"),
               "calibration": [calib["scale"], calib["bias"]] if calib else None,
               "prompts": [task.prompt(p, []) for p in problems]}
    done = subprocess.run([peer_python(), str(Path(__file__).with_name("peer_llm_reasoners.py"))],
                          input=json.dumps(payload), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the llm-reasoners run failed:\n{done.stderr[-3000:]}")
    rows = json.loads(done.stdout)["rows"]
    return {"expansions": sum(r["expansions"] for r in rows), "seconds": sum(r["seconds"] for r in rows),
            "correct": sum(task.answers_equal(r["answer"], task.reference_answer(p)) if r["answer"] else False
                           for r, p in zip(rows, problems, strict=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=8, help="held-out arith problems")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--max-depth", type=int, default=6)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    problems = [p.text for p in heldout_problems("arith", args.problems, seed=args.seed)]
    job = {"n": args.n, "beam_width": args.beam_width, "max_depth": args.max_depth, "temperature": args.temperature,
           "max_step_tokens": ArithTask.max_step_tokens, "seed": args.seed, "threads": args.threads}
    rows = {"ThoughtScope beam": ours(problems, job, args.threads),
            "llm-reasoners 1.0.2 BeamSearch": peer(problems, job)}
    ts = rows["ThoughtScope beam"]
    lines = ["| search | expansions | seconds | exp/s | correct | ThoughtScope exp/s ÷ this |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        rate = r["expansions"] / r["seconds"]
        lines.append(f"| {name} | {r['expansions']:.0f} | {r['seconds']:.1f} | {rate:.1f} | "
                     f"{r['correct']:.0f}/{len(problems)} | {ts['expansions'] / ts['seconds'] / rate:.2f}x |")
    load = os.getloadavg()
    header = (f"{platform.machine()} CPU, {os.cpu_count()} cores, load average {load[0]:.1f} at the end, torch "
              f"{args.threads} thread(s); nano policy + likelihood PRM; {len(problems)} held-out arith problems; "
              f"beam N={args.n} M={args.beam_width} depth {args.max_depth} temperature {args.temperature}")
    report = "\n".join(lines)
    print("\n" + header + "\n\n" + report)
    if args.write:
        results = Path(__file__).with_name("RESULTS.md")
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results.write_text(f"{results.read_text()}\n## bench_peers.py, {stamp}\n\n{header}\n\n{report}\n")


if __name__ == "__main__":
    main()
