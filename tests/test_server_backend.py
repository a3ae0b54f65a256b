"""The inference-server backend's request/response mapping and failure messages, against a small local HTTP server.

These are unit tests of our client beside the real vLLM tests (tests/test_vllm_server.py), never
instead of them: the local server here answers like vLLM's OpenAI-compatible API (same fields),
records what it was sent, and can misbehave on purpose (503s, context errors, unknown models).
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from models.bundle import NANO_DIR
from models.factory import load_policy, load_prm
from models.loading import ModelLoadError, load_tokenizer
from models.prompting import prompt_token_ids
from models.server_client import ServerClient, ServerError, normalize_url
from models.server_policy import ServerPolicy, row_seed
from models.server_prm import ServerPRM, pooled_rows
from models.specs import PolicySpec, RewardModelSpec
from search import Models, run_search
from search.models import StepScores

POLICY = str(NANO_DIR / "policy")
PROMPT = "Problem: Start with 3. Add 4.\nSolution:\n"


class FakeVLLM:
    """A local HTTP server that answers /v1/models, /v1/completions and /pooling like vLLM."""

    def __init__(self, tokenizer: Any, served: str = POLICY, max_model_len: int = 384):
        self.tokenizer = tokenizer
        self.served = served
        self.max_model_len = max_model_len
        self.requests: list[dict[str, Any]] = []
        self.failures: list[tuple[int, str]] = []  # answered first, one per request
        self.raw_logprobs = False
        self.reply_text = "3 + 4 = 7\n"
        self.delay = 0.0  # seconds each POST waits before answering (a slow server)
        self.pooling: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # /pooling answers (None: 404)
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- answers ---------------------------------------------------------------------------

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.tokenizer(self.reply_text, add_special_tokens=False)["input_ids"]
        choices = []
        for p, prompt in enumerate(body["prompt"]):
            for j in range(body.get("n", 1)):
                tokens = reply[: body.get("max_tokens", 16)]
                temperature = body.get("temperature") or 1.0  # greedy: the model's own distribution
                lp = -0.25 if self.raw_logprobs else -0.25 / temperature
                choice: dict[str, Any] = {
                    "index": p * body.get("n", 1) + j,
                    "text": "garbled by the server's own detokenizer",
                    "token_ids": tokens,
                    "finish_reason": "stop",
                    "stop_reason": tokens[-1],
                    "logprobs": {
                        "tokens": [f"token_id:{t}" for t in tokens],
                        "token_logprobs": [lp - 0.01 * i for i in range(len(tokens))],
                        "top_logprobs": [{f"token_id:{t}": lp * 4 for t in body.get("logprob_token_ids") or []}]
                        + [{}] * (len(tokens) - 1),
                    },
                }
                if body.get("prompt_logprobs") is not None:
                    choice["prompt_logprobs"] = [None] + [
                        {str(t): {"logprob": -0.5, "rank": 1}} for t in prompt[1:]
                    ]
                choices.append(choice)
        return {"choices": choices, "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                                              "prompt_tokens_details": {"cached_tokens": 4}}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._send(200, {"data": [{"id": fake.served, "max_model_len": fake.max_model_len}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, **body})
                time.sleep(fake.delay)
                if fake.failures:
                    status, message = fake.failures.pop(0)
                    self._send(status, {"error": {"message": message}})
                elif self.path == "/v1/completions":
                    self._send(200, fake.completion(body))
                elif self.path == "/pooling" and fake.pooling is not None:
                    self._send(200, fake.pooling(body))
                else:
                    self._send(404, {"detail": "Not Found"})

        return Handler


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return load_tokenizer(POLICY, Path(POLICY), POLICY, False)


@pytest.fixture
def fake(tokenizer: Any) -> Iterator[FakeVLLM]:
    server = FakeVLLM(tokenizer)
    yield server
    server.close()


def _policy(fake: FakeVLLM) -> ServerPolicy:
    policy = load_policy(PolicySpec(POLICY, url=fake.url + "/v1/"))
    assert isinstance(policy, ServerPolicy)
    fake.requests.clear()
    return policy


def test_propose_sends_token_ids_explicit_sampling_and_reads_ids(fake: FakeVLLM, tokenizer: Any) -> None:
    policy = _policy(fake)
    rows = policy.propose([PROMPT, PROMPT + "3 + 4 = 7\n"], 2, temperature=0.0, max_new_tokens=12, stop="\n", seed=5)
    assert len(fake.requests) == 1, "a greedy frontier is one round trip"
    sent = fake.requests[0]
    assert sent["prompt"][0] == prompt_token_ids(tokenizer, PROMPT)
    assert sent["model"] == POLICY and sent["n"] == 1 and sent["temperature"] == 0.0 and sent["max_tokens"] == 12
    assert sent["top_p"] == 1.0 and sent["top_k"] == -1 and sent["repetition_penalty"] == 1.0
    assert sent["return_token_ids"] is True and "stop" not in sent
    newline_ids = set(sent["stop_token_ids"])
    assert tokenizer("\n", add_special_tokens=False)["input_ids"][0] in newline_ids
    assert [len(r) for r in rows] == [2, 2]
    proposal = rows[0][0]
    assert proposal.text == "3 + 4 = 7", "text is decoded on the client from token_ids, cut before the stop"
    assert proposal.token_count == len(tokenizer("3 + 4 = 7\n", add_special_tokens=False)["input_ids"])
    assert len(proposal.token_logprobs) == proposal.token_count and not proposal.ended


def test_sampling_sends_one_request_per_distinct_prompt_with_its_own_seed(fake: FakeVLLM) -> None:
    policy = _policy(fake)
    prompts = [PROMPT, PROMPT + "3 + 4 = 7\n", PROMPT]  # the repeated prompt shares one request with n=2k
    rows = policy.propose(prompts, 3, temperature=0.7, max_new_tokens=8, stop="\n", seed=11)
    assert [len(r) for r in rows] == [3, 3, 3]
    assert sorted(r["n"] for r in fake.requests) == [3, 6]
    seeds = {len(r["prompt"][0]): r["seed"] for r in fake.requests}
    assert sorted(seeds.values()) == sorted([row_seed(11, 0), row_seed(11, 1)])
    assert all(r["temperature"] == 0.7 for r in fake.requests)
    # log-probabilities are the server's processed (after temperature) numbers, passed through
    assert rows[0][0].token_logprobs[0] == pytest.approx(-0.25 / 0.7)
    assert policy.usage.requests == 2 and policy.usage.cached_prompt_tokens == 8


def test_judge_reads_yes_no_logprobs(fake: FakeVLLM) -> None:
    policy = _policy(fake)
    fake.reply_text = " yes\n"
    (verdict,) = policy.judge([PROMPT + "Check: 3 + 4 = 7\nIs this step correct?"])
    sent = fake.requests[0]
    assert sent["logprob_token_ids"] == [policy.yes_id, policy.no_id] and sent["temperature"] == 0.0
    assert verdict.p_yes == pytest.approx(0.5) and verdict.words == "yes"


def test_complete_is_capped_to_the_served_context(fake: FakeVLLM, tokenizer: Any) -> None:
    policy = _policy(fake)
    policy.complete([PROMPT], temperature=0.0, max_new_tokens=1000, seed=1)
    assert fake.requests[0]["max_tokens"] == 384 - len(prompt_token_ids(tokenizer, PROMPT))
    with pytest.raises(ServerError, match="larger --max-model-len"):
        policy.propose([PROMPT * 40], 1, temperature=0.0, max_new_tokens=4, stop="\n", seed=1)


def test_retries_503_then_succeeds_and_fails_cleanly_after_the_last_try(fake: FakeVLLM) -> None:
    policy = _policy(fake)
    policy.client.backoff = 0.01
    fake.failures = [(503, "busy"), (429, "slow down")]
    assert policy.propose([PROMPT], 1, temperature=0.0, max_new_tokens=4, stop="\n", seed=1)
    assert policy.usage.retries == 2
    fake.failures = [(503, "busy")] * (policy.client.retries + 1)
    with pytest.raises(ServerError, match=r"failed after 5 tries.*503"):
        policy.propose([PROMPT], 1, temperature=0.0, max_new_tokens=4, stop="\n", seed=1)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("This model's maximum context length is 384 tokens. However, you requested 500 tokens", "--max-model-len"),
        ("Requested sample logprobs of 25, which is greater than max allowed: 20", "--max-logprobs 20"),
        ("Requested prompt logprobs of 30, which is greater than max allowed: 20", "--max-logprobs 20"),
    ],
)
def test_server_refusals_become_sentences_that_name_the_flag(fake: FakeVLLM, message: str, expected: str) -> None:
    policy = _policy(fake)
    fake.failures = [(400, message)]
    with pytest.raises(ServerError, match=expected):
        policy.propose([PROMPT], 1, temperature=0.0, max_new_tokens=4, stop="\n", seed=1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_names_the_url_and_the_start_command() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ModelLoadError, match=r"Cannot reach the inference server.*vllm.entrypoints.openai.api_server"):
        load_policy(PolicySpec(POLICY, url=url))
    client = ServerClient(url, "m", retries=1, backoff=0.01)
    with pytest.raises(ServerError, match=url):
        client.served_models()


@pytest.mark.parametrize("loader", [lambda url: load_policy(PolicySpec("other-model", url=url, tokenizer=POLICY)),
                                    lambda url: load_prm(RewardModelSpec("other-model", url=url, tokenizer=POLICY))])
def test_a_model_the_server_does_not_serve_lists_what_it_does(
    fake: FakeVLLM, loader: Callable[[str], object]
) -> None:
    with pytest.raises(ServerError, match=rf"does not serve 'other-model'; it serves '{POLICY}'"):
        loader(fake.url)


def test_raw_logprobs_server_is_refused_with_the_flag(fake: FakeVLLM) -> None:
    fake.raw_logprobs = True
    with pytest.raises(ServerError, match="--logprobs-mode processed_logprobs"):
        load_policy(PolicySpec(POLICY, url=fake.url))


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://x", ""])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ServerError, match="not an http"):
        normalize_url(url)


def test_cancel_stops_before_the_next_request(fake: FakeVLLM) -> None:
    policy = _policy(fake)
    policy.client.cancel = lambda: True
    with pytest.raises(ServerError, match="stopped"):
        policy.propose([PROMPT], 1, temperature=0.0, max_new_tokens=4, stop="\n", seed=1)
    assert fake.requests == []


@pytest.mark.parametrize("strategy", ["beam", "mcts"])
def test_stop_during_a_slow_request_cancels_the_search_within_a_second(fake: FakeVLLM, strategy: str) -> None:
    """The stop event reaches the HTTP call in flight: no waiting for the server's answer."""
    policy = _policy(fake)
    prm = load_prm(RewardModelSpec(POLICY, kind="likelihood", url=fake.url))
    fake.delay = 30.0
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    start = time.monotonic()
    result = run_search("Start with 3. Add 4. What is the result?", task="arith", strategy=strategy,
                        models=Models(policy=policy, prm=prm), config={"max_depth": 2}, stop=stop)
    assert time.monotonic() - start < 1.5
    assert result.status == "cancelled", result.error
    assert len(fake.requests) == 1  # the slow one, abandoned; nothing sent after the stop


