"""Writing outputs without losing anything of the user's: markers, replace checks, locks, temps, full disks.

Every command that writes a folder or file goes through here:

- a folder ganaug creates (a run folder, a png output tree) carries :data:`MARKER`, a small JSON file
  ``{"kind": ..., "ganaug_version": ..., "schema": 1}`` (:func:`mark_dir`);
- ``--overwrite`` replaces a target only if :func:`check_replaceable` says it is ganaug's own (a marked
  folder of the same kind, or a file of ganaug's format) and it is not the working folder, one of its
  ancestors, the home folder, ``/`` or anything holding the model being read;
- :func:`exclusive_lock` makes a second process writing the same target fail with a message (and a lock that
  cannot be made, as under ``/proc``, one line); :func:`check_unlocked` asks the same before any work;
- :func:`check_can_create` tries, before any work, that a file can really be made where the output goes;
- writes go to :func:`temp_path` and are renamed into place; leftovers of a killed writer are removed by
  :func:`clean_stale_temps` at the start of the next run of the same command;
- :func:`reporting_disk_full` turns a full disk into one line and removes the partial temp;
- :func:`check_targets`, :func:`check_own_folder` and :func:`check_report_target` are the commands' checks of
  their ``--out`` / ``--json`` before any work, :func:`replace_path` puts a finished temp in place and
  :func:`write_owned` writes report files that replace only earlier reports of the same command.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ganaug.errors import GanaugError, InputError

ONNX_FILE = "generator.onnx"
"""A run folder's exported generator."""
CHECK_FILE = "label_check.onnx"
"""A run's own label check beside its generator (:mod:`ganaug.train.labelcheck`)."""
ONNX_FP16_FILE = "generator_fp16.onnx"
"""``ganaug export --fp16``'s default name in a run folder."""
MARKER = ".ganaug.json"
"""File ganaug writes inside every folder it creates; its ``kind`` says what the folder is."""
MARKER_SCHEMA = 1
FILE_KINDS: tuple[str, ...] = ("onnx", "npz", "pt", "png", "gif", "manifest", "report")
"""Kinds :func:`check_replaceable` knows as files; any other kind names a marked folder (``run``, ``images``...)."""
PNG_STAMP_KEY = "ganaug"
"""PNG text chunk (and GIF comment prefix) that marks an image file as written by ganaug (see :func:`stamp_info`)."""
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_HELD: dict[Path, int] = {}  # lock files this process holds -> fd, so clean_stale_temps knows the writer is us


def mark_dir(path: str | Path, kind: str) -> None:
    """Write :data:`MARKER` into folder ``path``, declaring it ganaug's own folder of ``kind``."""
    from ganaug import __version__

    marker = {"kind": kind, "ganaug_version": __version__, "schema": MARKER_SCHEMA}
    (Path(path) / MARKER).write_text(json.dumps(marker) + "\n")


