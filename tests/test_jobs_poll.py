"""Live views poll less often while many searches share the server (issue 17: eight sessions at once)."""

from __future__ import annotations

import threading

from reasoning_viz.jobs import JobRegistry, poll_seconds


def test_poll_pace_grows_with_the_running_searches_and_is_bounded() -> None:
    assert [poll_seconds(n) for n in (-1, 0, 1, 2)] == [0.5] * 4
    assert poll_seconds(4) == 1.0
    assert poll_seconds(8) == 2.0
    assert poll_seconds(100) == 2.0
    paces = [poll_seconds(n) for n in range(20)]
    assert paces == sorted(paces)


def test_the_registry_counts_only_running_jobs() -> None:
    registry = JobRegistry()
    release = threading.Event()

    def search(sinks, stop):
        release.wait(10)

    jobs = [registry.start(f"j{i}", search) for i in range(3)]
    assert registry.running() == 3
    release.set()
    for job in jobs:
        job.thread.join(10)
    assert registry.running() == 0
