"""Run a loop in a background thread and steer it: start, pause, resume, stop, join.

:class:`BackgroundRun` is the engine part of :class:`~dsl_explore.training.TrainingRun`; it
knows nothing about training. A subclass provides the loop (:meth:`BackgroundRun._loop`), which
calls :meth:`BackgroundRun._between_steps` between two steps, and the hooks that flush and save
at the end. Work other threads need done *between* two steps (a checkpoint while training) goes
through :meth:`BackgroundRun._in_worker`.

A failure in the thread is kept in :attr:`BackgroundRun.error` and re-raised in the caller as
:class:`~dsl_explore.training.TrainingError` by :meth:`~BackgroundRun.join` /
:meth:`~BackgroundRun.raise_if_failed`, chained to the original exception.

Signals. :meth:`BackgroundRun.run` called from the main thread treats SIGTERM and SIGHUP (what
job schedulers, ``torchrun`` and a closed terminal send) like Ctrl-C: the current step
finishes, the final files are written (:meth:`BackgroundRun._save_final`), and
:class:`Terminated` is raised, a :class:`SystemExit` whose code is ``128 + signal number``
(143 for SIGTERM, 129 for SIGHUP, as shells report them), so an uncaught one ends a script with
that status. A second signal abandons the step at once (the files are still written).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from dsl_explore.training.errors import TrainingError

__all__ = ["TERMINATE_SIGNALS", "BackgroundRun", "Terminated"]

_R = TypeVar("_R", bound="BackgroundRun")

TERMINATE_SIGNALS = ("SIGTERM", "SIGHUP")
"""The signals :meth:`BackgroundRun.run` handles like Ctrl-C (where the platform has them)."""


class Terminated(SystemExit):
    """A run stopped by SIGTERM or SIGHUP after writing its files; ``code`` is ``128 + signum``.

    Attributes
    ----------
    signum : int
        The signal received.
    step : int
        The steps completed when the run stopped.

    Examples
    --------
    >>> import signal
    >>> exc = Terminated(signal.SIGTERM, step=12)
    >>> exc.code, str(exc)
    (143, 'terminated by SIGTERM at step 12')
    """

    def __init__(self, signum: int, *, step: int) -> None:
        super().__init__(128 + int(signum))
        self.signum = int(signum)
        self.step = int(step)

    def __str__(self) -> str:
        try:
            name = signal.Signals(self.signum).name
        except ValueError:
            name = f"signal {self.signum}"
        return f"terminated by {name} at step {self.step}"


@contextlib.contextmanager
def _signals_handled(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Install ``handler`` for :data:`TERMINATE_SIGNALS` while the block runs (main thread only;
    elsewhere Python cannot handle signals and nothing changes); restore the old handlers."""
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in TERMINATE_SIGNALS:
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            with contextlib.suppress(ValueError, OSError):
                old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in old.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, signal.SIG_DFL if h is None else h)


