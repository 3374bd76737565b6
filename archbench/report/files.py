"""Output files and folders that are replaced as a unit: a reader sees the old version or the new one.

* :func:`write_bytes` / :func:`write_text`: one file, written to a temporary file in the same folder and
  renamed over the target (``os.replace`` is atomic on POSIX). The new file gets the old file's mode, or
  ``0o666 & ~umask`` for a new file, as a plain ``open(path, "w")`` would.
* :func:`replace_file`: a temporary path for a writer that opens the file itself (pytest-benchmark's
  ``--benchmark-json``), renamed over the target when the block ends normally.
* :func:`replace_dir`: a whole folder (a report). The new content is built in a sibling staging folder
  ``.NAME.new-XXXX`` (same parent, so same file system), and then swapped in.
* :func:`check_output_file` / :func:`check_output_dir`: the checks to run *before* long work, so a bad
  ``--json`` or ``--out`` fails in a second instead of after the benchmark.

Why a swap of folders, and how. A report is nine files; renaming them one by one leaves a window in which
the folder mixes old and new files. So the report folder itself is replaced. On Linux
``renameat2(RENAME_EXCHANGE)`` exchanges the staging folder and the report folder in one atomic step: at every
instant the path names a complete folder, and the folder stays a real, plain directory (``reports/`` is
committed to git; a symlink to a versioned folder would be committed as a symlink). Where the call does not
exist (other systems, file systems that refuse it), the fallback is two renames, ``DIR → .DIR.old-XXXX`` and
``.DIR.new-XXXX → DIR``: a reader may then find no folder for an instant, but never a mixed one, and a run
killed between the two renames is repaired by the next run (the old folder is renamed back). SIGINT and
SIGTERM are blocked during the switch and its clean-up, SIGTERM raises :class:`Terminated` (a
``KeyboardInterrupt``) meanwhile, so ``finally`` blocks remove the staging folder; a ``kill -9`` leftover is
removed by the next run. Files in the folder that the new version does not own (a user's notes, a benchmark
JSON passed as input) are carried into the staging folder by hard links just before the switch.

A second run into the same folder refuses at once with one line: each run holds an ``flock`` on a lock file
in the system's temporary folder, named after the folder's real path and removed when the run ends, so
nothing is left beside the report.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     report = Path(tmp) / "report"
    ...     with replace_dir(report) as staging:
    ...         _ = write_text(staging / "README.md", "# new\\n")
    ...     sorted(p.name for p in report.iterdir()), (report / "README.md").read_text()
    (['README.md'], '# new\\n')
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Collection, Iterator
from pathlib import Path

from archbench.errors import OutputPathError

__all__ = [
    "Terminated",
    "check_output_dir",
    "check_output_file",
    "replace_dir",
    "replace_file",
    "terminate_as_interrupt",
    "write_bytes",
    "write_text",
]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` clean-up runs."""


# ------------------------------------------------------------------------------------------------ checks
def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def _check_parent(path: Path, option: str) -> None:
    parent = path.parent
    if not parent.exists():
        raise OutputPathError(
            f"{option} {path}: the folder {parent} does not exist; create it first or choose another path."
        )
    if not parent.is_dir():
        raise OutputPathError(f"{option} {path}: {parent} is a file, not a folder; choose another path.")
    if not _writable(parent):
        raise OutputPathError(f"{option} {path}: the folder {parent} is not writable; choose another path.")


def _as_path(path: str | os.PathLike[str], option: str) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise OutputPathError(f"{option} needs a path, got {path!r}.")
    return Path(os.path.realpath(os.path.expanduser(path)))


def check_output_file(path: str | os.PathLike[str], *, option: str = "--json") -> Path:
    """Refuse an output file path that cannot be written, before any work is done.

    Args:
        path: where a file will be written (replaced atomically with :func:`write_bytes`).
        option: the option name that appears in the message.

    Returns:
        The path with symbolic links resolved (what to write to).

    Raises:
        OutputPathError: a folder where the file belongs, an existing non-regular file (a device, a pipe),
            a missing parent folder, or a parent folder that is not writable.

    Example:
        >>> check_output_file("/", option="--json")
        Traceback (most recent call last):
        ...
        archbench.errors.OutputPathError: --json /: / is a folder; give a file name such as /bench.json.
    """
    target = _as_path(path, option)
    if target.is_dir():
        raise OutputPathError(
            f"{option} {path}: {target} is a folder; give a file name such as {target / 'bench.json'}."
        )
    if target.exists() and not target.is_file():
        raise OutputPathError(f"{option} {path}: {target} is not a regular file; give a file name.")
    _check_parent(target, option)
    return target


def check_output_dir(path: str | os.PathLike[str], *, option: str = "--out") -> Path:
    """Refuse an output folder that cannot be replaced as a unit, before any work is done.

    Args:
        path: the folder :func:`replace_dir` will replace (created if missing; its parent must exist).
        option: the option name that appears in the message.

    Returns:
        The folder with symbolic links resolved.

    Raises:
        OutputPathError: a file where the folder belongs, a missing or read-only parent, a read-only
            folder, or a folder that holds the current folder, a git repository or a file-system root.

    Example:
        >>> check_output_dir("/no-such-folder/reports")
        Traceback (most recent call last):
        ...
        archbench.errors.OutputPathError: --out /no-such-folder/reports: the folder /no-such-folder does not exist; create it first or choose another path.
    """
    target = _as_path(path, option)
    if target.exists() and not target.is_dir():
        raise OutputPathError(f"{option} {path}: {target} is not a folder; give a folder (it is created if missing).")
    if target == target.parent or Path.cwd().resolve().is_relative_to(target) or (target / ".git").exists():
        raise OutputPathError(
            f"{option} {path}: {target} holds the current folder, a git repository or a whole file system, "
            "which the report would replace; give a folder of its own such as reports/."
        )
    _check_parent(target, option)
    if target.exists() and not _writable(target):
        raise OutputPathError(f"{option} {path}: the folder {target} is not writable; choose another folder.")
    return target


