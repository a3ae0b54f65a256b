"""The lean Qwen2 forward (models/lean_qwen2.py) gives transformers' logits bit for bit, and falls back otherwise.

Checked on the nano policy and PRM (4 layers, tied head, 4 KV heads) and the tiny Qwen2 of
tests/tiny_checkpoints (grouped-query attention: 2 heads on 1 KV head, untied head): plain
prefill, left-padded prefill, a prefill that continues a left-padded cached block (the KV-reuse
layout of models/batching.cached_block) and cached decode steps, each compared with
`torch.equal` (logits and the cache), then whole seeded searches with and without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache

from models.bundle import NANO_DIR
from models.factory import load_policy, load_prm
from models.lean_qwen2 import ENV_SWITCH, LeanQwen2, lean_forward, supports
from models.specs import PolicySpec, RewardModelSpec
from search import Models, run_search
from search.events import comparable
from tests.tiny_checkpoints import one_torch_thread


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def _model(path: Path | str, **kwargs: Any) -> Any:
    return AutoModelForCausalLM.from_pretrained(str(path), **kwargs).eval()


@pytest.fixture(scope="module", params=["nano-policy", "nano-prm", "tiny-gqa"])
def model(request: pytest.FixtureRequest, checkpoints: dict[str, Path]) -> Any:
    paths = {"nano-policy": NANO_DIR / "policy", "nano-prm": NANO_DIR / "prm", "tiny-gqa": checkpoints["qwen2"]}
    return _model(paths[request.param])


def _batch(model: Any, lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded random ids, mask and position ids (as the backends build them)."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(3, model.config.vocab_size, (len(lengths), width), generator=generator)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for r, n in enumerate(lengths):
        mask[r, width - n :] = 1
    return ids, mask, (mask.cumsum(1) - 1).masked_fill(mask == 0, 1)


def _same_cache(a: DynamicCache, b: DynamicCache) -> bool:
    return len(a.layers) == len(b.layers) and all(
        torch.equal(x.keys, y.keys) and torch.equal(x.values, y.values) for x, y in zip(a.layers, b.layers, strict=True)
    )


def _step(model: Any, lean: LeanQwen2, caches: tuple[Any, Any], **inputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    want = model(**inputs, past_key_values=caches[0], use_cache=True)
    got = lean(**inputs, past_key_values=caches[1])
    assert torch.equal(got.logits, want.logits), (got.logits - want.logits).abs().max()
    assert _same_cache(got.past_key_values, want.past_key_values)
    return want.logits, want.past_key_values


@pytest.mark.parametrize("lengths", [[12, 12, 12], [12, 7, 1, 9], [1]])
def test_prefill_and_cached_decode_are_bit_identical(model: Any, lengths: list[int]) -> None:
    assert supports(model)
    lean = LeanQwen2(model)
    ids, mask, positions = _batch(model, lengths)
    caches = (DynamicCache(), DynamicCache())
    with torch.inference_mode():
        logits, _ = _step(model, lean, caches, input_ids=ids, attention_mask=mask, position_ids=positions)
        last = positions[:, -1:]
        for _ in range(4):  # greedy decode, one column at a time, as HFPolicy._decode_cached
            token = logits[:, -1].argmax(-1)[:, None]
            mask, last = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1), last + 1
            logits, _ = _step(model, lean, caches, input_ids=token, attention_mask=mask, position_ids=last)
        # a second forward of several tokens on the grown cache (a cached prefix, then a tail)
        tail, tail_mask, _ = _batch(model, [3] * len(lengths), seed=1)
        mask = torch.cat([mask, tail_mask], dim=1)
        tail_positions = last + torch.arange(1, 4)[None, :]
        _step(model, lean, caches, input_ids=tail, attention_mask=mask, position_ids=tail_positions)


def test_defaults_without_mask_positions_or_cache_match(model: Any) -> None:
    """The PRM's no-reuse path calls the model with ids and a right-padded mask only."""
    ids, _, _ = _batch(model, [9, 9])
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.inference_mode():
        for kwargs in ({"attention_mask": mask}, {}):
            assert torch.equal(LeanQwen2(model)(input_ids=ids, **kwargs).logits, model(input_ids=ids, **kwargs).logits)


def test_other_models_and_settings_keep_transformers_forward(checkpoints: dict[str, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    gpt2 = _model(checkpoints["gpt2"])
    assert not supports(gpt2) and lean_forward(gpt2) is gpt2
    eager = _model(NANO_DIR / "policy", attn_implementation="eager")
    assert not supports(eager) and lean_forward(eager) is eager
    nano = _model(NANO_DIR / "policy")
    assert isinstance(lean_forward(nano), LeanQwen2)
    monkeypatch.setenv(ENV_SWITCH, "0")
    assert lean_forward(nano) is nano


def test_a_hook_added_later_sends_calls_to_transformers(model: Any) -> None:
    """Hooks see every forward: with one registered the lean path steps aside (and comes back after)."""
    lean = LeanQwen2(model)
    ids, mask, positions = _batch(model, [5, 3])
    seen: list[tuple[int, ...]] = []
    handle = model.model.layers[0].register_forward_hook(lambda _m, args, _out: seen.append(tuple(args[0].shape)))
    try:
        with torch.inference_mode():
            out = lean(input_ids=ids, attention_mask=mask, position_ids=positions)
    finally:
        handle.remove()
    assert seen == [(2, 5, model.config.hidden_size)]
    assert lean.usable()
    with torch.inference_mode():
        assert torch.equal(out.logits, lean(input_ids=ids, attention_mask=mask, position_ids=positions).logits)


def _nano_models() -> Models:
    return Models(policy=load_policy(PolicySpec(str(NANO_DIR / "policy"), device="cpu")),
                  prm=load_prm(RewardModelSpec(str(NANO_DIR / "prm"), kind="likelihood", device="cpu")))


@pytest.mark.parametrize(("strategy", "config"), [
    ("beam", {"n": 8, "beam_width": 2, "max_depth": 4, "temperature": 1.0}),
    ("mcts", {"simulations": 6}),
])
def test_nano_searches_are_identical_with_and_without_it(monkeypatch: pytest.MonkeyPatch, strategy: str,
                                                         config: dict[str, Any]) -> None:
    lean = _nano_models()
    assert isinstance(lean.policy._forward, LeanQwen2) and isinstance(lean.prm._forward, LeanQwen2)
    monkeypatch.setenv(ENV_SWITCH, "0")
    plain = _nano_models()
    assert plain.policy._forward is plain.policy.model and plain.prm._forward is plain.prm.model
    problem = "Start with 17. Add 25. Subtract 4."
    logs = [comparable(run_search(problem, task="arith", strategy=strategy, models=models, config=config,
                                  seed=3).events) for models in (lean, plain)]
    assert logs[0] == logs[1]
