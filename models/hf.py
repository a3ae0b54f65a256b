"""Compatibility surface of the transformers backend, which now lives in several modules.

`models.loading` (checkpoints, tokenizers, weights hash), `models.batching` (padding, batched
scoring, cached-prefix batches, token counts), `models.prm_layouts` (PRM input text),
`models.hf_policy` (`HFPolicy`), `models.hf_prm` (`HFPRM`), `models.likelihood_prm`
(`LikelihoodPRM`), `models.specs` + `models.factory` (one spec object in, a loaded model out).
This module re-exports their public names and keeps the keyword-style `load_policy`/`load_prm`
for existing callers; new code builds a `PolicySpec`/`RewardModelSpec` and calls the factory.
"""

from __future__ import annotations

from typing import Any

from search.models import Judgement, Proposal, StepScores

from . import factory
from .batching import CachedBlock, TokenCounter, cached_block, right_padded, score_in_batches, split_by_counts
from .hf_policy import HFPolicy
from .hf_prm import HFPRM
from .likelihood_prm import LikelihoodPRM
from .loading import ModelLoadError, first_token_id, weights_hash
from .prm_layouts import (
    HEAD_LAYOUT,
    MATH_SHEPHERD_LAYOUT,
    QWEN_PRM_LAYOUT,
    TAG_LAYOUT,
    PRMLayout,
    encode_marked,
    prm_text,
)
from .specs import PolicySpec, RewardModelSpec

__all__ = [
    "HEAD_LAYOUT",
    "HFPRM",
    "MATH_SHEPHERD_LAYOUT",
    "QWEN_PRM_LAYOUT",
    "TAG_LAYOUT",
    "CachedBlock",
    "HFPolicy",
    "Judgement",
    "LikelihoodPRM",
    "ModelLoadError",
    "PRMLayout",
    "PolicySpec",
    "Proposal",
    "RewardModelSpec",
    "StepScores",
    "TokenCounter",
    "cached_block",
    "encode_marked",
    "first_token_id",
    "load_policy",
    "load_prm",
    "prm_text",
    "right_padded",
    "score_in_batches",
    "split_by_counts",
    "weights_hash",
]


def load_policy(name_or_path: str, **options: Any) -> HFPolicy:
    """`factory.load_policy(PolicySpec(name_or_path, **options))` (options: the `PolicySpec` fields)."""
    return factory.load_policy(PolicySpec(name_or_path, **options))  # type: ignore[return-value]


def load_prm(name_or_path: str, **options: Any) -> HFPRM | LikelihoodPRM:
    """`factory.load_prm(RewardModelSpec(name_or_path, **options))` (options: the `RewardModelSpec` fields)."""
    return factory.load_prm(RewardModelSpec(name_or_path, **options))  # type: ignore[return-value]
