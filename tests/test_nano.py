"""The nano pack: committed weights load and search, training and eval run, and no test puzzle leaks."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nano import data
from nano.tokenizer import BAD, GOOD, NO, STEP_TAG, YES, build_tokenizer
from search.runner import run_search
from search.tasks.game24 import is_test_puzzle, test_multisets, test_slice

NANO = Path(__file__).resolve().parents[1] / "models" / "nano"


@pytest.fixture(scope="module")
def nano_models():
    from models.bundle import load_models

    return load_models(str(NANO / "policy"), str(NANO / "prm"), device="cpu")


def test_tokenizer_has_single_protocol_tokens() -> None:
    tok = build_tokenizer()
    for word in (YES, NO, STEP_TAG, GOOD, BAD):
        assert len(tok.encode(word, add_special_tokens=False)) == 1, word
    text = "Problem: Use 4 5 6 10 to make 24.\nSolution:\n10 - 4 = 6 (left: 5 6 6) ки\nIs this step correct? yes\n"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_data_builder_never_emits_a_game24_test_puzzle() -> None:
    """Every 4-number target-24 problem the builders make is checked against the CSV's ranks 901-1000."""
    try:
        slice_ = {tuple(sorted(p.numbers)) for p in test_slice()}
    except FileNotFoundError:
        slice_ = set(test_multisets())
    assert len(slice_) == 100
    assert not data.keep_problem(data.Problem("countdown", "Use 4 5 6 10 to make 24.", None))
    rng = random.Random(0)
    made = data.problems("countdown", rng, 300, difficulties=(2, 3))
    made += [data.Problem("countdown", e.text.split("\n")[0].removeprefix("Problem: ").strip(), None)
             for e in data.policy_examples(0, 100)
             if e.text.startswith("Problem: Use")]
    fours = [data.parse_problem(p.text) for p in made]
    fours = [p for p in fours if len(p.numbers) == 4 and p.target == 24]
    assert len(fours) > 40
    assert not any(tuple(sorted(p.numbers)) in slice_ or is_test_puzzle(p.numbers) for p in fours)


