"""Issue 17's analysis features in a real headless Chromium on the nano pack: the exact checker
beside the PRM (tree colours = summary counts, the inspector's verdict), "Colour by", re-deciding a
finished run, and the in-app help.

Shares the server/browser fixtures of tests/test_browser.py (one app server per module); one
small beam search is grown once (a person pressing Start) and opened by each test from its link.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.test_browser import browser, choose, server, set_number, shot, start, wait_status  # noqa: F401
from tests.test_browser_live import click_node, inspected

pytestmark = [pytest.mark.browser]

#: node id -> the fill colour its marker is drawn with, over every node trace.
NODE_COLOURS = """() => {
  const gd = document.querySelector('.js-plotly-plot'), out = {};
  if (!gd || !gd._fullData) return out;  // not drawn yet
  for (const t of gd._fullData) {
    if (!t.customdata || t.mode !== 'markers') continue;
    const ids = Array.from(t.customdata);
    const colours = Array.isArray(t.marker.color) || ArrayBuffer.isView(t.marker.color)
      ? Array.from(t.marker.color) : ids.map(() => t.marker.color);
    ids.forEach((id, i) => { out[Number(id)] = colours[i]; });
  }
  return out;
}"""
#: The title of every colour bar drawn (a trace shows one when its marker colours are numbers on a scale).
COLOURBAR_TITLES = """() => Array.from(document.querySelector('.js-plotly-plot')._fullData)
  .filter(t => t.marker && t.marker.showscale && t.marker.colorbar)
  .map(t => t.marker.colorbar.title.text)"""
GREEN, RED, PURPLE = "#2ca02c", "#d62728", "#9467bd"
SUMMARY = re.compile(r"PRM agrees on (\d+), missed (\d+) slip\(s\), flagged (\d+) good step\(s\)")


@pytest.fixture(scope="module")
def run_id(browser, server: str) -> str:  # noqa: F811
    """A small finished beam search on the arith example, grown from the Search page."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(server)
    page.get_by_role("button", name=re.compile("Start search")).wait_for(timeout=90_000)
    page.get_by_text("Strategy knobs").first.click()
    set_number(page, "n", 4)
    set_number(page, "beam_width", 2)
    start(page)
    wait_status(page, {"finished"}, timeout=300)  # a few seconds on a quiet machine; CI machines are not
    found = re.search(r"run=(\d+)", page.url).group(1)
    context.close()
    return found


@pytest.fixture
def page(browser, server: str):  # noqa: F811
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def wait_for(check, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    return check()


def test_tree_coloured_by_prm_vs_checker_matches_the_summary_and_the_inspector(page, server, run_id) -> None:  # noqa: F811
    page.goto(f"{server}/?run={run_id}")
    summary = page.get_by_text(re.compile("Exact checker vs PRM")).first
    summary.wait_for(timeout=60_000)
    agree, missed, flagged = map(int, SUMMARY.search(summary.inner_text()).groups())
    assert agree + missed + flagged > 0
    assert wait_for(lambda: page.evaluate(NODE_COLOURS), timeout=60), "the tree was not drawn"
    page.wait_for_timeout(1000)  # the page reruns once after opening a finished run; let it settle
    choose(page, "Colour by", "PRM vs exact checker")
    page.get_by_text(re.compile("green: PRM agrees")).first.wait_for()
    colours = wait_for(lambda: (c := page.evaluate(NODE_COLOURS)) and GREEN in c.values() and c)
    colours = {int(node): colour for node, colour in colours.items()}  # JSON object keys are text
    drawn = [colours[n] for n in sorted(colours)]
    assert (drawn.count(GREEN), drawn.count(RED), drawn.count(PURPLE)) == (agree, missed, flagged), (drawn, summary)
    shot(page, "9-prm-vs-checker")

    step = next(n for n in sorted(colours) if n > 0)
    click_node(page, step)
    assert inspected(page, step), f"clicking node {step} did not open it"
    line = page.locator("p").filter(has_text=re.compile(r"Exact checker: [✓✗]")).first
    line.wait_for()
    assert re.search(r"PRM \d\.\d\d|no PRM score", line.inner_text())

    choose(page, "Colour by", "visits")  # a beam search visits nothing: all hollow, and the page says so
    page.get_by_text(re.compile("No node of this run has a value for “visits”")).first.wait_for()
    assert set(page.evaluate(NODE_COLOURS).values()) <= {"#ffffff", "#9e9e9e"}
    choose(page, "Colour by", "PRM score")
    titles = wait_for(lambda: "PRM score" in (t := page.evaluate(COLOURBAR_TITLES)) and t)
    assert titles == ["PRM score"], titles


def test_redecide_a_finished_run_and_read_the_help(page, server, run_id) -> None:  # noqa: F811
    page.goto(f"{server}/?run={run_id}")
    page.get_by_text(re.compile("Re-decide this run")).first.click()
    would = page.locator("p").filter(has_text=re.compile(r"^Would choose:")).first
    would.wait_for(timeout=60_000)
    assert "same as the run's answer" in would.inner_text()  # the run's own settings give its own answer
    choose(page, "Answer rule", "majority")
    page.get_by_text(re.compile("majority does not read the aggregated step scores")).first.wait_for()
    choose(page, "Answer rule", "argmax")
    choose(page, "Step-score aggregation", "min")
    wait_for(lambda: not page.get_by_text(re.compile("majority does not read")).count())
    assert re.search(r"Would choose: .+ \(node \d+\) — (✅ correct|❌ wrong)", would.inner_text())
    shot(page, "10-redecide")

    page.get_by_text(re.compile("What do PRM, N and M")).first.click()
    page.locator("li").filter(has_text=re.compile(r"^PUCT — AlphaZero's variant")).first.wait_for()
    page.locator("li").filter(has_text=re.compile(r"^N and M — beam search writes N candidate steps")).first.wait_for()