# ------------------------------------------------------------------------------------------------- modes
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_mode(kind: int = 0o666) -> int:
    return kind & ~_umask()


# ------------------------------------------------------------------------------------------------- files
def _temporary_beside(path: Path) -> tuple[int, str]:
    """An open temporary file in ``path``'s folder with the mode ``path`` has, or the umask's for a new file."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = _new_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, mode)  # mkstemp creates 0600
    return fd, tmp


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then ``os.replace``).

    Args:
        path: the target file; its folder must exist.
        data: the whole content.

    Returns:
        ``path``.
    """
    path = Path(path)
    fd, tmp = _temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def replace_file(path: str | os.PathLike[str], *, option: str = "--json") -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that opens files itself (pytest-benchmark's JSON).

    When the block ends normally the temporary file replaces ``path`` in one ``os.replace``; if it raises
    (an interrupt included), the temporary file is removed and ``path`` is untouched. The path is checked
    with :func:`check_output_file` first; the new file gets the old file's mode, or the umask's.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     with replace_file(Path(tmp) / "bench.json") as partial:
        ...         _ = partial.write_text("{}")
        ...     sorted(p.name for p in Path(tmp).iterdir())
        ['bench.json']
    """
    target = check_output_file(path, option=option)
    fd, tmp = _temporary_beside(target)
    try:
        os.close(fd)
        yield Path(tmp)
        if not Path(tmp).is_file() or Path(tmp).stat().st_size == 0:
            raise OutputPathError(f"{option} {path}: nothing was written, so the previous file is kept.")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; see :func:`write_bytes`."""
    return write_bytes(path, text.encode("utf-8"))


# ------------------------------------------------------------------------------------------------ signals
def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done (then they are delivered as usual)."""
    wanted = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# ------------------------------------------------------------------------------------------------ folders
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc before 2.28, musl
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _carry(old: Path, staging: Path, owned: Collection[str]) -> None:
    """Bring every entry of ``old`` that the new version does not own (and does not have) into ``staging``."""
    for entry in old.iterdir():
        if entry.name in owned or (staging / entry.name).exists() or (staging / entry.name).is_symlink():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, staging / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(entry), str(staging / entry.name))


def _leftovers(target: Path, kind: str) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.{kind}-*"))


def _recover(target: Path) -> None:
    """Repair what a killed run left: restore a folder moved aside, remove staging folders."""
    old = _leftovers(target, "old")
    if old and not target.exists():
        os.rename(old.pop(), target)
    for leftover in old + _leftovers(target, "new"):
        shutil.rmtree(leftover, ignore_errors=True)


def _open_lock(lock_path: Path) -> int:
    try:
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's lock file: a read-only descriptor can hold an flock too
        return os.open(lock_path, os.O_RDONLY)


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` for ``target``; refuse at once if another run holds it.

    The lock file lives in the temporary folder and is removed on release; a run that locked a file that
    was removed meanwhile (its path now names another file, or none) tries again, so two runs never both
    hold "the" lock.
    """
    key = hashlib.sha256(os.fsencode(target)).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"archbench-{key}.lock"
    while True:
        fd = _open_lock(lock_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputPathError(
                f"Another archbench run is writing {target}; wait for it to finish or choose another folder."
            ) from None
        try:
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)  # while still locked
        os.close(fd)


@contextlib.contextmanager
def replace_dir(path: str | os.PathLike[str], owned: Collection[str] | None = None) -> Iterator[Path]:
    """Build a new version of a folder in a staging folder and switch it in atomically when the block ends.

    Args:
        path: the folder to replace (created if missing; checked with :func:`check_output_dir`).
        owned: names the new version decides about: they are in the new folder only if written into the
            staging folder. Every other entry of the old folder is carried over. None: the new version owns
            everything (nothing is carried).

    Yields:
        The staging folder (empty) to write the new version into.

    Raises:
        OutputPathError: the folder is not writable, or another run is writing it.

    If the block raises (including ``KeyboardInterrupt`` and, inside this block, SIGTERM), the staging folder
    is removed and the old folder is untouched.
    """
    target = check_output_dir(path)
    with terminate_as_interrupt(), _locked(target):
        _recover(target)
        staging: Path | None = None
        try:
            with _signals_blocked():  # no interrupt between creating the staging folder and knowing its name
                staging = _make_staging(target)
            yield staging
            with _signals_blocked():
                if target.exists():
                    if owned is not None:
                        _carry(target, staging, owned)
                    if not _exchange(staging, target):  # staging now holds the old version
                        aside = staging.with_name(staging.name.replace(".new-", ".old-"))
                        os.rename(target, aside)
                        try:
                            os.rename(staging, target)
                        except OSError:
                            os.rename(aside, target)
                            raise
                        staging = aside
                else:
                    os.rename(staging, target)
                _fsync_dir(target.parent)
        finally:
            if staging is not None:
                with _signals_blocked():
                    shutil.rmtree(staging, ignore_errors=True)


def _make_staging(target: Path) -> Path:
    """An empty sibling folder with the target's mode (mkdtemp's is 0700), or the umask's for a new one."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    except OSError as err:  # e.g. a read-only file system, or /proc
        raise OutputPathError(
            f"Cannot create a folder in {target.parent} ({err.strerror}); choose another output folder."
        ) from None
    os.chmod(staging, stat.S_IMODE(target.stat().st_mode) if target.exists() else _new_mode(0o777))
    return staging


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