def test_likelihood_prm_reads_prompt_logprobs_in_one_request(fake: FakeVLLM) -> None:
    prm = load_prm(RewardModelSpec(POLICY, kind="likelihood", url=fake.url))
    assert isinstance(prm, ServerPRM)
    fake.requests.clear()
    scores = prm.score("Start with 3. Add 4.", [["3 + 4 = 7", "Answer: 7"], ["3 + 4 = 8"], []])
    assert len(fake.requests) == 1 and fake.requests[0]["prompt_logprobs"] == 0
    assert [len(s.scores) for s in scores] == [2, 1, 0]
    # every token -0.5; a step's end token is log(p(newline) + p(eos)) = log(2 e^-0.5) > -0.5: the minimum is -0.5
    assert scores[0].scores[0] == pytest.approx(math.exp(-0.5), abs=1e-6)


@pytest.fixture(scope="module")
def lookalikes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.tiny_reward_models import build_lookalikes

    return build_lookalikes(tmp_path_factory.mktemp("server_reward_models"))


def _served_prm(
    lookalikes: dict[str, Path], tokenizer: Any, key: str, preset: str
) -> tuple[FakeVLLM, Callable[[], Any]]:
    """A fake server serving look-alike `key`, and a loader of it as a served reward model under `preset`."""
    from models.bundle import load_reward_model, prm_spec

    server = FakeVLLM(tokenizer, served=str(lookalikes[key]))
    return server, lambda: load_reward_model(str(lookalikes[key]), prm_spec(preset), device=None,
                                             trust_remote_code=False, url=server.url)


