"""Named search settings: the one place declaring a preset's task, strategy, knobs and models.

`python cli.py run --preset game24-tot ...`, `cli.py eval --preset ...` and the app's sidebar
("Preset") all read `PRESETS`; anything the user names explicitly (a task, a strategy, a knob,
a model path, a PRM recipe) wins over the preset, so a preset is a starting point, never a lock.
Model paths are relative to the repository (the bundled nano weights) or absolute / hub ids;
`--policy` / `--prm` point a preset at other weights without editing this file.

Sources: `game24-tot` is Tree-of-Thoughts BFS on the Game of 24 (Yao et al. 2023, breadth 5);
`game24-mcts` is AlphaZero-style MCTS with a learned value network as the leaf value (Silver et
al. 2017); both read the countdown value model through the PRM slot (preset `nano-value`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.config import ConfigError

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Preset:
    """One named setting.

    `policy` / `prm`: a path relative to the repository, an absolute path or a hub id (None: the
    bundled nano model); `prm_preset` names how the PRM reads a path (models.bundle.PRM_PRESETS).
    `example`: a problem the app fills in with the preset.
    """

    name: str
    summary: str
    task: str
    strategy: str
    knobs: Mapping[str, Any] = field(default_factory=dict)
    policy: str | None = None
    prm: str | None = None
    prm_preset: str = "nano"
    example: str | None = None

    def model_path(self, role: str) -> str | None:
        """The preset's model for `role` ("policy" / "prm") as a loader takes it (repo paths made absolute)."""
        value = getattr(self, role)
        if value is None:
            return None
        local = REPO / value
        return str(local) if not Path(value).is_absolute() and local.exists() else value


_COUNTDOWN_MODELS = {
    "policy": "models/nano/countdown_policy",
    "prm": "models/nano/value",
    "prm_preset": "nano-value",
}
#: Game of 24: three moves and the answer line (ToT's T=4); temperature 1, as the countdown policy is measured.
#: MCTS values a leaf by its path's weakest step (min): on the 100 validation puzzles (ranks 801-900, never
#: the test slice) game24-mcts chose a correct answer in 57% with min, 52% with prod, 41% with mean.
#: The answer line is the three moves transcribed (`answer_from_steps`, every countdown preset, greedy too):
#: the nano policy miscopied it in 10 of the 16 trees whose chosen moves were right; with it tot_bfs chose a
#: correct answer in 16 of those 30 validation puzzles (was 6).
_GAME24_KNOBS = {"max_depth": 4, "temperature": 1.0, "aggregation": "min", "answer_from_steps": True}
#: The policy rechecks each move it wrote: it rewrites the move's result and numbers left greedily from the
#: move's own ``a op b =``, and a move it does not repeat scores 0 (SelfCheck, Miao et al. 2023; a learned
#: model, not the checker).  On the Game-of-24 validation puzzles (ranks 801-900) its result disagreed with
#: 69% of the moves with wrong arithmetic and with 2% of the right ones; the value model could not tell
#: them apart (a slip like ``6 - 11 = -4`` valued as highly as a right move).
#: With doubt_below=0.1 a move also fails when the policy wrote one of its tokens at p < 0.1: the recheck
#: repeats a move on a number that is not on the list (``18 - 6`` from ``6 12 12``), but the policy gave
#: that token little probability when it sampled it.  On the validation trees (28,703 moves after legal
#: paths) the policy's least token probability flagged illegal moves with ROC AUC 0.84, the recheck 0.82,
#: both 0.92.  Validation solved / found, seeds 0 and 100: game24-tot 84/92 and 86/92 (75/88 and 81/91
#: without it; 0.05: 82/91 and 86/94; 0.2: 83/85); game24-mcts 76/79 on seed 0 (70/73 without).
_SELF_CHECK = {"self_evaluate": True, "self_check": "recompute", "doubt_below": 0.1, "score_source": "prm_x_self_eval"}
#: ToT keeps 5 states (the paper's breadth) of 16 proposals each, a path worth the product of its step values
#: (P(every step is good) if the steps were independent).  Validation puzzles (ranks 801-900), solved / found,
#: search seeds 0 and 100: 8 proposals with min 59/68 and 54/61; 16 with prod 70/76 and 63/82, with mean
#: 69/78 and 64/82, with min 63/74; 32 with prod 57/83 (more candidates, more slips that outscore a solution).
#: With the policy's own recomputation of every move (self_check=recompute, below) more proposals pay:
#: 32 proposals solved / found 75/88 and 81/91 (seeds 0 and 100; 57/83 without it), 16 proposals 74/78.
_TOT_KNOBS = {"breadth": 5, "proposals": 32, "aggregation": "prod", **_SELF_CHECK}
#: MCTS at about ToT's nodes (~190 a puzzle): validation solved / found, seeds 0 and 100: 64 simulations x 8
#: proposals (at most 16 children) 61/67 and 68/72; 32 x 4 (at most 12; ~80 nodes) 57/61 and 53/58.
#: With self_check=recompute, 64 x 8 solved / found 70/73 on seed 0 (61/67 without it, this version).
#: Widening by visits as in countdown-mcts (3 proposals, c=0.1, widen_c=1, no widen_below), seed 0, doubt 0.1:
#: 160 simulations 68/72 (3,664 tokens), 320 simulations 71/75 (4,409), against 76/79 (6,441): not adopted.
_MCTS_KNOBS = {"simulations": 64, "expand_width": 8, "widen_below": 0.3, "max_children": 16, "parallel": 4,
               **_SELF_CHECK}
