"""Searches through a REAL vLLM server: greedy parity with the transformers backend, every strategy, every PRM kind.

The server is started by `.ci/run` (vLLM for CPU in its own virtual environment, serving
models/nano/policy with `--logprobs-mode processed_logprobs`) and found through
$THOUGHTSCOPE_TEST_VLLM_URL; without one these tests skip with the reason.  By hand:

    VLLM_CPU_KVCACHE_SPACE=1 python -m vllm.entrypoints.openai.api_server --model models/nano/policy \\
        --host 127.0.0.1 --port 8000 --dtype float32 --max-model-len 384 --enforce-eager \\
        --generation-config vllm --max-logprobs 20 --logprobs-mode processed_logprobs
    THOUGHTSCOPE_TEST_VLLM_URL=http://127.0.0.1:8000 python -m pytest -m server
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from models.bundle import NANO_DIR
from models.factory import load_policy, load_prm
from models.hf_policy import HFPolicy
from models.loading import load_tokenizer
from models.prompting import prompt_token_ids
from models.server_client import ServerClient, ServerError
from models.server_policy import ServerPolicy
from models.server_prm import ServerPRM
from models.specs import PolicySpec, RewardModelSpec
from search import Models, run_search
from search.config import ConfigError
from search.events import EventKind
from search.registry import get_strategy
from tests.engine_cases import CASES

URL = os.environ.get("THOUGHTSCOPE_TEST_VLLM_URL", "")
POLICY_DIR = str(NANO_DIR / "policy")
PROBLEMS = ["Start with 3. Add 4.", "Start with 17. Add 25. Subtract 8.", "Start with 12. Multiply by 3. Add 5."]
PROMPTS = [f"Problem: {p}\nSolution:\n" for p in PROBLEMS] + [f"Problem: {PROBLEMS[1]}\nSolution:\n17 + 25 = 42\n"]

pytestmark = pytest.mark.server


def _served_name() -> str:
    if not URL:
        pytest.skip("no vLLM server: set THOUGHTSCOPE_TEST_VLLM_URL (.ci/run starts one when vllm-cpu installs)")
    try:
        httpx.get(URL.rstrip("/") + "/health", timeout=5).raise_for_status()
        cards = httpx.get(URL.rstrip("/") + "/v1/models", timeout=5).json()["data"]
    except (httpx.HTTPError, KeyError, ValueError) as err:
        pytest.skip(f"the vLLM server at {URL} is not up: {err}")
    return str(cards[0]["id"])


@pytest.fixture(scope="module")
def served() -> str:
    return _served_name()


@pytest.fixture(scope="module")
def server_policy(served: str) -> ServerPolicy:
    policy = load_policy(PolicySpec(served, url=URL, tokenizer=POLICY_DIR))
    assert isinstance(policy, ServerPolicy) and policy.logprobs_mode == "processed"
    return policy


@pytest.fixture(scope="module")
def hf_policy() -> HFPolicy:
    torch.set_num_threads(1)
    return load_policy(PolicySpec(POLICY_DIR, device="cpu"))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def hf_prm() -> Any:
    return load_prm(RewardModelSpec(str(NANO_DIR / "prm"), kind="likelihood", device="cpu"))


def test_greedy_proposals_equal_the_transformers_backend(server_policy: ServerPolicy, hf_policy: HFPolicy) -> None:
    args = {"temperature": 0.0, "max_new_tokens": 48, "stop": "\n", "seed": 3}
    got = server_policy.propose(PROMPTS, 2, **args)
    want = hf_policy.propose(PROMPTS, 2, **args)
    for got_row, want_row in zip(got, want, strict=True):
        for g, w in zip(got_row, want_row, strict=True):
            assert (g.text, g.token_count, g.ended) == (w.text, w.token_count, w.ended)
            assert g.token_logprobs == pytest.approx(w.token_logprobs, abs=1e-4)
    done = server_policy.complete(PROMPTS[:2], temperature=0.0, max_new_tokens=120, seed=1)
    ref = hf_policy.complete(PROMPTS[:2], temperature=0.0, max_new_tokens=120, seed=1)
    assert [(c.text, c.token_count, c.ended) for c in done] == [(c.text, c.token_count, c.ended) for c in ref]


def test_sampled_logprobs_are_after_temperature_as_in_the_transformers_backend(
    server_policy: ServerPolicy, hf_policy: HFPolicy
) -> None:
    temperature = 0.6
    rows = server_policy.propose(PROMPTS[:2], 3, temperature=temperature, max_new_tokens=24, stop="\n", seed=9)
    again = server_policy.propose(PROMPTS[:2], 3, temperature=temperature, max_new_tokens=24, stop="\n", seed=9)
    assert [[p.text for p in r] for r in rows] == [[p.text for p in r] for r in again], "seeded sampling repeats"
    tok = hf_policy.tokenizer
    for prompt, row in zip(PROMPTS, rows, strict=False):
        for proposal in row:
            ids = prompt_token_ids(tok, prompt)
            new = tok(proposal.text + "\n", add_special_tokens=False)["input_ids"][: proposal.token_count]
            if proposal.ended or len(new) != proposal.token_count:
                continue  # the re-encoded text is not the sampled ids (EOS or a merge): nothing to compare
            with torch.inference_mode():
                logits = hf_policy.model(torch.tensor([ids + new])).logits[0, len(ids) - 1 : -1].float()
            want = torch.log_softmax(logits / temperature, -1).gather(1, torch.tensor(new)[:, None])[:, 0]
            assert proposal.token_logprobs == pytest.approx(want.tolist(), abs=1e-4)


def test_judge_equals_the_transformers_backend(server_policy: ServerPolicy, hf_policy: HFPolicy) -> None:
    questions = [f"{PROMPTS[1]}Check: 17 + 25 = 42\nIs this step correct?",
                 f"{PROMPTS[1]}Check: 17 + 25 = 41\nIs this step correct?"]
    got, want = server_policy.judge(questions), hf_policy.judge(questions)
    for g, w in zip(got, want, strict=True):
        assert g.p_yes == pytest.approx(w.p_yes, abs=1e-4)
        assert (g.words, g.token_count) == (w.words, w.token_count)


@pytest.mark.parametrize("kind", ["likelihood", "tag"])
def test_reward_model_kinds_score_as_the_transformers_backend(served: str, kind: str) -> None:
    paths = [["3 + 4 = 7", "Answer: 7"], ["3 + 4 = 8", "Answer: 8"], ["17 + 25 = 42"], []]
    remote = load_prm(RewardModelSpec(served, kind=kind, url=URL, tokenizer=POLICY_DIR))  # type: ignore[arg-type]
    local = load_prm(RewardModelSpec(POLICY_DIR, kind=kind, device="cpu"))  # type: ignore[arg-type]
    got, want = remote.score("Start with 3. Add 4.", paths), local.score("Start with 3. Add 4.", paths)
    for g, w in zip(got, want, strict=True):
        assert g.tokens_read == w.tokens_read
        assert g.scores == pytest.approx(w.scores, abs=1e-4)


def _tree(events: list[Any]) -> list[tuple[Any, ...]]:
    return [(e.data["node"], e.data["parent"], e.data["text"], e.data["terminal"], e.data["answer"])
            for e in events if e.kind is EventKind.NODE_ADDED]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_strategy_runs_through_the_server_with_greedy_parity(
    case: str, server_policy: ServerPolicy, hf_policy: HFPolicy, hf_prm: Any
) -> None:
    strategy, config = CASES[case]
    problem = PROBLEMS[1]
    try:  # greedy parity where the strategy allows temperature 0 (chains of identical samples are refused)
        get_strategy(strategy).make_config({**config, "temperature": 0.0})
        greedy: dict[str, Any] | None = {**config, "temperature": 0.0}
    except ConfigError:
        greedy = None
    if greedy is not None:
        runs = {}
        for name, policy in (("server", server_policy), ("hf", hf_policy)):
            result = run_search(problem, task="arith", strategy=strategy, models=Models(policy=policy, prm=hf_prm),
                                config=greedy, seed=7)
            assert result.status == "finished", result.error
            runs[name] = result
        assert _tree(runs["server"].events) == _tree(runs["hf"].events)
        assert runs["server"].answer == runs["hf"].answer
    sampled = run_search(problem, task="arith", strategy=strategy, models=Models(policy=server_policy, prm=hf_prm),
                         config=config, seed=11)
    assert sampled.status == "finished", sampled.error
    assert any(e.kind is EventKind.NODE_ADDED for e in sampled.events)
    budget = [e for e in sampled.events if e.kind is EventKind.SPEND][-1]
    assert budget.data["server"]["policy"]["requests"] >= 1
    assert budget.data["server"]["policy"]["completion_tokens"] >= 1


def test_real_server_refusals_become_sentences(served: str) -> None:
    client = ServerClient(URL, served, retries=0)
    with pytest.raises(ServerError, match="--max-model-len"):
        client.completions({"prompt": [[97] * 400], "max_tokens": 5})
    with pytest.raises(ServerError, match="--max-logprobs 20"):
        client.completions({"prompt": [[97, 98]], "max_tokens": 1, "logprobs": 25})
    with pytest.raises(ServerError, match=r"does not serve 'no-such-model'; it serves"):
        ServerClient(URL, "no-such-model").check_served()


def test_prompt_longer_than_the_served_context_is_refused_before_sending(server_policy: ServerPolicy) -> None:
    before = server_policy.usage.requests
    with pytest.raises(ServerError, match="larger --max-model-len"):
        server_policy.propose([PROMPTS[0] * 30], 1, temperature=0.0, max_new_tokens=8, stop="\n", seed=1)
    assert server_policy.usage.requests == before
    assert math.isfinite(server_policy.usage.prompt_tokens)


@pytest.mark.parametrize("strategy", ["greedy", "sampling", "self_consistency", "best_of_n", "beam", "dvts", "mcts"])
def test_every_strategy_runs_from_the_cli_through_the_server(served: str, strategy: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app
    from tests.test_cli import KNOBS, PROBLEM, SMALL

    events_path = tmp_path / "events.json"
    args = ["run", PROBLEM, "--strategy", strategy, *KNOBS[strategy], *SMALL, "--policy", served, "--no-record",
            "--events-json", str(events_path)]
    result = CliRunner().invoke(app, args, env={"THOUGHTSCOPE_POLICY_URL": URL})
    assert result.exit_code == 0, result.output
    assert "status finished" in result.output
    spends = [e for e in json.loads(events_path.read_text()) if e["kind"] == "spend"]
    assert spends[-1]["data"]["server"]["policy"]["requests"] >= 1


def test_cli_names_what_the_server_serves_for_a_wrong_model(served: str) -> None:
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["run", "Start with 3. Add 4.", "--strategy", "greedy", "--no-record",
                                      "--policy", POLICY_DIR + "/", "--policy-url", URL + "/v1"])
    if served == POLICY_DIR + "/":  # pragma: no cover - the served name is the path without a slash
        pytest.skip("served under the slash-ended name")
    assert result.exit_code == 1
    assert "does not serve" in result.output and served in result.output.replace("\n", "")


def test_app_searches_through_the_inference_server(
    served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("THOUGHTSCOPE_DB", str(tmp_path / "runs.db"))
    at = AppTest.from_file(str(Path(__file__).parent.parent / "app.py"), default_timeout=90)
    at.run()
    next(r for r in at.radio if r.label == "Models").set_value("Inference server").run()
    next(t for t in at.text_input if t.label == "Policy server URL").set_value(URL).run()
    next(t for t in at.text_input if t.label == "Served policy").set_value(served).run()
    next(b for b in at.sidebar.button if "Start search" in b.label).click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    metrics: dict[str, Any] = {}
    for _ in range(120):
        metrics = {m.label: m.value for m in at.metric}
        if metrics.get("status") == "finished":
            break
        time.sleep(0.5)
        at.run()
    assert metrics.get("status") == "finished", metrics
    next(t for t in at.text_input if t.label == "Served policy").set_value("no-such-model").run()
    next(b for b in at.sidebar.button if "Start search" in b.label).click().run()
    assert any("does not serve 'no-such-model'" in e.value for e in at.error), [e.value for e in at.error]


# -- outcome reward models on vLLM's pooling runner (one server per architecture, started together) ----


def _vllm_python(what: str) -> str:
    python = os.environ.get("THOUGHTSCOPE_TEST_VLLM_PYTHON", "")
    if not python or not Path(python).exists():
        pytest.skip(f"no vLLM Python to start a {what} server: set THOUGHTSCOPE_TEST_VLLM_PYTHON (.ci/run does)")
    return python


def _spread_head(checkpoint: Path, name: str, factor: float) -> None:
    """Scale the head weight `name` so the look-alike's scores spread (a wrong reading position shows)."""
    from safetensors.torch import load_file, save_file

    file = checkpoint / "model.safetensors"
    tensors = load_file(str(file))
    tensors[name] = tensors[name] * factor
    save_file(tensors, str(file), metadata={"format": "pt"})


