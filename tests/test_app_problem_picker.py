"""The Search sidebar's "…or pick one" example box agrees with the Problem box (issue 17): after a
Preset, an opened run, the 🎲 button or typing, it shows the example the box holds or says plainly
that the problem is the user's own; picking an example writes it into the box (AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from reasoning_viz.sidebar_inputs import CUSTOM_PROBLEM
from search.preset_examples import example_for
from search.presets import get_preset
from tests.test_app import app, record, scripted  # noqa: F401 - `scripted` is a fixture


def _agree(at: AppTest) -> str:
    """The Problem box's text, after checking the example box agrees with it."""
    assert not at.exception, at.exception
    task = at.sidebar.selectbox(key="task").value
    problem = at.sidebar.text_area(key=f"problem-{task}").value
    picker = at.sidebar.selectbox(key=f"pick-{task}")
    assert problem.strip(), "the Problem box is empty"
    if picker.value == CUSTOM_PROBLEM:
        assert problem not in picker.options, "an example is in the box, the picker says custom"
    else:
        assert picker.value == problem
    return problem


@pytest.mark.parametrize("preset", ["game24-tot", "countdown-beam", "countdown-mcts"])
def test_a_preset_leaves_the_example_box_agreeing_with_the_problem(scripted: Path, preset: str) -> None:  # noqa: F811
    at = app()
    _agree(at)
    at.sidebar.selectbox(key="preset").set_value(preset).run()
    problem = _agree(at)
    if example_for(get_preset(preset)):
        assert problem == example_for(get_preset(preset))
        assert at.sidebar.selectbox(key="pick-countdown").value == CUSTOM_PROBLEM  # not one of the examples
    _agree(at.run())  # and on the next rerun


def test_typing_drawing_and_picking_keep_the_boxes_agreeing(scripted: Path) -> None:  # noqa: F811
    at = app()
    at.sidebar.text_area(key="problem-arith").set_value("Compute 2 + 3.").run()
    assert _agree(at) == "Compute 2 + 3."
    assert at.sidebar.selectbox(key="pick-arith").value == CUSTOM_PROBLEM
    example = at.sidebar.selectbox(key="pick-arith").options[2]
    at.sidebar.selectbox(key="pick-arith").set_value(example).run()
    assert _agree(at) == example
    next(b for b in at.sidebar.button if "Random problem" in b.label).click()
    _agree(at.run())
    at.sidebar.selectbox(key="pick-arith").set_value(CUSTOM_PROBLEM).run()
    assert _agree(at) == _agree(at.run())  # choosing "custom" changes nothing


def test_an_opened_run_leaves_the_example_box_agreeing(scripted: Path) -> None:  # noqa: F811
    from search import Models
    from search.fakes import ScriptedPolicy, ScriptedPRM

    problem = "Start with 9. Add 4. Multiply by 2. What is the result?"
    run_id = record(scripted, Models(ScriptedPolicy(), ScriptedPRM()), strategy="greedy", problem=problem)
    at = app(run=str(run_id))
    assert _agree(at) == problem

