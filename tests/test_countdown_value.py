"""The countdown value model: its training data (exact labels, held-out puzzles never trained on),
its layout (what the head-PRM loader reads), and resumable training."""

from __future__ import annotations

import json
from collections import Counter
from fractions import Fraction

import pytest
import torch

from nano import countdown_data as cd
from nano.config import ModelSize, ValueTrainConfig
from nano.tokenizer import build_tokenizer
from search.tasks import game24
from search.tasks.countdown import CountdownTask

needs_csv = pytest.mark.skipif(not game24.csv_path().is_file(), reason="game24.csv is not present")
TASK = CountdownTask()
ALL_SIZES = {3: 1.0, 4: 2.0, 5: 0.2}


@needs_csv
def test_training_problems_never_include_the_test_slice_or_the_validation_puzzles():
    test = {tuple(sorted(p.numbers)) for p in game24.test_slice()}
    ranks = set(cd.validation_ranks())
    validation = {tuple(sorted(p.numbers)) for p in game24.load_puzzles() if p.rank in ranks}
    assert len(test) == 100 and len(validation) == 126 and not ranks & set(game24.TEST_RANKS)
    seen = Counter()
    for i in range(4000):
        numbers, target = cd.random_problem(cd.example_rng(7, i), 4, game24_share=1.0)
        key = tuple(sorted(numbers))
        assert target == 24 and key not in test and key not in validation, key
        seen[key] += 1
    assert len(seen) > 500  # the generator really covers the Game-of-24 space around the held-out puzzles
    from nano.train_value import count_weights, game24_share

    for sizes, share in ((ALL_SIZES, 0.5), (count_weights(0, 1, "game24"), game24_share("game24"))):
        game24_paths = 0
        for i in range(300):  # the whole example path too, at every problem size and in the Game-of-24 phase
            example = cd.value_example(cd.example_rng(8, i), sizes, game24_share=share)
            numbers = tuple(sorted(int(n) for n in example.problem.split(" to make ")[0].split()[1:]))
            assert not (example.problem.endswith(" 24.") and (numbers in test or numbers in validation))
            game24_paths += example.problem.endswith(" 24.") and len(numbers) == 4
        assert game24_paths > (200 if share > 0.9 else 50)  # the game24 phase is mostly Game-of-24 puzzles


def test_the_held_out_countdown_problems_of_eval_are_never_training_problems():
    from nano.data import heldout_problems

    held = heldout_problems("countdown", 40)
    assert all(cd.is_held_out(*_numbers_target(p.text)) for p in held)
    draws = [cd.random_problem(cd.example_rng(9, i), 3) for i in range(3000)]
    assert not {(tuple(n), t) for n, t in draws} & cd.heldout_countdown()


def _numbers_target(text: str) -> tuple[tuple[int, ...], int]:
    from search.tasks.countdown import parse_problem

    parsed = parse_problem(text)
    return parsed.numbers, parsed.target


@needs_csv
def test_labels_are_the_exact_checkers_and_every_class_occurs():
    counts = Counter()
    for i in range(200):
        example = cd.value_example(cd.example_rng(3, i), ALL_SIZES)
        for k, (step, label) in enumerate(zip(example.steps, example.labels, strict=True)):
            good = TASK.check_step(example.problem, example.steps[:k], step)
            legal = TASK.step_valid(example.problem, example.steps[:k], step)
            assert label == (cd.GOOD if good else cd.DEAD if legal else cd.ILLEGAL)
            counts[label] += 1
    assert min(counts.values()) > 0.15 * sum(counts.values()), counts


def test_corrupted_steps_are_illegal_and_good_moves_keep_the_target_reachable():
    rng = cd.example_rng(0, 0)
    values = tuple(Fraction(n) for n in (4, 5, 6, 10))
    illegal = sum(not TASK.step_valid("Use 4 5 6 10 to make 24.", [], cd.corrupted(values, rng)) for _ in range(300))
    assert illegal >= 290  # a corruption can by chance write another legal move; almost never
    moves = cd.good_moves(values, 24)
    assert moves and all(cd.fast_reachable(cd.after_move(values, m), 24) for m in moves)
    assert (Fraction(10), "-", Fraction(4), Fraction(6)) in moves


