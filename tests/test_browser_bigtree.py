"""Big trees in a real headless Chromium (issue 17): a 1,000-node run is readable (the chart takes the
page's width and height, its nodes spread over both instead of a thin strip, no two nodes overlap),
folds show "+k hidden", filters and search work, and a click opens the node it hit, by id, on the
Search page and in Replay.

The run is recorded straight into the app server's database with the scripted models (a second);
the server itself runs the nano pack (tests/test_browser.py's fixture).
"""

from __future__ import annotations

import contextlib
import re
import time

import pytest

from search import Budget, Tree, run_search
from storage import Store
from tests.engine_cases import scripted_models
from tests.test_browser import browser, choose, page, server, shot  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser]

PROBLEM = "Start with 17. Add 25. Multiply by 3. Subtract 14. Add 6. Subtract 9. Add 4. Subtract 2. What is the result?"

#: Every node marker on the tree chart: id, trace and point index, centre (page px), diameter (px).
MARKERS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const fl = gd._fullLayout, box = gd.getBoundingClientRect(), out = [];
  gd._fullData.forEach((t, ti) => {
    if (!t.customdata || t.mode !== 'markers') return;
    const xs = Array.from(t.x), ys = Array.from(t.y), sizes = t.marker.size;
    Array.from(t.customdata).forEach((id, i) => out.push({
      id: Number(id), trace: ti, point: i,
      x: box.left + window.scrollX + fl._size.l + fl.xaxis.l2p(xs[i]),
      y: box.top + window.scrollY + fl._size.t + fl.yaxis.l2p(ys[i]),
      size: Array.isArray(sizes) || ArrayBuffer.isView(sizes) ? sizes[i] : sizes}));
  });
  return {markers: out, width: box.width, height: box.height,
          texts: Array.from(gd.querySelectorAll('.textpoint text')).map(e => e.textContent)};
}"""
#: The share of the plot area's 56-px cells that hold a marker (the markers from MARKERS).
CELLS_USED = """(ms) => {
  const gd = document.querySelector('.js-plotly-plot'), fl = gd._fullLayout, box = gd.getBoundingClientRect();
  const w = fl._size.w, h = fl._size.h, nx = Math.max(1, Math.round(w / 56)), ny = Math.max(1, Math.round(h / 56));
  const left = box.left + window.scrollX + fl._size.l, top = box.top + window.scrollY + fl._size.t, used = new Set();
  ms.forEach(m => used.add(Math.min(nx - 1, Math.floor((m.x - left) / w * nx)) + ',' +
                           Math.min(ny - 1, Math.floor((m.y - top) / h * ny))));
  return used.size / (nx * ny);
}"""
#: The closest two marker centres, and the biggest marker (px).
CLOSEST = """(ms) => {
  let best = Infinity;
  for (let i = 0; i < ms.length; i++) for (let j = i + 1; j < ms.length; j++) {
    const d = Math.hypot(ms[i].x - ms[j].x, ms[i].y - ms[j].y);
    if (d < best) best = d;
  }
  return best;
}"""


#: Pairs of "+k hidden" labels whose boxes overlap on screen (they would read "+9+16+48 hidden").
LABEL_OVERLAPS = """() => {
  const boxes = Array.from(document.querySelectorAll('.js-plotly-plot .textpoint text'))
    .filter(e => e.textContent).map(e => [e.textContent, e.getBoundingClientRect()]);
  const out = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [ta, a] = boxes[i], [tb, b] = boxes[j];
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) out.push(ta + ' / ' + tb);
  }
  return out;
}"""


def record_big(db) -> tuple[int, int]:
    """A 1,001-node beam search (scripted models) saved in the app's database: (run id, nodes)."""
    with Store.open(db) as store:
        recorder = store.recorder(name="big beam")
        result = run_search(
            PROBLEM, task="arith", strategy="beam", models=scripted_models(),
            config={"n": 128, "beam_width": 8}, budget=Budget(max_nodes=1000), sinks=[recorder],
        )
        recorder.close()
        return recorder.run_id, len(result.tree)


