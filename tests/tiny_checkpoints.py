"""Tiny Hugging Face checkpoints built from scratch for the backend tests (no hub, no downloads).

Why train at all: random weights almost never emit a newline, so "stops at the step delimiter"
could not be tested.  A couple of hundred Adam steps on arith-like text (a few seconds on CPU)
make the tiny causal LMs write `a + b = c\\n` lines; the token-classification PRMs stay random
(their scores only have to be consistent, not sensible).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import (
    AutoTokenizer,
    GPT2Config,
    GPT2ForTokenClassification,
    GPT2LMHeadModel,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2ForTokenClassification,
)

EOS = "<|endoftext|>"
PAD = "<pad>"
SEP = "<extra_0>"
STEP_TAG = "ки"


def arith_example(rng: random.Random) -> str:
    """One solved problem in the task prompt format, plus a self-check and a tagged copy."""
    start = rng.randint(1, 60)
    lines, value, ops = [], start, []
    for _ in range(rng.randint(1, 3)):
        n = rng.randint(1, 40)
        if rng.random() < 0.5:
            ops.append(f"Add {n}.")
            lines.append(f"{value} + {n} = {value + n}")
            value += n
        else:
            ops.append(f"Subtract {n}.")
            lines.append(f"{value} - {n} = {value - n}")
            value -= n
    lines.append(f"Answer: {value}")
    problem = f"Start with {start}. " + " ".join(ops)
    solution = "".join(line + "\n" for line in lines)
    verdict = rng.choice([" yes", " no"])
    check = f"Check: {lines[0]}\nIs this step correct?{verdict}\n"
    tagged = "".join(f"{line} {STEP_TAG}\n" for line in lines)
    return f"Problem: {problem}\nSolution:\n{solution}{check}{tagged}"


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [arith_example(rng) for _ in range(n)]


def build_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """A byte-level BPE (GPT-2 style) so any text, Cyrillic step tags included, can be encoded."""
    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=[EOS, PAD, SEP],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, extra_special_tokens=[SEP])


def _train(model: PreTrainedModel, tokenizer: Any, texts: list[str], steps: int) -> None:
    """A few quick Adam steps of next-token prediction so newlines and EOS become likely."""
    ids = [tokenizer(t + EOS)["input_ids"] for t in texts]
    rng = random.Random(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        batch = [rng.choice(ids)[:96] for _ in range(16)]
        width = max(len(b) for b in batch)
        x = torch.full((len(batch), width), tokenizer.pad_token_id)
        mask = torch.zeros_like(x)
        for i, b in enumerate(batch):
            x[i, : len(b)] = torch.tensor(b)
            mask[i, : len(b)] = 1
        labels = x.masked_fill(mask == 0, -100)
        loss = model(input_ids=x, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def _save(model: PreTrainedModel, tokenizer: Any, path: Path) -> Path:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tokenizer_as_loaded(tokenizer: PreTrainedTokenizerFast, config: PreTrainedConfig, path: Path) -> Any:
    """The tokenizer exactly as `AutoTokenizer` will load it next to `config`.

    transformers 5 picks the tokenizer class from the config's model_type when tokenizer_config
    names the generic backend, and e.g. Qwen2Tokenizer re-applies its own pre-tokenizer (digits
    split one by one); training with this tokenizer keeps train and load consistent.
    """
    config.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


def gpt2_config(vocab: int, **extra: int) -> GPT2Config:
    return GPT2Config(vocab_size=vocab, n_positions=256, n_embd=32, n_layer=2, n_head=2, **extra)


def qwen2_config(vocab: int, **extra: int) -> Qwen2Config:
    return Qwen2Config(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        **extra,
    )


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread, then restore: on a busy 2-core machine two intra-op threads made
    tiny models ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def build_all(root: Path, train_steps: int = 60) -> dict[str, Path]:
    """Write every tiny checkpoint under `root` and return their directories by name."""
    with one_torch_thread():
        return _build_all(root, train_steps)


def _build_all(root: Path, train_steps: int) -> dict[str, Path]:
    torch.manual_seed(0)
    texts = corpus()
    tokenizer = build_tokenizer(texts)
    vocab = len(tokenizer)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    special = {"bos_token_id": eos, "eos_token_id": eos, "pad_token_id": pad}
    out: dict[str, Path] = {}

    gpt2 = GPT2LMHeadModel(gpt2_config(vocab, **special))
    _train(gpt2, tokenizer, texts, train_steps)
    out["gpt2"] = _save(gpt2, tokenizer, root / "gpt2")

    qwen = Qwen2ForCausalLM(qwen2_config(vocab, **special))
    qwen_tokenizer = tokenizer_as_loaded(tokenizer, qwen.config, root / "qwen2")
    _train(qwen, qwen_tokenizer, texts, train_steps)
    out["qwen2"] = _save(qwen, qwen_tokenizer, root / "qwen2")

    out["gpt2_head"] = _save(
        GPT2ForTokenClassification(gpt2_config(vocab, num_labels=2, **special)), tokenizer, root / "gpt2_head"
    )
    out["qwen2_head"] = _save(
        Qwen2ForTokenClassification(qwen2_config(vocab, num_labels=2, **special)),
        tokenizer,
        root / "qwen2_head",
    )
    out["qwen2_head1"] = _save(
        Qwen2ForTokenClassification(qwen2_config(vocab, num_labels=1, **special)),
        tokenizer,
        root / "qwen2_head1",
    )

    bin_only = root / "bin_only"
    bin_only.mkdir()
    gpt2.config.save_pretrained(bin_only)
    tokenizer.save_pretrained(bin_only)
    torch.save(gpt2.state_dict(), bin_only / "pytorch_model.bin")
    out["bin_only"] = bin_only
    return out
