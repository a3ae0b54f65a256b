"""Loading checkpoints, shared by every backend: source resolution, tokenizer and model loading, weights hash.

Design choices (and why):

* Loading always uses safetensors (`use_safetensors=True`) and passes `trust_remote_code` through,
  default False: pickled `.bin` weights can run code on load, so we refuse them with a message
  that says how to convert.
* A checkpoint saved with a generic fast tokenizer is loaded as exactly that tokenizer (see
  `load_tokenizer`), so client-side tokenization (transformers backend AND the inference-server
  backend, which sends token ids) matches what the model was trained on.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerFast

from search.scope import PerSearch

from .kv_cache import PrefixKVCache


class ModelLoadError(ValueError):
    """A checkpoint that cannot be loaded; the message says why and what to do."""


# --------------------------------------------------------------------------------------------
# Loading helpers


def looks_like_local_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else path-like is meant as a local path."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def resolve_source(name_or_path: str) -> tuple[str, Path | None]:
    """(what to pass to from_pretrained, the local directory or None for a hub id)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(
                f"{path} is a file; point at the checkpoint directory (the one with config.json)."
            )
        if not any(path.glob("*.safetensors")):
            if any(path.glob("*.bin")) or any(path.glob("*.pt")) or any(path.glob("*.pth")):
                raise ModelLoadError(
                    f"The checkpoint at {path} only has pickled weights (.bin/.pt), which can run code when "
                    "loaded. Convert it to safetensors first, e.g. load it once in a trusted environment and "
                    "call model.save_pretrained(dir) (safetensors is the default)."
                )
            raise ModelLoadError(f"no model at {path}: the directory has no *.safetensors weights.")
        return str(path), path
    if looks_like_local_path(name_or_path):
        raise ModelLoadError(f"no model at {name_or_path}: that path does not exist.")
    return name_or_path, None


def load_error(name: str, local: Path | None, err: Exception) -> ModelLoadError:
    """Turn a transformers/hub exception into a message that says what to check."""
    hint = ""
    if "safetensors" in str(err).lower():
        hint = " The checkpoint may only have .bin weights: convert it to safetensors."
    if local is None:
        return ModelLoadError(
            f"{name!r} does not exist locally and the Hugging Face hub could not be reached (or has no "
            f"such model; offline machines need a local directory).{hint} Original error: {err}"
        )
    return ModelLoadError(f"Could not load the checkpoint at {local}.{hint} Original error: {err}")


#: One `from_pretrained` at a time in this process: transformers sets process-wide state while it
#: builds a model (weight-init and tying switches), so two loads in two threads (the app warming
#: its default models while a search loads others) made one of them report a tied `lm_head.weight`
#: as missing and refuse the checkpoint, now and then.
_LOAD_LOCK = threading.RLock()


def from_pretrained(loader: Any, source: str, local: Path | None, name: str, **kwargs: Any) -> Any:
    """`loader.from_pretrained(source, **kwargs)`, one at a time, its failures as ModelLoadError."""
    try:
        with _LOAD_LOCK:
            return loader.from_pretrained(source, **kwargs)
    except ModelLoadError:
        raise
    except Exception as err:  # OSError, ValueError, hub HTTP errors, ...: all mean "cannot load"
        raise load_error(name, local, err) from err


def load_model(
    loader: Any,
    source: str,
    local: Path | None,
    name: str,
    *,
    device: torch.device,
    dtype: torch.dtype,
    trust_remote_code: bool,
) -> PreTrainedModel:
    """from_pretrained with safetensors only; refuses checkpoints whose weights do not all load."""
    model, info = from_pretrained(
        loader,
        source,
        local,
        name,
        dtype=dtype,
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
        output_loading_info=True,
    )
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ModelLoadError(
            f"{name}: {len(missing)} weights of {type(model).__name__} are not in the checkpoint ({shown}); "
            "it is probably a different kind of model (e.g. a base model without an LM head, or a reward "
            "model with its own head code, which needs trust_remote_code=True)."
        )
    return model.to(device).eval()


