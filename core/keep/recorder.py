"""Writes every finished row of a sweep to the store at once, so a crash loses nothing finished."""

from __future__ import annotations

from collections.abc import Callable

from core.keep import store


def recorder(
    results_store: store.Store, machine: dict, settings: dict, label: str = ""
) -> Callable[[dict], None]:
    """An ``on_row`` companion: starts each run on its first row, then adds every row.

    ``machine`` is the fingerprint the caller measured with
    (``core.measure.devices.machine_fingerprint()``); keeping never describes a machine.
    """
    started: set[str] = set()

    def record(row: dict) -> None:
        run_id = row["run_id"]
        if run_id not in started:
            run = dict(workload=row["workload"], machine=machine, settings=settings, label=label)
            try:
                results_store.start_run(run_id, **run)
            except store.StoreError as error:  # the measured row is kept all the same
                raise results_store.rescued(error, row, {"run_id": run_id, **run}) from None
            started.add(run_id)
        results_store.add_row(row)  # a row it cannot store goes to the recovery file

    return record