class BackgroundRun:
    """A loop that can run in a daemon thread (or the caller's) and be paused and stopped.

    Attributes
    ----------
    state : str
        ``"created"``, ``"running"``, ``"paused"``, ``"stopped"``, ``"finished"`` or
        ``"failed"``.
    error : BaseException or None
        The exception that ended the thread, if any.
    """

    step: int

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stop_flag = False
        self._pause_flag = False
        self._paused = False
        self._requests: list[tuple[Callable[[], Any], dict[str, Any]]] = []
        self.error: BaseException | None = None
        self._error_tb = ""
        self._signal: int | None = None
        self.state = "created"

    # -- hooks of a subclass -------------------------------------------------------------------

    def _loop(self) -> None:
        """The work; it calls :meth:`_between_steps` and returns when done or told to stop."""
        raise NotImplementedError

    def _completed(self) -> bool:
        """Whether the work is all done (``"finished"``) rather than cut short (``"stopped"``)."""
        return True

    def _flush(self) -> None:
        """Make the state consistent (before a pause, at the end, after a failure)."""

    def _save_final(self, state: str) -> None:
        """Write what a finished or stopped run leaves behind; ``state`` is the one it ends in
        (``self.state`` still says "running" until the files are written)."""

    def _save_after_failure(self) -> None:
        """Write what a failed run can still keep."""

    # -- control -------------------------------------------------------------------------------

    def start(self: _R) -> _R:
        """Start the loop in a background daemon thread; returns ``self``."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("the run is already running")
            if self.state in ("failed",):
                raise RuntimeError("the run failed; build a new one (or resume a checkpoint)")
            self._stop_flag = False
            self.state = "running"
            self._thread = threading.Thread(
                target=self._thread_main, name="dsl_explore-training", daemon=True
            )
            self._thread.start()
        return self

    def run(self: _R) -> _R:
        """Run in the calling thread until done.

        Ctrl-C stops it and saves, then re-raises the KeyboardInterrupt. From the main thread,
        SIGTERM and SIGHUP stop it after the current step and save, then raise
        :class:`Terminated` (exit status 143 / 129 when uncaught).
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("the run is already running in the background")
            self._stop_flag = False
            self._signal = None
            self.state = "running"
        with _signals_handled(self._on_terminate_signal):
            try:
                self._loop()
            except (KeyboardInterrupt, Terminated):
                self._finish("stopped")
                raise
            except BaseException as exc:
                self._fail(exc)
                self.raise_if_failed()
            self._finish("finished" if self._completed() else "stopped")
        if self._signal is not None:
            raise Terminated(self._signal, step=self.step)
        return self

    def _on_terminate_signal(self, signum: int, frame: Any) -> None:
        """SIGTERM / SIGHUP in :meth:`run`: stop after this step; a second one stops now."""
        if self._signal is not None:
            raise Terminated(signum, step=self.step)
        self._signal = signum
        self._stop_flag = True  # no lock: a signal handler must not wait for one

    def pause(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Pause after the current step (buffers are flushed); ``wait`` until it has paused."""
        with self._cond:
            self._pause_flag = True
            self._cond.notify_all()
            deadline = None if timeout is None else time.monotonic() + timeout
            while wait and not self._paused and self._alive():
                if deadline is not None and time.monotonic() > deadline:
                    break
                self._cond.wait(timeout=0.05)

    def resume(self) -> None:
        """Continue a paused run."""
        with self._cond:
            self._pause_flag = False
            self._cond.notify_all()

    def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop after the current step; a final checkpoint and history are written when the run
        has a run directory. With ``wait``, join the thread (re-raising a failure)."""
        with self._cond:
            self._stop_flag = True
            self._pause_flag = False
            self._cond.notify_all()
        if wait:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread; raise :class:`TrainingError` if it failed."""
        t = self._thread
        if t is not None:
            t.join(timeout)
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        """Raise :class:`TrainingError` (chained to the original) if the thread failed."""
        if self.error is not None:
            exc = self.error
            raise TrainingError(
                f"training failed at step {self.step}: {type(exc).__name__}: {exc}\n\n"
                f"Traceback in the training thread:\n{self._error_tb}",
                step=self.step,
                traceback_text=self._error_tb,
            ) from exc

    def is_alive(self) -> bool:
        """Whether the thread is running (or paused)."""
        return self._alive()

    # -- plumbing ------------------------------------------------------------------------------

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _between_steps(self) -> bool:
        """Serve requests and honour a pause; ``False`` when the loop must stop."""
        while True:
            self._serve_requests()
            if self._stop_flag:
                return False
            if not self._pause_flag:
                return True
            self._wait_paused()

    def _in_worker(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` between two steps of the worker thread (or here when no worker runs)."""
        if self._alive() and threading.current_thread() is not self._thread:
            box: dict[str, Any] = {}
            with self._cond:
                self._requests.append((fn, box))
                self._cond.notify_all()
                while "done" not in box and self._alive():
                    self._cond.wait(timeout=0.05)
            if "done" not in box:  # the worker ended first: do it here
                with self._lock:
                    return fn()
            if "error" in box:
                raise box["error"]
            return box["result"]
        with self._lock:
            return fn()

    def _serve_requests(self) -> None:
        with self._cond:
            reqs, self._requests = self._requests, []
        for fn, box in reqs:
            try:
                box["result"] = fn()
            except BaseException as exc:  # handed back to the caller
                box["error"] = exc
            with self._cond:
                box["done"] = True
                self._cond.notify_all()

    def _wait_paused(self) -> None:
        self._flush()
        with self._cond:
            self._paused = True
            self.state = "paused"
            self._cond.notify_all()
        while True:
            self._serve_requests()
            with self._cond:
                if not self._pause_flag or self._stop_flag:
                    break
                if not self._requests:
                    self._cond.wait(timeout=0.5)
        with self._cond:
            self._paused = False
            self.state = "running"
            self._cond.notify_all()

    def _thread_main(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self._fail(exc)
            return
        self._finish("finished" if self._completed() else "stopped")

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self._error_tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        with contextlib.suppress(BaseException):
            self._flush()
        with self._cond:
            self.state = "failed"
            self._cond.notify_all()
        with contextlib.suppress(BaseException):
            self._save_after_failure()
        self._serve_requests()

    def _finish(self, state: str) -> None:
        self._flush()
        self._save_final(state)
        with self._cond:
            self.state = state
            self._cond.notify_all()
        self._serve_requests()
