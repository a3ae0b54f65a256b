"""Replay page: pick a saved run, scrub or play through its events with narration."""

from __future__ import annotations

import time

import streamlit as st

from reasoning_viz import resources
from reasoning_viz.inspector import chart_click, pick_node, render_answer, render_inspector, render_moves, render_tree
from reasoning_viz.layout import tidy_layout
from reasoning_viz.links import replay_choice
from reasoning_viz.narration import narrate
from reasoning_viz.panels import colour_by, help_expander, redecide_panel, tree_legend, truth_summary
from reasoning_viz.playback import frame_interval, narrated_node, next_backtrack, playback_position
from reasoning_viz.replay_position import event_link_problem, slider_position
from reasoning_viz.runinfo import answer_label, run_settings, status_word
from reasoning_viz.share import moment_link
from reasoning_viz.tree_view import tree_view
from reasoning_viz.view_panel import fold_button, view_caption, view_options
from search.tasks import TASKS

#: The Search page (app.py registers it as the default page).
SEARCH_PAGE = "reasoning_viz/pages/search.py"

#: Replay rates in events per second.
SPEEDS = {"1 event/s": 1.0, "4 events/s": 4.0, "10 events/s": 10.0, "50 events/s": 50.0}


#: How often a run that is still being recorded is re-read (seconds).
LIVE_POLL_S = 1.0


@st.cache_resource(max_entries=8, show_spinner="Loading the run…")
def load_replay(store_key: str, run_id: int, version: tuple):
    """A run's events indexed for fast seeking, plus its final tree's (stable) layout.

    `version` (`storage.replay.run_version`: id, created, status, event count) is part of the
    cache key, so a run still recording is re-read as it grows and a new run never gets a
    cached copy of an older one.
    """
    from storage.replay import Replay

    replay = Replay.load(resources.run_store(), run_id)
    return replay, tidy_layout(replay.final)


@st.cache_resource(max_entries=8, show_spinner=False)
def chosen_layout(store_key: str, run_id: int, version: tuple, orientation: str):
    """The final tree laid out for a layout a person picked (once per run version and layout, not
    once per playback frame)."""
    replay, _ = load_replay(store_key, run_id, version)
    return tidy_layout(replay.final, orientation=orientation)


def run_picker(store) -> int | None:
    """A filterable list of saved runs; the choice is kept in the URL."""
    with st.sidebar:
        st.header("Saved runs")
        text = st.text_input("Search problem / name / answer")
        task = st.selectbox("Task", ["any", *TASKS])
        status = st.selectbox("Status", ["any", "finished", "cancelled", "failed", "interrupted", "running"])
        runs = store.list_runs(
            text=text or None,
            task=None if task == "any" else task,
            status=None if status == "any" else status,
            limit=200,
        )
    if not runs:
        st.info("No saved runs match. Run a search on the Search page first.")
        return None
    labels = {r.id: f"#{r.id} · {r.name or r.strategy} · {r.task} · {status_word(r.status, r.end_reason)} · "
              + answer_label(r.answer) for r in runs}
    target = replay_choice(st.query_params.get("run"), labels, lambda run: resources.run_exists(store, run))
    if target.message:  # the link's run is missing: say so and open no other run until one is picked
        st.error(target.message + " Pick a run in the list below.")
    elif target.run_id not in labels:  # linked, but hidden by the sidebar's filters
        labels[target.run_id] = f"#{target.run_id} (linked)"
    ids = list(labels)
    index = ids.index(target.run_id) if target.run_id in labels else None
    run_id = st.selectbox("Run", ids, index=index, format_func=lambda i: labels[i], placeholder="Pick a run")
    if run_id is None:
        return None
    if st.query_params.get("run") != str(run_id):
        st.query_params["run"] = str(run_id)
        st.query_params.pop("event", None)
    return run_id


def event_index(total: int) -> int:
    """The slider over events, initialised from the URL (deep links), following a growing run."""
    state = st.session_state
    wanted = st.query_params.get("event")
    if state.get("replay-k") is None and (problem := event_link_problem(wanted, total)):
        st.warning(problem)
    state["replay-k"] = slider_position(state.get("replay-k"), state.get("replay-total"), total, wanted)
    state["replay-total"] = total
    return state["replay-k"]


def _mark_clock() -> None:
    """Restart the playback clock from the current slider position (play, a jump, a new rate)."""
    st.session_state["play-from"] = (st.session_state.get("replay-k", 0), time.monotonic())


def controls(total: int, events) -> None:
    """Start / play-pause / backtrack / speed; play and pause rerun the page so the fragment's
    polling interval follows."""
    cols = st.columns([1, 1, 1, 2])
    playing = st.session_state.get("playing", False)
    if cols[0].button("⏮ start", key="replay-start"):
        st.session_state["replay-k"] = 0
        st.session_state["playing"] = False
        st.rerun()
    if cols[1].button("⏸ pause" if playing else "▶ play", key="replay-play"):
        st.session_state["playing"] = not playing
        if not playing and st.session_state["replay-k"] >= total:
            st.session_state["replay-k"] = 0
        _mark_clock()
        st.rerun()
    if cols[2].button("⏭ backtrack", key="replay-backtrack", help="Jump to the next backtrack."):
        jump = next_backtrack(events, st.session_state["replay-k"])
        if jump is None:
            st.toast("No later backtrack in this run.")
        else:
            st.session_state["replay-k"] = jump
            _mark_clock()
    cols[3].selectbox("speed", list(SPEEDS), key="speed", label_visibility="collapsed", on_change=_mark_clock)


