"""``train policy``, ``train prm`` and ``eval-prm``: the nano pack's training commands.

Nothing here imports torch until a command runs, so `python cli.py --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.common import Device, clear_errors, console, print_rows
from nano.config import (
    ARCHITECTURES,
    FOCUS,
    PRM_LABELS,
    PRM_OBJECTIVES,
    CountdownPolicyConfig,
    ModelSize,
    PolicyTrainConfig,
    PRMTrainConfig,
    ValueTrainConfig,
    check_choice,
    describe,
)

train_app = typer.Typer(help="Train the nano policy and PRM from scratch (seeded, CPU or GPU).", no_args_is_help=True)

POLICY, PRM = PolicyTrainConfig(), PRMTrainConfig()  # option defaults come from the configs
VALUE, CD_POLICY = ValueTrainConfig(), CountdownPolicyConfig()
Threads = Annotated[int, typer.Option(help="CPU threads for torch.")]


@train_app.command("policy")
@clear_errors
def train_policy_command(
    out: Annotated[Path, typer.Option(help="Where the weights and report go.")] = Path(POLICY.out),
    seed: int = POLICY.seed,
    examples: Annotated[int, typer.Option(help="Training examples (one pass).")] = POLICY.examples,
    batch_size: int = POLICY.batch_size,
    lr: float = POLICY.lr,
    layers: int = POLICY.size.n_layer,
    dim: int = POLICY.size.n_embd,
    heads: int = POLICY.size.n_head,
    eval_problems: Annotated[int, typer.Option(help="Held-out problems per task for the report.")] = (
        POLICY.eval_problems
    ),
    arith_share: Annotated[float, typer.Option(help="Share of arith examples (0.5 alternates tasks).")] = (
        POLICY.arith_share
    ),
    arch: Annotated[str, typer.Option(help=describe(ARCHITECTURES) + ".")] = POLICY.size.arch,
    init: Annotated[str | None, typer.Option(help="Continue training this checkpoint (default: from scratch).")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the examples.")] = POLICY.epochs,
    check_share: Annotated[float, typer.Option(help="Share of self-check (generative verifier) examples.")] = (
        POLICY.check_share
    ),
    data_workers: Annotated[int, typer.Option(help="Processes building the data (same data for any number).")] = (
        POLICY.data_workers
    ),
    save_every: Annotated[int, typer.Option(help="Checkpoint to OUT/checkpoint-STEP every N steps (0: never).")] = (
        POLICY.save_every
    ),
    warmup: int = POLICY.warmup,
    device: Device = None,
    threads: Threads = POLICY.threads,
) -> None:
    """Train the policy (solutions of arith + countdown, and self-check questions)."""
    from nano.train_policy import train_policy

    config = PolicyTrainConfig(out=str(out), seed=seed, examples=examples, batch_size=batch_size, lr=lr,
                               eval_problems=eval_problems, device=device, threads=threads, init=init,
                               arith_share=arith_share, epochs=epochs, check_share=check_share,
                               data_workers=data_workers, save_every=save_every, warmup=warmup,
                               size=ModelSize(n_layer=layers, n_embd=dim, n_head=heads, arch=arch))
    result = train_policy(config)
    print_rows("policy: held-out greedy accuracy", result["eval"])
    console.print(f"saved to {out} in {result['meta']['train_seconds']} s", soft_wrap=True, markup=False)


@train_app.command("prm")
@clear_errors
def train_prm_command(
    policy: Annotated[Path, typer.Option(help="The trained policy (labels rollouts, initialises the PRM).")] = Path(
        PRM.policy
    ),
    out: Path = Path(PRM.out),
    labels: Annotated[str, typer.Option(help=describe(PRM_LABELS) + ".")] = (
        PRM.labels
    ),
    seed: int = PRM.seed,
    problems: Annotated[int, typer.Option(help="Training problems per task.")] = PRM.problems_per_task,
    samples: Annotated[int, typer.Option(help="Policy samples per problem.")] = PRM.samples_per_problem,
    rollouts: Annotated[int, typer.Option(help="MC rollouts per step (labels=mc).")] = PRM.rollouts,
    prefix_problems: Annotated[int, typer.Option(
        help="Problems per task whose gold prefix the policy continues SAMPLES times (sibling steps).")] = (
        PRM.prefix_problems
    ),
    init: Annotated[str | None, typer.Option(
        help="Start the PRM from these weights (same tokenizer) instead of the policy's.")] = PRM.init,
    objective: Annotated[str, typer.Option(help=describe(PRM_OBJECTIVES) + ".")] = (
        PRM.objective
    ),
    lm_weight: Annotated[float, typer.Option(
        help="likelihood: weight of the language-modelling loss on gold solutions.")] = PRM.lm_weight,
    epochs: int = PRM.epochs,
    lr: float = PRM.lr,
    eval_problems: int = PRM.eval_problems,
    device: Device = None,
    threads: Threads = PRM.threads,
) -> None:
    """Train the PRM on the policy's own samples, labelled by MC rollouts or the exact checker."""
    from nano.train_prm import train_prm

    config = PRMTrainConfig(policy=str(policy), out=str(out), labels=labels, seed=seed, problems_per_task=problems,
                            samples_per_problem=samples, rollouts=rollouts, epochs=epochs, lr=lr,
                            prefix_problems=prefix_problems, init=init, objective=objective, lm_weight=lm_weight,
                            eval_problems=eval_problems, device=device, threads=threads)
    result = train_prm(config)
    print_rows("PRM: step-level ROC AUC vs the exact checker (held-out policy samples)", result["eval"])
    console.print(f"saved to {out} in {result['meta']['total_seconds']} s", soft_wrap=True, markup=False)