def test_tempting_slips_are_illegal_and_claim_what_a_search_wants_to_see():
    """The hard negatives behind found-but-wrong Game-of-24 answers: a last move claiming 24 with wrong
    arithmetic (`10 * 11 = 24 (left: 24)`), and earlier slips whose claimed list can still make 24."""
    rng = cd.example_rng(3, 0)
    last_two = (Fraction(10), Fraction(11))
    for _ in range(50):
        step = cd.tempting_slip(last_two, 24, rng)
        assert step.endswith("= 24 (left: 24)"), step
        assert not TASK.step_valid("Use 2 4 7 12 to make 24.", ["12 - 2 = 10 (left: 4 7 10)",
                                                                 "4 + 7 = 11 (left: 10 11)"], step), step
    values = tuple(Fraction(n) for n in (4, 5, 6, 10))
    steps = [cd.tempting_slip(values, 24, rng) for _ in range(200)]
    assert sum(TASK.step_valid("Use 4 5 6 10 to make 24.", [], s) for s in steps) == 0
    lists = [s.split("(left: ")[1].rstrip(")") for s in steps]
    reachable = sum(cd.fast_reachable(tuple(sorted(Fraction(x) for x in left.split())), 24) for left in lists)
    assert reachable > 90, reachable  # ordinary corruptions: about 50 of 200
    example_with = cd.value_example(cd.example_rng(5, 1), {4: 1.0}, corrupt_share=1.0, tempting_share=1.0)
    assert example_with.labels == (cd.ILLEGAL,)
    # without tempting slips the stream is the one earlier runs trained on (no extra random draw)
    assert cd.value_example(cd.example_rng(5, 2), ALL_SIZES) == cd.value_example(
        cd.example_rng(5, 2), ALL_SIZES, tempting_share=0.0)


@needs_csv
def test_final_states_hold_every_last_move_and_slips_claiming_24():
    states = cd.final_states((4, 5, 6, 10), cd.example_rng(0, 2), paths=2, slips_per_path=2)
    assert {depth for _, depth in states} == {3}
    labels = Counter(e.labels[-1] for e, _ in states)
    assert labels[cd.GOOD] >= 2 and labels[cd.ILLEGAL] == 4 and labels[cd.DEAD] > 0
    assert all(e.labels[:2] == (cd.GOOD, cd.GOOD) for e, _ in states)
    assert all(e.steps[-1].endswith("= 24 (left: 24)") for e, _ in states if e.labels[-1] == cd.ILLEGAL)


@needs_csv
def test_puzzle_states_cover_every_first_move_with_exact_labels():
    states = cd.puzzle_states((4, 5, 6, 10), cd.example_rng(0, 1), second=2)
    firsts = [e for e, depth in states if depth == 1 and e.labels[-1] != cd.ILLEGAL]
    assert len(firsts) == len(cd.legal_moves(tuple(Fraction(n) for n in (4, 5, 6, 10))))
    assert any(e.labels[-1] == cd.GOOD for e in firsts) and any(e.labels[-1] == cd.DEAD for e in firsts)
    assert {depth for _, depth in states} == {1, 2}


def _tiny_init(tmp_path):
    from nano.common import new_model

    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    model = new_model(tokenizer, ModelSize(n_layer=1, n_embd=32, n_head=2, n_positions=256, arch="qwen2"))
    model.save_pretrained(tmp_path / "init", safe_serialization=True)
    tokenizer.save_pretrained(tmp_path / "init")
    return str(tmp_path / "init")


@needs_csv
def test_the_trained_value_model_loads_as_a_head_prm_that_reads_what_training_wrote(tmp_path):
    from models.bundle import load_reward_model, prm_spec
    from nano.train_value import encode, good_probability, train_value

    config = ValueTrainConfig(out=str(tmp_path / "out"), ckpt=str(tmp_path / "ckpt"), init=_tiny_init(tmp_path),
                              steps=3, batch_size=4, eval_every=0, export_puzzles=1, warmup=1)
    result = train_value(config, progress=False)
    assert [r["n"] > 0 for r in result["eval"]] and (tmp_path / "out" / "eval.md").is_file()
    prm = load_reward_model(str(tmp_path / "out"), prm_spec("nano-value"), device="cpu", trust_remote_code=False)
    examples = [cd.value_example(cd.example_rng(5, i), ALL_SIZES) for i in range(6)]
    scored = prm.score(examples[0].problem, [list(examples[0].steps)])[0]
    for example in examples:
        ids, labels = encode(prm.tokenizer, example)
        assert prm.encode(example.problem, list(example.steps)) == (ids, [j for j, x in enumerate(labels) if x >= 0])
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(tmp_path / "out")
    assert scored.scores[-1] == pytest.approx(good_probability(model, prm.tokenizer, examples[:1])[0], abs=1e-5)
    assert json.loads((tmp_path / "out" / "config.json").read_text())["id2label"]["1"] == "good"