def _orm_scores(result_events: list[dict[str, Any]]) -> dict[int, float]:
    return {e["data"]["node"]: e["data"]["value"] for e in result_events
            if e["kind"] == "node_scored" and e["data"]["source"] == "orm"}


def test_outcome_models_on_the_pooling_server_score_as_the_transformers_backend(tmp_path: Path) -> None:
    """qwen-rm (Qwen2ForRewardModel: token_classify, last token) and orm-seq (*ForSequenceClassification:
    classify) served by vLLM score every path as in process; `run --orm-url` ranks best-of-N with the served one."""
    from typer.testing import CliRunner

    from cli import app
    from models.bundle import load_reward_model, prm_spec
    from tests.test_cli import PROBLEM
    from tests.tiny_reward_models import build_served_lookalike

    python = _vllm_python("outcome-model")
    checkpoints = {key: build_served_lookalike(key, tmp_path) for key in ("qwen-rm", "orm-seq")}
    _spread_head(checkpoints["orm-seq"], "score.weight", 40.0)  # its random head is near 0: sigmoid ~0.5 for all
    started = time.monotonic()
    with served_vllms(python, [(tmp_path / f"{key}.log", key, ["--model", str(path), "--runner", "pooling",
                                                              "--max-model-len", "256"])
                               for key, path in checkpoints.items()]) as urls:
        healthy = time.monotonic() - started
        paths = [["3 + 4 = 7", "Answer: 7"], ["3 + 4 = 8", "8 + 1 = 9", "Answer: 9"], ["17 + 25 = 42"], []]
        for (key, checkpoint), url in zip(checkpoints.items(), urls, strict=True):
            options = {"device": "cpu", "trust_remote_code": False}
            remote = load_reward_model(str(checkpoint), prm_spec(key), url=url, **options)
            local = load_reward_model(str(checkpoint), prm_spec(key), **options)
            assert isinstance(remote, ServerPRM) and not isinstance(local, ServerPRM)
            got, want = remote.score("Start with 3. Add 4.", paths), local.score("Start with 3. Add 4.", paths)
            values = [w.scores[0] for w in want]
            assert max(values) - min(values) > 0.005, f"{key}: scores spread {values}"
            for g, w in zip(got, want, strict=True):
                assert len(g.scores) == 1 and g.tokens_read == w.tokens_read
                assert g.scores == pytest.approx(w.scores, abs=1e-4), key
            assert remote.usage.requests == 1
        args = ["run", PROBLEM, "--strategy", "best_of_n", "-k", "n=3", "-k", "ranker=orm", "-k", "max_depth=4",
                "-k", "max_step_tokens=12", "--seed", "5", "--no-record", "--orm", str(checkpoints["qwen-rm"]),
                "--orm-preset", "qwen-rm"]
        runs = {}
        for where, extra in (("server", ["--orm-url", urls[0]]), ("here", [])):
            events = tmp_path / f"{where}.json"
            result = CliRunner().invoke(app, [*args, *extra, "--events-json", str(events)])
            assert result.exit_code == 0, result.output
            runs[where] = json.loads(events.read_text())
    scored = _orm_scores(runs["here"])
    assert scored, "best-of-N ranked finished chains with the ORM"
    assert _orm_scores(runs["server"]) == pytest.approx(scored, abs=1e-4)
    spends = [e for e in runs["server"] if e["kind"] == "spend"]
    assert spends[-1]["data"]["server"]["orm"]["requests"] >= 1
    print(f"outcome-model servers healthy after {healthy:.0f} s, test {time.monotonic() - started:.0f} s")