def test_pooling_404_says_start_with_runner_pooling(lookalikes: dict[str, Path], tokenizer: Any) -> None:
    server, load = _served_prm(lookalikes, tokenizer, "qwen-prm", "qwen-prm")
    try:
        prm = load()
        assert isinstance(prm, ServerPRM)
        with pytest.raises(ServerError, match="--runner pooling"):
            prm.score("Start with 3.", [["3 + 4 = 7"]])
    finally:
        server.close()


@pytest.mark.parametrize(("key", "preset", "fits"), [("qwen-prm", "math-shepherd", "qwen-prm"),
                                                     ("qwen-prm", "nano", "qwen-prm"),
                                                     ("math-shepherd", "qwen-prm", "math-shepherd"),
                                                     ("math-shepherd", "head", "math-shepherd")])
def test_a_served_reward_model_with_a_wrong_preset_is_refused_before_any_request(
    lookalikes: dict[str, Path], tokenizer: Any, key: str, preset: str, fits: str
) -> None:
    """The in-process fit check (models/prm_fit.py) runs on the client for a served PRM too."""
    server, load = _served_prm(lookalikes, tokenizer, key, preset)
    try:
        with pytest.raises(ModelLoadError, match=rf"does not fit the '{preset}' preset.*Use --prm-preset {fits}"):
            load()
        assert server.requests == []  # nothing scored: refused at load
    finally:
        server.close()
    server, load = _served_prm(lookalikes, tokenizer, key, fits)
    try:
        assert isinstance(load(), ServerPRM)  # the preset that fits loads
    finally:
        server.close()


