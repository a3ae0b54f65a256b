"""Narration: one short plain-words line for every event kind, on real logs of every strategy."""

from __future__ import annotations

import threading

import pytest

from reasoning_viz.narration import MAX_STEP, narrate, narrate_log, short
from search import Models, run_search
from search.events import EVENT_SCHEMA, Event, EventKind, make_event
from search.fakes import ScriptedPolicy, ScriptedPRM
from search.tree import Tree
from tests.engine_cases import CASES, PROBLEM, scripted_models

MAX_LINE = 170


def event(kind: EventKind, **data: object) -> Event:
    return make_event(5, 0.1, kind, data)


def test_every_event_kind_has_a_narration() -> None:
    from reasoning_viz.narration import _NARRATORS

    assert set(_NARRATORS) == set(EventKind) == set(EVENT_SCHEMA)


def _all_logs() -> dict[str, list[Event]]:
    logs = {}
    for case, (strategy, config) in CASES.items():
        result = run_search(
            PROBLEM,
            task="arith",
            strategy=strategy,
            models=scripted_models(),
            config=config,
            seed=3,
            reference="112",
        )
        logs[case] = result.events
    stop = threading.Event()
    stop.set()
    logs["cancelled"] = run_search(
        PROBLEM, task="arith", strategy="beam", models=scripted_models(), stop=stop
    ).events

    class Broken(ScriptedPolicy):
        def propose(self, *args: object, **kwargs: object) -> list:
            raise RuntimeError("out of memory " + "x" * 300)

    from tests.test_model_numbers import BadPRM

    nan_models = Models(ScriptedPolicy(), BadPRM(float("nan")))
    unscored = {"n": 4, "beam_width": 2, "on_bad_number": "unscored"}
    logs["unscored"] = run_search(PROBLEM, task="arith", strategy="beam", models=nan_models, config=unscored).events
    logs["failed"] = run_search(
        PROBLEM, task="arith", strategy="mcts", models=Models(Broken(), ScriptedPRM())
    ).events
    return logs


def test_real_logs_from_every_strategy_narrate_with_the_tree_before_after_or_none() -> None:
    seen: set[EventKind] = set()
    for name, events in _all_logs().items():
        lines = narrate_log(events)
        assert len(lines) == len(events)
        after = Tree()
        for item, line in zip(events, lines, strict=True):
            after.apply(item)
            for text in (line, narrate(item, after), narrate(item)):
                assert text and "\n" not in text and len(text) <= MAX_LINE, (name, text)
            seen.add(item.kind)
    # Together the logs cover the whole vocabulary (self_evaluated comes from the self-eval MCTS case).
    assert seen == set(EventKind)


def test_lines_read_like_the_examples() -> None:
    tree = Tree.from_events(
        [
            event(
                EventKind.SEARCH_STARTED,
                problem="p",
                task="arith",
                strategy="mcts",
                config={},
                budget={},
                seed=0,
                models={},
                reference=None,
                prompt=None,
            )
        ]
    )
    candidates = [
        {"node": 12, "q": 0.61, "prior": 0.3, "visits": 3, "exploration": 0.22, "score": 0.83},
        {"node": 9, "q": 0.7, "prior": 0.2, "visits": 5, "exploration": 0.09, "score": 0.79},
    ]

    def selection(rule: str, options: list[dict], wave: int | None = None, virtual_loss: int = 0) -> str:
        """Narration of node 12 being selected under `rule` from `options`."""
        return narrate(
            event(EventKind.SELECTED, node=12, parent=4, rule=rule, c=1.0, parent_visits=8, candidates=options,
                  wave=wave, virtual_loss=virtual_loss)
        )

    selected = selection("puct", candidates)
    assert "chose node 12 (Q 0.61 + exploration 0.22 = 0.83) over node 9 (0.79)" in selected
    unvisited = [{**candidates[0], "score": 1e9, "exploration": 1e9}, candidates[1]]
    assert "never tried" in selection("uct", unvisited)
    in_wave = selection("puct", candidates, wave=3, virtual_loss=2)
    assert "(parallel wave 3; 2 virtual visits were on it)" in in_wave
    assert "wave" not in selected
    added = narrate(
        event(
            EventKind.NODE_ADDED,
            node=7,
            parent=3,
            text="42 * 3 = 126",
            token_count=5,
            logprob=-1.0,
            terminal=False,
            answer=None,
        )
    )
    assert added == "Node 7 added under node 3: '42 * 3 = 126' (5 tokens)"
    assert (
        narrate(event(EventKind.NODE_SCORED, node=7, source="prm", value=0.912, step_scores=[0.912]))
        == "PRM scored node 7: 0.91"
    )
    back = narrate(
        event(
            EventKind.BACKTRACKED,
            from_node=31,
            to_node=4,
            reason="x",
            breakdown={"chosen": candidates[0], "previous": candidates[1], "leaf_value": 0.4},
        )
    )
    assert back.startswith("Backtracked from node 31 to node 4: node 12 now scores 0.83 vs 0.79 for node 9")
    assert narrate(event(EventKind.FAILED, error="ValueError: bad")) == "Search failed: ValueError: bad"
    chosen = narrate(
        event(
            EventKind.ANSWER_CHOSEN,
            answer="126",
            node=7,
            method="majority",
            table=[{"answer": "126", "votes": 4.0}, {"answer": "125", "votes": 2.0}],
            correct=True,
        ),
        tree,
    )
    assert (
        chosen.startswith("Answer chosen: 126 from node 7 by majority vote (correct)")
        and "126: 4.00" in chosen
    )


