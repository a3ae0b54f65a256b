"""Runs page: every saved run with its date, problem, strategy and verdict; rename, tag, export,
link to, or delete one (after a confirmation), and pick runs to compare."""

from __future__ import annotations

import streamlit as st

from reasoning_viz import resources
from reasoning_viz.links import replay_choice
from reasoning_viz.runs_table import (
    base_url,
    delete_refusal,
    export_files,
    run_label,
    run_link,
    run_rows,
    tag_changes,
)
from search.tasks import TASKS

STATUSES = ["any", "finished", "cancelled", "failed", "interrupted", "running"]


def _columns() -> dict:
    """Every column's width, so the table fits a 1280-px window whatever the runs hold: the long
    problem (500 px) pushed name, date and tags out of sight; a cut cell shows in full when clicked."""
    text, number = st.column_config.TextColumn, st.column_config.NumberColumn
    return {  # 806 px in all: the table's room at 1280 px with the sidebar open is about 818
        "run": number(width=40),
        "result": text(width=76),
        "status": text(width=112),
        "strategy": text(width=72),
        "answer": text(width=58),
        "nodes": number(width=48),
        "task": text(width=72),
        "problem": text(width=100, help="The problem (click a cell to read it all)."),
        "name": text(width=70),
        "date (UTC)": text(width=112, help="When the run started (UTC)."),
        "tags": text(width=46),
    }


def filters() -> dict:
    """The sidebar's filters as `Store.list_runs` arguments."""
    with st.sidebar:
        st.header("Filter runs")
        text = st.text_input("Text in name / problem / answer / tag", key="runs-text")
        task = st.selectbox("Task", ["any", *TASKS], key="runs-task")
        status = st.selectbox("Status", STATUSES, key="runs-status")
        correct = st.selectbox("Result", ["any", "correct", "wrong"], key="runs-correct")
    return {
        "text": text.strip() or None,
        "task": None if task == "any" else task,
        "status": None if status == "any" else status,
        "correct": {"any": None, "correct": True, "wrong": False}[correct],
        "limit": 500,
    }


def chosen_run(store, runs) -> int | None:
    """The run the actions apply to: the URL's `?run=` when listed, the newest when the URL names
    none; a link to a run that is missing (or filtered out) says so and selects nothing."""
    ids = [run.id for run in runs]
    target = replay_choice(st.query_params.get("run"), ids, lambda run: resources.run_exists(store, run))
    index = ids.index(target.run_id) if target.run_id in ids else None
    if target.message:
        st.error(target.message + " Pick a run in the list below.")
    elif index is None:
        st.error(f"Run {target.run_id} is hidden by the filters in the sidebar; clear them to act on it.")
    labels = {run.id: run_label(run) for run in runs}
    run_id = st.selectbox("Run", ids, index=index, format_func=labels.__getitem__, key="runs-pick",
                          placeholder="Pick a run")
    if run_id is not None and st.query_params.get("run") != str(run_id):
        st.query_params["run"] = str(run_id)
    return run_id


def compare_link(runs) -> None:
    """Pick two or more runs and open them side by side on the Compare page."""
    labels = {run.id: run_label(run) for run in runs}
    picked = st.multiselect("Compare runs", list(labels), format_func=labels.__getitem__, key="runs-compare")
    if len(picked) >= 2:
        st.markdown(f"[Compare these {len(picked)} runs side by side](/compare?runs={','.join(map(str, picked))})")


def actions(store, run) -> None:
    """Open, link, rename, tag, export and delete one run."""
    base = base_url(getattr(st.context, "url", None))
    st.markdown(f"[Open in Search]({run_link('', run.id)}) · [Replay]({run_link('', run.id, event=run.event_count)})")
    st.caption("Link to this run (the copy button is at the right of the box):")
    st.code(run_link(base, run.id), language=None)
    left, right = st.columns(2)
    with left.form(f"rename-{run.id}"):
        name = st.text_input("Name", value=run.name or "", max_chars=200)
        if st.form_submit_button("Rename"):
            store.rename(run.id, name)
            st.session_state["runs-note"] = f"Run {run.id} renamed."
            st.rerun()
    with right.form(f"tags-{run.id}"):
        text = st.text_input("Tags (comma-separated)", value=", ".join(run.tags))
        if st.form_submit_button("Save tags"):
            add, remove = tag_changes(run.tags, text)
            store.tag(run.id, add=add, remove=remove)
            st.session_state["runs-note"] = f"Tags of run {run.id} saved."
            st.rerun()
    cols = st.columns(3)
    for col, file in zip(cols, export_files(store, run.id), strict=False):
        kind = file.name.rsplit(".", 1)[-1].upper()
        col.download_button(f"⬇ Export {kind}", file.data, file_name=file.name, mime=file.mime,
                            key=f"export-{kind}-{run.id}", help=file.help or None)
    delete_button(store, run, cols[2])


def delete_button(store, run, col) -> None:
    """Delete, only after a second, explicit confirmation; never a run still recording."""
    running = [job.run_id for job in resources.job_registry().all() if job.running and job.run_id is not None]
    if st.session_state.get("confirm-delete") != run.id:
        if col.button("🗑 Delete…", key=f"delete-{run.id}"):
            refusal = delete_refusal(run, running)
            if refusal:
                st.session_state["runs-note"] = refusal
            else:
                st.session_state["confirm-delete"] = run.id
            st.rerun()
        return
    st.warning(f"Delete run {run.id} ({run_label(run)}) with all its events? This cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete it", type="primary", key=f"confirm-delete-{run.id}"):
        st.session_state.pop("confirm-delete", None)
        refusal = delete_refusal(run, running)
        if refusal is None:
            store.delete(run.id)
            st.query_params.pop("run", None)
        st.session_state["runs-note"] = refusal or f"Run {run.id} deleted."
        st.rerun()
    if no.button("Cancel", key=f"cancel-delete-{run.id}"):
        st.session_state.pop("confirm-delete", None)
        st.rerun()


def page() -> None:
    st.title("Runs")
    try:
        store = resources.run_store()
        runs = store.list_runs(**filters())
    except Exception as exc:  # noqa: BLE001 - StorageError and driver errors are shown plainly
        st.error(f"Cannot open the run database: {exc}")
        return
    if note := st.session_state.pop("runs-note", None):
        st.info(note)
    if not runs:
        st.info("No saved runs match. Run a search on the Search page first.")
        return
    st.dataframe(run_rows(runs), hide_index=True, width="stretch", column_config=_columns())
    compare_link(runs)
    run_id = chosen_run(store, runs)
    if run_id is None:
        return
    try:
        actions(store, next(run for run in runs if run.id == run_id))
    except Exception as exc:  # noqa: BLE001 - a run deleted elsewhere, a database error: say so
        st.error(f"Run {run_id}: {exc}")


page()
