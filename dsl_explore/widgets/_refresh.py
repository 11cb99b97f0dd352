"""How the dashboard refreshes: a polling thread, and widget updates handed to the kernel.

- :class:`Refresher`: a daemon thread (``dsl_explore-dashboard``) that calls a tick function
  ``hz`` times a second, about once a second once the run has ended, and at once when woken.
- :func:`run_on_ui`: runs widget updates where they do not interleave with the kernel's own
  handling of widget messages (the kernel's event loop), or here when the kernel is busy.

See :mod:`dsl_explore.widgets.dashboard` for why a thread and not an asyncio task.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["IDLE_PERIOD_S", "UI_WAIT_S", "Refresher", "kernel_loop", "run_on_ui"]

IDLE_PERIOD_S = 1.0
"""How often a refresher checks a run that has ended (seconds)."""

UI_WAIT_S = 0.25
"""How long :func:`run_on_ui` waits for the kernel's event loop before running the update here."""


def kernel_loop() -> Any:
    """The running IPython kernel's event loop (tornado ``IOLoop``), or None outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return None
    ip = get_ipython()
    loop = getattr(getattr(ip, "kernel", None), "io_loop", None)
    return loop if callable(getattr(loop, "add_callback", None)) else None


def run_on_ui(
    fn: Callable[[], None],
    lock: Any,
    on_error: Callable[[Exception], None],
    *,
    wait_s: float = UI_WAIT_S,
) -> None:
    """Run ``fn`` (widget updates) where it is safe, holding ``lock``.

    In a kernel, from another thread: on the kernel's event loop (``io_loop.add_callback``) so
    it never interleaves with the kernel's own handling of widget messages from the browser.
    If the loop does not take it within ``wait_s`` the kernel is busy running a cell (and
    handles no widget messages meanwhile): then it runs here, so the view keeps refreshing
    during a blocking cell such as ``run.join()``. Without a kernel, or on the kernel's thread:
    here. ``fn`` runs exactly once and has finished when this returns; an exception raised on
    the loop goes to ``on_error``, one raised here propagates.

    Examples
    --------
    >>> seen = []
    >>> run_on_ui(lambda: seen.append(1), threading.RLock(), print)
    >>> seen
    [1]
    """
    loop = kernel_loop()
    if loop is None or threading.current_thread() is threading.main_thread():
        with lock:
            fn()
        return
    claim_lock = threading.Lock()
    claimed: list[str] = []
    done = threading.Event()

    def claim(who: str) -> bool:
        with claim_lock:
            if claimed:
                return False
            claimed.append(who)
            return True

    def on_loop() -> None:
        if not claim("loop"):
            return
        try:
            with lock:
                fn()
        except Exception as exc:
            on_error(exc)
        finally:
            done.set()

    loop.add_callback(on_loop)
    if done.wait(wait_s):
        return
    if claim("here"):
        with lock:
            fn()
    else:
        done.wait()


class Refresher:
    """A daemon thread calling ``tick()`` ``hz`` times a second until stopped.

    Parameters
    ----------
    tick : callable
        One refresh; an exception goes to ``report`` and the thread goes on.
    report : callable
        Called with an exception of ``tick``.
    hz : float
        Wake-ups per second while the run is live.
    ended : callable
        True once the run has ended: then the thread wakes every :data:`IDLE_PERIOD_S` only.

    Examples
    --------
    >>> import time
    >>> n = []
    >>> r = Refresher(lambda: n.append(1), print, hz=50.0, ended=lambda: False)
    >>> r.ensure(); time.sleep(0.2); r.stop()
    >>> len(n) > 1, r.alive
    (True, False)
    """

    def __init__(self, tick: Callable[[], None], report: Callable[[Exception], None], *,
                 hz: float, ended: Callable[[], bool]) -> None:
        self._tick, self._report, self._ended = tick, report, ended
        self.period = 1.0 / hz
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.stopped = False

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def ensure(self) -> None:
        """Start the thread unless it runs or the refresher was stopped."""
        if self.stopped or self.alive:
            return
        self._thread = threading.Thread(target=self._loop, name="dsl_explore-dashboard",
                                        daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Refresh now rather than at the next period."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (and wait for it, unless called from it)."""
        self.stopped = True
        self._wake.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=timeout)

    def _loop(self) -> None:
        while not self.stopped:
            try:
                self._tick()
            except Exception as exc:  # never silently: the owner shows it
                self._report(exc)
            self._wake.wait(IDLE_PERIOD_S if self._ended() else self.period)
            self._wake.clear()
