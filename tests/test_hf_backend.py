"""The Hugging Face backend against tiny checkpoints built on the spot (tests/tiny_checkpoints.py).

Every model is loaded back only through `load_policy` / `load_prm`, the path a user's model takes.
"""

from __future__ import annotations

import math
import random
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from models import factory, hf
from models.device import pick_device, pick_dtype
from models.hf import (
    HFPRM,
    MATH_SHEPHERD_LAYOUT,
    HFPolicy,
    ModelLoadError,
    PRMLayout,
    load_policy,
    load_prm,
    prm_text,
    weights_hash,
)
from models.prompting import cut_generation
from search.models import Policy, Proposal, RewardModel
from tests.tiny_checkpoints import SEP, one_torch_thread

PROBLEM = "Start with 17. Add 25. Subtract 8."
PROMPT = f"Problem: {PROBLEM}\nSolution:\n"
PROMPTS = [PROMPT, PROMPT + "17 + 25 = 42\n", "Problem: Start with 3. Add 4.\nSolution:\n"]
PATHS = [
    ["17 + 25 = 42", "42 - 8 = 34", "Answer: 34"],
    ["17 + 25 = 41", "Answer: 41"],
    ["a step that mentions ки inside", "x"],  # the tag inside a step must not shift read positions
]
PRM_CASES = [
    ("gpt2", "tag"),
    ("qwen2", "tag"),
    ("gpt2_head", "head"),
    ("qwen2_head", "head"),
    ("qwen2_head1", "head"),
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from 2 threads and lose a lot when the cores are shared."""
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def policies(checkpoints: dict[str, Path]) -> dict[str, HFPolicy]:
    # cpu + float32 everywhere so the exact comparisons below hold on GPU machines too
    return {arch: load_policy(str(checkpoints[arch]), device="cpu") for arch in ("gpt2", "qwen2")}


@pytest.fixture(scope="session")
def prms(checkpoints: dict[str, Path]) -> Callable[[str, str], HFPRM]:
    cache: dict[tuple[str, str], HFPRM] = {}

    def get(key: str, kind: str) -> HFPRM:
        if (key, kind) not in cache:
            cache[key, kind] = load_prm(str(checkpoints[key]), kind=kind, device="cpu")  # type: ignore[arg-type]
        return cache[key, kind]

    return get


# -- device / loading ------------------------------------------------------------------------


def test_device_and_dtype_picking() -> None:
    assert pick_device() == torch.device("cpu") == pick_device("auto")
    assert pick_dtype(torch.device("cpu")) == torch.float32
    assert pick_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    assert pick_dtype(torch.device("cuda")) in (torch.bfloat16, torch.float16) or not torch.cuda.is_available()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="Unknown dtype"):
        pick_dtype(torch.device("cpu"), "float7")


def test_loaded_policy_attributes(policies: dict[str, HFPolicy], checkpoints: dict[str, Path]) -> None:
    policy = policies["gpt2"]
    assert isinstance(policy, Policy)
    assert policy.name == str(checkpoints["gpt2"])
    assert policy.device == torch.device("cpu") and policy.dtype == torch.float32
    assert policy.trust_remote_code is False
    assert not policy.model.training
    digest = policy.weights_hash()
    assert digest is not None and re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == weights_hash(checkpoints["gpt2"]) != weights_hash(checkpoints["qwen2"])
    assert weights_hash(None) is None


def test_loader_passes_safetensors_and_trust_remote_code(
    checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}
    real = factory.AutoModelForCausalLM

    class Spy:
        @staticmethod
        def from_pretrained(source: str, **kwargs: object) -> object:
            seen.update(kwargs)
            return real.from_pretrained(source, **kwargs)

    monkeypatch.setattr(factory, "AutoModelForCausalLM", Spy)
    load_policy(str(checkpoints["gpt2"]), device="cpu")
    assert seen["use_safetensors"] is True and seen["trust_remote_code"] is False


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no model at"):
        load_policy(str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match="no model at"):
        load_prm(str(tmp_path / "nope"))
    assert issubclass(ModelLoadError, ValueError)


def test_unreachable_hub_id(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(factory.AutoConfig, "from_pretrained", offline)
    with pytest.raises(ModelLoadError, match=r"does not exist locally.*hub could not be reached"):
        load_policy("some-org/some-model")


def test_bin_only_checkpoint_is_refused(checkpoints: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError, match="Convert it to safetensors"):
        load_policy(str(checkpoints["bin_only"]))


def test_yes_no_tokens_must_differ(checkpoints: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError, match="same token"):
        load_policy(str(checkpoints["gpt2"]), device="cpu", yes_token=" yes", no_token=" yes")


# -- policy ----------------------------------------------------------------------------------


def _check_proposal_shape(proposal: hf.Proposal, max_new_tokens: int, stop: str) -> None:
    assert stop not in proposal.text
    assert 1 <= proposal.token_count <= max_new_tokens
    assert len(proposal.token_logprobs) == proposal.token_count
    assert all(lp <= 1e-6 and math.isfinite(lp) for lp in proposal.token_logprobs)


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_propose_shapes_and_seeds(policies: dict[str, HFPolicy], arch: str) -> None:
    policy = policies[arch]
    args = {"temperature": 1.0, "max_new_tokens": 16, "stop": "\n"}
    first = policy.propose(PROMPTS, 3, seed=7, **args)
    assert [len(row) for row in first] == [3, 3, 3]
    for row in first:
        for proposal in row:
            _check_proposal_shape(proposal, 16, "\n")
    # the repeat runs from the prefix KV cache: same tokens, log-probabilities equal up to float noise
    assert_same_proposals(policy.propose(PROMPTS, 3, seed=7, **args), first)
    assert policy.propose([], 3, seed=7, **args) == [] and policy.judge([]) == []
    assert policy.propose(PROMPTS, 3, seed=8, **args) != first
    old = policy.max_batch
    policy.max_batch = 2  # forces one prompt per generate call
    try:
        assert [len(row) for row in policy.propose(PROMPTS, 2, seed=1, **args)] == [2, 2, 2]
    finally:
        policy.max_batch = old


def assert_same_proposals(got: list[list[Proposal]], want: list[list[Proposal]], tol: float = 1e-4) -> None:
    """Same texts, token counts and ends; log-probabilities equal up to float noise."""
    assert [[(p.text, p.token_count, p.ended) for p in row] for row in got] == [
        [(p.text, p.token_count, p.ended) for p in row] for row in want
    ]
    for got_row, want_row in zip(got, want, strict=True):
        for a, b in zip(got_row, want_row, strict=True):
            assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=tol)


def test_propose_stops_at_the_delimiter(policies: dict[str, HFPolicy]) -> None:
    policy = policies["gpt2"]  # trained: writes `a + b = c\n` lines
    rows = policy.propose(PROMPTS, 4, temperature=1.0, max_new_tokens=24, stop="\n", seed=0)
    stopped = [p for row in rows for p in row if not p.ended and p.token_count < 24]
    assert len(stopped) >= 6, "the trained tiny model should end most steps with a newline"
    for row in rows:
        for proposal in row:
            _check_proposal_shape(proposal, 24, "\n")


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_greedy_is_deterministic_and_matches_complete(policies: dict[str, HFPolicy], arch: str) -> None:
    policy = policies[arch]
    rows = policy.propose(PROMPTS, 3, temperature=0.0, max_new_tokens=24, stop="\n", seed=0)
    assert all(len(set(row)) == 1 and len(row) == 3 for row in rows)
    assert policy.propose(PROMPTS, 3, temperature=0.0, max_new_tokens=24, stop="\n", seed=99) == rows
    full = policy.complete(PROMPTS, temperature=0.0, max_new_tokens=40, seed=0)
    for row, whole in zip(rows, full, strict=True):
        step = row[0]
        assert len(whole.token_logprobs) == whole.token_count
        assert whole.token_count >= step.token_count
        assert whole.token_logprobs[: step.token_count] == pytest.approx(step.token_logprobs, abs=1e-5)
        if not step.ended and step.token_count < 24:  # stopped at the delimiter
            assert whole.text.startswith(step.text + "\n")
            assert len(whole.text) > len(step.text)


def test_greedy_logprob_is_log_softmax_of_raw_logits(policies: dict[str, HFPolicy]) -> None:
    policy = policies["gpt2"]
    step = policy.propose([PROMPT], 1, temperature=0.0, max_new_tokens=8, stop="\n", seed=0)[0][0]
    ids = policy.tokenizer(PROMPT, return_tensors="pt")
    with torch.no_grad():
        logits = policy.model(**ids).logits[0, -1]
    assert step.token_logprobs[0] == pytest.approx(float(torch.log_softmax(logits, -1).max()), abs=1e-5)


def test_cut_handles_eos(policies: dict[str, HFPolicy]) -> None:
    policy = policies["gpt2"]
    ids = policy.tokenizer.encode("12 + 3", add_special_tokens=False)
    eos = policy.tokenizer.eos_token_id
    assert policy._cut([*ids, eos, eos], "\n") == (len(ids) + 1, "12 + 3", True)
    newline = policy.tokenizer.encode("\n", add_special_tokens=False)
    assert policy._cut([*ids, *newline, *ids], "\n") == (len(ids) + len(newline), "12 + 3", False)
    assert policy._cut(ids, "\n") == (len(ids), "12 + 3", False)


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_cut_by_stop_ids_agrees_with_cut_generation(policies: dict[str, HFPolicy], arch: str) -> None:
    """`_cut` finds the stop by token id for a one-character stop; it must give cut_generation's answer."""
    policy = policies[arch]
    rng = random.Random(0)
    special = sorted(policy.eos_ids) + policy._stop_token_ids("\n").tolist()
    vocab = len(policy.tokenizer)
    for _ in range(400):
        row = [rng.choice(special) if rng.random() < 0.1 else rng.randrange(vocab) for _ in range(rng.randint(0, 16))]
        for stop in ("\n", "=", " ", None):
            assert policy._cut(row, stop) == cut_generation(policy.tokenizer, row, policy.eos_ids, stop), (row, stop)


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_judge_matches_a_plain_forward(policies: dict[str, HFPolicy], arch: str) -> None:
    policy = policies[arch]
    questions = [f"{p}Check: 17 + 25 = 42\nIs this step correct?" for p in PROMPTS]  # different lengths
    judgements = policy.judge(questions)
    assert len(judgements) == len(questions)
    for question, judgement in zip(questions, judgements, strict=True):
        ids = policy.tokenizer(question, return_tensors="pt")
        with torch.no_grad():
            logits = policy.model(**ids).logits[0, -1]
        want = torch.softmax(logits[[policy.yes_id, policy.no_id]], -1)[0]
        assert 0.0 <= judgement.p_yes <= 1.0
        assert judgement.p_yes == pytest.approx(float(want), abs=1e-5)
        assert "\n" not in judgement.words and 1 <= judgement.token_count <= 8


def test_calls_from_several_threads(policies: dict[str, HFPolicy]) -> None:
    policy = policies["gpt2"]
    question = [PROMPT + "Check: 17 + 25 = 42\nIs this step correct?"]
    want = policy.judge(question)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(policy.judge(question))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == [want] * 3


# -- PRM -------------------------------------------------------------------------------------


def test_prm_text_layouts() -> None:
    text, ends = prm_text(PRMLayout(), "P?", ["a", "b"], "ки", "\n")
    assert text == "Problem: P?\nSolution:\n" + "a ки\nb ки\n"
    assert [text[e - 2 : e] for e in ends] == ["ки", "ки"]
    text, ends = prm_text(MATH_SHEPHERD_LAYOUT, "What is 1+1?", ["Step 1: 1+1=2", "The answer is 2"], "ки", "\n")
    assert text == "What is 1+1? Step 1: 1+1=2 ки\nThe answer is 2 ки\n"
    assert ends == [text.index("ки") + 2, text.rindex("ки") + 2]
    with pytest.raises(ValueError, match="exactly once"):
        PRMLayout(step="{step}")


@pytest.mark.parametrize(("key", "kind"), PRM_CASES)
def test_prm_one_pass_equals_prefix_scoring(prms: Callable[[str, str], HFPRM], key: str, kind: str) -> None:
    prm = prms(key, kind)
    assert isinstance(prm, RewardModel)
    batch = prm.score(PROBLEM, [*PATHS, []])
    assert batch[-1].scores == ()
    for path, result in zip(PATHS, batch, strict=False):
        assert len(result.scores) == len(path)
        assert all(0.0 <= s <= 1.0 for s in result.scores)
        assert result.tokens_read == len(prm.encode(PROBLEM, path)[0]) > 0
        single = prm.score(PROBLEM, [path])[0]
        assert single.scores == pytest.approx(result.scores, abs=1e-5)  # padding changes nothing
        prefixes = [prm.score(PROBLEM, [path[: i + 1]])[0].scores[-1] for i in range(len(path))]
        assert prefixes == pytest.approx(result.scores, abs=1e-5)


def _plain_scores(prm: HFPRM, path: list[str], read_id: int) -> list[float]:
    """Scores from a full, unoptimised forward, reading where `read_id` tokens sit."""
    text, _ = prm_text(prm.layout, PROBLEM, path, prm.mark, prm.sep)
    ids = prm.tokenizer(text, return_tensors="pt")["input_ids"]
    positions = (ids[0] == read_id).nonzero().flatten()[-len(path) :]
    with torch.no_grad():
        logits = prm.model(input_ids=ids).logits[0, positions].float()
    if prm.kind == "tag":
        return torch.softmax(logits[:, [prm.good_id, prm.bad_id]], -1)[:, 0].tolist()
    if prm.num_labels == 1:
        return torch.sigmoid(logits[:, 0]).tolist()
    return torch.softmax(logits, -1)[:, prm.head_label_index].tolist()


@pytest.mark.parametrize(("key", "kind"), PRM_CASES)
def test_prm_matches_a_plain_forward(prms: Callable[[str, str], HFPRM], key: str, kind: str) -> None:
    prm = prms(key, kind)
    read = " ки" if kind == "tag" else "\n"
    read_ids = prm.tokenizer.encode(read, add_special_tokens=False)
    assert len(read_ids) == 1, "the tiny tokenizers keep ' ки' and '\\n' as single tokens"
    for path in PATHS[:2]:
        assert prm.score(PROBLEM, [path])[0].scores == pytest.approx(_plain_scores(prm, path, read_ids[0]), abs=1e-5)


def test_head_prm_with_a_special_separator(checkpoints: dict[str, Path]) -> None:
    prm = load_prm(str(checkpoints["qwen2_head"]), kind="head", step_separator=SEP, device="cpu")
    assert prm.layout.step == "{step}{mark}"
    sep_id = prm.tokenizer.convert_tokens_to_ids(SEP)
    for path in PATHS[:2]:
        text, _ = prm_text(prm.layout, PROBLEM, path, SEP)
        assert text.count(SEP) == len(path)
        result = prm.score(PROBLEM, [path])[0]
        assert result.scores == pytest.approx(_plain_scores(prm, path, sep_id), abs=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_smoke(checkpoints: dict[str, Path]) -> None:
    """Default device/dtype on a GPU (bf16): everything runs and stays in range."""
    policy = load_policy(str(checkpoints["gpt2"]))
    assert policy.device.type == "cuda" and policy.dtype in (torch.bfloat16, torch.float16)
    rows = policy.propose(PROMPTS, 2, temperature=1.0, max_new_tokens=16, stop="\n", seed=0)
    assert rows == policy.propose(PROMPTS, 2, temperature=1.0, max_new_tokens=16, stop="\n", seed=0)
    assert all(0.0 <= j.p_yes <= 1.0 for j in policy.judge(PROMPTS))
    for key, kind in PRM_CASES:
        for result in load_prm(str(checkpoints[key]), kind=kind).score(PROBLEM, PATHS):  # type: ignore[arg-type]
            assert all(0.0 <= s <= 1.0 for s in result.scores)
