"""What a person sees in the live view, in a real headless Chromium against `streamlit run app.py`:
node positions (live vs a fresh load), click sequences, links, numbers that fit, no fading.

Shares the server/browser fixtures of tests/test_browser.py (one app server per module).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.test_browser import browser, metric, server, set_number, shot, start  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser]

#: Every node marker drawn, by node id, read from plotly's own data (the figure the page shows).
NODE_POSITIONS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const out = {};
  for (const t of gd._fullData) {
    if (!t.customdata || t.mode !== 'markers') continue;
    const ids = Array.from(t.customdata), xs = Array.from(t.x), ys = Array.from(t.y);
    ids.forEach((id, i) => { out[Number(id)] = [xs[i], ys[i]]; });
  }
  const fl = gd._fullLayout;
  return {nodes: out, xrange: fl.xaxis.range, yrange: fl.yaxis.range};
}"""
#: Screen position of one node's marker (plotly's axis maps data to pixels).
NODE_PIXEL = """(id) => {
  const gd = document.querySelector('.js-plotly-plot');
  const fl = gd._fullLayout, box = gd.getBoundingClientRect();
  for (const t of gd._fullData) {
    if (!t.customdata || t.mode !== 'markers') continue;
    const i = Array.from(t.customdata).map(Number).indexOf(id);
    if (i >= 0) return [box.left + fl._size.l + fl.xaxis.l2p(Array.from(t.x)[i]),
                        box.top + fl._size.t + fl.yaxis.l2p(Array.from(t.y)[i])];
  }
  return null;
}"""
#: [drawn opacity, the trace's own marker opacity] of every node marker (a click must not fade any).
MARKER_OPACITIES = """() => {
  const gd = document.querySelector('.js-plotly-plot'), out = [];
  gd.querySelectorAll('.scatterlayer .trace').forEach((el, i) => {
    const t = gd._fullData[i];
    if (!t || !t.customdata) return;
    el.querySelectorAll('.points path').forEach(p => out.push([Number(getComputedStyle(p).opacity), t.marker.opacity]));
  });
  return out;
}"""


@pytest.fixture
def narrow(browser, server: str):  # noqa: F811 - fixture from test_browser
    """A 1300-px wide window: the laptop width where the inspector's numbers used to be cut."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def figure_state(page, timeout: float = 60) -> dict:
    """The tree chart's node positions once it shows every node the "nodes" metric counts (on a
    page without that metric, Replay: once two reads half a second apart agree)."""
    page.locator(".js-plotly-plot").first.wait_for()
    deadline = time.monotonic() + timeout
    last = None
    while True:
        state = page.evaluate(NODE_POSITIONS)
        state["nodes"] = {int(k): tuple(v) for k, v in state["nodes"].items()}
        counted = metric(page, "nodes")
        drawn = len(state["nodes"]) == int(counted) + 1 if counted.isdigit() else state["nodes"] and state == last
        if drawn or time.monotonic() > deadline:
            return state
        last = state
        time.sleep(0.5)


def click_node(page, node_id: int) -> None:
    page.evaluate("() => document.querySelector('.js-plotly-plot').scrollIntoView({block: 'center'})")
    page.wait_for_timeout(200)
    x, y = page.evaluate(NODE_PIXEL, node_id)
    page.mouse.move(x, y)
    page.wait_for_timeout(150)
    x, y = page.evaluate(NODE_PIXEL, node_id)  # where it is now: a growing tree redraws twice a second
    page.mouse.click(x, y)


def inspected(page, node_id: int, timeout: float = 20) -> bool:
    """Wait until the inspector heading names `node_id`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        heads = page.locator("h4").filter(has_text=re.compile(r"^Node \d+")).all_inner_texts()
        if heads and re.match(rf"Node {node_id}\b", heads[0].strip()):
            return True
        time.sleep(0.2)
    return False


