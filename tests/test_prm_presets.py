"""Every reward-model preset against its model card's reference recipe, on tiny look-alikes built
here; every look-alike refused by every preset that would misread it (issue 15, items 2-3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from models.bundle import PRM_PRESETS, load_models, load_reward_model, prm_spec
from models.loading import ModelLoadError, load_tokenizer
from models.prm_spec_file import SpecFileError
from models.reward_readers import read_head
from tests.tiny_chat import SYSTEM
from tests.tiny_checkpoints import one_torch_thread
from tests.tiny_reward_models import LOOKALIKES, build_lookalikes

PROBLEM = "Start with 17. Add 25. What is the result?"
STEPS = ["17 + 25 = 42", "So the total is 42.", "Answer: 42"]
OUTCOME = {"qwen-rm", "orm-seq"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def lookalikes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_lookalikes(tmp_path_factory.mktemp("reward_models"))


def _load(path: Path, preset: str):
    return load_reward_model(str(path), prm_spec(preset), device="cpu", trust_remote_code=False)


def _tokenizer(path: Path):
    return load_tokenizer(str(path), path, str(path), False)


# -- the model cards' recipes, transcribed (tokenizer as the checkpoint ships it) ----------------


def math_shepherd_recipe(path: Path) -> list[float]:
    """peiyi9979/math-shepherd-mistral-7b-prm: P(+) vs P(-) at each `ки` of `question + " " + output`."""
    from transformers import AutoModelForCausalLM

    tok, model = _tokenizer(path), AutoModelForCausalLM.from_pretrained(path)
    candidates = [tok.encode("+", add_special_tokens=False)[-1], tok.encode("-", add_special_tokens=False)[-1]]
    step_tag_id = tok.encode(" ки", add_special_tokens=False)[-1]
    output = "".join(f"{step} ки\n" for step in STEPS)
    ids = torch.tensor([tok.encode(f"{PROBLEM} {output}")])
    scores = model(ids).logits[:, :, candidates].softmax(dim=-1)[:, :, 0]
    return scores[ids == step_tag_id].tolist()


def qwen_prm_recipe(path: Path) -> list[float]:
    """Qwen/Qwen2.5-Math-PRM-7B: the chat with steps joined by <extra_0>; softmax(logits)[1] at each."""
    from transformers import AutoModelForTokenClassification

    tok, model = _tokenizer(path), AutoModelForTokenClassification.from_pretrained(path)
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": PROBLEM},
        {"role": "assistant", "content": "<extra_0>".join(STEPS) + "<extra_0>"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    ids = torch.tensor([tok.encode(text)])
    probs = model(input_ids=ids).logits.softmax(dim=-1)[..., 1]
    return probs[ids == tok.encode("<extra_0>")[0]].tolist()


def rlhflow_recipe(path: Path) -> list[float]:
    """RLHFlow/Llama3.1-8B-PRM-*: one growing conversation per step, logits[:, -3] over (+, -)."""
    from transformers import AutoModelForCausalLM

    tok, model = _tokenizer(path), AutoModelForCausalLM.from_pretrained(path)
    candidates = [tok.encode("+")[-1], tok.encode("-")[-1]]
    conversation, scores = [], []
    for k, step in enumerate(STEPS):
        conversation.append({"content": f"{PROBLEM} {step}" if k == 0 else step, "role": "user"})
        conversation.append({"content": "+", "role": "assistant"})
        text = tok.apply_chat_template(conversation, tokenize=False)
        ids = torch.tensor([tok.encode(text, add_special_tokens=False)])
        scores.append(float(model(ids).logits[:, -3, candidates].softmax(dim=-1)[0, 0]))
    return scores


def skywork_recipe(path: Path) -> list[float]:
    """Skywork-o1-Open-PRM (skywork-o1-prm-inference prepare_input): per-step ids, sigmoid(v_head) at flags."""
    from transformers import AutoModel

    tok, body = _tokenizer(path), AutoModel.from_pretrained(path)
    head = read_head(path, "v_head.summary", body.config.hidden_size, "skywork")
    ids = tok.encode(tok.bos_token + PROBLEM + "\n")
    flags = [0] * len(ids)
    step_token_id = tok.encode("\n")[-1]
    for step in "\n".join(STEPS).split("\n"):
        step_ids = [*tok.encode(step), step_token_id]
        ids += step_ids
        flags += [0] * (len(step_ids) - 1) + [1]
    rewards = torch.sigmoid(head(body(torch.tensor([ids]))[0]))[0, :, 0]
    return rewards[torch.tensor(flags) == 1].tolist()


def qwen_rm_recipe(path: Path) -> list[float]:
    """Qwen/Qwen2.5-Math-RM-72B: the chat (system, user, assistant) encoded without special tokens, last token."""
    from transformers import AutoModel

    tok, body = _tokenizer(path), AutoModel.from_pretrained(path)
    head = read_head(path, "score", body.config.hidden_size, "qwen-rm")
    chat = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": PROBLEM},
        {"role": "assistant", "content": "\n\n".join(STEPS)},
    ]
    text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=False)
    reward = head(body(torch.tensor([tok.encode(text, add_special_tokens=False)]))[0])[0, -1, 0]
    return [float(torch.sigmoid(reward))]


def orm_seq_recipe(path: Path) -> list[float]:
    """A sequence-classification ORM: the chat as one sequence, sigmoid of its one logit."""
    from transformers import AutoModelForSequenceClassification

    tok, model = _tokenizer(path), AutoModelForSequenceClassification.from_pretrained(path)
    chat = [{"role": "user", "content": PROBLEM}, {"role": "assistant", "content": "\n\n".join(STEPS)}]
    text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=False)
    return [float(torch.sigmoid(model(torch.tensor([tok.encode(text, add_special_tokens=False)])).logits[0, 0]))]


RECIPES = {
    "math-shepherd": math_shepherd_recipe,
    "qwen-prm": qwen_prm_recipe,
    "rlhflow": rlhflow_recipe,
    "skywork": skywork_recipe,
    "qwen-rm": qwen_rm_recipe,
    "orm-seq": orm_seq_recipe,
}


@pytest.mark.parametrize("key", sorted(LOOKALIKES))
def test_preset_reads_what_the_model_card_reads(lookalikes: dict[str, Path], key: str) -> None:
    preset = LOOKALIKES[key][1]
    model = _load(lookalikes[key], preset)
    with torch.inference_mode():
        expected = RECIPES[key](lookalikes[key])
    [got] = model.score(PROBLEM, [STEPS])
    assert len(got.scores) == (1 if key in OUTCOME else len(STEPS))
    assert list(got.scores) == pytest.approx(expected, abs=1e-5)
    assert len(set(got.scores)) == len(got.scores) or key in OUTCOME  # not a constant read
    # a child path extends its parent: scores of the shared steps do not move (prefix caches)
    if key not in OUTCOME:
        [parent] = model.score(PROBLEM, [STEPS[:2]])
        assert list(parent.scores) == pytest.approx(expected[:2], abs=1e-5)


@pytest.mark.parametrize("key", sorted(LOOKALIKES))
def test_every_wrong_preset_is_refused_before_the_weights_load(lookalikes: dict[str, Path], key: str) -> None:
    right = LOOKALIKES[key][1]
    for preset in PRM_PRESETS:
        if preset == right:
            continue
        with pytest.raises(ModelLoadError) as refused:
            _load(lookalikes[key], preset)
        message = str(refused.value)
        assert f"does not fit the {preset!r} preset" in message
        assert f"Use --prm-preset {right}" in message, message


@pytest.mark.parametrize("key", sorted(LOOKALIKES))
def test_structure_alone_refuses_the_named_presets(lookalikes: dict[str, Path], key: str, tmp_path: Path) -> None:
    """Under a neutral name (no model-card name to go by) the checkpoint's shape still refuses them."""
    anonymous = tmp_path / "my-reward-model"
    anonymous.symlink_to(lookalikes[key], target_is_directory=True)
    right = LOOKALIKES[key][1]
    for preset in {name for _, name in LOOKALIKES.values()} - {right}:
        with pytest.raises(ModelLoadError, match=f"Use --prm-preset {right}"):
            _load(anonymous, preset)


