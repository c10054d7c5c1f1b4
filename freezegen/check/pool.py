"""Worker processes that survive a crash: a worker that dies is reported for the item it held.

``ProcessPoolExecutor`` cannot say which item killed a worker (a SIGSEGV in a native parser
breaks the whole pool, and every pending item fails with BrokenProcessPool). Here each worker
takes one item at a time over its own pipe, so the parent always knows what a dead worker was
doing: that item gets ``crashed(item, exitcode)``, a fresh worker takes its place, and the run
goes on. Results come back in the order of the items.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_isolated(
    func: Callable[[Item], Result],
    items: Sequence[Item],
    jobs: int,
    crashed: Callable[[Item, int | None], Result],
) -> list[Result]:
    """``[func(item) for item in items]`` in up to ``jobs`` worker processes.

    An item whose worker dies (a signal, ``os._exit``, the memory killer) gets
    ``crashed(item, exitcode)`` (a negative exitcode is the signal number) and the other items
    are unaffected. An exception that ``func`` raises is raised here, as it would be in-process.
    ``func`` and the items must be picklable (module-level functions and plain data).
    """
    results: list[Any] = [None] * len(items)
    todo = deque(range(len(items)))
    workers: dict[Connection, tuple[multiprocessing.process.BaseProcess, int]] = {}
    context = multiprocessing.get_context()

    def assign(conn: Connection, process: multiprocessing.process.BaseProcess) -> None:
        if not todo:
            conn.send(None)
            conn.close()
            process.join()
            return
        index = todo.popleft()
        conn.send((func, items[index]))
        workers[conn] = (process, index)

    def start() -> None:
        conn, child = context.Pipe()
        process = context.Process(target=_serve, args=(child,), daemon=True)
        process.start()
        child.close()  # the worker holds the only other end: its death reads as EOF here
        assign(conn, process)

    try:
        for _ in range(min(jobs, len(items))):
            start()
        while workers:
            for conn in wait(list(workers)):
                assert isinstance(conn, Connection)
                process, index = workers.pop(conn)
                try:
                    ok, value = conn.recv()
                except (EOFError, OSError):  # the worker died holding this item
                    conn.close()
                    process.join()
                    results[index] = crashed(items[index], process.exitcode)
                    if todo:
                        start()
                    continue
                if not ok:
                    raise value
                results[index] = value
                assign(conn, process)
    finally:
        for conn, (process, _) in workers.items():
            process.kill()
            process.join()
            conn.close()
    return results


def _serve(conn: Connection) -> None:
    """A worker: run each ``(func, item)`` received until ``None``, answering ``(ok, value)``."""
    while (task := conn.recv()) is not None:
        func, item = task
        try:
            answer = (True, func(item))
        except Exception as exc:  # sent back and raised in the parent, as in-process
            answer = (False, exc)
        conn.send(answer)
