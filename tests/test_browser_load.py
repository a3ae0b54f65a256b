"""Eight people on one app server at once: each starts a small search; all finish and are recorded.

One headless Chromium with eight browser contexts (eight separate sessions) on one `streamlit run
app.py`, which shares one model set between them (reasoning_viz.resources).  Every search must end
`finished` within a bound (the pages keep polling their live views meanwhile), each page must link
its own saved run, the database must hold exactly those eight (none lost, none twice), and — since
they share the models but each has its own caches (search/scope.py) — the eight runs of the same
settings and seed must have the same event log.
"""

from __future__ import annotations

import re
import time

import pytest

from search.events import comparable
from storage import Store
from tests.test_browser import browser, metric, server, set_number, shot  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser]

SESSIONS = 8
MAX_NODES = 12  # small searches: the whole test stays well under two minutes on two cores
BOUND_S = 240.0  # pressing Start to every search ended (measured: under 30 s on a quiet two-core machine)
ENDED = {"finished", "stopped"}  # stopped: by the node budget, as set


def _open(browser, url: str):  # noqa: F811 - fixture from test_browser
    """A browser context (a person's own browser window: a tab of a shared context would be a
    background tab, whose rendering Chromium throttles) with one page: its own Streamlit session."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.set_default_timeout(180_000)  # a busy machine: eight pages load at once
    page.goto(url, wait_until="commit")  # the eight pages load in parallel
    return context, page


def _set_up(page) -> None:
    page.get_by_role("button", name=re.compile("Start search")).wait_for()
    page.get_by_text("Budget and seed").first.click()
    set_number(page, "max nodes (0 = none)", MAX_NODES)


def test_eight_sessions_search_at_once_and_every_run_is_recorded(browser, server) -> None:  # noqa: F811
    t0 = time.monotonic()
    with Store.open(server.db) as store:  # the server is shared by the browser tests: count only this test's runs
        before = max((r.id for r in store.list_runs(limit=None)), default=0)
    sessions = [_open(browser, server) for _ in range(SESSIONS)]
    pages = [page for _, page in sessions]
    for page in pages:
        _set_up(page)
    print(f"set up {time.monotonic() - t0:.1f}s", flush=True)
    started = time.monotonic()
    for page in pages:  # as close to "at once" as one driver can press eight buttons: a DOM click, with no
        # wait for the page to be idle (each press makes the other pages busier)
        page.get_by_role("button", name=re.compile("Start search")).dispatch_event("click")
    print(f"pressed {time.monotonic() - started:.1f}s")

    ended: list = []
    while time.monotonic() - started < BOUND_S:  # the database says when all have ended: no browser calls
        with Store.open(server.db) as store:
            ended = [r for r in store.list_runs(limit=None) if r.id > before and r.status not in {"running"}]
        if len(ended) >= SESSIONS:
            break
        time.sleep(1.0)
    elapsed = time.monotonic() - started
    print(f"ended {elapsed:.1f}s", flush=True)
    assert len(ended) == SESSIONS, f"after {elapsed:.0f}s only {len(ended)} of {SESSIONS} searches ended"
    for i, page in enumerate(pages):  # and every page shows it, without an exception
        deadline = time.monotonic() + 60
        while metric(page, "status").split("\n")[0] not in ENDED and time.monotonic() < deadline:
            time.sleep(0.5)
        status = metric(page, "status").split("\n")[0]
        assert status in ENDED, f"session {i} shows {status!r}"
        crashed = page.locator('[data-testid="stException"]').all_inner_texts()
        assert not crashed, f"session {i} shows an exception: {crashed[0][:500]}"
    shot(pages[0], "load-8-sessions")
    for page in pages:  # each page points at its own saved run
        page.wait_for_url(re.compile(r"run=\d+"), timeout=30_000)
    linked = sorted(int(re.search(r"run=(\d+)", page.url).group(1)) for page in pages)
    for context, _ in sessions:
        context.close()

    with Store.open(server.db) as store:
        runs = [r for r in store.list_runs(limit=None) if r.id > before]
        assert sorted(r.id for r in runs) == linked, "each page shows its own run; none lost, none doubled"
        assert len(set(linked)) == SESSIONS
        assert all(r.status == "finished" and r.node_count > 1 for r in runs), [(r.id, r.status) for r in runs]
        logs = [comparable(store.events(r.id)) for r in runs]
    assert all(log == logs[0] for log in logs), "same settings and seed on shared models: the same tree"