def test_a_value_head_prm_is_refused_with_the_reason_and_the_alternative(
    lookalikes: dict[str, Path], tokenizer: Any
) -> None:
    """vLLM has no class for Skywork's Qwen2ForPrmModel: refused at load, before any request, saying what to do."""
    from models.bundle import load_reward_model, prm_spec

    refusal = r"value-head PRM.*vLLM has no model class.*v_head\.summary.*Load it in process instead \(drop --prm-url"
    server, load = _served_prm(lookalikes, tokenizer, "skywork", "skywork")
    try:
        with pytest.raises(ModelLoadError, match=refusal):
            load()
        assert server.requests == []
    finally:
        server.close()
    with pytest.raises(ModelLoadError, match=refusal):  # no server needed to learn it: nothing is sent
        load_reward_model(str(lookalikes["skywork"]), prm_spec("skywork"), device=None, trust_remote_code=False,
                          url=f"http://127.0.0.1:{_free_port()}")


def _pooling_answer(body: dict[str, Any]) -> dict[str, Any]:
    """vLLM's /pooling answer shapes: `classify` one row of 1 label logit per input (0.1 * its length);
    `token_classify` one row per token (0.01 * position)."""
    if body["task"] == "classify":
        rows: list[Any] = [[0.1 * len(ids)] for ids in body["input"]]
    else:
        rows = [[[0.01 * q] for q in range(len(ids))] for ids in body["input"]]
    data = [{"index": i, "object": "pooling", "data": row} for i, row in enumerate(rows)]
    return {"data": data[::-1], "usage": {"prompt_tokens": sum(len(ids) for ids in body["input"])}}