_COUNTDOWN_KNOBS = {"max_depth": 5, "temperature": 1.0, "answer_from_steps": True, **_SELF_CHECK}
#: Held-out countdown, chosen on other held-out problems (``eval --seed 7``, 100 problems, never the reported
#: set), every strategy with the policy's recheck and doubt (above), at best-of-16's generated tokens (2,022
#: on those problems, rechecks included), solved / found: best-of-16 ranked by the last step's value (the
#: earlier preset) 15/40, by the product of step values 24/40 (a chain with a failed recheck scores 0);
#: beam by min 24/29, by prod 21/27, by last 21/27; MCTS as before (4 proposals, widen_below=0.3) 10/21,
#: with min 18/21.  MCTS spent its tokens on the first moves or stopped early (a tree of 4 proposals a node
#: is soon all visited; 5-number problems ended without an answer in 45 of 50): widening by visits
#: (widen_c=1) with 3 proposals and a small exploration constant goes deeper and keeps proposing where it
#: returns: c=0.5 23/40, c=0.1 27/44, c=0 24/38, c=0.25 20/40; backup=max 15/33.  Beam at those tokens:
#: 16 x 4 beams 19/23, 8 x 2 19/30, 12 x 3 18/29, 8 x 4 22/24 (within the noise of 100 problems: kept).
#: A second set (--seed 11): best-of-16 19%, MCTS 17%, beam 15%, greedy 16%.  The reported held-out set:
#: nano/README.md.
_COUNTDOWN_BEST_OF_N = {**_COUNTDOWN_KNOBS, "n": 16, "aggregation": "prod"}
_COUNTDOWN_BEAM = {**_COUNTDOWN_KNOBS, "n": 16, "beam_width": 4, "aggregation": "min"}
_COUNTDOWN_MCTS = {**_COUNTDOWN_KNOBS, "simulations": 400, "expand_width": 3, "c": 0.1, "widen_c": 1.0,
                   "max_children": 12, "parallel": 4, "aggregation": "min"}