def test_a_format_described_as_data_reads_like_the_preset(lookalikes: dict[str, Path], tmp_path: Path) -> None:
    spec = tmp_path / "shepherd.yaml"
    spec.write_text(
        'kind: tag\nstep_tag: "ки"\ngood_token: "+"\nbad_token: "-"\nstep_separator: "\\n"\n'
        'prefix: "{problem} "\nstep: "{step} {mark}{sep}"\narchitectures: [MistralForCausalLM]\n'
    )
    custom = load_reward_model(
        str(lookalikes["math-shepherd"]), prm_spec(str(spec)), device="cpu", trust_remote_code=False
    )
    with torch.inference_mode():
        expected = math_shepherd_recipe(lookalikes["math-shepherd"])
    assert list(custom.score(PROBLEM, [STEPS])[0].scores) == pytest.approx(expected, abs=1e-5)
    as_json = tmp_path / "sky.json"
    as_json.write_text(json.dumps({"kind": "value-head", "step_separator": "\n"}))
    with pytest.raises(ModelLoadError, match="no value head"):
        load_reward_model(
            str(lookalikes["math-shepherd"]), prm_spec(str(as_json)), device="cpu", trust_remote_code=False
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: tagg\n", "kind"),
        ("kind: tag\nstep: '{step}'\nprefix: ''\n", "exactly once"),
        ("kind: tag\nlayot: x\n", "layot"),
        ("- a list\n", "mapping"),
        ("kind: [\n", "not valid YAML"),
    ],
)
def test_bad_spec_files_get_a_sentence(tmp_path: Path, text: str, message: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(SpecFileError, match=message):
        prm_spec(str(spec))


def test_outcome_models_load_as_orm_and_score_whole_paths(lookalikes: dict[str, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app
    from search import events_from_json

    orm = str(lookalikes["qwen-rm"])
    with pytest.raises(ModelLoadError, match="--orm"):
        load_models(prm=orm, spec=prm_spec("qwen-rm"), device="cpu")
    events_path = tmp_path / "events.json"
    args = ["run", "Start with 3. Add 4. What is the result?", "--strategy", "best_of_n", "-k", "n=2"]
    args += ["-k", "ranker=orm", "-k", "answer_method=argmax", "-k", "max_depth=3", "-k", "max_step_tokens=8"]
    args += ["--orm", orm, "--orm-preset", "qwen-rm", "--no-record", "--events-json", str(events_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    events = events_from_json(json.loads(events_path.read_text()))
    outcome = [e.data for e in events if e.kind.value == "node_scored" and e.data["source"] == "orm"]
    assert outcome and all(0.0 < e["value"] < 1.0 and e["step_scores"] is None for e in outcome)