def test_policy_data_is_the_same_for_any_number_of_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parallel data building must not change the data: a run is reproducible from its seed alone."""
    monkeypatch.setattr(data, "CHUNK", 25)
    one = data.policy_dataset(3, 110, 0.2, 0.5, workers=1)
    two = data.policy_dataset(3, 110, 0.2, 0.5, workers=2)
    assert len(one) == 110 and one == two
    assert {e.kind for e in one} == {"solution", "check"}
    assert data.policy_dataset(4, 110, 0.2, 0.5) != one


def test_countdown_solutions_pass_the_checker() -> None:
    task = data.TASKS["countdown"]
    rng = random.Random(1)
    for problem in data.problems("countdown", rng, 10):
        steps = data.countdown_solution(problem.text, rng)
        assert all(task.check_step(problem.text, steps[:i], s) for i, s in enumerate(steps))


def test_committed_weights_run_greedy_and_beam(nano_models) -> None:
    assert (NANO / "policy" / "model.safetensors").exists() and (NANO / "prm" / "model.safetensors").exists()
    sizes = sum(f.stat().st_size for f in NANO.rglob("*.safetensors"))
    assert sizes < 30 * 2**20
    problem = data.heldout_problems("arith", 1, seed=3, difficulties=(2,))[0]
    for strategy, knobs in (("greedy", {"max_depth": 6}), ("beam", {"n": 2, "beam_width": 1, "max_depth": 6})):
        result = run_search(problem.text, task="arith", strategy=strategy, models=nano_models, config=knobs,
                            seed=0, reference=problem.answer)
        assert result.error is None and result.status == "finished"
        assert result.answer is not None and result.spend["tokens_generated"] > 0
    scores = nano_models.prm.score(problem.text, [data.TASKS["arith"].solution(problem.text)])[0].scores
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_committed_tokenizer_loads_exactly_as_trained(nano_models) -> None:
    """transformers 5 would give a Qwen2-shaped checkpoint Qwen2's own pre-tokenizer on top of
    tokenizer.json (spaces vanish); the loader must encode prompts exactly as training did."""
    text = "Problem: Start with 26. Multiply by 4. What is the result?\nSolution:\n26 * 4 = 104\n"
    trained = build_tokenizer()(text, add_special_tokens=False)["input_ids"]
    assert nano_models.policy.tokenizer(text, add_special_tokens=False)["input_ids"] == trained
    assert nano_models.prm.tokenizer(text, add_special_tokens=False)["input_ids"] == trained


def test_training_smoke(tmp_path: Path) -> None:
    from models.hf import load_policy, load_prm
    from nano.common import ModelSize
    from nano.train_policy import PolicyTrainConfig, train_policy
    from nano.train_prm import PRMTrainConfig, train_prm

    tiny = ModelSize(n_layer=1, n_embd=32, n_head=2, n_positions=384)
    policy_dir, prm_dir = tmp_path / "policy", tmp_path / "prm"
    config = PolicyTrainConfig(out=str(policy_dir), examples=48, batch_size=16, eval_problems=5, gen_tokens=12,
                               size=tiny)
    train_policy(config, progress=False)
    result = train_prm(PRMTrainConfig(policy=str(policy_dir), out=str(prm_dir), labels="mc", problems_per_task=2,
                                      samples_per_problem=1, rollouts=1, epochs=1, eval_problems=2,
                                      gen_tokens=12, objective="tag"), progress=False)
    assert result["meta"]["labelled_steps"] > 0
    checker_dir = tmp_path / "prm_checker"
    sibling = train_prm(PRMTrainConfig(policy=str(policy_dir), out=str(checker_dir), labels="checker",
                                       problems_per_task=2, prefix_problems=2, samples_per_problem=2,
                                       init=str(prm_dir), epochs=1, eval_problems=2, gen_tokens=12), progress=False)
    assert sibling["meta"]["paths"] > result["meta"]["paths"]  # the gold-prefix siblings were added
    rows = {row["paths"] for row in sibling["eval"]}
    assert rows >= {"policy samples", "policy samples, steps after a correct prefix"}
    for out in (policy_dir, prm_dir, checker_dir):
        assert {"loss_curve.html", "loss_curve.png", "eval.md", "eval.json"} <= {f.name for f in out.iterdir()}
    load_policy(str(policy_dir), device="cpu")
    load_prm(str(prm_dir), kind="tag", device="cpu")
    likelihood = load_prm(str(checker_dir), kind="likelihood", device="cpu")  # the default objective
    assert likelihood.calibration is not None and likelihood.calibration != (1.0, 2.0)  # trained, then saved


def test_eval_and_sweep_commands(tmp_path: Path) -> None:
    from cli import app

    runner = CliRunner()
    out = tmp_path / "greedy.csv"
    res = runner.invoke(app, ["eval", "--task", "arith", "-s", "greedy", "-n", "3", "--device", "cpu", "--out",
                              str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    columns = {"correct", "found", "tokens_generated", "prm_tokens", "model_calls", "seconds"}
    assert len(rows) == 3 and columns <= set(rows[0])
    assert all(row["found"] == row["correct"] for row in rows)  # greedy's one chain is both its tree and its answer
    stem = tmp_path / "sweep"
    res = runner.invoke(app, ["sweep", "-s", "greedy", "-s", "best_of_n", "--budgets", "1,2", "-n", "2",
                              "--device", "cpu", "--out", str(stem)])
    assert res.exit_code == 0, res.output
    points = json.loads(stem.with_suffix(".json").read_text())
    assert [p["spec"] for p in points] == ["greedy", "best_of_n", "best_of_n"]
    assert stem.with_suffix(".html").exists() and stem.with_suffix(".png").exists()
    auc_out = tmp_path / "prm_auc.json"
    res = runner.invoke(app, ["eval-prm", "--problems", "4", "--device", "cpu", "--out", str(auc_out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(auc_out.read_text())["rows"]
    assert [(r["task"], r["paths"]) for r in rows[:2]] == [
        ("arith", "policy samples"), ("arith", "policy samples, steps after a correct prefix")]
    assert all(r["roc_auc"] == "n/a" or 0.0 <= r["roc_auc"] <= 1.0 for r in rows)


def test_eval_caps_every_problem_at_a_token_budget_and_refuses_bad_input_plainly(tmp_path: Path) -> None:
    """`eval --max-tokens` stops each search once it has generated that many tokens (it then
    answers from the tree it has); impossible input ends in one error line and exit code 1."""
    from cli import app

    runner = CliRunner()

    def tokens(*extra: str) -> list[int]:
        out = tmp_path / f"bon{len(extra)}.json"
        res = runner.invoke(app, ["eval", "--task", "arith", "-s", "best_of_n", "-k", "n=8", "-n", "2",
                                  "--device", "cpu", "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
        rows = json.loads(out.read_text())
        assert all(r["error"] is None for r in rows)
        assert all(r["found"] or not r["correct"] for r in rows)  # a chosen correct answer is a node of the tree
        return [r["tokens_generated"] for r in rows]

    free, capped = tokens(), tokens("--max-tokens", "30")
    assert all(30 <= c < f for c, f in zip(capped, free, strict=True)), (capped, free)
    for bad, message in ((["--max-tokens", "0"], "max_tokens must be positive"),
                         (["-k", "no_such_knob=1"], "no_such_knob"),
                         (["--jsonl", str(tmp_path / "missing.jsonl")], "No such file")):
        res = runner.invoke(app, ["eval", "-s", "best_of_n", "-n", "1", "--device", "cpu", *bad])
        assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output, res.output


def test_gold_prefix_siblings_continue_one_gold_prefix() -> None:
    """`prefix_paths`: each problem's samples all start with the same gold prefix (cut at a seeded step)."""
    import random

    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from nano.data import heldout_problems, solution
    from nano.train_prm import checker_labels, prefix_paths

    policy_dir = str(Path(__file__).resolve().parents[1] / "models" / "nano" / "policy")
    model = AutoModelForCausalLM.from_pretrained(policy_dir, use_safetensors=True)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(policy_dir)
    probs = heldout_problems("arith", 3, seed=5)
    paths = prefix_paths(model, tokenizer, probs, 4, random.Random(0), gen_tokens=60)
    assert len(paths) == 12
    replay = random.Random(0)  # the same draws prefix_paths made
    for k, problem in enumerate(probs):
        gold = solution(problem, replay)
        cut = replay.randrange(len(gold))
        for owner, steps in paths[4 * k : 4 * k + 4]:
            assert owner == problem
            assert list(steps[:cut]) == gold[:cut] and len(steps) > cut  # the policy added at least one step
            assert all(checker_labels(problem, steps[:cut]))