def test_a_wrong_answer_chosen_over_a_correct_solution_in_the_tree_says_where_that_solution_is() -> None:
    """Debugging a miss starts with: did the search find it and the answer rule pass it over?"""
    start = {"problem": "p", "task": "arith", "strategy": "self_consistency", "config": {}, "budget": {},
             "seed": 0, "models": {}, "reference": "112", "prompt": None}
    log = [make_event(0, 0.0, EventKind.SEARCH_STARTED, start)]
    for node, answer in ((1, "112"), (2, "113"), (3, "113")):
        added = {"node": node, "parent": 0, "text": f"Answer: {answer}", "token_count": 3, "logprob": -1.0,
                 "terminal": True, "answer": answer}
        log.append(make_event(len(log), 0.0, EventKind.NODE_ADDED, added))
        log.append(make_event(len(log), 0.0, EventKind.TERMINAL_REACHED,
                              {"node": node, "answer": answer, "correct": answer == "112"}))
    tree = Tree.from_events(log)
    wrong = event(EventKind.ANSWER_CHOSEN, answer="113", node=2, method="majority",
                  table=[{"answer": "113", "votes": 2.0}, {"answer": "112", "votes": 1.0}], correct=False)
    assert narrate(wrong, tree).endswith("(wrong); votes 113: 2.00, 112: 1.00; passed over correct node 1")
    assert "passed over" not in narrate(wrong)  # no tree, no claim
    right = event(EventKind.ANSWER_CHOSEN, answer="112", node=1, method="argmax", table=[], correct=True)
    assert "passed over" not in narrate(right, tree)


def test_long_step_text_is_cut_to_one_short_line() -> None:
    text = "Let me think.\n" + "very long reasoning " * 20
    line = narrate(
        event(
            EventKind.NODE_ADDED,
            node=2,
            parent=0,
            text=text,
            token_count=90,
            logprob=-3.0,
            terminal=True,
            answer="7",
        )
    )
    quoted = line.split("'")[1]
    assert MAX_STEP - 5 <= len(quoted) <= MAX_STEP and quoted.endswith("…") and "\n" not in line
    assert "under the problem" in line and "final answer: 7" in line


@pytest.mark.parametrize(
    ("text", "limit", "expected"), [("a\n  b", 80, "a b"), ("xxxxx", 5, "xxxxx"), ("yyyyyyyyy", 4, "yyy…")]
)
def test_short(text: str, limit: int, expected: str) -> None:
    assert short(text, limit) == expected


def test_a_budget_stop_is_narrated_as_a_stop_not_a_finish() -> None:
    from reasoning_viz.narration import _finished

    line = _finished({"reason": "budget max_nodes=1000 reached"}, None)
    assert line.startswith("Search stopped by the node budget (max_nodes = 1000)"), line
    assert _finished({"reason": "completed"}, None) == "Search finished: the strategy ran to completion"


def test_a_node_expanded_again_is_narrated_as_widened_with_how_many_children_it_had() -> None:
    config = {"simulations": 16, "expand_width": 2, "widen_c": 1.0, "max_children": 8, "distinct": False}
    events = run_search(PROBLEM, task="arith", strategy="mcts", models=scripted_models(), config=config).events
    final = Tree.from_events(events)
    lines = narrate_log(events)
    root_lines = [line for e, line in zip(events, lines, strict=True)
                  if e.kind is EventKind.EXPANDED and e.data["node"] == 0]
    assert len(root_lines) > 1
    assert root_lines[0].startswith("Expanded node 0 into 2 next steps")
    assert root_lines[1].startswith("Widened node 0 (it had 2) with 2 more next steps")
    second = next(e for e in events if e.kind is EventKind.EXPANDED and e.data["node"] == 0
                  and e.data["children"][0] != final.nodes[0].children[0])
    assert narrate(second, final).startswith("Widened node 0 (it had 2)")  # the finished tree says the same
    assert narrate(second).startswith("Expanded node 0")  # no tree: nothing to tell them apart
