"""What to load, as one object per model: `PolicySpec` and `RewardModelSpec` (no torch import).

Why spec objects: the factory (models/factory.py) chooses a backend (in-process transformers or
an inference server) and a kind (tag / head / likelihood PRM) from one value that can be built
from CLI options, app widgets or a saved run, compared and printed; a list of keywords could not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from .prm_layouts import PRMLayout

PRMKind = Literal["tag", "head", "likelihood", "chat-tag", "value-head", "orm-seq", "orm-last-token"]
PRM_KINDS: tuple[str, ...] = get_args(PRMKind)
#: The devices offered to the user (models.device.pick_device also takes e.g. "cuda:1"); auto: CUDA, MPS, CPU.
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class PolicySpec:
    """A policy to load.

    `name_or_path`: local checkpoint directory or hub id (with `url`: the served model's name, and
    where its tokenizer is loaded from unless `tokenizer` says otherwise).  `url`: base URL of an
    OpenAI-compatible completions server (e.g. `http://127.0.0.1:8000`); None runs the model in
    this process with transformers.  `device`/`dtype`/`max_batch`/`kv_*` apply in process only:
    `kv_reuse` continues each prompt from the longest cached token prefix, the LRU holding at most
    `kv_cache_entries` prefixes and `kv_cache_bytes` bytes (None: no byte limit).
    `chat_template`: auto (use the tokenizer's chat template when it has one), on (require it) or
    off (the task's plain text); `system_prompt`: overrides the model card's (see
    models/prompting.py; "" sends none).
    """

    name_or_path: str
    device: Any = None
    dtype: Any = None
    trust_remote_code: bool = False
    yes_token: str = " yes"
    no_token: str = " no"
    max_batch: int = 64
    kv_reuse: bool = True
    kv_cache_entries: int = 256
    kv_cache_bytes: int | None = 512 * 2**20
    url: str | None = None
    tokenizer: str | None = None
    chat_template: str = "auto"
    system_prompt: str | None = None


@dataclass(frozen=True)
class RewardModelSpec:
    """A process (or outcome) reward model to load.

    kind="tag" (Math-Shepherd style): a causal LM; each step is followed by `step_tag` and the
    score is P(good_token) vs bad_token at the tag.  kind="head" (Qwen2.5-Math-PRM style): a
    token classifier read at the `step_separator` after each step (2 labels: softmax, label
    `head_label_index`; 1 label: sigmoid).  `layout` sets the text around problem and steps
    (None: TAG_LAYOUT / HEAD_LAYOUT; see models/prm_layouts.py).  kind="likelihood" (the nano
    PRM): a causal LM scoring each step by its own tokens' log-probabilities (models/likelihood_prm.py),
    laid out as the policy's prompt (HEAD_LAYOUT).  `url`/`tokenizer`/in-process options as in
    `PolicySpec`.  Raises ValueError (from `check`) for an unknown kind.

    More kinds (models/reward_readers.py): "chat-tag" (RLHFlow: each step a user turn, P(good) vs
    P(bad) where the assistant's label starts), "value-head" (Skywork: sigmoid of a value head at
    each separator), "orm-seq" / "orm-last-token" (outcome models: one score per path, read by a
    sequence classifier or a reward head at the last token).  `preset` (its name, for messages),
    `architectures`, `single_tokens`: what the load-time fit check expects (models/prm_fit.py);
    `outcome`: one score per path; `system_prompt`: the system turn of chat-format outcome models.
    """

    name_or_path: str
    kind: PRMKind = "tag"
    step_tag: str = "ки"
    good_token: str = "+"
    bad_token: str = "-"
    step_separator: str = "\n"
    layout: PRMLayout | None = None
    head_label_index: int = 1
    #: Label counts a `head` classifier may have (the load-time fit check refuses others).
    head_labels: tuple[int, ...] = (1, 2)
    device: Any = None
    dtype: Any = None
    trust_remote_code: bool = False
    max_batch: int = 16
    kv_reuse: bool = True
    kv_cache_entries: int = 256
    kv_cache_bytes: int | None = 256 * 2**20
    url: str | None = None
    tokenizer: str | None = None
    preset: str | None = None
    architectures: tuple[str, ...] = ()
    single_tokens: tuple[str, ...] = ()
    outcome: bool = False
    system_prompt: str | None = None

    def check(self) -> None:
        """Raise ValueError when the kind is not one the factory knows."""
        if self.kind not in PRM_KINDS:
            raise ValueError(f"kind must be one of {', '.join(PRM_KINDS)}, got {self.kind!r}")

    @property
    def mark_and_sep(self) -> tuple[str, str]:
        """(the text a step's score is read at, the separator after it) for the tag and head kinds."""
        return (self.step_tag, self.step_separator) if self.kind == "tag" else (self.step_separator, "")