def test_prm_init_with_another_tokenizer_is_refused_before_any_labelling(tmp_path: Path) -> None:
    from nano.train_prm import PRMTrainConfig, train_prm

    other = build_tokenizer()
    other.add_tokens(["<other>"])
    other.save_pretrained(tmp_path / "other")
    policy_dir = str(Path(__file__).resolve().parents[1] / "models" / "nano" / "policy")
    config = PRMTrainConfig(policy=policy_dir, out=str(tmp_path / "prm"), init=str(tmp_path / "other"))
    with pytest.raises(ValueError, match="different tokenizer"):
        train_prm(config, progress=False)
    assert not (tmp_path / "prm").exists()


@pytest.mark.parametrize(("task", "least"), [("arith", 28), ("countdown", 24)])
def test_shipped_prm_ranks_the_gold_step_above_its_corruption(nano_models, task: str, least: int) -> None:
    """On 30 held-out problems, a gold prefix's next gold step outscores the same step with one slip."""
    from nano.train_prm import synthetic_paths

    prm = nano_models.prm
    assert prm.kind == "likelihood" and prm.calibration is not None  # trained, not a bare LM
    items = synthetic_paths(data.heldout_problems(task, 30, seed=3), random.Random(3))
    wins = 0
    for gold, bad in zip(items[0::2], items[1::2], strict=True):
        cut = len(bad.steps) - 1
        good_score = prm.score(gold.problem.text, [list(gold.steps[: cut + 1])])[0].scores[-1]
        bad_score = prm.score(bad.problem.text, [list(bad.steps)])[0].scores[-1]
        wins += good_score > bad_score
    assert wins >= least, f"{task}: the gold step beat its corruption in only {wins} of 30 problems"


def test_eval_saves_its_trees_and_redecides_them_under_every_rule(tmp_path: Path) -> None:
    """`eval --save --db` keeps every search as a run (its row names it); `--answer-rules` prints
    each rule's accuracy on those trees, the run's own rule equal to the eval's accuracy."""
    from cli import app
    from search.evaluate import own_rule
    from search.redecide import run_config
    from storage import Store

    db, out = tmp_path / "eval.db", tmp_path / "rows.json"
    res = CliRunner().invoke(app, ["eval", "--task", "arith", "-s", "best_of_n", "-k", "n=4", "-n", "3", "--device",
                                   "cpu", "--answer-rules", "--save", "--db", str(db), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert "accuracy of each answer rule" in res.output and "prm_vote/min" in res.output
    with Store.open(db) as store:
        runs = store.list_runs()
        assert sorted(r.id for r in runs) == sorted(row["run_id"] for row in rows)
        for row in rows:
            tree = store.tree(row["run_id"])
            assert tree.meta["problem"] == row["problem"]
            own = own_rule(run_config(tree))
            assert row["rules"][own] == row["correct"]
    assert f"{own} " in next(line for line in res.output.splitlines() if "◀ this run's" in line)
