"""Prefix KV reuse in the transformers policy: same outputs as re-encoding, far fewer tokens run.

Outputs are compared with numbers to a tolerance: running a prefix from the cache and then the
rest gives the same tokens as one full forward, but float32 sums in a different order, so
log-probabilities agree to ~1e-6, not bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from models.hf import HFPolicy, load_policy, load_prm
from models.kv_cache import PrefixKVCache
from search import Models, run_search
from search.events import comparable
from search.tasks.arith import ArithTask
from tests.tiny_checkpoints import one_torch_thread

PROBLEM = "Start with 17. Add 25. Subtract 4."
PROMPT = f"Problem: {PROBLEM}\nSolution:\n"
PROMPTS = [PROMPT, PROMPT + "17 + 25 = 42\n", "Problem: Start with 3. Add 4.\nSolution:\n"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from 2 threads and lose a lot when the cores are shared."""
    with one_torch_thread():
        yield


class _NoEarlyAnswers(ArithTask):
    """Arith, but no step ends the solution: the barely trained tiny models write `Answer:` at
    once, and the chains must be several steps deep for children to reuse their parents' KV."""

    def is_final(self, step: str) -> bool:
        return False


def _policy(checkpoints: dict[str, Path], arch: str, reuse: bool, **kwargs: Any) -> HFPolicy:
    return load_policy(str(checkpoints[arch]), device="cpu", kv_reuse=reuse, **kwargs)


def assert_close(got: Any, want: Any, path: str = "") -> None:
    """Structural equality with floats compared to 1e-4 (ints, strings, bools exactly)."""
    if isinstance(want, float) and not isinstance(got, bool):
        assert isinstance(got, int | float) and math.isclose(got, want, abs_tol=1e-4), f"{path}: {got} != {want}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{path}: keys differ"
        for key in want:
            assert_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: lengths differ"
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_close(a, b, f"{path}[{i}]")
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_reuse_gives_the_same_proposals(checkpoints: dict[str, Path], arch: str, temperature: float) -> None:
    """Greedy AND seeded sampling: the cached path draws the same multinomial over the same batch."""
    plain, cached = _policy(checkpoints, arch, False), _policy(checkpoints, arch, True)
    for seed in range(3):  # later rounds hit the cache for every prompt
        args = {"temperature": temperature, "max_new_tokens": 16, "stop": "\n", "seed": seed}
        want, got = plain.propose(PROMPTS, 3, **args), cached.propose(PROMPTS, 3, **args)
        assert [[(p.text, p.token_count, p.ended) for p in row] for row in got] == [
            [(p.text, p.token_count, p.ended) for p in row] for row in want
        ]
        for got_row, want_row in zip(got, want, strict=True):
            for a, b in zip(got_row, want_row, strict=True):
                assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-4)
    assert cached.kv_cache.stats.hits > 0
    assert cached.tokens.encoded < plain.tokens.encoded
    assert cached.tokens.generated == plain.tokens.generated


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
@pytest.mark.parametrize(
    ("strategy", "config"),
    [
        ("greedy", {"max_depth": 4, "max_step_tokens": 12}),
        ("beam", {"n": 4, "beam_width": 2, "max_depth": 3, "temperature": 1.0, "max_step_tokens": 12}),
    ],
)
def test_searches_are_the_same_with_and_without_reuse(
    checkpoints: dict[str, Path], arch: str, strategy: str, config: dict[str, Any]
) -> None:
    prm = load_prm(str(checkpoints["gpt2"]), kind="tag", device="cpu")
    logs = []
    for reuse in (False, True):
        models = Models(policy=_policy(checkpoints, arch, reuse), prm=prm)
        result = run_search(PROBLEM, task=_NoEarlyAnswers(), strategy=strategy, models=models, config=config, seed=5)
        assert result.status == "finished", result.error
        logs.append(comparable(result.events))
        if reuse:
            assert models.policy.kv_cache.stats.hits > 0, "children should continue from their parent's prefix"
    assert_close(logs[1], logs[0])


def test_children_reuse_nearly_all_of_their_prompt(checkpoints: dict[str, Path]) -> None:
    """A chain of greedy steps re-encodes (almost) nothing: recompute ratio close to 1."""
    policy = _policy(checkpoints, "gpt2", True)
    prompt = PROMPT
    for _ in range(4):
        step = policy.propose([prompt], 1, temperature=0.0, max_new_tokens=12, stop="\n", seed=0)[0][0]
        prompt += step.text + "\n"
    total = len(policy.tokenizer(prompt)["input_ids"])
    assert policy.tokens.encoded <= 1.1 * total


