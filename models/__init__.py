"""Model backends behind the `search.models` protocols.

Names are imported lazily so that `import models` (e.g. by the storage layer or the CLI's
--help) does not pay for importing torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .device import pick_device, pick_dtype
    from .hf import load_policy, load_prm
    from .hf_policy import HFPolicy
    from .hf_prm import HFPRM
    from .loading import ModelLoadError, weights_hash
    from .prm_layouts import HEAD_LAYOUT, MATH_SHEPHERD_LAYOUT, QWEN_PRM_LAYOUT, TAG_LAYOUT, PRMLayout, prm_text
    from .specs import PolicySpec, RewardModelSpec

_EXPORTS = {
    "pick_device": ".device",
    "pick_dtype": ".device",
    "HFPolicy": ".hf_policy",
    "HFPRM": ".hf_prm",
    "ModelLoadError": ".loading",
    "PRMLayout": ".prm_layouts",
    "TAG_LAYOUT": ".prm_layouts",
    "HEAD_LAYOUT": ".prm_layouts",
    "MATH_SHEPHERD_LAYOUT": ".prm_layouts",
    "QWEN_PRM_LAYOUT": ".prm_layouts",
    "PolicySpec": ".specs",
    "RewardModelSpec": ".specs",
    "load_policy": ".hf",
    "load_prm": ".hf",
    "prm_text": ".prm_layouts",
    "weights_hash": ".loading",
}

__all__ = [
    "HEAD_LAYOUT",
    "HFPRM",
    "MATH_SHEPHERD_LAYOUT",
    "QWEN_PRM_LAYOUT",
    "TAG_LAYOUT",
    "HFPolicy",
    "ModelLoadError",
    "PRMLayout",
    "PolicySpec",
    "RewardModelSpec",
    "load_policy",
    "load_prm",
    "pick_device",
    "pick_dtype",
    "prm_text",
    "weights_hash",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
