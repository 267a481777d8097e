"""The pool's dispatcher: most urgent simulation first, whatever the order the plans ask for them."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

from planner.plan import CHAIN, CHAIN_END, GATE, LEAF, Dispatcher


def test_dispatcher_runs_chain_links_before_gates_and_longest_variants_last_shortest() -> None:
    ran: list[str] = []
    release = threading.Event()

    def work(setup: Any, replay: Any, report: Any, reprice: Any) -> Any:
        if setup.name == "busy":
            release.wait(5)
        ran.append(setup.name)
        return setup.name, None

    with ThreadPoolExecutor(1) as pool:
        dispatcher = Dispatcher(pool, 1, work)
        dispatcher.HOLD_SECONDS = 0.05  # a finished link's worker waits this long for the next link
        run = dispatcher.runner(None)

        def ask(name: str, size: int, priority: int) -> Any:
            setup, replay = SimpleNamespace(name=name), SimpleNamespace(size=size, shipped=lambda: None)
            return run(setup, replay, None, priority=priority)  # type: ignore[arg-type]

        first = ask("busy", 1, LEAF)  # takes the only worker while the others queue
        asked = [
            ask("short variant", 10, LEAF),
            ask("long variant", 1000, LEAF),
            ask("static", 10, CHAIN_END),
            ask("configured", 10, GATE),
            ask("probe", 10, CHAIN),
            ask("second probe", 10, CHAIN),
        ]
        release.set()
        assert first.result(5)[0] == "busy"
        assert [future.result(5)[0] for future in asked] == [
            "short variant",
            "long variant",
            "static",
            "configured",
            "probe",
            "second probe",
        ]
    assert ran == ["busy", "probe", "second probe", "static", "configured", "long variant", "short variant"]
