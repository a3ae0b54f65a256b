"""What a person sees in the live view, in a real headless Chromium against `streamlit run app.py`:
node positions (live vs a fresh load), click sequences, links, numbers that fit, no fading.

Shares the server/browser fixtures of tests/test_browser.py (one app server per module).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.test_browser import browser, server, shot, start, wait_status  # noqa: F401 - fixtures

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
#: Opacity plotly gave each drawn node marker (a click must not fade the others).
MARKER_OPACITIES = """() => Array.from(document.querySelectorAll(
  '.js-plotly-plot .scatterlayer .trace:last-child .points path')).map(p => Number(getComputedStyle(p).opacity))"""


@pytest.fixture
def narrow(browser, server: str):  # noqa: F811 - fixture from test_browser
    """A 1300-px wide window: the laptop width where the inspector's numbers used to be cut."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def figure_state(page) -> dict:
    page.locator(".js-plotly-plot").first.wait_for()
    state = page.evaluate(NODE_POSITIONS)
    state["nodes"] = {int(k): tuple(v) for k, v in state["nodes"].items()}
    return state


def click_node(page, node_id: int) -> None:
    x, y = page.evaluate(NODE_PIXEL, node_id)
    page.mouse.move(x, y)
    page.wait_for_timeout(150)
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


def test_live_tree_equals_a_fresh_load_and_every_click_counts(narrow, server: str) -> None:  # noqa: F811
    page = narrow
    page.goto(server)
    start(page)
    wait_status(page, {"finished"}, timeout=180)
    page.wait_for_timeout(2500)  # the page reruns once when the search ends
    live = figure_state(page)
    run_id = re.search(r"run=(\d+)", page.url).group(1)
    shot(page, "live-finished")

    xs = [x for x, _ in live["nodes"].values()]
    lo, hi = sorted(live["xrange"])
    assert lo <= min(xs) and max(xs) <= hi, f"nodes outside the visible range {live['xrange']}"
    # every second click used to be ignored: a sequence of different nodes, each must open
    order = sorted(live["nodes"])
    picks = [order[1], order[len(order) // 3], order[len(order) // 2], order[-1]]
    for node_id in picks:
        click_node(page, node_id)
        assert inspected(page, node_id), f"clicking node {node_id} did not open it (clicked {picks})"
    opacities = page.evaluate(MARKER_OPACITIES)
    assert opacities and min(opacities) == 1.0, f"a click faded the tree: {sorted(set(opacities))}"
    # the inspector's numbers are whole at 1300 px (no "0…")
    cut = page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-testid="stMetricValue"] div, '
             + '[data-testid="stMetricValue"]')).filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""
    )
    assert not cut, f"numbers cut off: {cut}"
    shot(page, "live-clicked")

    fresh_page = page.context.new_page()
    fresh_page.goto(f"{server}/?run={run_id}")
    wait_status(fresh_page, {"finished"})
    fresh = figure_state(fresh_page)
    assert live["nodes"] == fresh["nodes"], "the live tree is laid out differently from a fresh load"