@train_app.command("value")
@clear_errors
def train_value_command(
    out: Annotated[Path, typer.Option(help="Where the exported weights and report go.")] = Path(VALUE.out),
    ckpt: Annotated[Path, typer.Option(help="Checkpoint directory (last.pt), written every --save-every-s.")] = (
        Path(VALUE.ckpt)
    ),
    resume: Annotated[bool, typer.Option(help="Continue from CKPT/last.pt (a finished run just re-exports).")] = False,
    init: Annotated[str, typer.Option(help="Body weights to start from (same tokenizer).")] = VALUE.init,
    seed: int = VALUE.seed,
    steps: Annotated[int, typer.Option(help="Train until this optimizer step (total, across resumes).")] = VALUE.steps,
    batch_size: int = VALUE.batch_size,
    lr: float = VALUE.lr,
    curriculum_steps: int = VALUE.curriculum_steps,
    eval_every: int = VALUE.eval_every,
    eval_puzzles: int = VALUE.eval_puzzles,
    export_puzzles: Annotated[int, typer.Option(help="Validation puzzles measured at the export (0: all).")] = (
        VALUE.export_puzzles
    ),
    save_every_s: float = VALUE.save_every_s,
    data_workers: Annotated[int, typer.Option(help="Processes building batches (several on a GPU machine).")] = 1,
    stop_at: Annotated[int, typer.Option(help="End this session's phase at this step (0: at --steps).")] = 0,
    focus: Annotated[str, typer.Option(help="Problem mix: mix (3-5 numbers, curriculum) or game24 (later phase).")] = (
        VALUE.focus
    ),
    tempting_share: Annotated[float, typer.Option(
        help="Share of corrupted steps that are tempting slips (wrong arithmetic claiming a solvable result).")] = (
        VALUE.tempting_share
    ),
    corrupt_share: Annotated[float, typer.Option(help="Chance that a step of a path is corrupted.")] = (
        VALUE.corrupt_share
    ),
    device: Device = None,
    threads: Threads = VALUE.threads,
) -> None:
    """Train the countdown value model (token-classification head, exact solver labels); resumable."""
    from nano.train_value import train_value

    if focus not in FOCUS:
        raise typer.BadParameter(f"choose one of {', '.join(FOCUS)}", param_hint="--focus")
    config = ValueTrainConfig(out=str(out), ckpt=str(ckpt), init=init, seed=seed, steps=steps, batch_size=batch_size,
                              lr=lr, curriculum_steps=curriculum_steps, eval_every=eval_every,
                              eval_puzzles=eval_puzzles, export_puzzles=export_puzzles, save_every_s=save_every_s,
                              stop_at=stop_at, data_workers=data_workers, device=device, threads=threads,
                              focus=focus, tempting_share=tempting_share, corrupt_share=corrupt_share)
    result = train_value(config, resume=resume, log=console.print)
    print_rows("value model: ROC AUC vs the exact solver (validation-puzzle states)", result["eval"])
    console.print(f"saved to {out} ({result['meta']['train_minutes']} min trained)", soft_wrap=True, markup=False)