#: tokenizer_config classes meaning "exactly the pipeline in tokenizer.json, nothing model-specific".
_GENERIC_TOKENIZERS = {"TokenizersBackend", "PreTrainedTokenizerFast"}


def load_tokenizer(source: str, local: Path | None, name: str, trust_remote_code: bool) -> Any:
    """AutoTokenizer, except for a checkpoint saved with a generic fast tokenizer.

    Why: transformers 5 picks the tokenizer class from the model type when the saved class is the
    generic backend, so a Qwen2-shaped model with its own tokenizer.json (the nano pack) would get
    Qwen2's pre-tokenizer on top of it and encode prompts differently from training (spaces lost).
    """
    saved_class = saved_tokenizer_class(local)
    loader = PreTrainedTokenizerFast if saved_class in _GENERIC_TOKENIZERS else AutoTokenizer
    tokenizer = from_pretrained(loader, source, local, name, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError(f"{name}: the tokenizer has neither a pad nor an eos token; add one.")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def saved_tokenizer_class(local: Path | None) -> str | None:
    """`tokenizer_class` of a local checkpoint's tokenizer_config.json (None when unreadable)."""
    config = local / "tokenizer_config.json" if local is not None else None
    if config is None or not config.is_file() or not (local / "tokenizer.json").is_file():
        return None
    try:
        return json.loads(config.read_text()).get("tokenizer_class")
    except (OSError, ValueError):
        return None


def first_token_id(tokenizer: Any, text: str, what: str) -> int:
    """The first token of `text` encoded without special tokens (how yes/no/good/bad are matched)."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        raise ModelLoadError(f"The {what} {text!r} encodes to no tokens with this tokenizer.")
    return int(ids[0])


def distinct_pair(tokenizer: Any, first: str, second: str, what: str) -> tuple[int, int]:
    a, b = first_token_id(tokenizer, first, what), first_token_id(tokenizer, second, what)
    if a == b:
        raise ModelLoadError(
            f"The {what}s {first!r} and {second!r} start with the same token "
            f"({tokenizer.convert_ids_to_tokens(a)!r}) in this tokenizer; choose tokens that differ."
        )
    return a, b


def weights_hash(directory: Path | None) -> str | None:
    """sha256 over names and bytes of a local checkpoint's *.safetensors files (None if not local)."""
    if directory is None or not directory.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(directory.glob("*.safetensors")):
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


class LoadedModel:
    """What every backend shares: name, device, dtype, lock, the weights hash and the prefix KV cache."""

    def __init__(
        self,
        name: str,
        local: Path | None,
        device: torch.device,
        dtype: torch.dtype,
        trust_remote_code: bool,
        *,
        kv_reuse: bool,
        kv_cache_entries: int,
        kv_cache_bytes: int | None,
    ):
        self.name = name
        self.local_path = local
        self.device = device
        self.dtype = dtype
        self.trust_remote_code = trust_remote_code
        self._lock = threading.RLock()
        self._hash: str | None = None
        self.kv_reuse = kv_reuse
        self._kv_caches = PerSearch(lambda: PrefixKVCache(kv_cache_entries, kv_cache_bytes))

    @property
    def kv_cache(self) -> PrefixKVCache:
        """The prefix KV cache of the search calling (search/scope.py): each search starts with an
        empty one of its own, so what runs beside it cannot change its numbers.  Outside a search:
        the cache the last search left, shared by direct calls."""
        return self._kv_caches.get()

    def clear_cache(self) -> None:
        """Forget every prefix in the cache `kv_cache` returns here (a running search's cache is its own)."""
        with self._lock:
            self.kv_cache.clear()

    def weights_hash(self) -> str | None:
        """sha256 of the local safetensors files (cached); None for a hub id."""
        if self._hash is None:
            self._hash = weights_hash(self.local_path)
        return self._hash

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, device={self.device}, dtype={self.dtype})"

