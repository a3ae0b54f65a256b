"""The likelihood PRM (kind="likelihood") against tiny BPE checkpoints built in the tests.

Expected scores are computed the slow way: one forward pass per token on exactly the text before
it, so padding, batching and the token spans of the fast path are all checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from models.hf import ModelLoadError, load_prm
from models.likelihood_prm import CALIBRATION_KEY, LikelihoodPRM, encode_paths, encode_steps
from tests.tiny_checkpoints import one_torch_thread

PROBLEM = "Start with 17. Add 25. Subtract 8."
PATHS = [
    ["17 + 25 = 42", "42 - 8 = 34", "Answer: 34"],
    ["17 + 25 = 41", "Answer: 41"],
    ["12 * 3 = 36"],
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def slow_scores(path: Path, problem: str, steps: list[str]) -> list[float]:
    """exp(running min over tokens of log p(token | text before it)), one forward per token."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    text = f"Problem: {problem}\nSolution:\n"
    bounds = []
    for step in steps:
        bounds.append((len(text), len(text) + len(step) + 1))
        text += step + "\n"
    enc = tokenizer(text, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    ends = {*newline, tokenizer.eos_token_id} if len(newline) == 1 else {tokenizer.eos_token_id}
    scores, running = [], 0.0
    for start, end in bounds:
        span = [j for j, (a, b) in enumerate(offsets) if b > a and b > start and a < end]
        for j in span:
            with torch.no_grad():
                probs = torch.softmax(model(torch.tensor([ids[:j]])).logits[0, -1].float(), -1)
            p = probs[sorted(ends)].sum() if j == span[-1] and ids[j] in ends else probs[ids[j]]
            running = min(running, math.log(float(p)))
        scores.append(math.exp(running))
    return scores


@pytest.mark.parametrize("key", ["gpt2", "qwen2"])
def test_scores_match_one_forward_per_token(checkpoints: dict[str, Path], key: str) -> None:
    prm = load_prm(str(checkpoints[key]), kind="likelihood", device="cpu")
    assert isinstance(prm, LikelihoodPRM) and prm.calibration is None
    together = prm.score(PROBLEM, PATHS)
    for path, got in zip(PATHS, together, strict=True):
        want = slow_scores(checkpoints[key], PROBLEM, path)
        assert got.scores == pytest.approx(want, rel=1e-4, abs=1e-7)
        assert list(got.scores) == sorted(got.scores, reverse=True)  # a prefix score never recovers
        assert got.tokens_read > 0
    alone = [prm.score(PROBLEM, [path])[0] for path in PATHS]
    for a, b in zip(alone, together, strict=True):  # padding in a batch changes nothing
        assert a.scores == pytest.approx(b.scores, rel=1e-5, abs=1e-7)
    assert prm.score(PROBLEM, [[]])[0].scores == ()


def test_calibration_comes_from_config_and_is_checked(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    source = checkpoints["qwen2"]
    plain = load_prm(str(source), kind="likelihood", device="cpu").score(PROBLEM, PATHS[:1])[0].scores
    for name in ("good", "bad"):
        (tmp_path / name).mkdir()
        for f in source.iterdir():
            (tmp_path / name / f.name).write_bytes(f.read_bytes())
    for name, value in (("good", {"scale": 2.0, "bias": 1.5}), ("bad", {"scale": "steep"})):
        config = json.loads((tmp_path / name / "config.json").read_text())
        config[CALIBRATION_KEY] = value
        (tmp_path / name / "config.json").write_text(json.dumps(config))
    calibrated = load_prm(str(tmp_path / "good"), kind="likelihood", device="cpu").score(PROBLEM, PATHS[:1])[0]
    want = [1 / (1 + math.exp(-(2.0 * math.log(p) + 1.5))) for p in plain]
    assert calibrated.scores == pytest.approx(want, rel=1e-5)
    with pytest.raises(ModelLoadError, match=CALIBRATION_KEY):
        load_prm(str(tmp_path / "bad"), kind="likelihood", device="cpu")


def test_unknown_kind_is_refused(checkpoints: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="likelihood"):
        load_prm(str(checkpoints["qwen2"]), kind="vibes", device="cpu")  # type: ignore[arg-type]



@pytest.mark.parametrize("key", ["gpt2", "qwen2"])
def test_batched_encoding_equals_one_path_at_a_time(checkpoints: dict[str, Path], key: str) -> None:
    prm = load_prm(str(checkpoints[key]), kind="likelihood", device="cpu")
    paths = [*PATHS, [], ["  spaces  ", "héllo ✓"], PATHS[0][:1]]
    batched = encode_paths(prm.tokenizer, prm.layout, prm.sep, PROBLEM, paths)
    assert batched == [encode_steps(prm.tokenizer, prm.layout, prm.sep, PROBLEM, path) for path in paths]
    assert batched[3] == ([], []) and all(ids and spans for ids, spans in batched[:3])