@train_app.command("countdown-policy")
@clear_errors
def train_countdown_policy_command(
    out: Annotated[Path, typer.Option(help="Where the exported weights and report go.")] = Path(CD_POLICY.out),
    ckpt: Annotated[Path, typer.Option(help="Checkpoint directory (last.pt).")] = Path(CD_POLICY.ckpt),
    resume: Annotated[bool, typer.Option(help="Continue from CKPT/last.pt (a finished run just re-exports).")] = False,
    init: Annotated[str, typer.Option(help="Causal LM to start from (same tokenizer).")] = CD_POLICY.init,
    seed: int = CD_POLICY.seed,
    steps: Annotated[int, typer.Option(help="The schedule's last optimizer step (total, across resumes).")] = (
        CD_POLICY.steps
    ),
    stop_at: Annotated[int, typer.Option(help="End this session's phase at this step (0: at --steps).")] = 0,
    batch_size: int = CD_POLICY.batch_size,
    lr: float = CD_POLICY.lr,
    eval_every: int = CD_POLICY.eval_every,
    export_puzzles: Annotated[int, typer.Option(help="Validation puzzles measured at the export (0: all).")] = (
        CD_POLICY.export_puzzles
    ),
    export_problems: Annotated[int, typer.Option(help="Held-out countdown problems measured at the export.")] = (
        CD_POLICY.export_problems
    ),
    save_every_s: float = CD_POLICY.save_every_s,
    data_workers: Annotated[int, typer.Option(help="Processes building batches (several on a GPU machine).")] = 1,
    device: Device = None,
    threads: Threads = CD_POLICY.threads,
) -> None:
    """Train the countdown specialist policy on solver moves (curriculum 3 -> 5 numbers); resumable."""
    from nano.train_countdown_policy import train_countdown_policy

    config = CountdownPolicyConfig(out=str(out), ckpt=str(ckpt), init=init, seed=seed, steps=steps, stop_at=stop_at,
                                   batch_size=batch_size, lr=lr, eval_every=eval_every, save_every_s=save_every_s,
                                   export_puzzles=export_puzzles, export_problems=export_problems,
                                   data_workers=data_workers, device=device, threads=threads)
    result = train_countdown_policy(config, resume=resume, log=console.print)
    print_rows("countdown policy: legal steps and coverage at temperature 1 (held-out states)", result["eval"])
    console.print(f"saved to {out} ({result['meta']['train_minutes']} min trained)", soft_wrap=True, markup=False)


def eval_prm_command(
    prm: Annotated[str, typer.Option(help="The PRM to measure.")] = PRM.out,
    policy: Annotated[str, typer.Option(help="The policy whose held-out samples are scored.")] = PRM.policy,
    problems: Annotated[int, typer.Option(help="Held-out problems per task (2 policy samples each).")] = 150,
    seed: int = 0,
    kind: Annotated[str, typer.Option(help=f"{' or '.join(PRM_OBJECTIVES)}: the --objective it was trained with.")] = (
        PRM.objective
    ),
    device: Device = None,
    out: Annotated[Path | None, typer.Option(help="Write the rows here as JSON.")] = None,
) -> None:
    """Step-level ROC AUC of a PRM against the exact checker, on held-out policy samples and siblings.

    The row 'steps after a correct prefix' is the one beam search and MCTS depend on: there the
    PRM must tell a fresh slip from a correct step at the same point, not a doomed path from a good one.
    """
    check_choice("--kind", kind, PRM_OBJECTIVES)
    import torch

    from nano.train_prm import evaluate_prm

    torch.manual_seed(seed)  # the policy samples are drawn with torch's generator
    rows = evaluate_prm(prm, policy, problems, seed, device=device, kind=kind)
    print_rows(f"PRM {prm}: step-level ROC AUC vs the exact checker", rows)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"prm": prm, "policy": policy, "problems": problems, "seed": seed, "rows": rows},
                                  indent=2))
        console.print(f"rows: {out}", soft_wrap=True, markup=False)