@pytest.mark.parametrize(("key", "task"), [("orm-seq", "classify"), ("qwen-rm", "token_classify")])
def test_outcome_models_read_one_pooling_request_per_batch(
    lookalikes: dict[str, Path], tokenizer: Any, key: str, task: str
) -> None:
    """The outcome reading maps to /pooling: the conversation's ids (as in process), raw logits, the last token."""
    from models.reward_readers import outcome_ids

    server, load = _served_prm(lookalikes, tokenizer, key, key)
    server.pooling = _pooling_answer
    try:
        orm = load()
        assert isinstance(orm, ServerPRM)
        paths = [["3 + 4 = 7", "Answer: 7"], ["3 + 4 = 8"], []]
        scores = orm.score("Start with 3. Add 4.", paths)
        (sent,) = server.requests[-1:]
        assert (sent["path"], sent["task"], sent["use_activation"]) == ("/pooling", task, False)
        want_ids = [outcome_ids(orm.tokenizer, orm.sep, orm.system_prompt, "Start with 3. Add 4.", p) for p in paths]
        assert sent["input"] == want_ids
        assert [s.tokens_read for s in scores] == [len(ids) for ids in want_ids]
        scale = 0.1 if task == "classify" else 0.01
        want = [1 / (1 + math.exp(-scale * (len(ids) - (task != "classify")))) for ids in want_ids]
        assert [s.scores for s in scores] == [pytest.approx((w,), abs=1e-6) for w in want]
        assert orm.usage.requests == 1
    finally:
        server.close()


@pytest.mark.parametrize("key", ["qwen-prm", "qwen-rm", "orm-seq"])
def test_a_path_longer_than_the_pooling_servers_context_is_refused_before_sending(
    lookalikes: dict[str, Path], tokenizer: Any, key: str
) -> None:
    server, load = _served_prm(lookalikes, tokenizer, key, key)
    server.pooling = _pooling_answer
    try:
        model = load()
        server.requests.clear()
        with pytest.raises(ServerError, match=r"does not fit the 384-token context.*larger --max-model-len"):
            model.score("Start with 3. " * 200, [["3 + 4 = 7"]])
        assert server.requests == []
    finally:
        server.close()


def test_an_orm_url_without_an_orm_is_refused_before_anything_loads() -> None:
    from models.bundle import load_models

    with pytest.raises(ModelLoadError, match=r"--orm-url http://127\.0\.0\.1:9 names the outcome.*no --orm"):
        load_models(orm_url="http://127.0.0.1:9")


def test_an_outcome_model_server_without_per_token_rows_is_refused(lookalikes: dict[str, Path], tokenizer: Any) -> None:
    server, load = _served_prm(lookalikes, tokenizer, "qwen-rm", "qwen-rm")
    server.pooling = lambda body: {"data": [{"index": 0, "data": [[0.5], [0.2]]}], "usage": {}}
    try:
        with pytest.raises(ServerError, match=r"tok_pooling_type.*ALL"):
            load().score("Start with 3.", [["3 + 4 = 7"]])
    finally:
        server.close()


def test_rlhflow_chat_tag_reads_good_and_bad_before_each_label(lookalikes: dict[str, Path], tokenizer: Any) -> None:
    """One one-token request per step, cut just before the assistant's label, as the in-process ChatTagPRM reads."""
    from models.reward_readers import encode_chat_tag

    server, load = _served_prm(lookalikes, tokenizer, "rlhflow", "rlhflow")
    try:
        prm = load()
        assert isinstance(prm, ServerPRM)
        server.requests.clear()
        steps = ["3 + 4 = 7", "Answer: 7"]
        scores = prm.score("Start with 3. Add 4.", [steps, []])
        ids, positions = encode_chat_tag(prm.tokenizer, prm.good_id, prm.name, "Start with 3. Add 4.", steps)
        (sent,) = server.requests
        assert sent["prompt"] == [ids[: q + 1] for q in positions]
        assert all(ids[q + 1] == prm.good_id for q in positions)
        assert sent["logprob_token_ids"] == [prm.good_id, prm.bad_id] and sent["max_tokens"] == 1
        assert [len(s.scores) for s in scores] == [2, 0]
        assert scores[0].scores == pytest.approx((0.5, 0.5))  # the fake gives good and bad the same logprob
    finally:
        server.close()


def test_pooled_rows_maps_all_token_and_step_tag_pooling() -> None:
    ids = [5, 9, 7, 9, 8, 9]  # 9 is the separator; the first 9 belongs to the prompt's prefix
    assert pooled_rows(ids, [3, 5], returned=6) == [3, 5]  # ALL pooling: every token's row
    assert pooled_rows(ids, [3, 5], returned=3) == [1, 2]  # STEP pooling: only the 9s, in order
    for returned in (0, 2, 4):
        with pytest.raises(ServerError, match="tok_pooling_type"):
            pooled_rows(ids, [3, 5], returned=returned)


