"""The Scaling page under AppTest: a sweep run from the sidebar on the scripted models (the page's model
seam), its progress and end, the plot, the runs behind a point as Replay links (wrong ones first), links
to saved sweeps, and bad settings refused with nothing started."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from storage import Store
from tests.test_app import app, scripted, sidebar_button  # noqa: F401 - the fixture is used by name

PAGE = "reasoning_viz/pages/scaling.py"


def metric(at: AppTest, label: str) -> str | None:
    return next((m.value for m in at.metric if m.label == label), None)


def run_until_ended(at: AppTest, timeout: float = 60) -> AppTest:
    deadline = time.monotonic() + timeout
    while metric(at, "status") not in {"finished", "stopped", "failed"} and time.monotonic() < deadline:
        time.sleep(0.1)
        at.run()
    return at


def links(at: AppTest) -> list[tuple[str, str]]:
    """(label, page) of every page link drawn."""
    return [(link.proto.label, link.proto.page) for link in at.get("page_link")]


def test_a_sweep_runs_in_the_background_and_its_points_open_their_runs(scripted: Path) -> None:  # noqa: F811
    at = app(PAGE)
    assert not at.exception and any("No saved sweeps yet" in i.value for i in at.info)
    at.sidebar.number_input(key="sweep-problems").set_value(3)
    at = sidebar_button(at, "Run sweep")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.query_params["sweep"] == "1"
    at = run_until_ended(at)
    assert metric(at, "status") == "finished"
    assert any(c.value == "5 points, each over 3 problems." for c in at.caption)
    chart = at.get("plotly_chart")
    assert len(chart) == 1
    picker = at.selectbox(key="point-pick-1")
    assert picker.options[1].startswith("greedy @ 1: ")
    with Store.open(scripted) as store:
        meta = store.get_sweep(1)["meta"]
        runs = {r.id: r for r in store.list_runs(sweep_id=1, limit=None)}
    assert len(runs) == 15
    greedy = meta["points"][0]
    wrong = [i for i in greedy["run_ids"] if not runs[i].correct]
    assert wrong, "the scripted greedy policy slips on some of the held-out problems"
    at = picker.select_index(1).run()
    assert not at.exception
    shown = links(at)
    assert len(shown) == 3 and all(page == "replay" for _, page in shown)
    order = [int(label.split("run ")[1].split(" ")[0]) for label, _ in shown]
    assert sorted(order) == sorted(greedy["run_ids"])
    assert order[: len(wrong)] == wrong, "wrong answers come first"
    assert all(label.startswith("✗") for label, _ in shown[: len(wrong)])
    assert at.query_params["point"] == "0"
    replay = next(iter(at.get("page_link"))).proto
    assert f"run={wrong[0]}" in replay.query_string


def test_a_link_opens_its_saved_sweep_or_says_it_does_not_exist(scripted: Path) -> None:  # noqa: F811
    at = app(PAGE)
    at.sidebar.text_area(key="sweep-extra").set_value("beam:beam_width=2")
    at.sidebar.multiselect(key="sweep-specs").set_value(["greedy"])
    at.sidebar.number_input(key="sweep-problems").set_value(1)
    at.sidebar.text_input(key="sweep-sizes").set_value("2")
    at = run_until_ended(sidebar_button(at, "Run sweep"))
    assert metric(at, "status") == "finished"
    with Store.open(scripted) as store:
        meta = store.get_sweep(1)["meta"]
    assert [(p["spec"], p["size"]) for p in meta["points"]] == [("greedy", 1), ("beam:beam_width=2", 2)]
    fresh = app(PAGE, sweep="1", point="1")
    assert not fresh.exception
    assert fresh.selectbox(key="sweep-pick").value == 1
    assert fresh.selectbox(key="point-pick-1").value == 1
    assert len(links(fresh)) == 1
    missing = app(PAGE, sweep="99")
    assert any("Sweep 99 does not exist" in w.value for w in missing.warning), (missing.warning, missing.query_params)


@pytest.mark.parametrize(("setup", "message"), [
    (lambda at: at.sidebar.text_input(key="sweep-sizes").set_value("1,two"), "'two'"),
    (lambda at: at.sidebar.multiselect(key="sweep-specs").set_value([]), "at least one strategy"),
    (lambda at: at.sidebar.text_area(key="sweep-extra").set_value("beam:beam_width=99"), "cannot be larger than n"),
    (lambda at: at.sidebar.text_area(key="sweep-extra").set_value("tree_of_nonsense"), "tree_of_nonsense"),
])
def test_bad_settings_are_explained_and_start_nothing(scripted: Path, setup, message: str) -> None:  # noqa: F811
    at = app(PAGE)
    setup(at)
    at = sidebar_button(at, "Run sweep")
    assert not at.exception
    assert any("The sweep was not started" in e.value and message in e.value for e in at.error), \
        [e.value for e in at.error]
    with Store.open(scripted) as store:
        assert store.list_sweeps() == []