def chart(tab, count: int | None = None, timeout: float = 60) -> dict:
    """The tree chart's markers once it draws `count` of them (any count when None)."""
    try:
        tab.locator(".js-plotly-plot").first.wait_for(timeout=timeout * 1000)
    except Exception:
        with contextlib.suppress(Exception):  # a starved browser may not even take the picture
            shot(tab, "failure-bigtree")
        raise
    deadline = time.monotonic() + timeout
    while True:
        state = tab.evaluate(MARKERS)
        if (state["markers"] and (count is None or len(state["markers"]) == count)) or time.monotonic() > deadline:
            return state
        time.sleep(0.3)


#: Scroll marker (trace index, point index) into view and return its centre in the viewport (px).
#: The trace is found by plotly's own index on its DOM node, not by DOM position.
SHOW_MARKER = """([ti, i]) => {
  const gd = document.querySelector('.js-plotly-plot');
  const tr = Array.from(gd.querySelectorAll('.scatterlayer .trace'))
    .find(e => e.__data__ && e.__data__[0] && e.__data__[0].trace.index === ti);
  if (!tr) return null;
  const p = tr.querySelectorAll('.points path')[i];
  if (!p) return null;
  p.scrollIntoView({block: 'center', inline: 'center'});
  const b = p.getBoundingClientRect();
  return {x: b.x + b.width / 2, y: b.y + b.height / 2};
}"""


def click_node(tab, state: dict, node_id: int) -> None:
    """Scroll the node's marker into view and click it where a person would."""
    marker = next(m for m in state["markers"] if m["id"] == node_id)
    centre = None
    deadline = time.monotonic() + 30
    while centre is None and time.monotonic() < deadline:
        centre = tab.evaluate(SHOW_MARKER, [marker["trace"], marker["point"]])
        tab.wait_for_timeout(300)
    assert centre is not None, f"node {node_id}'s marker is not drawn"
    centre = tab.evaluate(SHOW_MARKER, [marker["trace"], marker["point"]])  # after any scroll settled
    tab.mouse.move(centre["x"], centre["y"])
    tab.wait_for_timeout(150)
    tab.mouse.click(centre["x"], centre["y"])


def inspected(tab, node_id: int, timeout: float = 30) -> None:
    heading = tab.locator("h4").filter(has_text=re.compile(rf"^Node {node_id}\b"))
    heading.first.wait_for(timeout=timeout * 1000)


