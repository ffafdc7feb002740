"""Files that are never torn: atomic replacement, the data folder's modes, and TinyDB on such files.

Every file is replaced whole (temp file, fsync, rename, fsync of the folder), so a reader never
sees a torn file and needs no lock; every read-modify-write holds an inter-process file lock,
because gunicorn runs several worker processes on the same files.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterable

import orjson
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from tickets.core.ports import CorruptStore, StorageError

FILE_MODE = 0o600
DIR_MODE = 0o700


def prepare_data_dir(path: str) -> None:
    """Create the data folder (mode 0700) or tighten an existing one and every file in it (0600).

    Refused, naming it: a folder or file that belongs to another user, one that group or others can
    still write after tightening, or anything but a regular file inside: someone else could swap the
    files under the service (a client registry with a secret they know, say).
    """
    try:
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
        _own_and_tighten(path, DIR_MODE, directory=True)
        for name in os.listdir(path):
            try:
                _own_and_tighten(os.path.join(path, name), FILE_MODE, directory=False)
            except FileNotFoundError:  # another process's temporary file, renamed or removed meanwhile
                continue
    except OSError as error:
        raise StorageError(f"cannot use {path} as the data folder: {error.strerror}") from error


def _own_and_tighten(path: str, mode: int, directory: bool) -> None:
    info = os.lstat(path)
    kind = stat.S_ISDIR(info.st_mode) if directory else stat.S_ISREG(info.st_mode)
    if not kind:
        raise StorageError(f"{path} is not a {'folder' if directory else 'regular file'}; refusing to use it")
    if info.st_uid != os.geteuid():
        raise StorageError(f"{path} belongs to another user (uid {info.st_uid}); refusing to use it")
    if info.st_mode & 0o077:
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077 & 0o777 | (mode & 0o700))
        if os.lstat(path).st_mode & 0o022:
            raise StorageError(f"{path} stays writable by group or others; refusing to use it")


# Bytes mapped to b"0" for a digit and b" " for anything else: a run of 19 zeros after translate() is a number
# orjson might not read as json does.
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_NUMBER = b"0" * 19


def parse_json(raw: bytes):
    """json.loads(raw), by orjson where the answer is the same: 2.3 µs for a log record where json took 5. orjson
    reads a whole number past 64 bits as a float, so text with 19 digits in a row goes to json; so does whatever
    orjson refuses (json also takes NaN, lone surrogates, a byte order mark) and json's error is the one raised.
    tests/storage/test_files.py holds the two to the same answers."""
    if _LONG_NUMBER not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


def json_object(raw: bytes, where: str) -> dict:
    """`raw` parsed, if it is a JSON object; else CorruptStore saying `where` (the file is left untouched)."""
    try:
        found = parse_json(raw)
    except ValueError as error:
        raise CorruptStore(f"{where} is not JSON ({error}); it was left untouched") from error
    if not isinstance(found, dict):
        raise CorruptStore(f"{where} is not an object; it was left untouched")
    return found


_COMPACT = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # made once: json.dumps makes one a call


def compact_json(value) -> bytes:
    """`value` as the data files hold it: compact JSON, no NaN or Infinity (ValueError)."""
    return _COMPACT.encode(value).encode()


def write_file_atomically(path: str, payload: bytes | Iterable[bytes], before_rename=None) -> int:
    """Replace `path` with `payload` (bytes, or pieces written one after another) all at once; returns an
    open fd of the new file.

    `before_rename(fd)`, if given, is called once the new file is complete (and synced), before it
    takes the name: a rename keeps inode, size and mtime, so the caller may announce them.
    """
    folder = os.path.dirname(path) or "."
    fd, temp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        for piece in [payload] if isinstance(payload, bytes) else payload:
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
        if before_rename is not None:
            before_rename(fd)
        os.replace(temp_path, path)
    except BaseException:
        os.close(fd)
        unlink_quietly(temp_path)
        raise
    fsync_folder(folder)
    return fd


def fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class AtomicJSONStorage(Storage):
    """TinyDB storage that re-parses the file only when it was replaced, and writes atomically.

    The service never changes a file in place, so "unchanged" is exact: the path still names
    the inode this worker holds open (an open inode cannot be freed and reused), with the size
    and mtime it had (an edit in place by someone else is noticed too).
    """

    def __init__(self, path: str):
        self.path = path
        self._data = None
        self._fd = None
        self._stamp = None

    def read(self):
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            self._forget()
            return None
        except OSError as error:
            raise StorageError(f"cannot read {self.path}: {error.strerror}") from error
        if self._fd is not None and _same_file(self._stamp, current):
            return self._data
        return self._load()

    def write(self, data) -> None:
        try:
            fd = write_file_atomically(self.path, compact_json(data))
        except (OSError, ValueError) as error:
            self._forget()  # TinyDB already changed the cached dict in place
            reason = getattr(error, "strerror", None) or str(error)
            raise StorageError(f"cannot write {self.path}: {reason}") from error
        self._remember(data, fd)

    def close(self) -> None:
        self._forget()

    def _load(self):
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as error:
            raise StorageError(f"cannot read {self.path}: {error.strerror}") from error
        try:
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = json.loads(handle.read())
        except (OSError, ValueError, RecursionError) as error:
            os.close(fd)
            raise CorruptStore(f"{self.path} is not a valid data file ({error}); it was left untouched") from error
        problem = _shape_problem(data)
        if problem:
            os.close(fd)
            raise CorruptStore(f"{self.path} is not a valid data file ({problem}); it was left untouched")
        self._remember(data, fd)
        return data

    def _remember(self, data, fd: int) -> None:
        self._forget()
        self._data, self._fd, self._stamp = data, fd, os.fstat(fd)

    def _forget(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._data, self._fd, self._stamp = None, None, None


def identity(info: os.stat_result) -> tuple[int, int, int]:
    """What tells one version of a file from another: inode, size, mtime."""
    return info.st_ino, info.st_size, info.st_mtime_ns


def _same_file(held: os.stat_result, current: os.stat_result) -> bool:
    """Same inode (held open, so never reused) and not edited in place by someone else."""
    return held.st_dev == current.st_dev and identity(held) == identity(current)


def _shape_problem(data) -> str | None:
    """What makes `data` not a TinyDB document tree, if anything."""
    if not isinstance(data, dict):
        return "the top level is not an object of tables"
    for name, table in data.items():
        if not isinstance(table, dict) or not all(isinstance(doc, dict) for doc in table.values()):
            return f"table {name!r} is not an object of documents"
    return None


class StrIdTable(Table):
    """Documents keyed by our own string ids (ticket ids, client ids, key ids)."""

    document_id_class = str


class StrIdTinyDB(TinyDB):
    """TinyDB whose tables use string ids."""

    table_class = StrIdTable


def check_writable(folder: str) -> None:
    """Refuse to start on a folder where no write could succeed (read-only mount, wrong owner)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise StorageError(f"the data folder {folder} is not writable: {error.strerror}") from error