# -- chat templates: the server backend sends the same ids as the transformers backend (issue 15) --


@pytest.fixture(scope="module")
def chat_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_chat import build_chat_checkpoint

    return build_chat_checkpoint(tmp_path_factory.mktemp("tiny_chat_server"), steps=1)  # only its tokenizer matters


class FlatPRM:
    name = "flat-prm"

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        return [StepScores(tuple(0.5 for _ in steps), 1) for steps in paths]


def _hf_prompt_ids(policy: Any, call: Callable[[], object]) -> list[list[int]]:
    """The prompt ids the in-process transformers backend feeds its model during `call()`."""
    seen: list[list[int]] = []
    generate = policy.model.generate

    def recording(**kwargs: Any) -> Any:
        for row, mask in zip(kwargs["input_ids"].tolist(), kwargs["attention_mask"].tolist(), strict=True):
            seen.append([t for t, m in zip(row, mask, strict=True) if m])
        return generate(**kwargs)

    policy.model.generate = recording
    try:
        call()
    finally:
        policy.model.generate = generate
    return seen


def test_chat_checkpoint_sends_the_templates_ids_like_the_transformers_backend(chat_checkpoint: Path) -> None:
    """Propose and judge on a chat checkpoint: the ids in /v1/completions are apply_chat_template's
    ids of the model card's conversation, the same the transformers backend feeds its model."""
    from search import Models, run_search
    from search.models import render_judge, render_prompt
    from search.tasks import get_task
    from tests.tiny_chat import SOLVED, SYSTEM

    freeform, name = get_task("freeform"), str(chat_checkpoint)
    hf = load_policy(PolicySpec(name, device="cpu", kv_reuse=False))
    tok = hf.tokenizer  # type: ignore[attr-defined]
    server = FakeVLLM(tok, served=name)
    try:
        policy = load_policy(PolicySpec(name, url=server.url))
        assert isinstance(policy, ServerPolicy) and policy.chat is not None  # type: ignore[attr-defined]
        problem, steps = SOLVED[0]
        card = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": freeform.chat_user_turn(problem, instruction=False)}]
        head = tok.apply_chat_template(card, add_generation_prompt=True, tokenize=False)
        expected_head = prompt_token_ids(tok, head)
        assert head.startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{problem}")
        for done in (0, 2):  # the bare conversation, then steps grown inside the assistant turn
            server.requests.clear()
            text = render_prompt(policy, freeform, problem, steps[:done])
            policy.propose([text], 1, temperature=0.0, max_new_tokens=4, stop="\n\n", seed=1)
            hf_text = render_prompt(hf, freeform, problem, steps[:done])
            hf_ids = _hf_prompt_ids(hf, lambda t=hf_text: hf.propose([t], 1, temperature=0.0, max_new_tokens=4,
                                                                      stop="\n\n", seed=1))
            sent = server.requests[0]["prompt"]
            assert sent == hf_ids == [prompt_token_ids(tok, head + "".join(s + "\n\n" for s in steps[:done]))]
            assert sent[0][: len(expected_head)] == expected_head

        server.requests.clear()
        conversation = [*card, {"role": "assistant", "content": "\n\n".join(steps[:2])},
                        {"role": "user", "content": freeform.chat_judge_turn(steps[1])}]
        asked = tok.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        question = render_judge(policy, freeform, problem, steps[:1], steps[1])
        assert question == asked == render_judge(hf, freeform, problem, steps[:1], steps[1])
        policy.judge([question])
        hf_ids = _hf_prompt_ids(hf, lambda: hf.judge([question]))
        assert server.requests[0]["prompt"] == hf_ids == [prompt_token_ids(tok, asked)]
        pair = [hf.yes_id, hf.no_id]  # type: ignore[attr-defined]
        assert server.requests[0]["logprob_token_ids"] == pair == [policy.yes_id, policy.no_id]

        server.requests.clear()  # and the engine itself sends the template's ids to the server
        result = run_search(problem, task="freeform", strategy="greedy", models=Models(policy=policy, prm=FlatPRM()),
                            config={"max_depth": 1})
        assert result.tree.meta["prompt"] == head
        assert server.requests[0]["prompt"] == [expected_head]
    finally:
        server.close()
