"""What a run records about its models: name, where the weights came from, and a content hash.

Why a content hash: two runs with the "same" local model directory are only comparable if
the weights are the same bytes (a re-trained nano PRM keeps its path).  Hashing reads every
weight file once (roughly 1 s per GB); hub ids that are not local directories get no hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".npz")
_CHUNK = 1 << 20


def weights_hash(path: str | Path | None) -> str | None:
    """``sha256:<hex>`` over the weight files under a local path (names and bytes), else None."""
    if path is None:
        return None
    root = Path(path).expanduser()
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    else:
        return None
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(root) if file != root else file.name).encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def model_info(name: str | None, path: str | Path | None, *, hash_weights: bool = True) -> dict[str, Any]:
    """One `models_info` entry for `Store.recorder(models_info={"policy": model_info(...), ...})`."""
    return {
        "name": name,
        "path": str(path) if path is not None else None,
        "weights_hash": weights_hash(path) if hash_weights else None,
    }
