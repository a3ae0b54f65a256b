"""ThoughtScope's beam search vs a peer's on the same work: llm-reasoners 1.0.2 (PyPI), ratios from one run.

Usage: ``PYTHONPATH=. python bench/bench_peers.py [--problems 8] [--repeats 3] [--write]``

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
problem excluded; summed over the problems.  The same over the process's CPU time (exp/CPU-s)
moves less when other jobs share the machine.  Both sides run `--repeats` times, interleaved
(the order alternating), and the median ratio is reported.  Target (issue 14): ours >= 3x the peer's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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


def load_models() -> Models:
    """The nano policy and likelihood PRM on the CPU (loaded once, reused by every repeat)."""
    return Models(policy=load_policy(PolicySpec(str(NANO / "policy"), device="cpu")),
                  prm=load_prm(RewardModelSpec(str(NANO / "prm"), kind="likelihood", device="cpu")))


def ours(models: Models, problems: list[str], job: dict) -> dict[str, float]:
    """ThoughtScope's beam search on each problem: expansions, wall and CPU seconds, correct answers."""
    torch.set_num_threads(job["threads"])
    config = {k: job[k] for k in ("n", "beam_width", "max_depth", "temperature")}
    task = ArithTask()
    run_search(task.example(), task=task, strategy="beam", models=models, config=config, seed=job["seed"])  # warm-up
    totals = {"expansions": 0.0, "seconds": 0.0, "cpu_seconds": 0.0, "correct": 0.0}
    for i, problem in enumerate(problems):
        start, cpu = time.perf_counter(), time.process_time()
        result = run_search(problem, task=task, strategy="beam", models=models, config=config, seed=job["seed"] + i,
                            reference=task.reference_answer(problem))
        totals["seconds"] += time.perf_counter() - start
        totals["cpu_seconds"] += time.process_time() - cpu
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
            "cpu_seconds": sum(r["cpu_seconds"] for r in rows),
            "correct": sum(task.answers_equal(r["answer"], task.reference_answer(p)) if r["answer"] else False
                           for r, p in zip(rows, problems, strict=True))}


OURS, PEER = "ThoughtScope beam", "llm-reasoners 1.0.2 BeamSearch"


def interleaved(problems: list[str], job: dict, repeats: int) -> list[dict[str, dict[str, float]]]:
    """`repeats` runs of both sides, the order alternating (ours first, then the peer first, ...), so
    that a change in the machine's load falls on both; each side's row also records the load average."""
    models = load_models()
    runs = []
    for r in range(repeats):
        sides = [(OURS, lambda: ours(models, problems, job)), (PEER, lambda: peer(problems, job))]
        run = {}
        for name, side in sides if r % 2 == 0 else sides[::-1]:
            run[name] = {**side(), "load": os.getloadavg()[0]}
            print(f"repeat {r + 1}/{repeats} {name}: {rate(run[name]):.1f} exp/s, "
                  f"{cpu_rate(run[name]):.1f} exp/CPU-s, load {run[name]['load']:.1f}", flush=True)
        runs.append(run)
    return runs


def rate(row: dict[str, float]) -> float:
    """Expansions per wall-clock second."""
    return row["expansions"] / row["seconds"]


def cpu_rate(row: dict[str, float]) -> float:
    """Expansions per second of the process's CPU time (less sensitive to other jobs on the machine)."""
    return row["expansions"] / row["cpu_seconds"]


def report(runs: list[dict[str, dict[str, float]]], n_problems: int) -> str:
    """One table row per side per repeat, then the median ratios (wall and CPU time)."""
    lines = ["| repeat | search | expansions | seconds | CPU seconds | exp/s | exp/CPU-s | correct | load avg |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i, run in enumerate(runs, start=1):
        for name, r in run.items():
            lines.append(f"| {i} | {name} | {r['expansions']:.0f} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
                         f"{rate(r):.1f} | {cpu_rate(r):.1f} | {r['correct']:.0f}/{n_problems} | {r['load']:.1f} |")
    wall = [rate(run[OURS]) / rate(run[PEER]) for run in runs]
    cpu = [cpu_rate(run[OURS]) / cpu_rate(run[PEER]) for run in runs]
    lines += ["", f"ThoughtScope ÷ llm-reasoners, exp/s: {', '.join(f'{x:.2f}x' for x in wall)} "
              f"(median {statistics.median(wall):.2f}x); exp/CPU-s: {', '.join(f'{x:.2f}x' for x in cpu)} "
              f"(median {statistics.median(cpu):.2f}x)"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=8, help="held-out arith problems")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--max-depth", type=int, default=6)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of both sides; medians reported")
    parser.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    problems = [p.text for p in heldout_problems("arith", args.problems, seed=args.seed)]
    job = {"n": args.n, "beam_width": args.beam_width, "max_depth": args.max_depth, "temperature": args.temperature,
           "max_step_tokens": ArithTask.max_step_tokens, "seed": args.seed, "threads": args.threads}
    runs = interleaved(problems, job, max(1, args.repeats))
    header = (f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {args.threads} thread(s); nano policy + "
              f"likelihood PRM; {len(problems)} held-out arith problems; beam N={args.n} M={args.beam_width} depth "
              f"{args.max_depth} temperature {args.temperature}; {len(runs)} interleaved repeats; load avg = "
              f"1-minute load average when that side finished")
    table = report(runs, len(problems))
    print("\n" + header + "\n\n" + table)
    if args.write:
        results = Path(__file__).with_name("RESULTS.md")
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results.write_text(f"{results.read_text()}\n## bench_peers.py, {stamp}\n\n{header}\n\n{table}\n")


if __name__ == "__main__":
    main()