#: Rank 405 of game24.csv, a validation puzzle: never a training problem and outside the test slice
#: (901-1000).  `cli.py pick-example` replaces it in the app with one the search solves and greedy misses.
GAME24_EXAMPLE = "Use 1 2 6 7 to make 24."

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "game24-tot",
            "Tree-of-Thoughts BFS on Game of 24: 32 proposals per kept state, each move rechecked by the "
            "policy's own recomputation, the best 5 kept by the countdown value model (Yao et al. 2023, breadth 5).",
            "countdown",
            "tot_bfs",
            {**_GAME24_KNOBS, **_TOT_KNOBS},
            example=GAME24_EXAMPLE,
            **_COUNTDOWN_MODELS,
        ),
        Preset(
            "game24-mcts",
            "MCTS on Game of 24 with the countdown value model as the leaf value (AlphaZero-style PUCT, "
            "64 simulations x 8 proposals in waves of 4 with virtual loss), each move rechecked by the policy.",
            "countdown",
            "mcts",
            {**_GAME24_KNOBS, **_MCTS_KNOBS},
            example=GAME24_EXAMPLE,
            **_COUNTDOWN_MODELS,
        ),
        Preset(
            "game24-greedy",
            "The baseline beside them: one greedy chain of the countdown policy (no search).",
            "countdown",
            "greedy",
            {"max_depth": 4, "answer_from_steps": True},
            example=GAME24_EXAMPLE,
            **_COUNTDOWN_MODELS,
        ),
        # Held-out countdown (3-5 numbers: up to four moves and the answer), compared at equal generated
        # tokens: run best-of-N first, then the others with `eval --max-tokens` set to its mean tokens.
        Preset(
            "countdown-best-of-n",
            "Countdown: 16 sampled chains of the countdown policy, each move rechecked by the policy; the chain "
            "with the best product of step values wins.",
            "countdown",
            "best_of_n",
            _COUNTDOWN_BEST_OF_N,
            **_COUNTDOWN_MODELS,
        ),
        Preset(
            "countdown-beam",
            "Countdown: step-level beam search (16 candidates, 4 beams) ranked by the value model and the policy's "
            "recheck, a path by its weakest step.",
            "countdown",
            "beam",
            _COUNTDOWN_BEAM,
            **_COUNTDOWN_MODELS,
        ),
        Preset(
            "countdown-mcts",
            "Countdown: MCTS with the value model as the leaf value, 3 proposals a node widened by visits, each "
            "move rechecked; up to 400 simulations (evaluated at best-of-N's generated tokens).",
            "countdown",
            "mcts",
            _COUNTDOWN_MCTS,
            **_COUNTDOWN_MODELS,
        ),
        Preset(
            "countdown-greedy",
            "Countdown: one greedy chain of the countdown policy (the baseline).",
            "countdown",
            "greedy",
            {"max_depth": 5, "answer_from_steps": True},
            **_COUNTDOWN_MODELS,
        ),
    )
}


#: The knobs a greedy baseline shares with the search beside it: how one chain is written, not how it is searched.
GREEDY_SHARES = ("max_depth", "max_step_tokens", "answer_from_steps")


def greedy_knobs(knobs: Mapping[str, Any]) -> dict[str, Any]:
    """The greedy baseline's knobs for a search run with `knobs` (`eval --with-greedy`, `pick-example`)."""
    return {k: v for k, v in knobs.items() if k in GREEDY_SHARES}


def get_preset(name: str) -> Preset:
    """The preset `name`; ConfigError lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.") from None


@dataclass(frozen=True)
class Setup:
    """A preset with the user's explicit choices on top: what one run or eval uses."""

    task: str
    strategy: str
    knobs: dict[str, Any]
    policy: str | None
    prm: str | None
    prm_preset: str


def resolve(
    preset: str | None,
    *,
    task: str | None = None,
    strategy: str | None = None,
    knobs: Mapping[str, Any] | None = None,
    policy: str | None = None,
    prm: str | None = None,
    prm_preset: str | None = None,
    default_task: str = "arith",
    default_strategy: str = "beam",
) -> Setup:
    """Merge a preset (or none) with explicit choices; explicit values win, knobs merge key by key.

    A preset's knobs are dropped when the user picks another strategy (they belong to the preset's
    strategy).  Raises ConfigError for an unknown preset name.
    """
    if preset is None:
        return Setup(task or default_task, strategy or default_strategy, dict(knobs or {}), policy, prm,
                     prm_preset or "nano")
    chosen = get_preset(preset)
    own = strategy is None or strategy == chosen.strategy
    return Setup(
        task or chosen.task,
        strategy or chosen.strategy,
        {**(chosen.knobs if own else {}), **dict(knobs or {})},
        policy or chosen.model_path("policy"),
        prm or chosen.model_path("prm"),
        prm_preset or chosen.prm_preset,
    )