def done(page, timeout: float = 420) -> str:
    """Wait until the status metric leaves starting/running; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = metric(page, "status")
        if status and status not in ("starting", "running"):
            return status
        time.sleep(0.3)
    shot(page, "failure-live-status")
    raise AssertionError(f"the search did not end: {metric(page, 'status')!r}")


def click_sequence(page, nodes: list[int]) -> None:
    for node_id in nodes:
        click_node(page, node_id)
        assert inspected(page, node_id), f"clicking node {node_id} did not open it (sequence {nodes})"


def test_live_tree_equals_a_fresh_load_and_every_click_counts(narrow, server: str) -> None:  # noqa: F811
    page = narrow
    page.goto(server)
    page.get_by_role("button", name=re.compile("Start search")).wait_for(timeout=90_000)
    page.get_by_text("Strategy knobs").first.click()
    set_number(page, "n", 4)  # a small, deep tree: scored, pruned and unscored nodes, quickly
    set_number(page, "beam_width", 2)
    page.get_by_text("Budget and seed").first.click()
    set_number(page, "max nodes (0 = none)", 9)
    start(page)
    status = done(page)
    page.wait_for_timeout(2500)  # the page reruns once when the search ends
    live = figure_state(page)
    run_id = re.search(r"run=(\d+)", page.url).group(1)
    shot(page, "live-finished")
    xs = [x for x, _ in live["nodes"].values()]
    lo, hi = sorted(live["xrange"])
    assert lo <= min(xs) and max(xs) <= hi, f"nodes outside the visible range {live['xrange']}"
    cut = page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-testid="stMetricValue"] div'))
             .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""
    )
    assert not cut, f"numbers cut off at 1300 px: {cut}"
    overlap = page.evaluate(
        """() => { const gd = document.querySelector('.js-plotly-plot');
             const a = gd.querySelector('.modebar').getBoundingClientRect();
             const b = gd.querySelector('.cbtitle').getBoundingClientRect();
             return [a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom, b.width > 0]; }"""
    )
    assert overlap == [False, True], "plotly's toolbar covers the colour bar's title"

    order = sorted(live["nodes"])
    assert len(order) >= 6, live
    click_sequence(page, [order[1], order[len(order) // 2], order[-1], order[2]])  # every second was lost
    opacities = page.evaluate(MARKER_OPACITIES)
    # plotly dims unselected points with a CSS opacity; a trace's own fade (pruned) is in its colours
    assert opacities and all(drawn == 1 for drawn, _ in opacities), f"a click faded nodes: {opacities}"
    shot(page, "live-clicked")

    page.goto(f"{server}/?run={run_id}")
    assert done(page) == status
    assert figure_state(page)["nodes"] == live["nodes"], "the live tree is laid out differently from a fresh load"

    page.goto(f"{server}/replay?run={run_id}")
    page.get_by_text(re.compile(r"^\[\d+/\d+\]")).first.wait_for()
    figure_state(page)
    click_sequence(page, [order[1], order[-1]])
    page.goto(f"{server}/replay?run=99999")
    page.get_by_text("Run 99999 does not exist").first.wait_for()


def test_clicks_on_a_growing_tree_count_and_hold_the_view_keeps_it_still(narrow, server: str) -> None:  # noqa: F811
    """#17: while a fast MCTS grew the tree, 7 of 10 clicks on nodes were ignored: every poll drew
    a new figure and the click arrived for the chart of one poll ago.  A click on the growing tree
    now opens the node under the pointer and turns on "Hold the view", which keeps drawing the tree
    as it stood (the nodes stop moving under the pointer) while the search and its counters go on:
    every click opens its node; turning it off catches up, and the old click does not hold again."""
    from tests.test_browser import choose, reveal, wait_status
    from tests.test_browser_bigtree import chart
    from tests.test_browser_bigtree import click_node as click_marker

    page = narrow
    page.goto(server)
    page.get_by_role("button", name=re.compile("Start search")).wait_for(timeout=90_000)
    choose(page, "Task", "countdown")  # an arith MCTS stops growing after ~600 nodes and may end mid-test
    choose(page, "Strategy", "mcts")
    reveal(page, "Strategy knobs", "simulations")
    set_number(page, "simulations", 5000)
    set_number(page, "widen_below", 0.95)  # keeps widening: the search runs until Stop
    reveal(page, "Budget and seed", "max nodes (0 = none)")
    set_number(page, "max nodes (0 = none)", 0)
    start(page)
    wait_status(page, {"running"})
    # a click on the growing tree opens the node under the pointer and holds the view (every poll
    # drew a new chart: clicks arrived for the chart of one poll ago and were lost, 7 in 10)
    page.locator(".js-plotly-plot").first.wait_for()
    # a redraw between the pointer's last move and the click still loses the click, about 1 in 16 on
    # this fast MCTS (plotly clicks the point it last hovered); a person clicks again
    opened = False
    for _ in range(2):
        click_node(page, 1)
        if opened := inspected(page, 1, timeout=10):
            break
    assert opened, "clicking node 1 on the growing tree did not open it, twice"
    held = page.get_by_text(re.compile(r"^Held at \d+ nodes"))
    held.first.wait_for()
    assert page.get_by_role("switch", name=re.compile("Hold the view")).is_checked(), "the click did not hold the view"
    page.get_by_text("Hold the view").first.click()  # off: the tree catches up with the search
    held.first.wait_for(state="detached")
    page.get_by_text("Hold the view").first.click()
    held.first.wait_for()
    at = held.first.inner_text().split()[2]
    state = chart(page, int(at) + 1)  # the root is drawn, not counted
    ids = sorted(marker["id"] for marker in state["markers"])
    assert len(ids) == int(at) + 1 and len(ids) >= 4, (at, ids)
    for node_id in (ids[1], ids[len(ids) // 2], ids[-1], ids[2]):
        click_marker(page, state, node_id)
        assert inspected(page, node_id), f"clicking node {node_id} on the held tree did not open it"
    still_held = held.all_inner_texts()  # empty only if the search ended meanwhile
    assert not still_held or still_held[0].split()[2] == at, "the held tree moved on"
    assert int(metric(page, "nodes")) > int(at), "the search did not go on while the view was held"
    shot(page, "live-held")
    if metric(page, "status") == "running":
        page.get_by_text("Hold the view").first.click()
        held.first.wait_for(state="detached")
        page.get_by_role("button", name=re.compile("⏹ Stop")).click()
    wait_status(page, {"cancelled", "finished"}, timeout=60)


#: Tables that scroll sideways ([headers, px hidden]) and help icons touching their labels ([label, gap px]).
CRAMPED = """() => ({
  tables: Array.from(document.querySelectorAll('[data-testid="stDataFrame"]')).map(g => {
    const s = g.querySelector('.dvn-scroller');
    const headers = Array.from(g.querySelectorAll('th')).map(e => e.innerText).join('|');
    return [headers, s ? s.scrollWidth - s.clientWidth : 0];
  }).filter(([, hidden]) => hidden > 1),
  labels: Array.from(document.querySelectorAll('[data-testid="stMain"] [data-testid="stWidgetLabel"]')).map(l => {
    const p = l.querySelector('p');
    const icon = l.querySelector('[data-testid="stTooltipIcon"], [data-testid="stTooltipHoverTarget"]');
    if (!p || !icon) return null;
    return [p.innerText, Math.round(icon.getBoundingClientRect().left - p.getBoundingClientRect().right)];
  }).filter(x => x && x[1] < 4),
})"""


def test_at_1280_px_the_inspector_and_the_runs_table_do_not_scroll_sideways(browser, server: str) -> None:  # noqa: F811
    """#17 at a laptop's 1280 px (sidebar open): the backtracks table scrolled 380 px sideways in the
    320-px inspector (its reason had no width), "Why this branch" had 13 columns, "Fold at depth"
    touched its help icon; the path table's numbers pushed the step text out of view."""
    from search.fakes import ScriptedPolicy, ScriptedPRM
    from search.models import Models
    from tests.test_app import record

    run_id = record(server.db, Models(ScriptedPolicy(), ScriptedPRM()), strategy="mcts")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{server}/?run={run_id}")
        figure_state(page)
        click_node(page, 1)
        assert inspected(page, 1)
        page.get_by_text("Why this branch").first.wait_for()
        page.wait_for_timeout(1500)  # the tables settle their widths
        cramped = page.evaluate(CRAMPED)
        # the path table may scroll, but only past its step text (second, 190 px): the numbers after it
        cramped["tables"] = [t for t in cramped["tables"] if not t[0].startswith("step|text|")]
        assert cramped == {"tables": [], "labels": []}, cramped
        shot(page, "inspector-1280")
    finally:
        context.close()
