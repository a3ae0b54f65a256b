"""Training settings of the nano pack, importable without torch.

Why a module of their own: the CLI reads its option defaults from these dataclasses, so the
command line and the Python API cannot drift apart, and `python cli.py --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Model architectures the nano pack trains -> what sets them apart.
ARCHITECTURES: dict[str, str] = {"qwen2": "rotary positions", "gpt2": "learned positions"}
#: Where the PRM's step labels come from.
PRM_LABELS: dict[str, str] = {"mc": "Math-Shepherd rollouts", "checker": "exact step checker"}
#: What the PRM learns to read (its kind once loaded).
PRM_OBJECTIVES: dict[str, str] = {
    "likelihood": "steps scored by their own tokens' log-probabilities",
    "tag": "+/- read at a step tag",
}


def describe(choices: Mapping[str, str]) -> str:
    """``a (meaning) or b (meaning)``: a choice table as one line of help text."""
    return " or ".join(f"{name} ({meaning})" for name, meaning in choices.items())


def check_choice(option: str, value: str, choices: Mapping[str, str]) -> None:
    """Raise ValueError naming the choices when `value` is not one of them."""
    if value not in choices:
        raise ValueError(f"{option} must be {' or '.join(choices)} (got {value!r}).")


@dataclass(frozen=True)
class ModelSize:
    """Model shape; 4 x 128 keeps a model at ~0.9M parameters (~3.5 MB in float32)."""

    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 384
    #: gpt2 (learned absolute positions) or qwen2 (rotary positions: learns to copy numbers much faster).
    arch: str = "gpt2"

    def __post_init__(self) -> None:
        check_choice("arch", self.arch, ARCHITECTURES)


@dataclass(frozen=True)
class PolicyTrainConfig:
    """Everything that determines the trained weights (with the seed, training is reproducible)."""

    out: str = "models/nano/policy"
    seed: int = 0
    examples: int = 56_000
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 100
    check_share: float = 0.15
    arith_share: float = 0.55
    max_len: int = 320
    threads: int = 2
    device: str | None = None
    eval_problems: int = 40
    gen_tokens: int = 220
    #: Continue from this checkpoint instead of random weights (a second, shorter phase).
    init: str | None = None
    #: Passes over the data (each pass reshuffles the batches).
    epochs: int = 2
    #: Processes building the training data (the result does not depend on it).
    data_workers: int = 2
    #: Save a checkpoint to `out/checkpoint-{step}` every this many optimizer steps (0: never).
    save_every: int = 0
    size: ModelSize = field(default_factory=lambda: ModelSize(arch="qwen2"))


@dataclass(frozen=True)
class PRMTrainConfig:
    """Everything that determines the trained PRM (labels: mc = Math-Shepherd rollouts, checker = exact)."""

    policy: str = "models/nano/policy"
    out: str = "models/nano/prm"
    labels: str = "mc"
    seed: int = 0
    problems_per_task: int = 600
    samples_per_problem: int = 4
    rollouts: int = 4
    synthetic_share: float = 0.5
    epochs: int = 2
    batch_size: int = 32
    lr: float = 5e-4
    warmup: int = 20
    threads: int = 2
    device: str | None = None
    eval_problems: int = 60
    gen_tokens: int = 220
    #: Problems per task whose gold prefix (cut at a random step) the policy continues `samples`
    #: times: siblings at one depth, so the PRM learns which next step is the slip.
    prefix_problems: int = 0
    #: Start the PRM from these weights instead of the policy's (same tokenizer), e.g. the policy
    #: trained further: verifying a step needs the arithmetic a longer-trained model knows.
    init: str | None = None
    #: likelihood (kind="likelihood": a step scores by its own tokens' log-probabilities) or tag
    #: (kind="tag", Math-Shepherd: `+`/`-` read at a step tag after each step).
    objective: str = "likelihood"
    #: likelihood objective: weight of the language-modelling loss on gold solutions, trained
    #: alongside the step labels so the verifier keeps learning the arithmetic it checks with.
    lm_weight: float = 1.0

    def __post_init__(self) -> None:
        check_choice("labels", self.labels, PRM_LABELS)
        check_choice("objective", self.objective, PRM_OBJECTIVES)


#: The value model's problem mixes (`ValueTrainConfig.focus`).
FOCUS = ("mix", "game24")


@dataclass(frozen=True)
class ValueTrainConfig:
    """Everything that determines the trained value model (with the seed, training is reproducible)."""

    out: str = "models/nano/value"
    ckpt: str = "runs/value_ckpt"
    init: str = "models/nano/prm"
    seed: int = 0
    steps: int = 2400
    batch_size: int = 48
    lr: float = 1e-3
    warmup: int = 100
    threads: int = 1
    device: str | None = None
    #: Measure AUC on validation-puzzle states every this many steps (0: only at the end).
    eval_every: int = 250
    #: Validation puzzles measured during training, and at the export (0: all of them).
    eval_puzzles: int = 30
    export_puzzles: int = 0
    save_every_s: float = 180.0
    #: Processes building batches ahead (1 on a shared CPU; on a GPU machine several).
    data_workers: int = 1
    #: End this phase at this step (checkpoint + export) although the schedule runs to `steps` (0: at `steps`).
    stop_at: int = 0
    #: Steps over which the problem mix moves from mostly 3 numbers to the final mix.
    curriculum_steps: int = 800
    #: Chance that each step of a path is a corrupted (illegal) one, which ends the path.
    corrupt_share: float = 0.15
    #: Share of corrupted steps that are tempting slips (wrong arithmetic claiming a result from which
    #: the target looks reachable; on a last move, the target itself): `nano.countdown_data.tempting_slip`.
    tempting_share: float = 0.0
    #: Problem mix: "mix" (the curriculum over 3-5 numbers) or "game24" (a later phase: 85% four-number
    #: problems, 95% of them Game-of-24 style, 15% three-number ones), where the value model is measured.
    focus: str = "mix"


@dataclass(frozen=True)
class CountdownPolicyConfig:
    """Everything that determines the countdown specialist policy (with the seed, training is reproducible)."""

    out: str = "models/nano/countdown_policy"
    ckpt: str = "runs/countdown_policy_ckpt"
    #: The nano PRM's causal LM (the step-3,000 LM plus its likelihood fine-tune): it writes legal moves more often.
    init: str = "models/nano/prm"
    seed: int = 0
    steps: int = 1600
    batch_size: int = 32
    lr: float = 5e-4
    warmup: int = 50
    max_len: int = 320
    threads: int = 1
    device: str | None = None
    #: Measure legality and coverage every this many steps (0: only at the end).
    eval_every: int = 400
    eval_puzzles: int = 15
    eval_problems: int = 15
    #: At the export: validation puzzles (0: all) and held-out countdown problems measured.
    export_puzzles: int = 0
    export_problems: int = 100
    save_every_s: float = 180.0
    data_workers: int = 1
    stop_at: int = 0
    #: Steps over which the states move from mostly three numbers / two left to the final mix.
    curriculum_steps: int = 600
