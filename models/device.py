"""Device and dtype choice for the Hugging Face backend.

Why a module of its own: the CLI, the app and the benchmarks all need the same answer to
"where does this model run?", and the answer must not depend on importing transformers.
"""

from __future__ import annotations

import torch

_DTYPE_NAMES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """The requested device, or the best available one (cuda, then mps, then cpu) for None/"auto".

    An explicit device that is not available raises ValueError instead of failing later inside
    a forward pass with a less readable message.
    """
    if isinstance(requested, torch.device):
        requested = str(requested)
    choice = (requested or "auto").strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"Device {choice!r} was requested but CUDA is not available here; use 'cpu' or 'auto'."
        )
    if device.type == "mps" and not _mps_available():
        raise ValueError(
            f"Device {choice!r} was requested but MPS is not available here; use 'cpu' or 'auto'."
        )
    return device


def pick_dtype(device: torch.device, requested: str | torch.dtype | None = None) -> torch.dtype:
    """The requested dtype, else bf16 on CUDA (fp16 on GPUs without bf16) and float32 on cpu/mps.

    float32 on cpu/mps because half-precision matmuls there are slow or inexact, and the tiny
    models this project ships gain nothing from them.
    """
    if isinstance(requested, torch.dtype):
        return requested
    if requested is not None and requested.strip().lower() != "auto":
        name = requested.strip().lower().removeprefix("torch.")
        if name not in _DTYPE_NAMES:
            raise ValueError(f"Unknown dtype {requested!r}; use one of {sorted(_DTYPE_NAMES)} or 'auto'.")
        return _DTYPE_NAMES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32
