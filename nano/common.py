"""Shared training pieces: model config, tokenizing with a loss mask, batching, schedule, saving."""

from __future__ import annotations

import math
import random
from pathlib import Path

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from models.device import pick_device
from nano.config import ModelSize


def new_model(tokenizer: PreTrainedTokenizerFast, size: ModelSize) -> PreTrainedModel:
    """A randomly initialised causal LM of the given shape."""
    if size.arch == "qwen2":
        return Qwen2ForCausalLM(
            Qwen2Config(
                vocab_size=len(tokenizer),
                hidden_size=size.n_embd,
                intermediate_size=3 * size.n_embd,
                num_hidden_layers=size.n_layer,
                num_attention_heads=size.n_head,
                num_key_value_heads=size.n_head,
                max_position_embeddings=size.n_positions,
                tie_word_embeddings=True,
                bos_token_id=tokenizer.eos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=size.n_positions,
        n_embd=size.n_embd,
        n_layer=size.n_layer,
        n_head=size.n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        activation_function="gelu",  # native kernel: gelu_new's tanh/pow ops cost ~20% of a CPU step
    )
    return GPT2LMHeadModel(config)


def setup(seed: int, threads: int, device: str | None) -> torch.device:
    """Seed everything and cap CPU threads (the machine is shared); returns the training device."""
    random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    return pick_device(device)


def tokenize_masked(
    tokenizer: PreTrainedTokenizerFast, text: str, loss_from: int, max_len: int
) -> tuple[list[int], list[int]]:
    """(ids, labels) with EOS appended; labels are -100 for tokens that start before `loss_from`."""
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids = [*enc["input_ids"], tokenizer.eos_token_id]
    starts = [s for s, _ in enc["offset_mapping"]] + [len(text)]
    labels = [i if s >= loss_from else -100 for i, s in zip(ids, starts, strict=True)]
    return ids[:max_len], labels[:max_len]


def pad_batch(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids / attention_mask / labels."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, (row_ids, row_labels) in enumerate(rows):
        ids[b, : len(row_ids)] = torch.tensor(row_ids)
        labels[b, : len(row_labels)] = torch.tensor(row_labels)
        mask[b, : len(row_ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to 10% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, out_dir: Path) -> None:
    """safetensors weights + tokenizer, loadable by `models.factory.load_policy` / `load_prm` unchanged."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to("cpu").float().save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    model.generation_config.save_pretrained(out_dir)


def param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
