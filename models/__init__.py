"""Model backends behind the `search.models` protocols.

Names are imported lazily so that `import models` (e.g. by the storage layer or the CLI's
--help) does not pay for importing torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .device import pick_device, pick_dtype
    from .hf import (
        HEAD_LAYOUT,
        HFPRM,
        MATH_SHEPHERD_LAYOUT,
        QWEN_PRM_LAYOUT,
        TAG_LAYOUT,
        HFPolicy,
        ModelLoadError,
        PRMLayout,
        load_policy,
        load_prm,
        prm_text,
        weights_hash,
    )

_EXPORTS = {
    "pick_device": ".device",
    "pick_dtype": ".device",
    "HFPolicy": ".hf",
    "HFPRM": ".hf",
    "ModelLoadError": ".hf",
    "PRMLayout": ".hf",
    "TAG_LAYOUT": ".hf",
    "HEAD_LAYOUT": ".hf",
    "MATH_SHEPHERD_LAYOUT": ".hf",
    "QWEN_PRM_LAYOUT": ".hf",
    "load_policy": ".hf",
    "load_prm": ".hf",
    "prm_text": ".hf",
    "weights_hash": ".hf",
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