def position_slider(total: int) -> None:
    """The event slider, inside the fragment (it moves while playing)."""
    if st.session_state.get("playing", False):
        # Shown, not bound: a slow frame's stale slider value must not restart the playback clock.
        # No key: each new value is a new widget, so it shows the position.
        st.slider("event", 0, total, value=st.session_state["replay-k"], disabled=True,
                  help="Playing: pause to move the slider.")
    else:
        st.slider("event", 0, total, key="replay-k", help="The tree as it stood after this many events.",
                  on_change=_mark_clock)


def page() -> None:
    st.title("Replay")
    help_expander()
    try:
        store = resources.run_store()
        run_id = run_picker(store)
    except Exception as exc:  # noqa: BLE001 - StorageError and driver errors are shown plainly
        st.error(f"Cannot open the run database: {exc}")
        return
    if run_id is None:
        return
    summary = store.get_run(run_id)
    replay, _ = load_replay(store.key, run_id, run_version(summary))
    run_panel(run_id, replay.final.meta, summary.models)
    event_index(len(replay))
    rate = SPEEDS[st.session_state.get("speed", next(iter(SPEEDS)))]
    live = LIVE_POLL_S if summary.status == "running" else None
    interval = frame_interval(rate) if st.session_state.get("playing") else live
    st.fragment(run_every=interval)(frame)(run_id, store.key)


def run_panel(run_id: int, meta: dict, models: dict) -> None:
    """The run's own settings and models in the sidebar, and the way to re-run it: the Search
    page opened on this run fills its form with them (reasoning_viz/run_models.py)."""
    if not meta:
        return
    with st.sidebar.expander(f"This run (#{run_id})", expanded=False):
        st.json({**run_settings(meta), "models": models}, expanded=1)
        st.page_link(SEARCH_PAGE, label="↻ Open on the Search page to re-run", query_params={"run": str(run_id)},
                     help="The Search page shows this run with its settings and models in the form.")


def run_version(summary) -> tuple:
    from storage.replay import run_version as version

    return version(summary)


def frame(run_id: int, store_key: str) -> None:
    summary = resources.run_store().get_run(run_id)  # re-read each tick: a live run keeps growing
    replay, positions = load_replay(store_key, run_id, run_version(summary))
    total = len(replay)
    event_index(total)
    if st.session_state.get("playing"):
        if st.session_state["replay-k"] >= total:
            st.session_state["playing"] = False
            st.rerun()  # the whole page: the fragment's polling interval must stop with the playback
        else:
            rate = SPEEDS[st.session_state.get("speed", next(iter(SPEEDS)))]
            start, started_at = st.session_state.get("play-from") or (st.session_state["replay-k"], time.monotonic())
            st.session_state["play-from"] = (start, started_at)
            k = playback_position(start, started_at, time.monotonic(), rate, total)
            st.session_state["replay-k"] = max(k, st.session_state["replay-k"] + 1)  # at least one per frame
    controls(total, replay.events)
    position_slider(total)
    k = st.session_state["replay-k"]
    st.query_params["event"] = str(k)
    tree = replay.tree_at(k)
    events = replay.events
    line = narrate(events[k - 1], tree) if k else "The search has not started yet."
    st.text(f"[{k}/{total}] {line}")
    moment_link(run_id, k)
    if not tree.nodes:  # position 0: before the search_started event there is no tree to draw or inspect
        st.info("Position 0 is the moment before the search started: press ▶ play or move the slider.")
        return
    left, right = st.columns([3, 2])
    clicked = chart_click(tree, f"replay-tree-{run_id}")  # before drawing: the rim must show this click
    with right:
        moved = render_moves(tree, events[:k], key=f"replay-moves-{run_id}")
        node_id = pick_node(tree, clicked if clicked is not None else moved, key=f"replay-pick-{run_id}")
    with left:
        painted = colour_by(tree, events[:k], key="colour-by")
        options, orientation = view_options(key="replay-view", tree_key=f"run-{run_id}")
        view = tree_view(tree, options)
        if options.hides:  # the final tree's layout would leave gaps where nodes are hidden
            positions = tidy_layout(tree, view.visible, orientation)
        elif orientation != getattr(positions, "orientation", orientation) and orientation != "auto":
            positions = chosen_layout(store_key, run_id, run_version(summary), orientation)
        render_tree(
            tree,
            positions,
            key=f"replay-tree-{run_id}",
            selected=node_id,
            highlight=narrated_node(events[k - 1]) if k else None,
            paint=painted,
            view=view,
            orientation=orientation,
        )
        view_caption(view, options, key="replay-view", tree_key=f"run-{run_id}")
        tree_legend(painted)
        render_answer(tree)
        truth_summary(tree)
        redecide_panel(tree, key=f"replay-redecide-{run_id}")
    with right:
        fold_button(tree, view, options, node_id, key="replay-view", tree_key=f"run-{run_id}")
        render_inspector(tree, node_id, events[:k])


page()
