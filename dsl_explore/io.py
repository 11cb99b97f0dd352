"""Atomic file writes: a reader never sees a partial file.

- :func:`atomic_write_bytes` / :func:`atomic_write_text`: the data goes to a temporary file in
  the target's directory, is flushed and fsynced, then renamed onto the target with
  :func:`os.replace`. On any failure the temporary file is removed and an existing target is left
  as it was. Parent directories are created when missing (``mkdir -p``).
- :func:`atomic_write_json`: the same for a JSON document, after :func:`jsonable` has turned
  NaN/inf into ``null``, tuples into lists and numpy scalars into Python numbers.
- :func:`is_temp_name` / :func:`remove_stale_temps`: the temporary files an interrupted write
  (a crash, ``kill -9``) leaves behind, ``.<name>.<8 random chars>.tmp``, and their removal.
- :func:`write_checksum` / :func:`verify_checksum`: a ``<name>.sha256`` sidecar next to a file,
  in ``sha256sum`` format (so ``sha256sum -c step_00000008.pt.sha256`` checks it by hand).

This is the bottom layer of the package: it imports only the standard library and numpy, so
training, experiments and export all write their files through it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Union

import numpy as np

__all__ = [
    "PathLike",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_path",
    "is_temp_name",
    "jsonable",
    "remove_stale_temps",
    "verify_checksum",
    "write_checksum",
]

PathLike = Union[str, "os.PathLike[str]"]

# tempfile.NamedTemporaryFile(prefix=".<name>.", suffix=".tmp"): 8 characters of
# tempfile's alphabet (lower-case letters, digits, underscore) between the two.
_TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # fallback: the classic (briefly racy) set-and-restore
    os.umask(mask)
    return mask


def check_path(path: object, name: str = "path") -> Path:
    """``path`` as a :class:`~pathlib.Path` naming a file (TypeError / ValueError naming ``name``).

    >>> check_path("out/fig.png")
    PosixPath('out/fig.png')
    """
    if isinstance(path, (str, os.PathLike)):
        p = Path(os.fspath(path))
        if str(p) in ("", "."):
            raise ValueError(f"{name} must name a file, got {path!r}")
        return p
    raise TypeError(f"{name} must be a str or an os.PathLike, got {type(path).__name__}")


def atomic_write_bytes(path: PathLike, data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically.

    The bytes go to a temporary file in the same directory (named ``.<name>.<random>.tmp``), which
    is flushed, fsynced and then renamed onto ``path`` with :func:`os.replace`. Readers see either
    the old file or the complete new one. Missing parent directories are created. The new file
    gets the mode of the file it replaces, or ``0o666`` less the umask.

    Parameters
    ----------
    path : str or os.PathLike
        The target file.
    data : bytes, bytearray or memoryview
        The content.

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    TypeError
        If ``path`` is not path-like or ``data`` is not bytes-like.
    IsADirectoryError
        If ``path`` is an existing directory.
    OSError
        If writing fails. The temporary file is removed first and an existing target is
        untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from dsl_explore.io import atomic_write_bytes
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = atomic_write_bytes(pathlib.Path(tmp) / "sub" / "state.bin", b"\\x00\\x01")
    ...     print(out.name, out.read_bytes(), sorted(p.name for p in out.parent.iterdir()))
    state.bin b'\\x00\\x01' ['state.bin']
    """
    target = check_path(path)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, bytearray or memoryview, got {type(data).__name__}")
    if target.is_dir():
        raise IsADirectoryError(f"path {str(target)!r} is a directory")
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_current_umask()

    tmp = tempfile.NamedTemporaryFile(
        mode="wb", dir=directory, prefix=f".{target.name}.", suffix=".tmp", delete=False
    )
    tmp_path = tmp.name
    try:
        with tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise
    _fsync_directory(directory)
    return target


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`).

    Parameters
    ----------
    path : str or os.PathLike
        The target file.
    text : str
        The content; newlines are written as given (no platform translation).
    encoding : str, default "utf-8"
        The text encoding.

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    TypeError
        If ``path`` is not path-like or ``text`` is not a str.
    OSError
        If writing fails; nothing partial is left behind.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> from dsl_explore.io import atomic_write_text
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = atomic_write_text(pathlib.Path(tmp) / "history.json", json.dumps({"step": 3}))
    ...     print(json.loads(out.read_text()))
    {'step': 3}
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding))


def is_temp_name(name: str, target: str | None = None) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_write_bytes` (of ``target`` if given).

    Examples
    --------
    >>> is_temp_name(".step_00000008.pt.k2x_9abc.tmp"), is_temp_name("step_00000008.pt")
    (True, False)
    >>> is_temp_name(".history.json.abcd1234.tmp", target="history.json")
    True
    """
    m = _TEMP_NAME.fullmatch(name)
    return m is not None and (target is None or m.group("target") == target)


def remove_stale_temps(directory: PathLike) -> list[Path]:
    """Delete the temporary files interrupted atomic writes left in ``directory``.

    Only the files directly in ``directory`` whose names match :func:`is_temp_name` are removed
    (no subdirectories, nothing else); call it where no write is in progress (when a run starts
    or resumes). A missing directory is fine.

    Returns
    -------
    list of pathlib.Path
        The files removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     d = pathlib.Path(tmp)
    ...     for n in (".a.pt.abcd1234.tmp", "a.pt", "notes.tmp"):
    ...         _ = (d / n).write_bytes(b"")
    ...     print([p.name for p in remove_stale_temps(d)], sorted(p.name for p in d.iterdir()))
    ['.a.pt.abcd1234.tmp'] ['a.pt', 'notes.tmp']
    """
    d = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(d.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for f in entries:
        if is_temp_name(f.name) and f.is_file() and not f.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
                removed.append(f)
    return removed


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_checksum(path: PathLike, data: bytes | bytearray | memoryview | None = None) -> Path:
    """Write ``<path>.sha256`` (atomically): the SHA-256 of ``data`` (default: the file's bytes).

    The line is ``<hex digest>  <file name>``, the format of ``sha256sum``. Write the file
    first, then its checksum: a crash in between leaves a complete file without a checksum
    (read as unverified), never a checksum of a file that is not there.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = atomic_write_bytes(pathlib.Path(tmp) / "a.bin", b"abc")
    ...     print(write_checksum(f).read_text()[:16], verify_checksum(f))
    ba7816bf8f01cfea True
    """
    p = check_path(path)
    digest = hashlib.sha256(p.read_bytes() if data is None else data).hexdigest()
    return atomic_write_text(_checksum_path(p), f"{digest}  {p.name}\n")


def verify_checksum(
    path: PathLike, data: bytes | bytearray | memoryview | None = None
) -> bool | None:
    """Check ``data`` (default: the file's bytes) against ``<path>.sha256``.

    Returns
    -------
    bool or None
        True if it matches, False if it does not (or the sidecar is unreadable), None when
        there is no sidecar (a file written before checksums were kept: unverified).
    """
    p = check_path(path)
    side = _checksum_path(p)
    try:
        text = side.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return False
    want = text.split()[0].lower() if text.split() else ""
    return hashlib.sha256(p.read_bytes() if data is None else data).hexdigest() == want


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX); best effort, a no-op where unsupported."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)



def jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN/inf become ``None``, tuples lists, numpy scalars Python numbers.

    Parameters
    ----------
    obj : Any
        Nested dicts, lists, tuples, floats, numpy scalars and arrays (keys become ``str``).

    Returns
    -------
    Any
        The same structure made of ``dict``, ``list``, ``str``, ``int``, ``float`` and ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"a": (1.0, float("nan")), 2: np.float32(0.5), "n": np.int64(3)})
    {'a': [1.0, None], '2': 0.5, 'n': 3}
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    return obj


def atomic_write_json(path: PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (one space, a final newline) atomically.

    ``obj`` first goes through :func:`jsonable`, so NaN and infinity are written as ``null``.

    Raises
    ------
    TypeError
        If ``path`` is not path-like or ``obj`` holds something JSON cannot write.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = atomic_write_json(pathlib.Path(tmp) / "m.json", {"rate": float("inf")})
    ...     print(json.loads(out.read_text()))
    {'rate': None}
    """
    return atomic_write_text(path, json.dumps(jsonable(obj), indent=1) + "\n")