def read_marker(path: str | Path) -> dict[str, Any] | None:
    """The marker of folder ``path``, or ``None`` if it has none (or an unreadable one)."""
    try:
        marker = json.loads((Path(path) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def check_replaceable(
    target: str | Path,
    *,
    kind: str,
    protect: Sequence[str | Path] = (),
    foreign: Callable[[Path], list[str]] | None = None,
    option: str = "--out",
) -> None:
    """Raise unless ``target`` may be replaced by an ``--overwrite`` of ``kind``; a missing target is fine.

    Args:
        target: the folder or file about to be replaced.
        kind: a file kind of :data:`FILE_KINDS` or a folder kind (``run``, ``images``, ...).
        protect: paths that must survive (the model or run folder being read): ``target`` may not be one,
            contain one or lie inside one.
        foreign: for a folder kind, what a marked folder of that kind holds that ganaug did not write there
            (relative paths); the folder is replaced only while that is empty.
        option: the command-line option that named ``target``, for the messages.

    Raises:
        InputError: ``target`` is ``.``/``..``, the working folder or an ancestor of it, the home folder,
            ``/``; it touches a protected path; it is a folder without ganaug's marker of ``kind`` (an empty
            folder is fine); it holds something ``foreign`` names; it is a file that is not of ganaug's format
            for ``kind`` (a ``checkpoint.pt`` never is).
    """
    target = Path(target)
    resolved = target.resolve()
    cwd = Path.cwd().resolve()
    if target.name in ("", ".", "..") or resolved == cwd or resolved in cwd.parents:
        raise InputError(f"refusing to replace {target}: it is the working folder or above it; choose a new {option}")
    if resolved in (Path.home().resolve(), Path(resolved.anchor)):
        raise InputError(f"refusing to replace {target}: it is the home or root folder; choose a new {option}")
    check_not_protected(target, protect, option=option)
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink():
        raise InputError(
            f"refusing to replace {target}: it is a symbolic link; remove it yourself or choose another {option}"
        )
    if target.is_dir():
        if kind in FILE_KINDS:
            raise InputError(
                f"refusing to replace {target}: it is a folder, not a {kind} file; choose another {option}"
            )
        marker = read_marker(target)
        if marker is not None and marker.get("kind") == kind:
            _refuse_foreign(target, foreign(target) if foreign else [], option)
            return
        if marker is None and not any(target.iterdir()):
            return
        what = f"a ganaug {marker.get('kind')!r} folder" if marker else "not a folder ganaug wrote"
        raise InputError(
            f"refusing to replace {target}: it is {what} (no {MARKER} of kind {kind!r}); "
            f"move it away yourself or choose another {option}"
        )
    if kind not in FILE_KINDS:
        raise InputError(
            f"refusing to replace {target}: it is a file, not a ganaug {kind} folder; choose another {option}"
        )
    if target.name == "checkpoint.pt" or not _is_ganaug_file(target, kind):
        raise InputError(
            f"refusing to replace {target}: it is not a {kind} file written by ganaug; "
            f"move it away yourself or choose another {option}"
        )


def _refuse_foreign(target: Path, foreign: Sequence[str], option: str = "--out") -> None:
    """Raise :class:`InputError` naming up to three of ``foreign``: what the folder ``target`` holds that ganaug
    did not write there (``--overwrite`` replaces a folder of ganaug's only while it holds nothing else)."""
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise InputError(
            f"refusing to replace {target}: it holds files ganaug did not write there "
            f"({', '.join(foreign[:3])}{more}); move them out or choose another {option}"
        )


def check_parent_writable(target: str | Path, *, option: str | None = None) -> None:
    """Raise :class:`InputError` unless the folder that would hold the file ``target`` exists and is writable
    (checked before any work, so a long job never ends on a file it cannot write).

    Writable means a file can really be created there (:func:`check_can_create`): ``os.access`` says yes to
    root under ``/proc`` or ``/sys``, where no file can be made.
    """
    parent = Path(target).parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {target}: folder {parent} does not exist or is not writable; create it first")
    check_can_create(target, option=option)


def check_can_create(target: str | Path, *, option: str | None = "--out") -> None:
    """Raise :class:`InputError` unless a file can really be created where ``target`` (a file or folder,
    existing or not) would go: in its nearest existing folder.

    Tried for real, as ``os.access`` answers yes to root where nothing can be made (``/proc``, ``/sys``): a
    probe named as ``target``'s temp (:func:`temp_path`, which :func:`clean_stale_temps` removes should this
    process be killed meanwhile) is created and removed at once; nothing else is touched. A full disk passes
    (an empty file needs no block; :func:`reporting_disk_full` reports it where it happens). ``option``: the
    option that named ``target``, for the message (``None``: none is named).
    """
    target = Path(target).absolute()
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    probe = temp_path(folder / target.name)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # something of that name is there already: the folder does take files
        return
    except OSError as e:
        if e.errno in _DISK_FULL:
            return
        raise InputError(
            f"cannot write {target}: no file can be created in {folder} ({e.strerror or type(e).__name__}); "
            f"choose another {option or 'place'}"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()


def check_not_protected(target: str | Path, protect: Sequence[str | Path], *, option: str = "--out") -> None:
    """Raise if ``target`` (existing or not) is, holds or lies inside a path of ``protect``.

    Raises:
        InputError: naming the protected path.
    """
    resolved = Path(target).resolve()
    for p in protect:
        p = Path(p).resolve()
        if resolved == p or resolved in p.parents or p in resolved.parents:
            raise InputError(
                f"refusing to replace {target}: it holds or lies inside {p}, which is being read; choose another {option}"
            )


def _is_ganaug_file(path: Path, kind: str) -> bool:
    """Whether ``path`` is a file of ganaug's own format for ``kind`` (cheap checks, no unpickling)."""
    try:
        if kind == "onnx":
            return _onnx_is_ganaug(path)
        if kind == "manifest":
            manifest = json.loads(path.read_text())
            return isinstance(manifest, dict) and "ganaug_version" in manifest and "format" in manifest
        if kind == "report":  # `ganaug evaluate --json`'s file
            report = json.loads(path.read_text())
            return isinstance(report, dict) and {"model", "evaluator", "dataset"} <= report.keys()
        if kind in ("npz", "pt"):
            manifest = json.loads(path.with_suffix(".manifest.json").read_text())
            if not (isinstance(manifest, dict) and manifest.get("format") == kind and "ganaug_version" in manifest):
                return False
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
            if kind == "npz":
                return {"images.npy", "labels.npy"} <= set(names)
            return any(n.endswith("/data.pkl") for n in names)
        if kind in ("png", "gif"):
            from PIL import Image

            with Image.open(path) as image:
                if kind == "png":
                    return image.format == "PNG" and PNG_STAMP_KEY in getattr(image, "text", {})
                comment = image.info.get("comment", b"")
                return image.format == "GIF" and comment.startswith(PNG_STAMP_KEY.encode())
    except (OSError, ValueError, zipfile.BadZipFile):
        return False
    return False


ONNX_KIND = "ganaug.conditional-generator"
"""The ``ganaug.kind`` metadata value of a generator that ganaug exported (:mod:`ganaug.train.export` writes it)."""


def _onnx_is_ganaug(path: Path) -> bool:
    import onnx
    from google.protobuf.message import DecodeError

    proto = onnx.ModelProto()
    try:  # parsed as protobuf bytes whatever the name: onnx.load reads a `.json` name as JSON and raises its own error
        proto.ParseFromString(path.read_bytes())
    except (DecodeError, ValueError, RuntimeError, OSError):
        return False
    return any(p.key == "ganaug.kind" and p.value == json.dumps(ONNX_KIND) for p in proto.metadata_props)


def stamp_info() -> dict[str, str]:
    """PNG text (``pnginfo``) that marks an image as ganaug's: ``{"ganaug": "<version>"}``."""
    from ganaug import __version__

    return {PNG_STAMP_KEY: __version__}


def lock_path(target: str | Path) -> Path:
    """The lock file of ``target``: ``.<name>.lock`` beside it (it survives ``target`` being replaced)."""
    target = Path(target).absolute()
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def exclusive_lock(path: str | Path, *, what: str = "--out") -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path``'s lock file (:func:`lock_path`) for the ``with`` block.

    The OS releases the lock when the process dies (even after kill -9). The parent folder of ``path`` is
    created if missing, and removed again on release if it is then empty (the writer failed). Yields the lock
    file's path; the file is removed on release.

    Raises:
        InputError: another process holds the lock ("another ganaug process (pid N) is writing PATH...");
            the lock file or its folder cannot be created (``/proc``, a read-only mount, a file in the way):
            one line, and no folder this made is left behind.
        GanaugError: the disk is full (one line, :func:`disk_full_error`); no lock file is left behind.
    """
    path = Path(path)
    lock = lock_path(path)
    with reporting_disk_full(lock):
        made = make_folders(lock.parent, path, what)
        try:
            fd = _take_lock(lock, path, what)
        except BaseException as e:
            remove_made_folders(made, lock.parent)
            if isinstance(e, OSError) and e.errno not in _DISK_FULL:
                raise _cannot_lock(path, lock, e, what) from None
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                lock.unlink()
            raise
    _HELD[lock] = fd
    try:
        yield lock
    finally:
        del _HELD[lock]
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)
        remove_made_folders(made, lock.parent)  # only while empty: a failed writer leaves no folder behind


def _cannot_lock(path: Path, lock: Path, e: OSError, what: str) -> InputError:
    """One line for a lock file that cannot be created (``/proc``, a read-only mount, a file in the way)."""
    reason = e.strerror or type(e).__name__
    return InputError(f"cannot write {path}: cannot create its lock file {lock} ({reason}); choose another {what}")


def make_folders(folder: Path, path: Path, what: str) -> Path | None:
    """Create ``folder`` and its missing parents; the topmost folder created (``None``: it existed).

    Raises:
        InputError: a folder cannot be created there (one line), except on a full disk (left to
            :func:`reporting_disk_full`).
    """
    made = None
    probe = folder
    while not probe.exists() and probe != probe.parent:
        made, probe = probe, probe.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        remove_made_folders(made, folder)
        if e.errno in _DISK_FULL:
            raise
        reason = e.strerror or type(e).__name__
        raise InputError(
            f"cannot write {path}: cannot create folder {folder} ({reason}); choose another {what}"
        ) from None
    return made


def remove_made_folders(made: Path | None, folder: Path) -> None:
    """Remove ``folder`` and its parents up to ``made`` (what :func:`make_folders` created) while empty: after a
    failure nothing is left behind."""
    while made is not None:
        try:
            folder.rmdir()
        except OSError:
            return
        if folder == made:
            return
        folder = folder.parent


def check_unlocked(path: str | Path, *, doing: str = "writing") -> None:
    """Raise :class:`InputError` if another process holds ``path``'s lock (:func:`exclusive_lock`) right now.

    For a check before any work (``ganaug train --resume`` of a run another process is still training); the
    lock itself is taken later, and refuses then too if someone took it meanwhile.
    """
    path = Path(path)
    lock = lock_path(path)
    try:
        if lock in _HELD or _lock_free(lock):
            return
    except OSError:  # a lock file this process may not open: whoever holds it, taking the lock will tell
        return
    try:
        holder = lock.read_text(errors="replace").strip() or "unknown"
    except OSError:
        holder = "unknown"
    raise InputError(f"another ganaug process (pid {holder}) is {doing} {path}; wait for it to finish or stop it")


def _take_lock(lock: Path, path: Path, what: str) -> int:
    """Open ``lock`` and ``flock`` it exclusively; the locked file descriptor."""
    for _ in range(10):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InputError(
                f"another ganaug process (pid {holder}) is writing {path}; wait for it or choose another {what}"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the holder removed the file between our open and flock: take the new one
            return fd
        os.close(fd)
    raise GanaugError(f"could not lock {lock}: it keeps being replaced; rerun")


def temp_path(target: str | Path, *, pid: int | None = None) -> Path:
    """The hidden temp name for an atomic write of ``target``: ``.<name>.tmp-<pid>`` in ``target``'s folder."""
    target = Path(target)
    return target.with_name(f".{target.name}.tmp-{os.getpid() if pid is None else pid}")


def write_text_whole(path: str | Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temp (:func:`temp_path`) renamed over it; a full disk is a one-line
    :class:`GanaugError` and no temp is left behind."""
    _write_whole(Path(path), lambda tmp: tmp.write_text(text))


def write_bytes_whole(path: str | Path, data: bytes) -> None:
    """:func:`write_text_whole` for bytes (for example ``safetensors.torch.save(...)``'s)."""
    _write_whole(Path(path), lambda tmp: tmp.write_bytes(data))


def _write_whole(path: Path, write: Callable[[Path], object]) -> None:
    tmp = temp_path(path)
    try:
        with reporting_disk_full(path, temp=tmp):
            write(tmp)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def temp_target(path: str | Path) -> str | None:
    """The file name whose temp (:func:`temp_path`) ``path`` is, or None if it is not one."""
    name = Path(path).name
    head, sep, pid = name.rpartition(".tmp-")
    return head[1:] if sep and head.startswith(".") and len(head) > 1 and pid.isdigit() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_free(lock: Path) -> bool:
    """Whether nobody holds ``lock`` (we hold it ourselves -> the other writers are gone too)."""
    if lock in _HELD:
        return True
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def remove_path(path: Path) -> None:
    """Remove a file, link or folder tree; a missing path is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_stale_temps(target: str | Path) -> list[Path]:
    """Remove leftover temps (:func:`temp_path`) of ``target`` whose writer is gone; return what was removed.

    A temp is stale when its pid is no longer alive, or when no one else holds ``target``'s lock (every
    writer holds it while writing). This process's own temps are kept.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    prefix = f".{target.name}.tmp-"
    lock_free = _lock_free(lock_path(target))
    removed = []
    for temp in sorted(target.parent.glob(f"{_glob_escape(prefix)}*")):
        pid_text = temp.name[len(prefix) :]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        if lock_free or not _pid_alive(int(pid_text)):
            remove_path(temp)
            removed.append(temp)
    return removed


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def disk_full_error(e: OSError, path: str | Path | None, *, temp: str | Path | None = None) -> GanaugError | None:
    """A one-line :class:`GanaugError` for a full disk (ENOSPC/EDQUOT) while writing ``path``, else ``None``.

    ``temp`` (the partial write) is measured for the message and removed. ``path`` ``None``: the file is not known.
    """
    if e.errno not in _DISK_FULL:
        return None
    written = 0
    if temp is not None:
        temp = Path(temp)
        written = _size(temp)
        remove_path(temp)
    need_mb = max(1, -(-written // 2**20))
    where = f" while writing {path}" if path is not None else ""
    return GanaugError(f"no space left on the device{where}: free at least {need_mb} MB and rerun")


@contextlib.contextmanager
def reporting_disk_full(path: str | Path, *, temp: str | Path | None = None) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT inside the block into :func:`disk_full_error` (removing ``temp``)."""
    try:
        yield
    except OSError as e:
        error = disk_full_error(e, path, temp=temp)
        if error is None:
            raise
        raise error from None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (``MemAvailable`` in ``/proc/meminfo``); None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_room(
    *,
    what: str,
    memory: int = 0,
    disk: int = 0,
    disk_path: str | Path | None = None,
    fix: str = "ask for fewer images",
) -> None:
    """Refuse, before any work, a job that cannot fit: ``memory`` bytes in RAM, ``disk`` bytes under ``disk_path``;
    ``fix`` ends the message: what to ask for instead (for disk, "or free space" follows).

    Raises:
        InputError: more memory than :func:`available_memory` or more disk than is free, saying how much.
    """
    free_memory = available_memory()
    if memory and free_memory is not None and memory > free_memory:
        raise InputError(f"{what} needs about {_human(memory)} of memory and {_human(free_memory)} is available; {fix}")
    if disk and disk_path is not None:
        folder = Path(disk_path).absolute()
        while not folder.exists():
            folder = folder.parent
        free_disk = shutil.disk_usage(folder).free
        if disk > free_disk:
            raise InputError(
                f"{what} needs about {_human(disk)} of disk and {_human(free_disk)} is free under {folder}; "
                f"{fix} or free space"
            )


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


# ---- what the commands check and write before and after their work -----------------------------------------

IMAGES_MANIFEST = "manifest.json"
"""The manifest of a ``ganaug generate --format png`` folder: its class folders and how many images each holds."""
IMAGE_FILE = re.compile(r"\d{7,}\.png")
"""What ``ganaug generate --format png`` names an image: its sample number, seven digits or more."""


def foreign_images(root: Path) -> list[str]:
    """What a ``--format png`` folder holds that ganaug did not write there (sorted relative paths).

    Ganaug's are the marker, :data:`IMAGES_MANIFEST` and the manifest's class folders holding :data:`IMAGE_FILE`
    files, as many as the manifest counts for the class (a folder holding more is named with both numbers).
    """
    try:
        manifest = json.loads((root / IMAGES_MANIFEST).read_text())
        expected = {folder: manifest["counts"][name] for name, folder in manifest["folders"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        expected = {}
    found = []
    for child in sorted(root.iterdir()):
        rel = child.name
        if rel in (MARKER, IMAGES_MANIFEST) and child.is_file():
            continue
        if not (child.is_dir() and rel in expected):
            found.append(rel)
            continue
        names = [c.name for c in child.iterdir()]
        odd = sorted(f"{rel}/{n}" for n in names if not (IMAGE_FILE.fullmatch(n) and (child / n).is_file()))
        found += odd
        if not odd and len(names) != expected[rel]:
            found.append(f"{rel}/ ({len(names)} images, the manifest lists {expected[rel]})")
    return found


def check_targets(targets: Mapping[Path, str], *, overwrite: bool, protect: Sequence[str | Path]) -> None:
    """Refuse before any work what a command's ``--out`` may not become: an existing target without
    ``overwrite``, one ganaug may not replace (:func:`check_replaceable`; ``targets`` maps each path to its
    kind, the first being ``--out`` itself), a new one inside a path of ``protect``, or an unwritable place.

    Raises:
        InputError: one line naming the target and what to do.
    """
    for target, kind in targets.items():
        if target.exists() or target.is_symlink():
            if not overwrite:
                raise InputError(f"{target} already exists; pass --overwrite to replace it or choose another --out")
            check_replaceable(target, kind=kind, protect=protect, foreign=foreign_images if kind == "images" else None)
        else:
            check_not_protected(target, protect)  # a new file inside the run folder being read is refused too
    out = next(iter(targets))
    parent = out.parent.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {out}: {parent} is not a writable folder; choose another --out")
    check_can_create(out)  # os.access says yes to root where nothing can be made (/proc)


def replace_path(tmp: Path, target: Path) -> None:
    """Move the finished ``tmp`` onto ``target``, removing an existing ``target`` (file or folder) first."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif tmp.is_dir() and (target.exists() or target.is_symlink()):
        target.unlink()  # os.replace cannot put a folder where a file is
    os.replace(tmp, target)


def check_report_target(out: Path, *, option: str = "--json") -> None:
    """Refuse, before any work, a report file that could not be written, or that exists and is not an earlier
    report of ``ganaug evaluate`` (a run's ``config.json``, a generator: never replaced)."""
    check_parent_writable(out)
    if out.exists() or out.is_symlink():
        check_replaceable(out, kind="report", option=option)


def check_own_folder(
    out: Path,
    *,
    kind: str,
    own: Mapping[str, Callable[[Path], bool]],
    overwrite: bool,
    what: str,
    optional: frozenset[str] = frozenset(),
) -> set[str]:
    """Raise :class:`InputError` unless a command may write its whole folder ``out`` (marked ``kind``); return
    the names of the files of its own that the folder holds (those an ``overwrite`` replaces).

    ``out`` may be missing or empty; a folder the command wrote (marked, or holding only files that ``own``
    recognizes: name -> check of the file's format) is replaced with ``overwrite`` only, unless all it holds are
    ``optional`` files. A folder holding anything else (also ``--out .``), a file named ``out``, a path under a
    file, inside another ganaug folder, or in a place that cannot be written (a read-only folder, ``/proc``) are
    refused: checked before the work, so nothing is lost and no time either. ``what`` names the folder's
    contents in the messages ("an evaluator").
    """
    resolved = out.resolve()
    for p in (resolved, *resolved.parents):
        if p.exists() and not p.is_dir():
            where = "is a file" if p == resolved else f"lies under the file {p}"
            raise InputError(f"--out {out} {where}; choose a folder")
        marker = read_marker(p)
        if marker is not None and not (p == resolved and marker.get("kind") == kind):
            raise InputError(
                f"{out} is inside ganaug's {marker.get('kind', 'output')} folder {p}; choose an --out of its own"
            )
    check_can_create(resolved)
    if not resolved.exists():
        return set()
    names = {p.name for p in resolved.iterdir() if temp_target(p) is None}
    ours = {n for n in names if n in own and own[n](resolved / n)}
    foreign = sorted(names - ours - {MARKER})
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise InputError(
            f"{out} holds files ganaug's {kind} did not write ({shown}); choose a new or empty folder for --out"
        )
    if ours - optional and not overwrite:
        raise InputError(f"{out} already holds {what}; pass --overwrite to replace it")
    return ours


def write_owned(out: Path, files: dict[str, str], marks: dict[str, str | tuple[str, ...]], *, what: str) -> None:
    """Write ``files`` (name -> text) into ``out``, each through a temporary name. An existing file of the same
    name is replaced only when it begins with its ``marks`` entry (an earlier run of ``what`` wrote it); else
    nothing is written: the user's own ``probes.md`` or ``pool.md`` is never overwritten.

    Raises:
        InputError: such a file exists and was not written by ``what``.
    """
    for name in files:
        path = out / name
        if path.exists() and not (path.is_file() and path.read_text(errors="replace").startswith(marks[name])):
            raise InputError(f"{path} exists and was not written by {what}; choose another --out or move it")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
