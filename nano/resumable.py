"""A resumable training phase: the loop the countdown value model and countdown policy share.

Why its own module: a phase on this project's shared CPU can be stopped at any moment (a session
ends, the machine is needed), so the loop writes `<ckpt>/last.pt` (weights, optimizer, step, loss
history, measurements, wall and CPU seconds) every `save_every_s` seconds and at every
measurement, and `--resume` continues exactly where it stopped.  Batches come from a map-style
dataset indexed by optimizer step (`batch(step)`), built ahead in one worker process, so a
resumed phase trains on exactly the data an unbroken one would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from nano.common import lr_at


@dataclass
class PhaseState:
    """What a phase carries across resumes."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class PhaseSettings:
    """Schedule and bookkeeping of one phase (`steps`: the schedule's end; `stop_at`: this run's end, 0 = steps)."""

    steps: int
    lr: float
    warmup: int
    ckpt: str
    save_every_s: float = 180.0
    eval_every: int = 0
    stop_at: int = 0
    desc: str = "train"
    #: Processes building batches ahead (solver-labelled data is ~10 ms an example: on a GPU use several).
    workers: int = 1


class StepBatches(torch.utils.data.Dataset):
    """Batch i of the dataset is the batch of optimizer step `start + i`, made by `make(step)`."""

    def __init__(self, make: Callable[[int], dict[str, torch.Tensor]], start: int, end: int):
        self.make, self.start, self.end = make, start, end

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.make(self.start + index)


def pad(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids / attention_mask / labels (-100 where there is no label)."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, (row_ids, row_labels) in enumerate(rows):
        ids[b, : len(row_ids)] = torch.tensor(row_ids)
        labels[b, : len(row_labels)] = torch.tensor(row_labels)
        mask[b, : len(row_ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


TRAINER_STATE = "trainer_state.json"


def load_state(ckpt: str, model: torch.nn.Module, opt: torch.optim.Optimizer, resume: bool,
               log: Callable[[str], None], exported: str | None = None) -> PhaseState:
    """The phase state from `<ckpt>/last.pt` (weights and optimizer loaded in place), or a fresh one.

    Without a checkpoint, `exported` (a directory `write_trainer_state` wrote next to exported
    weights, which the caller has already loaded as the model) gives the step and history; the
    optimizer's moments then start afresh.  So a phase can continue on another machine from
    the committed weights alone.
    """
    path = Path(ckpt) / "last.pt"
    if resume and not path.exists() and exported and (Path(exported) / TRAINER_STATE).exists():
        saved = json.loads((Path(exported) / TRAINER_STATE).read_text())
        state = PhaseState(saved["step"], saved["losses"], saved["evals"], saved["seconds"], saved["cpu_seconds"])
        log(f"no checkpoint in {ckpt}: continuing from the exported weights in {exported} at step {state.step} "
            "(optimizer moments restart)")
        return state
    if not (resume and path.exists()):
        return PhaseState()
    saved = torch.load(path, weights_only=False)
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["opt"])
    state = PhaseState(saved["step"], saved["losses"], saved["evals"], saved["seconds"], saved.get("cpu_seconds", 0))
    log(f"resumed at step {state.step} ({state.seconds / 60:.1f} min trained, {state.cpu_seconds / 60:.1f} CPU-min)")
    return state


def run_phase(model: torch.nn.Module, opt: torch.optim.Optimizer, state: PhaseState, settings: PhaseSettings,
              make_batch: Callable[[int], dict[str, torch.Tensor]],
              loss_of: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor],
              measure: Callable[[], list[dict]] | None = None, extra: dict[str, Any] | None = None,
              progress: bool = True, log: Callable[[str], None] = print) -> PhaseState:
    """Train from `state.step` to `settings.stop_at or settings.steps`; checkpoints as it goes; returns the state.

    `loss_of(model, batch)` gives the loss; `measure()` (every `eval_every` steps) gives table
    rows, each with a `roc_auc` or other figures, kept in `state.evals`.
    """
    end = min(settings.steps, settings.stop_at or settings.steps)
    device = next(model.parameters()).device
    cpu_before = state.cpu_seconds - time.process_time()

    def snapshot() -> None:
        state.cpu_seconds = cpu_before + time.process_time()
        path = Path(settings.ckpt)
        path.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": state.step, "losses": state.losses,
                    "evals": state.evals, "seconds": state.seconds, "cpu_seconds": state.cpu_seconds,
                    **(extra or {})}, path / "last.pt.tmp")
        (path / "last.pt.tmp").replace(path / "last.pt")

    loader = torch.utils.data.DataLoader(StepBatches(make_batch, state.step, end), batch_size=None, shuffle=False,
                                         num_workers=max(1, settings.workers), prefetch_factor=4)
    bar = tqdm(loader, desc=settings.desc, initial=state.step, total=end, disable=not progress)
    last_save = tick = time.monotonic()
    model.train()
    for batch in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(state.step, settings.steps, settings.lr, settings.warmup)
        loss = loss_of(model, {k: v.to(device) for k, v in batch.items()})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state.step += 1
        state.losses.append(round(loss.item(), 5))
        now = time.monotonic()
        state.seconds, tick = state.seconds + now - tick, now
        bar.set_postfix(loss=f"{sum(state.losses[-20:]) / len(state.losses[-20:]):.3f}")
        if measure and settings.eval_every and state.step % settings.eval_every == 0:
            model.eval()
            rows = measure()
            model.train()
            state.evals.append({"step": state.step, "minutes": round(state.seconds / 60, 1),
                                "cpu_minutes": round((cpu_before + time.process_time()) / 60, 1), "rows": rows})
            log(f"step {state.step}: " + "; ".join(", ".join(f"{k}={_short(v)}" for k, v in r.items()) for r in rows))
            tick = time.monotonic()
            snapshot()
            last_save = time.monotonic()
        elif now - last_save > settings.save_every_s or state.step == end:
            snapshot()
            last_save = time.monotonic()
    state.cpu_seconds = cpu_before + time.process_time()
    return state


def write_trainer_state(out: Path, state: PhaseState) -> None:
    """`trainer_state.json` next to exported weights: what `load_state(exported=...)` continues from."""
    (out / TRAINER_STATE).write_text(json.dumps({"step": state.step, "losses": state.losses, "evals": state.evals,
                                                 "seconds": state.seconds, "cpu_seconds": state.cpu_seconds}))


def _short(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def smooth(values: Sequence[float], window: int = 50) -> list[float]:
    """Running mean over the last `window` values (loss curves of noisy small batches)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out