# -- head PRM on vLLM's pooling runner ----------------------------------------------------------------


def build_tiny_qwen_prm(directory: Path) -> Path:
    """A random Qwen2.5-Math-PRM look-alike (head dim 32, as vLLM's CPU attention needs) with the nano tokenizer."""
    import shutil

    from transformers import Qwen2Config

    from tests.tiny_prm_model import Qwen2ForProcessRewardModel

    config = Qwen2Config(vocab_size=116, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=384, num_labels=2,
                         bos_token_id=1, eos_token_id=1, pad_token_id=0, tie_word_embeddings=False)
    config.auto_map = {"AutoModel": "tiny_prm_model.Qwen2ForProcessRewardModel"}
    torch.manual_seed(0)
    model = Qwen2ForProcessRewardModel(config)
    with torch.no_grad():  # spread the scores so that reading a wrong position shows
        model.score[0].weight.mul_(8.0)
        model.score[2].weight.mul_(3.0)
        model.score[2].bias.zero_()
    model.save_pretrained(directory)
    shutil.copy(Path(__file__).with_name("tiny_prm_model.py"), directory / "tiny_prm_model.py")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(POLICY_DIR) / name, directory / name)
    return directory


@contextlib.contextmanager
def served_vllm(python: str, log_path: Path, what: str, args: list[str]) -> Iterator[str]:
    """Start `python -m vllm.entrypoints.openai.api_server ARGS` on a free loopback port; yield its URL
    once /health answers (skip the test after 300 s or if it exits); stop its process group afterwards."""
    with served_vllms(python, [(log_path, what, args)]) as (url,):
        yield url


