"""Runs management and Compare in a real headless Chromium: rename, export (a real download),
delete after a confirmation, a link to a moment, and two runs side by side.

Runs are recorded straight into the app server's database (small searches on the bundled nano
pack, so the README's pictures show real models; no page drives them); the app lists and edits
them like any other.  Screenshots: runs-page.png, compare-page.png.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from storage import Store
from tests.test_app import record
from tests.test_browser import browser, page, server, shot  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser]


def test_rename_export_and_delete_a_run_then_compare_two(page, server) -> None:  # noqa: F811
    from models.bundle import load_models

    nano = load_models(device="cpu")
    small = {"beam": {"n": 4, "beam_width": 2}, "greedy": {}, "mcts": {"simulations": 6, "expand_width": 2}}
    ids = [record(server.db, nano, strategy=s, **config) for s, config in small.items()]
    first, second, doomed = ids
    page.set_default_timeout(120_000)  # the first page of a fresh server loads slowly on a busy machine
    page.goto(f"{server}/runs?run={first}")
    name = page.get_by_label("Name", exact=True)
    name.fill("workshop demo")
    page.get_by_role("button", name="Rename").click()
    page.get_by_text(f"Run {first} renamed.").wait_for()
    with Store.open(server.db) as store:
        assert store.get_run(first).name == "workshop demo"
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("Export JSON")).click()
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert download.value.suggested_filename == f"thoughtscope-run-{first}.json"
    assert exported["run"]["name"] == "workshop demo" and len(exported["events"]) > 3
    assert page.locator("code").filter(has_text=f"/?run={first}").count() == 1  # the run's link, to copy
    shot(page, "runs-page")

    # #17: at 1366 px the runs table showed date, name and tags only after scrolling sideways (at
    # 1280 px, a laptop's width, it still scrolled 82 px)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_label("Text in name / problem / answer / tag").fill("workshop demo")
    page.keyboard.press("Enter")
    page.wait_for_timeout(3000)
    width, shown = page.evaluate(
        """() => { const s = document.querySelector('[data-testid="stDataFrame"] .dvn-scroller');
                   return [s.scrollWidth, s.clientWidth]; }"""
    )
    assert width <= shown + 1, f"the runs table scrolls sideways at 1280 px ({width} px in {shown})"
    page.set_viewport_size({"width": 1500, "height": 1000})

    page.goto(f"{server}/runs?run={doomed}")
    page.get_by_role("button", name=re.compile("Delete")).click()
    page.get_by_text("cannot be undone").wait_for()
    with Store.open(server.db) as store:
        assert store.get_run(doomed).id == doomed, "the first click only asks"
    page.get_by_role("button", name="Yes, delete it").click()
    page.get_by_text(f"Run {doomed} deleted.").wait_for()
    with Store.open(server.db) as store:
        assert doomed not in [r.id for r in store.list_runs(limit=None)]

    page.goto(f"{server}/compare?runs={first},{second}")
    page.get_by_text(re.compile(rf"^Run {second}: ")).wait_for()
    page.locator(".js-plotly-plot").nth(1).wait_for()
    assert page.locator(".js-plotly-plot").count() == 2
    shot(page, "compare-page")


#: Per tree chart: its box and the smallest distance (px) between two node markers' centres.
CHART_BOXES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
  const box = gd.getBoundingClientRect();
  const centres = Array.from(gd.querySelectorAll('.scatterlayer .points path')).map(p => {
    const b = p.getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2]; });
  let closest = Infinity;
  for (let i = 0; i < centres.length; i++) for (let j = i + 1; j < centres.length; j++) {
    const d = Math.hypot(centres[i][0] - centres[j][0], centres[i][1] - centres[j][1]);
    if (d > 0.5) closest = Math.min(closest, d);  // a rim drawn on its node is the same place
  }
  const widest = Math.max(...Array.from(gd.querySelectorAll('.scatterlayer .points path'))
    .map(p => p.getBoundingClientRect().width));
  return {left: box.left, top: box.top, width: box.width, markers: centres.length, closest, widest};
})"""


def test_two_wide_trees_stand_side_by_side_and_stay_readable(page, server) -> None:  # noqa: F811
    """#17: Compare put two wide trees one under the other (the issue asks side by side); a wide
    tree now turns left to right in its column, so both stand side by side at 1366 and 1280 px
    and no two of their node markers overlap (centres at least a drawn marker's width apart, 1 px
    of outline aside)."""
    from search import Models
    from search.fakes import ScriptedPolicy, ScriptedPRM

    models = Models(ScriptedPolicy(), ScriptedPRM())
    wide = [record(server.db, models, strategy="best_of_n", n=24), record(server.db, models, strategy="beam", n=20),
            record(server.db, models, strategy="beam", n=12, beam_width=3)]
    for width in (1366, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{server}/compare?runs={','.join(map(str, wide))}")
        page.locator(".js-plotly-plot").nth(2).wait_for()
        page.wait_for_timeout(1500)
        first, second, third = page.evaluate(CHART_BOXES)
        beside = abs(first["top"] - second["top"]) < 5 and second["left"] > first["left"] + first["width"] / 2
        assert beside, f"{width} px: the trees are not side by side: {first}, {second}"
        for chart in (first, second, third):
            assert chart["markers"] > 20 and chart["closest"] >= max(8, chart["widest"] - 1), (width, chart)
    shot(page, "compare-wide")
