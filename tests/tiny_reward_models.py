"""Tiny look-alikes of published reward models, built on the spot (random weights, no downloads).

Each has the architecture class, the special tokens, the chat template and the head layout of
the model it stands for, so a preset can be checked against that model card's reference recipe
and refused on the others:

* math-shepherd: MistralForCausalLM, ``ки`` a token of its own, no chat template;
* qwen-prm: Qwen2ForTokenClassification (2 labels), ``<extra_0>`` special, Qwen chat template;
* rlhflow: LlamaForCausalLM with a Llama-3.1-style chat template (header ids, ``<|eot_id|>``);
* skywork: a Qwen2 body saved as ``model.*`` plus ``v_head.summary`` [1, hidden] ("Qwen2ForPrmModel");
* qwen-rm: a Qwen2 body plus ``score.0`` [h, h] / ``score.2`` [1, h] ("Qwen2ForRewardModel");
* orm-seq: Qwen2ForSequenceClassification (1 label) with a Qwen chat template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2ForSequenceClassification,
    Qwen2ForTokenClassification,
    Qwen2Model,
)

from tests.tiny_chat import QWEN_STYLE_TEMPLATE
from tests.tiny_checkpoints import build_tokenizer, corpus, one_torch_thread, qwen2_config

LLAMA31_STYLE_TEMPLATE = (
    "{{- bos_token }}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\nCutting Knowledge Date: December 2023\\n"
    "Today Date: 26 Jul 2024\\n\\n<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
QWEN_SPECIAL = ["<|im_start|>", "<|im_end|>", "<extra_0>"]
LLAMA_SPECIAL = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

#: look-alike -> (directory name, preset that reads it)
LOOKALIKES: dict[str, tuple[str, str]] = {
    "math-shepherd": ("tiny-math-shepherd-mistral-7b-prm", "math-shepherd"),
    "qwen-prm": ("tiny-Qwen2.5-Math-PRM-7B", "qwen-prm"),
    "rlhflow": ("tiny-RLHFlow-Llama3.1-8B-PRM-Deepseek-Data", "rlhflow"),
    "skywork": ("tiny-Skywork-o1-Open-PRM-Qwen-2.5-1.5B", "skywork"),
    "qwen-rm": ("tiny-Qwen2.5-Math-RM-72B", "qwen-rm"),
    "orm-seq": ("tiny-sequence-orm", "orm-seq"),
}
SMALL = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
}


def _tokenizer(special: list[str], template: str | None, bos: str | None = None):
    texts = corpus(200) + ["Step 1: add. ки\n+ - Please reason step by step \\boxed{}"] * 4
    tokenizer = build_tokenizer(texts)
    tokenizer.add_special_tokens({"additional_special_tokens": special})
    tokenizer.add_tokens(["ки"])
    if bos:
        tokenizer.bos_token = bos
    if template:
        tokenizer.chat_template = template
    return tokenizer


def _ids(tokenizer, bos: str | None = None) -> dict[str, int]:
    pad = tokenizer.pad_token_id
    eos = tokenizer.eos_token_id
    return {
        "pad_token_id": pad,
        "eos_token_id": eos,
        "bos_token_id": tokenizer.convert_tokens_to_ids(bos) if bos else eos,
    }


def _save_pretrained(model, tokenizer, path: Path) -> Path:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _save_body_and_head(
    body: Qwen2Model, head: dict[str, torch.Tensor], architecture: str, tokenizer, path: Path
) -> Path:
    """A checkpoint laid out like a remote-code reward model: `model.*` body weights plus its head."""
    path.mkdir(parents=True)
    tensors = {f"model.{k}": v.contiguous() for k, v in body.state_dict().items()}
    save_file({**tensors, **head}, str(path / "model.safetensors"), metadata={"format": "pt"})
    body.config.architectures = [architecture]
    body.config.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_lookalikes(root: Path) -> dict[str, Path]:
    """Write every look-alike under `root` (see the module docstring); returns look-alike -> directory."""
    with one_torch_thread():
        torch.manual_seed(0)
        return {key: _BUILDERS[key](root / name) for key, (name, _) in LOOKALIKES.items()}


def build_served_lookalike(key: str, root: Path) -> Path:
    """The look-alike `key` under `root` with one attention head: head dim 32, the least vLLM's CPU attention takes."""
    with one_torch_thread():
        torch.manual_seed(0)
        return _BUILDERS[key](root / LOOKALIKES[key][0], heads=1)


def _heads(config: Any, heads: int) -> Any:
    """`config` with `heads` attention heads (one key/value head) over its hidden size."""
    config.num_attention_heads, config.num_key_value_heads = heads, 1
    if getattr(config, "head_dim", None) is not None:
        config.head_dim = config.hidden_size // heads
    return config


def _math_shepherd(path: Path, heads: int = 2) -> Path:
    tok = _tokenizer([], None)
    config = _heads(MistralConfig(vocab_size=len(tok), **{k: v for k, v in SMALL.items()}, **_ids(tok)), heads)
    return _save_pretrained(MistralForCausalLM(config), tok, path)


def _qwen_prm(path: Path, heads: int = 2) -> Path:
    tok = _tokenizer(QWEN_SPECIAL, QWEN_STYLE_TEMPLATE)
    config = _heads(qwen2_config(len(tok), num_labels=2, **_ids(tok)), heads)
    return _save_pretrained(Qwen2ForTokenClassification(config), tok, path)


def _rlhflow(path: Path, heads: int = 2) -> Path:
    tok = _tokenizer(LLAMA_SPECIAL, LLAMA31_STYLE_TEMPLATE, bos="<|begin_of_text|>")
    config = _heads(LlamaConfig(vocab_size=len(tok), **SMALL, **_ids(tok, "<|begin_of_text|>")), heads)
    return _save_pretrained(LlamaForCausalLM(config), tok, path)


def _skywork(path: Path, heads: int = 2) -> Path:
    tok = _tokenizer(QWEN_SPECIAL, QWEN_STYLE_TEMPLATE, bos="<|endoftext|>")
    body = Qwen2Model(_heads(qwen2_config(len(tok), **_ids(tok, "<|endoftext|>")), heads))
    head = {"v_head.summary.weight": torch.randn(1, 32) * 0.5, "v_head.summary.bias": torch.randn(1) * 0.1}
    return _save_body_and_head(body, head, "Qwen2ForPrmModel", tok, path)


def _qwen_rm(path: Path, heads: int = 2) -> Path:
    tok = _tokenizer(QWEN_SPECIAL, QWEN_STYLE_TEMPLATE)
    body = Qwen2Model(_heads(qwen2_config(len(tok), **_ids(tok)), heads))
    head = {
        "score.0.weight": torch.randn(32, 32) * 0.2,
        "score.0.bias": torch.randn(32) * 0.1,
        "score.2.weight": torch.randn(1, 32) * 0.5,
        "score.2.bias": torch.randn(1) * 0.1,
    }
    return _save_body_and_head(body, head, "Qwen2ForRewardModel", tok, path)


def _orm_seq(path: Path, heads: int = 2) -> Path:
    tok = _tokenizer(QWEN_SPECIAL, QWEN_STYLE_TEMPLATE)
    config = _heads(qwen2_config(len(tok), num_labels=1, **_ids(tok)), heads)
    return _save_pretrained(Qwen2ForSequenceClassification(config), tok, path)


_BUILDERS = {
    "math-shepherd": _math_shepherd,
    "qwen-prm": _qwen_prm,
    "rlhflow": _rlhflow,
    "skywork": _skywork,
    "qwen-rm": _qwen_rm,
    "orm-seq": _orm_seq,
}