@contextlib.contextmanager
def served_vllms(python: str, servers: list[tuple[Path, str, list[str]]]) -> Iterator[list[str]]:
    """`served_vllm` for several servers (log path, what, args) started at once, so their start-ups overlap."""
    import signal
    import subprocess

    started: list[tuple[subprocess.Popen[bytes], str, Path, str]] = []
    try:
        for log_path, what, args in servers:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            command = ["nice", "-n", "5", python, "-m", "vllm.entrypoints.openai.api_server", *args, "--host",
                       "127.0.0.1", "--port", str(port), "--dtype", "float32", "--enforce-eager"]
            with open(log_path, "w") as log:
                server = subprocess.Popen(command, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
            started.append((server, f"http://127.0.0.1:{port}", log_path, what))
        limit = 300 + 150 * (len(started) - 1)  # servers starting together share the CPU
        deadline = time.monotonic() + limit
        for server, url, log_path, what in started:
            while True:
                if server.poll() is not None:
                    pytest.skip(f"the {what} server exited: {log_path.read_text()[-500:]}")
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.skip(f"the {what} server was not healthy after {limit} s")
                time.sleep(1)
        yield [url for _, url, _, _ in started]
    finally:
        for server, *_ in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
        for server, *_ in started:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def pooling_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(URL, checkpoint dir) of a vLLM pooling server started here with $THOUGHTSCOPE_TEST_VLLM_PYTHON."""

    python = os.environ.get("THOUGHTSCOPE_TEST_VLLM_PYTHON", "")
    if not python or not Path(python).exists():
        pytest.skip("no vLLM Python to start a pooling server: set THOUGHTSCOPE_TEST_VLLM_PYTHON (.ci/run does)")
    checkpoint = build_tiny_qwen_prm(tmp_path_factory.mktemp("tiny-qwen-prm"))
    # vLLM's default step pooling for this architecture returns only the step-tag rows (`<extra_0>` for
    # Qwen); here the separator is "\n", which the prompt's prefix also contains (the client must skip those).
    tokenizer = load_tokenizer(str(checkpoint), checkpoint, str(checkpoint), False)
    newline = tokenizer.encode("\n", add_special_tokens=False)[0]
    with served_vllm(python, checkpoint / "server.log", "pooling", [
        "--model", str(checkpoint), "--runner", "pooling", "--max-model-len", "384",
        "--pooler-config", json.dumps({"step_tag_id": newline}),
    ]) as url:
        yield url, checkpoint


def test_head_prm_on_the_pooling_server_scores_as_the_transformers_backend(pooling_server: Any) -> None:
    url, checkpoint = pooling_server
    served = httpx.get(url + "/v1/models", timeout=5).json()["data"][0]["id"]
    paths = [["3 + 4 = 7", "Answer: 7"], ["3 + 4 = 8", "8 + 1 = 9", "Answer: 9"], ["17 + 25 = 42"], []]
    spec = {"kind": "head", "step_separator": "\n", "trust_remote_code": True}
    remote = load_prm(RewardModelSpec(served, url=url, tokenizer=str(checkpoint), **spec))  # type: ignore[arg-type]
    local = load_prm(RewardModelSpec(str(checkpoint), device="cpu", **spec))  # type: ignore[arg-type]
    got, want = remote.score("Start with 3. Add 4.", paths), local.score("Start with 3. Add 4.", paths)
    assert max(s for w in want for s in w.scores) - min(s for w in want for s in w.scores) > 0.01, "scores spread"
    for g, w in zip(got, want, strict=True):
        assert g.tokens_read == w.tokens_read
        assert g.scores == pytest.approx(w.scores, abs=1e-4)
    assert remote.usage.requests == 1


# -- an instruct checkpoint with a chat template on the server (issue 15) ----------------------


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(URL, checkpoint dir) of a vLLM server started here serving the tiny chat checkpoint (tests/tiny_chat.py)."""

    from tests.tiny_chat import build_chat_checkpoint

    python = os.environ.get("THOUGHTSCOPE_TEST_VLLM_PYTHON", "")
    if not python or not Path(python).exists():
        pytest.skip("no vLLM Python to start a chat server: set THOUGHTSCOPE_TEST_VLLM_PYTHON (.ci/run does)")
    checkpoint = build_chat_checkpoint(tmp_path_factory.mktemp("tiny_chat_vllm"), attention_heads=1)
    with served_vllm(python, checkpoint.parent / "server.log", "chat", [
        "--model", str(checkpoint), "--max-model-len", "256", "--generation-config", "vllm",
        "--max-logprobs", "20", "--logprobs-mode", "processed_logprobs",
    ]) as url:
        yield url, checkpoint


def test_chat_checkpoint_proposes_and_judges_through_its_template_as_in_process(chat_server: Any) -> None:
    """Both backends build the template's prompt ids; greedy steps, P(yes) and the search's answer agree."""
    from search.models import render_judge, render_prompt
    from search.tasks import get_task
    from tests.tiny_chat import SOLVED, SYSTEM

    url, checkpoint = chat_server
    remote = load_policy(PolicySpec(str(checkpoint), url=url))
    local = load_policy(PolicySpec(str(checkpoint), device="cpu"))
    assert remote.chat is not None and local.chat is not None  # type: ignore[attr-defined]
    freeform, (problem, steps) = get_task("freeform"), SOLVED[0]
    prompts = [render_prompt(remote, freeform, problem, steps[:n]) for n in (0, 1, 2)]
    assert prompts == [render_prompt(local, freeform, problem, steps[:n]) for n in (0, 1, 2)]
    assert prompts[0].startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{problem}")
    args = {"temperature": 0.0, "max_new_tokens": 24, "stop": "\n\n", "seed": 1}
    got, want = remote.propose(prompts, 1, **args), local.propose(prompts, 1, **args)
    assert [(r[0].text, r[0].token_count) for r in got] == [(r[0].text, r[0].token_count) for r in want]
    assert [r[0].text for r in got] == steps, "the template's own steps, on the server too"
    question = render_judge(remote, freeform, problem, steps[:1], steps[1])
    [g], [w] = remote.judge([question]), local.judge([question])
    assert g.p_yes == pytest.approx(w.p_yes, abs=1e-4)
    from tests.test_chat_template import FlatPRM

    result = run_search(problem, task="freeform", strategy="greedy", models=Models(policy=remote, prm=FlatPRM()),
                        config={"max_depth": 5}, reference="42.0")
    assert result.status == "finished", result.error
    assert (result.answer, result.correct) == ("42", True)
    assert result.tree.meta["prompt"] == prompts[0]


def test_rlhflow_chat_tag_prm_on_the_chat_server_scores_as_the_transformers_backend(chat_server: Any) -> None:
    """RLHFlow's reading (each step a user turn, P(+) vs P(-) where the assistant's label starts) through
    the chat checkpoint's own template, served: one request per path batch, scores as in process."""
    url, checkpoint = chat_server
    remote = load_prm(RewardModelSpec(str(checkpoint), kind="chat-tag", url=url))
    local = load_prm(RewardModelSpec(str(checkpoint), kind="chat-tag", device="cpu"))
    assert isinstance(remote, ServerPRM)
    paths = [["We add 12 and 30.", "12 + 30 = 42.", "The answer is \\boxed{42}."], ["We multiply.", "x"], []]
    got, want = remote.score("What is 12 plus 30?", paths), local.score("What is 12 plus 30?", paths)
    values = [s for w in want for s in w.scores]
    assert max(values) - min(values) > 0.01, f"scores spread {values}"
    for g, w in zip(got, want, strict=True):
        assert g.tokens_read == w.tokens_read
        assert g.scores == pytest.approx(w.scores, abs=1e-4)
    assert remote.usage.requests == 1