def test_cache_is_bounded_by_entries_and_bytes() -> None:
    def layers(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.zeros(2, n, 4), torch.zeros(2, n, 4))]

    cache = PrefixKVCache(max_entries=2, max_bytes=None)
    cache.store([1, 2, 3], layers(3))
    cache.store([1, 2, 3, 4], layers(4))  # extends the first entry, which is dropped
    assert len(cache) == 1
    cache.store([1, 2], layers(2))  # already covered: not stored
    assert len(cache) == 1
    cache.store([5, 6], layers(2))
    cache.store([7, 8], layers(2))  # third entry: the least recently used goes
    assert len(cache) == 2 and cache.stats.evicted == 1
    assert cache.lookup([1, 2, 3, 4, 9], limit=10) == (0, None)
    n, found = cache.lookup([5, 6, 1], limit=1)
    assert n == 1 and found is not None
    small = PrefixKVCache(max_entries=100, max_bytes=2 * 2 * 3 * 4 * 4)  # room for one 3-token entry
    small.store([1, 2, 3], layers(3))
    small.store([4, 5, 6], layers(3))
    assert len(small) == 1 and small.nbytes <= small.max_bytes
    small.store([9] * 10, layers(10))  # larger than the whole budget: never stored
    assert small.lookup([9, 9], limit=5) == (0, None)


def test_eviction_under_a_tiny_cache_keeps_outputs_right(checkpoints: dict[str, Path]) -> None:
    plain = _policy(checkpoints, "qwen2", False)
    tiny = _policy(checkpoints, "qwen2", True, kv_cache_entries=1)
    args = {"temperature": 1.0, "max_new_tokens": 12, "stop": "\n", "seed": 3}
    for _ in range(2):
        want, got = plain.propose(PROMPTS, 2, **args), tiny.propose(PROMPTS, 2, **args)
        assert [[p.text for p in row] for row in got] == [[p.text for p in row] for row in want]
    assert len(tiny.kv_cache) == 1


@pytest.mark.parametrize("key", ["gpt2_head", "qwen2_head", "qwen2_head1"])
def test_head_prm_applies_its_classifier_only_at_the_separators(checkpoints: dict[str, Path], key: str) -> None:
    """The head kind runs the body once and the classifier on the gathered separator rows only."""
    prm = load_prm(str(checkpoints[key]), kind="head", device="cpu", kv_reuse=False)  # one plain pass per path
    assert prm.head is not None and prm.head_body is not None
    steps = ["17 + 25 = 42", "42 - 4 = 38", "Answer: 38"]
    ids, positions = prm.encode(PROBLEM, steps)
    with torch.inference_mode():
        logits = prm.model(input_ids=torch.tensor([ids])).logits[0, positions].float()
    want = torch.sigmoid(logits[:, 0]) if prm.num_labels == 1 else torch.softmax(logits, -1)[:, prm.head_label_index]
    got = prm.score(PROBLEM, [steps])[0].scores
    assert list(got) == pytest.approx(want.tolist(), abs=1e-5)
    calls: list[tuple[int, ...]] = []
    hook = prm.head.register_forward_hook(lambda _m, args, _out: calls.append(tuple(args[0].shape)))
    try:
        prm.score(PROBLEM, [steps, steps[:2]])
    finally:
        hook.remove()
    assert calls == [(5, calls[0][1])], "the classifier should see exactly the 3 + 2 separator rows"


@pytest.mark.parametrize(
    ("key", "kind"),
    [("gpt2", "tag"), ("qwen2", "tag"), ("gpt2_head", "head"), ("qwen2_head", "head"),
     ("gpt2", "likelihood"), ("qwen2", "likelihood")],
)
def test_prm_scores_children_from_their_parents_cached_prefix(
    checkpoints: dict[str, Path], key: str, kind: str
) -> None:
    plain = load_prm(str(checkpoints[key]), kind=kind, device="cpu", kv_reuse=False)  # type: ignore[arg-type]
    cached = load_prm(str(checkpoints[key]), kind=kind, device="cpu", kv_reuse=True)  # type: ignore[arg-type]
    steps = ["17 + 25 = 42", "42 - 4 = 38", "38 + 1 = 39", "Answer: 39"]
    for depth in range(1, 5):  # as a search scores them: parents first, then children and a sibling
        paths = [steps[:depth], [*steps[: depth - 1], "7 + 7 = 14"]]
        want, got = plain.score(PROBLEM, paths), cached.score(PROBLEM, paths)
        for a, b in zip(got, want, strict=True):
            assert a.tokens_read == b.tokens_read  # the full path, cached or not
            assert list(a.scores) == pytest.approx(list(b.scores), abs=1e-5)
    again = cached.score(PROBLEM, paths)  # a path scored before: every step but the last from the cache
    assert [list(a.scores) for a in again] == [pytest.approx(list(b.scores), abs=1e-5) for b in want]
    assert cached.kv_cache.stats.hits > 0
    assert cached.tokens.encoded < plain.tokens.encoded / 2
    cached.clear_cache()
    assert len(cached.kv_cache) == 0
