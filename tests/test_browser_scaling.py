"""The Scaling page in a real headless Chromium: a saved sweep's plot, a click on a point listing its runs
(wrong ones first) and one more click opening a wrong one in Replay; and a sweep started from the page on
the nano pack, with its progress and Stop.

The saved sweep is made before the page opens, by the app's own sweep job on the scripted models
(search/fakes.py) into the server's database: that test is about the page, not the models, and its
points are known in advance.  Shares the server/browser fixtures of tests/test_browser.py.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.test_browser import browser, metric, server, shot  # noqa: F401

pytestmark = [pytest.mark.browser]


@pytest.fixture
def page(browser, server: str):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def saved_sweep(db) -> tuple[int, dict]:
    """A finished sweep (greedy, best_of_n at 1 and 4; 3 held-out arith problems) on the scripted models."""
    from reasoning_viz.jobs import JobRegistry
    from reasoning_viz.scaling import SweepSettings
    from reasoning_viz.sweep_job import start_sweep
    from search.fakes import ScriptedPolicy, ScriptedPRM
    from search.models import Models
    from storage import Store

    settings = SweepSettings(specs=("greedy", "best_of_n"), sizes=(1, 4), problems=3)
    with Store.open(db) as store:
        job = start_sweep(JobRegistry(), store, settings, lambda: (Models(ScriptedPolicy(), ScriptedPRM()), {}))
        job.thread.join(timeout=60)
        sweep = store.get_sweep(job.progress.sweep_id)
        assert sweep["meta"]["status"] == "finished", sweep["meta"]
        correct = {r.id: r.correct for r in store.list_runs(sweep_id=sweep["id"], limit=None)}
    return sweep["id"], {"meta": sweep["meta"], "correct": correct}


def click_marker(page, trace: int, index: int) -> None:
    """Click one marker of the sweep chart (plotly listens on its drag layer, so move there, then click)."""
    marker = page.locator(".js-plotly-plot .scatterlayer .trace").nth(trace).locator(".points path").nth(index)
    box = marker.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)


#: What every select box on the page shows: its text and its input's value.
PICKED = """() => Array.from(document.querySelectorAll('[data-testid="stSelectbox"]')).map(
  box => [box.textContent, ...Array.from(box.querySelectorAll('input')).map(i => i.value)].join(' | '))"""


def test_a_click_on_a_point_lists_its_runs_and_a_wrong_one_opens_in_replay(page, server) -> None:  # noqa: F811
    sweep_id, saved = saved_sweep(server.db)
    greedy = saved["meta"]["points"][0]
    wrong = [i for i in greedy["run_ids"] if not saved["correct"][i]]
    assert greedy["spec"] == "greedy" and wrong, "the scripted greedy policy slips on some held-out problems"
    page.goto(f"{server}/scaling?sweep={sweep_id}", timeout=180_000)
    page.locator(".js-plotly-plot .scatterlayer .trace .points path").first.wait_for(timeout=300_000)
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 2  # one line per strategy
    assert metric(page, "status") == "finished"
    click_marker(page, trace=0, index=0)  # greedy's only point
    heading = page.get_by_role("heading", name=re.compile(r"greedy @ 1: \d right, \d wrong"))
    heading.wait_for(timeout=120_000)
    assert f"{len(wrong)} wrong" in heading.inner_text()
    run_links = page.locator('[data-testid="stPageLink"] a').filter(has_text=re.compile(r"run \d+ · problem"))
    run_links.first.wait_for()
    labels = run_links.all_inner_texts()
    assert len(labels) == 3
    listed = [int(re.search(r"run (\d+)", label).group(1)) for label in labels]
    assert listed[: len(wrong)] == wrong and sorted(listed) == sorted(greedy["run_ids"]), labels
    assert "(reference" in labels[0] and "\\" not in labels[0]  # escaped markdown shows as plain text
    shot(page, "scaling-point-runs")
    run_links.first.click()  # the first wrong answer, one click away
    page.wait_for_url(re.compile(rf"/replay\?run={wrong[0]}\b"))
    want = f"#{wrong[0]} · sweep {sweep_id} · greedy @ 1"
    shown: list[str] = []
    deadline = time.monotonic() + 120
    while not any(want in text for text in shown) and time.monotonic() < deadline:
        time.sleep(0.5)  # Replay's run picker shows the run the link named (its value sits in the box's input)
        shown = page.evaluate(PICKED)
    if not any(want in text for text in shown):
        shot(page, "failure-scaling-replay")
    assert any(want in text for text in shown), shown


def test_a_sweep_started_from_the_page_shows_progress_and_stops(page, server) -> None:  # noqa: F811
    page.goto(f"{server}/scaling", timeout=180_000)
    sizes = page.get_by_label("Sizes (N / simulations)")
    # size 16: the sweep lasts long enough that Stop comes before its end (no Enter: it submits the form)
    sizes.fill("1,4,16")
    page.get_by_role("button", name=re.compile("Run sweep")).click()
    page.wait_for_url(re.compile(r"sweep=\d+"))
    bar = page.locator('[data-testid="stProgress"]').filter(has_text=re.compile(r"\d+ of 21 searches"))
    bar.first.wait_for(timeout=120_000)
    assert metric(page, "status") == "running"
    shot(page, "scaling-running")
    page.get_by_role("button", name=re.compile("Stop")).click()
    deadline = time.monotonic() + 60
    while metric(page, "status") != "stopped" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert metric(page, "status") == "stopped"
    page.get_by_text(re.compile(r"Stopped: \d of 7 points finished")).first.wait_for()
