"""The two ways training reports trouble: a failed run and an unusable checkpoint."""

from __future__ import annotations

__all__ = ["CheckpointError", "TrainingError"]


class TrainingError(RuntimeError):
    """The training thread failed; ``__cause__`` is the original exception.

    Attributes
    ----------
    step : int
        The number of completed steps when it failed.
    traceback_text : str
        The formatted traceback from the training thread (also in the message).

    Examples
    --------
    >>> err = TrainingError("training failed at step 3", step=3, traceback_text="...")
    >>> err.step, str(err)
    (3, 'training failed at step 3')
    """

    def __init__(self, message: str, *, step: int, traceback_text: str) -> None:
        super().__init__(message)
        self.step = step
        self.traceback_text = traceback_text


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the run (nothing was written)."""
