"""Chat templates: an instruct policy gets the prompt it was trained on (issue 15, item 1)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from models.factory import load_policy
from models.hf_policy import HFPolicy
from models.loading import ModelLoadError
from models.prompting import ChatTemplateError, chat_format, prompt_token_ids
from models.specs import PolicySpec
from search import Models, run_search
from search.events import EventKind
from search.models import StepScores, render_judge, render_prompt
from search.tasks import get_task
from tests.tiny_chat import SOLVED, SYSTEM, build_chat_checkpoint

FREEFORM = get_task("freeform")


class FlatPRM:
    name = "flat-prm"

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        return [StepScores(tuple(0.5 for _ in steps), 1) for steps in paths]


@pytest.fixture(scope="module")
def chat_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_chat_checkpoint(tmp_path_factory.mktemp("tiny_chat"))


@pytest.fixture(scope="module")
def chat_policy(chat_checkpoint: Path) -> HFPolicy:
    return load_policy(PolicySpec(str(chat_checkpoint)))  # type: ignore[return-value]


def test_prompt_tokens_are_the_templates_own(chat_policy: HFPolicy) -> None:
    """The ids sent equal `apply_chat_template(..., tokenize=True)` of the model card's conversation."""
    problem, steps = SOLVED[0]
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": problem}]
    expected = chat_policy.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    expected = list(expected["input_ids"] if hasattr(expected, "keys") else expected)
    head = render_prompt(chat_policy, FREEFORM, problem, [])
    assert prompt_token_ids(chat_policy.tokenizer, head) == expected
    grown = render_prompt(chat_policy, FREEFORM, problem, steps[:2])
    assert grown == head + steps[0] + "\n\n" + steps[1] + "\n\n"  # steps grow inside the assistant turn


@pytest.mark.parametrize(("index", "answer"), [(0, "42"), (2, "9")])
def test_instruct_policy_solves_through_its_template(chat_checkpoint: Path, index: int, answer: str) -> None:
    problem = SOLVED[index][0]
    runs = {}
    for mode in ("auto", "off"):
        policy = load_policy(PolicySpec(str(chat_checkpoint), chat_template=mode))
        models = Models(policy=policy, prm=FlatPRM())
        config = {"max_depth": 5}
        runs[mode] = run_search(
            problem, task="freeform", strategy="greedy", models=models, config=config, reference=answer
        )
    chat, plain = runs["auto"], runs["off"]
    assert chat.status == "finished", chat.error
    assert (chat.answer, chat.correct) == (answer, True)
    sent = chat.tree.meta["prompt"]
    assert sent.startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{problem}<|im_end|>")
    assert sent.endswith("<|im_start|>assistant\n")
    assert plain.tree.meta["prompt"].startswith("Solve the problem step by step")
    assert plain.correct is not True  # the same weights on the bare prompt: it never saw that context


def test_self_evaluation_asks_in_a_chat_turn(chat_checkpoint: Path, chat_policy: HFPolicy) -> None:
    problem, steps = SOLVED[0]
    question = render_judge(chat_policy, FREEFORM, problem, steps[:1], steps[1])
    assert f"<|im_start|>assistant\n{steps[0]}\n\n{steps[1]}<|im_end|>\n<|im_start|>user\nCheck this step: " in question
    assert question.endswith("<|im_start|>assistant\n")
    [verdict] = chat_policy.judge([question])
    assert 0.0 <= verdict.p_yes <= 1.0
    models = Models(policy=chat_policy, prm=FlatPRM())
    config = {"simulations": 2, "expand_width": 2, "self_evaluate": True, "max_depth": 4}
    result = run_search(problem, task="freeform", strategy="mcts", models=models, config=config)
    asked = [e.data["question"] for e in result.events if e.kind is EventKind.SELF_EVALUATED]
    assert asked and all(q.startswith(f"<|im_start|>system\n{SYSTEM}") and "Check this step: " in q for q in asked)


def test_system_prompt_comes_from_the_model_card_or_the_option(chat_policy: HFPolicy) -> None:
    tokenizer = chat_policy.tokenizer
    assert chat_format(tokenizer, "auto", "Qwen/Qwen2.5-Math-7B-Instruct").system == SYSTEM
    unknown = chat_format(tokenizer, "auto", "someone/unknown-instruct")
    assert unknown is not None and unknown.system is None
    text = unknown.prompt(FREEFORM, "What is 1 plus 1?", [])
    assert "You are a helpful assistant." in text  # the template's own default system turn
    assert f"What is 1 plus 1?\n\n{FREEFORM.chat_instruction}<|im_end|>" in text  # task instruction in the user turn
    assert chat_format(tokenizer, "auto", "x", system_prompt="Be brief.").system == "Be brief."
    assert chat_format(tokenizer, "off", "x") is None


def test_chat_template_on_without_a_template_is_refused(checkpoints: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError, match="no chat template"):
        load_policy(PolicySpec(str(checkpoints["qwen2"]), chat_template="on"))
    policy = load_policy(PolicySpec(str(checkpoints["qwen2"])))  # auto: plain text, as before
    assert policy.chat is None  # type: ignore[attr-defined]
    with pytest.raises(ChatTemplateError, match="auto, on, off"):
        chat_format(policy.tokenizer, "sometimes", "x")  # type: ignore[attr-defined]


def test_cli_offers_the_chat_template_choice(chat_checkpoint: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app
    from search import events_from_json

    runner = CliRunner()
    problem, events_path = SOLVED[3][0], tmp_path / "events.json"
    args = ["run", problem, "--task", "freeform", "--strategy", "greedy", "-k", "max_depth=4", "--no-record"]
    args += ["--policy", str(chat_checkpoint), "--prm", str(chat_checkpoint), "--device", "cpu"]
    result = runner.invoke(app, [*args, "--reference", r"\frac{50}{2}", "--events-json", str(events_path)])
    assert result.exit_code == 0, result.output
    assert "[correct]" in result.output  # its \boxed{25} against the reference, judged by math-verify
    started = events_from_json(json.loads(events_path.read_text()))[0]
    assert started.data["prompt"].startswith("<|im_start|>system\n")
    refused = runner.invoke(app, ["run", "Start with 3. Add 4. What is the result?", "--chat-template", "on"])
    assert refused.exit_code == 1
    assert "no chat template" in " ".join(refused.output.split())