@needs_csv
def test_a_resumed_run_ends_with_the_weights_of_an_unbroken_one(tmp_path):
    from nano.train_value import train_value

    init = _tiny_init(tmp_path)

    def run(name: str, stop_at: int, resume: bool) -> dict:
        config = ValueTrainConfig(out=str(tmp_path / name), ckpt=str(tmp_path / f"{name}_ckpt"), init=init,
                                  steps=4, stop_at=stop_at, batch_size=4, eval_every=2, eval_puzzles=1,
                                  export_puzzles=1, warmup=1, save_every_s=1e9)
        return train_value(config, resume=resume, progress=False)

    run("whole", 0, False)
    run("split", 2, False)
    resumed = run("split", 4, True)
    assert resumed["meta"]["steps_trained"] == 4
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "split" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@needs_csv
def test_countdown_policy_examples_continue_with_correct_moves_and_the_phase_exports_a_policy(tmp_path):
    from nano.config import CountdownPolicyConfig
    from nano.train_countdown_policy import policy_example, train_countdown_policy

    for i in range(60):
        prompt, continuation, ends = policy_example(cd.example_rng(4, i), {3: 1.0, 4: 1.0, 5: 0.2}, 0.3)
        problem = prompt.split("\n")[0].removeprefix("Problem: ")
        steps = [s for s in prompt.split("Solution:\n")[1].split("\n") if s]
        new = continuation.rstrip("\n").split("\n")
        if ends:  # a reachable state: the whole rest of a correct solution
            assert all(TASK.check_step(problem, steps + new[:k], s) for k, s in enumerate(new)), (prompt, new)
            assert new[-1].startswith("Answer:")
        else:  # a dead end: one legal move
            assert len(new) == 1 and TASK.step_valid(problem, steps, new[0])
    config = CountdownPolicyConfig(out=str(tmp_path / "out"), ckpt=str(tmp_path / "ckpt"), init=_tiny_init(tmp_path),
                                   steps=2, batch_size=4, eval_every=0, export_puzzles=1, export_problems=1)
    result = train_countdown_policy(config, progress=False)
    assert {r["states"] for r in result["eval"]} >= {"Game of 24 start", "countdown start (held out)"}
    from models.hf import load_policy

    policy = load_policy(str(tmp_path / "out"), device="cpu")
    assert policy.propose(["Problem: Use 4 5 6 10 to make 24.\nSolution:\n"], 2, temperature=1.0,
                          max_new_tokens=8, stop="\n", seed=0)


@needs_csv
def test_a_phase_continues_from_the_exported_weights_when_the_checkpoint_is_gone(tmp_path):
    from nano.train_value import train_value

    first = ValueTrainConfig(out=str(tmp_path / "a"), ckpt=str(tmp_path / "ckpt_a"), init=_tiny_init(tmp_path), steps=4,
                             stop_at=2, batch_size=4, eval_every=0, export_puzzles=1, warmup=1)
    train_value(first, progress=False)
    said = []
    second = ValueTrainConfig(out=str(tmp_path / "b"), ckpt=str(tmp_path / "ckpt_missing"), init=str(tmp_path / "a"),
                              steps=4, batch_size=4, eval_every=0, export_puzzles=1, warmup=1)
    result = train_value(second, resume=True, progress=False, log=said.append)
    assert result["meta"]["steps_trained"] == 4 and "at step 2" in said[0]
    history = json.loads((tmp_path / "b" / "trainer_state.json").read_text())
    assert len(history["losses"]) == 4 and history["losses"][:2] == json.loads(
        (tmp_path / "a" / "trainer_state.json").read_text())["losses"]