def test_a_thousand_node_tree_is_readable_foldable_and_clickable(page, server) -> None:  # noqa: F811
    run_id, total = record_big(server.db)
    page.set_default_timeout(60_000)
    page.goto(f"{server}/?run={run_id}")
    state = chart(page, total, timeout=180)  # the first page of a fresh server loads slowly on a busy machine
    assert len(state["markers"]) == total, f"{len(state['markers'])} of {total} nodes drawn"
    column = page.locator('[data-testid="stColumn"]').filter(has=page.locator(".js-plotly-plot")).first
    assert state["width"] >= 0.95 * column.bounding_box()["width"], "the chart does not use the page's width"
    assert 800 < state["height"] < 2000, f"a {state['height']}-px chart for {total} nodes (one row per leaf: 13,344)"
    used = page.evaluate(CELLS_USED, state["markers"])
    assert used > 0.5, f"the nodes hold {used:.0%} of the chart's cells: a strip, not the page"
    gap = page.evaluate(CLOSEST, state["markers"])
    biggest = max(m["size"] for m in state["markers"])
    assert gap >= biggest, f"nodes overlap: two centres {gap:.1f} px apart, markers up to {biggest} px"

    # a person may ask for top-down: it staggers the wide depths instead of overlapping (#17)
    choose(page, "Layout", "top-down")
    page.wait_for_timeout(1000)
    upright = chart(page, total)
    gap = page.evaluate(CLOSEST, upright["markers"])
    biggest = max(m["size"] for m in upright["markers"])
    assert gap >= biggest, f"top-down: two centres {gap:.1f} px apart, markers up to {biggest} px"
    shot(page, "bigtree-top-down")
    choose(page, "Layout", "auto")
    page.wait_for_timeout(1000)
    state = chart(page, total)

    # fold the busiest depth-1 subtree by its inspector button; the marker says how many it hides
    with Store.open(server.db) as store:
        tree = Tree.from_events(store.events(run_id))
    target = max(tree.root.children, key=lambda c: len(tree.nodes[c].children))
    click_node(page, state, target)
    inspected(page, target)
    page.get_by_role("button", name=re.compile(rf"Fold node {target}'s subtree")).click()
    page.get_by_role("button", name=re.compile(rf"Unfold node {target} \(\+[\d,]+ hidden\)")).wait_for()
    folded = chart(page, None)
    deadline = time.monotonic() + 30
    while len(folded["markers"]) == total and time.monotonic() < deadline:
        folded = chart(page, None)
    hidden = total - len(folded["markers"])
    assert hidden > 10 and f"+{hidden:,} hidden" in folded["texts"], folded["texts"][:5]

    # folded at depth 2, the rest of the tree still spreads over the chart (Reingold-Tilford: 16%)
    depth = page.get_by_role("spinbutton", name="Fold at depth")
    depth.fill("2")
    depth.press("Enter")
    shallow = sum(1 for n in tree if n.depth <= 2 and n.parent != target)  # the target stays folded
    folded = chart(page, shallow)
    assert len(folded["markers"]) == shallow
    used = page.evaluate(CELLS_USED, folded["markers"])
    assert used > 0.3, f"folded at depth 2 the nodes hold {used:.0%} of the chart's cells"
    assert page.evaluate(CLOSEST, folded["markers"]) >= max(m["size"] for m in folded["markers"])
    shot(page, "bigtree-folded")

    # a click on a node drawn after the fold opens that node, by id, not by position
    later = max(m["id"] for m in folded["markers"])
    click_node(page, folded, later)
    inspected(page, later)

    # hide pruned and find: the counts are said
    page.get_by_text("Hide pruned").first.click()
    page.get_by_text(re.compile(r"^Showing [\d,]+ of [\d,]+ nodes")).first.wait_for()
    find = page.get_by_role("textbox", name="Find in steps")
    find.fill("Answer")
    find.press("Enter")
    page.get_by_text(re.compile(r"[\d,]+ nodes match “Answer”")).first.wait_for()

    # Replay: only the chosen path and its siblings, and a click there opens its node
    page.goto(f"{server}/replay?run={run_id}")
    page.get_by_text(re.compile(r"^\[\d+/\d+\]")).first.wait_for()
    page.get_by_text("Chosen path only").first.click()
    path = [n.id for n in tree.path(tree.chosen["node"])]
    expected = set(path) | {c for p in path for c in tree.nodes[p].children}
    replayed = chart(page, len(expected))
    assert {m["id"] for m in replayed["markers"]} == expected
    click_node(page, replayed, tree.chosen["node"])
    inspected(page, tree.chosen["node"])
    shot(page, "bigtree-replay-chosen-path")
    for layout in ("left to right", "top-down"):  # top-down: each row of siblings holds "+k hidden" side by side
        choose(page, "Layout", layout)
        replayed = chart(page, len(expected))
        page.wait_for_timeout(500)
        overlaps = page.evaluate(LABEL_OVERLAPS)
        assert not overlaps, f"{layout}: fold labels run together: {overlaps[:5]}"
        width = max(m["x"] for m in replayed["markers"]) - min(m["x"] for m in replayed["markers"])
        assert width > 0.5 * replayed["width"], f"{layout}: the tree spans {width:.0f} of {replayed['width']:.0f} px"
    shot(page, "bigtree-replay-chosen-path-top-down")
