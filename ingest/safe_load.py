"""Loading other toolboxes' files without running their code.

A pickle can call any importable function while it loads (`os.system`, ...). The
files this project imports (pyskl / MMAction2 annotation pickles, ST-GCN label pickles)
only ever hold plain containers, numbers, strings and numpy arrays, so `load_pickle`
uses an unpickler that resolves only the handful of globals those need and refuses
every other one before it is called. npz / npy files are read with
`allow_pickle=False` (an object array is refused by numpy) and never loaded whole: an
npy or a stored npz member (`np.savez`) is read row by row with `os.pread` (`Rows`), a
deflated npz member (`np.savez_compressed`) row by row from the zip's decompressing
stream (`ZipRows`).
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np


class UnsafeSource(Exception):
    """A source file that is not what it claims (code in a pickle, object arrays,
    a truncated or damaged file). The message names the file and the problem."""


#: (module, name) pairs a numpy-array pickle needs (protocols 0-5, numpy 1.x and 2.x).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    # bytes pickled by Python 2-compatible protocols (mmcv dumps with protocol 2).
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "str"),
    ("builtins", "int"), ("builtins", "float"), ("builtins", "bool"), ("builtins", "complex"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"),
}


#: Strings / bytes at least this long are not kept in the unpickler's memo (see below).
BIG = 1 << 12
_DROPPED = object()


def _big(x) -> bool:
    return isinstance(x, (bytes, bytearray, str)) and len(x) >= BIG


class _Restricted(pickle._Unpickler):
    """The pure-Python unpickler with two changes: `find_class` allows only _ALLOWED, and
    large str / bytes objects (the payload of each array) and tuples holding one are not
    kept in the memo.

    Why the second: the memo holds every memoized object until the load ends, so the
    bytes each array was built from (and, in the protocol-2 pickles mmcv writes, also the
    latin-1 str they were encoded from) would stay alive beside the arrays: 2-3x the
    file in memory. A pickler only refers back (GET) to an object it has seen twice, and
    an array's payload is a fresh object each time, so nothing refers back to them; a
    pickle that does is refused with a clear error instead of being loaded wrongly.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refused to load global {module}.{name}: only numpy arrays, dtypes and plain "
            "containers are allowed")

    def _keep(self):
        """What the memo keeps of the top of the stack: _DROPPED for a large str / bytes
        or a tuple holding one (the argument tuples built around an array's payload)."""
        top = self.stack[-1]
        if _big(top) or (type(top) is tuple and any(_big(x) for x in top)):
            return _DROPPED
        return top

    def load_binput(self):
        self.memo[self.read(1)[0]] = self._keep()
    dispatch[pickle.BINPUT[0]] = load_binput

    def load_long_binput(self):
        (i,) = struct.unpack("<I", self.read(4))
        self.memo[i] = self._keep()
    dispatch[pickle.LONG_BINPUT[0]] = load_long_binput

    def load_put(self):
        self.memo[int(self.readline()[:-1])] = self._keep()
    dispatch[pickle.PUT[0]] = load_put

    def load_memoize(self):
        self.memo[len(self.memo)] = self._keep()
    dispatch[pickle.MEMOIZE[0]] = load_memoize

    def _got(self):
        if self.stack and self.stack[-1] is _DROPPED:
            raise pickle.UnpicklingError("the pickle refers back to a large string or bytes "
                                         "object; not a pyskl / ST-GCN file")

    def load_binget(self):
        pickle._Unpickler.load_binget(self)
        self._got()
    dispatch[pickle.BINGET[0]] = load_binget

    def load_long_binget(self):
        pickle._Unpickler.load_long_binget(self)
        self._got()
    dispatch[pickle.LONG_BINGET[0]] = load_long_binget

    def load_get(self):
        pickle._Unpickler.load_get(self)
        self._got()
    dispatch[pickle.GET[0]] = load_get


def load_pickle(path: str | Path):
    """Unpickle `path` with the restricted unpickler; streams from the file (peak memory
    about the size of the loaded objects). Returns the object.

    Raises UnsafeSource naming the file: a global outside numpy arrays/dtypes/plain
    containers (e.g. a pickle that would run code: nothing is called), a truncated or
    damaged pickle.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return _Restricted(io.BufferedReader(fh, 1 << 20)).load()
    except pickle.UnpicklingError as e:
        raise UnsafeSource(f"{path}: {e}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError, UnicodeDecodeError) as e:
        raise UnsafeSource(f"{path}: not a readable pickle (truncated or damaged?): "
                           f"{type(e).__name__}: {e}") from None


def open_npz(path: str | Path):
    """`np.load(path, allow_pickle=False)` as a lazy NpzFile (members load one at a
    time). Raises UnsafeSource when the file is not a zip / npz."""
    path = Path(path)
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise UnsafeSource(f"{path}: not a readable .npz (truncated or damaged?): {e}") from None


def npz_member(npz, key: str, path: str | Path) -> np.ndarray:
    """One member of an open npz, loaded; object arrays are refused (allow_pickle=False).
    Raises UnsafeSource naming the member when it cannot be read (truncated archive)."""
    try:
        return npz[key]
    except (ValueError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise UnsafeSource(f"{path}: member {key!r} cannot be read (truncated, damaged or "
                           f"an object array): {e}") from None


def open_npy(path: str | Path) -> np.ndarray:
    """`np.load(path, mmap_mode='r', allow_pickle=False)`: the array memory-mapped (read
    on demand, so files of any size fit). Raises UnsafeSource for an object array or a
    file shorter than its header says."""
    path = Path(path)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UnsafeSource(f"{path}: not a readable .npy (truncated, damaged or an object "
                           f"array): {e}") from None


def npz_memmap(path: str | Path, key: str) -> np.ndarray:
    """Member `key` of an npz memory-mapped (read on demand) when it is stored
    uncompressed (np.savez, what the reference scripts use); else loaded with
    allow_pickle=False. Object arrays are refused. Raises KeyError for a missing member,
    UnsafeSource for a damaged or truncated archive."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(key + ".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                with open_npz(path) as npz:
                    return npz_member(npz, key, path)
            with open(path, "rb") as fh:
                fh.seek(info.header_offset)
                local = fh.read(30)
                if len(local) != 30 or local[:4] != b"PK\x03\x04":
                    raise UnsafeSource(f"{path}: member {key!r}: damaged zip header")
                n_name = int.from_bytes(local[26:28], "little")
                n_extra = int.from_bytes(local[28:30], "little")
                fh.seek(info.header_offset + 30 + n_name + n_extra)
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(fh)
                if dtype.hasobject:
                    raise UnsafeSource(f"{path}: member {key!r} is an object array (refused)")
                offset = fh.tell()
            need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if offset + need > path.stat().st_size or need > info.file_size:
                raise UnsafeSource(f"{path}: member {key!r} is truncated ({info.file_size} "
                                   f"bytes stored, {need} needed)")
            if need == 0:
                return np.zeros(shape, dtype)
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                             order="F" if fortran else "C")
    except KeyError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise UnsafeSource(f"{path}: not a readable .npz (truncated or damaged?): {e}") from None


def npz_rows(path: str | Path, key: str) -> "Rows | ZipRows | np.ndarray":
    """Member `key` of an npz for reading row by row without loading it: `Rows` (pread)
    when stored (np.savez), `ZipRows` (the decompressing stream) when deflated
    (np.savez_compressed); a 0-d / 1-d member is returned loaded. Object arrays are
    refused. Raises KeyError for a missing member, UnsafeSource for a damaged or
    truncated archive or a compression other than stored / deflate."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(key + ".npy")
    except KeyError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise UnsafeSource(f"{path}: not a readable .npz (truncated or damaged?): {e}") from None
    if info.compress_type == zipfile.ZIP_STORED:
        return as_rows(npz_memmap(path, key))
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise UnsafeSource(f"{path}: member {key!r} uses zip compression {info.compress_type}; "
                           "expected stored (np.savez) or deflate (np.savez_compressed)")
    rows = ZipRows(path, info.filename)
    if rows.ndim < 2:
        with open_npz(path) as npz:
            return npz_member(npz, key, path)
    return rows


def npz_keys(path: str | Path) -> list[str]:
    """Member names of an npz (without `.npy`). Raises UnsafeSource when not a zip."""
    try:
        with zipfile.ZipFile(path) as z:
            return [n[:-4] if n.endswith(".npy") else n for n in z.namelist()]
    except (zipfile.BadZipFile, OSError) as e:
        raise UnsafeSource(f"{path}: not a readable .npz (truncated or damaged?): {e}") from None


class Rows:
    """Rows of an uncompressed npy payload read on demand with `os.pread` (no mmap, so
    the process's resident memory stays one row, not the pages of the file it touched).
    `rows[i]` -> ndarray [*shape[1:]] (a copy); `.shape`, `.ndim`, `.dtype` like an array.
    Raises UnsafeSource when a row lies beyond the end of the file (truncated)."""

    def __init__(self, path: Path, offset: int, shape: tuple, dtype: np.dtype):
        self.path, self.offset, self.shape, self.dtype = Path(path), offset, tuple(shape), dtype
        self.ndim = len(self.shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * dtype.itemsize
        self._fd = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < self.shape[0]:
            raise IndexError(i)
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        data = os.pread(self._fd, self.row_bytes, self.offset + i * self.row_bytes)
        if len(data) != self.row_bytes:
            raise UnsafeSource(f"{self.path}: row {i} lies beyond the end of the file (truncated)")
        return np.frombuffer(data, self.dtype).reshape(self.shape[1:]).copy()

    def __del__(self):
        if self._fd is not None:
            os.close(self._fd)


def as_rows(arr) -> "Rows | np.ndarray":
    """A memory-mapped array (npz_memmap / open_npy) as Rows read by pread; anything
    else unchanged. C-order only (Fortran-order arrays are returned as they are)."""
    if isinstance(arr, np.memmap) and arr.flags["C_CONTIGUOUS"] and arr.ndim >= 2:
        return Rows(arr.filename, arr.offset, arr.shape, arr.dtype)
    return arr


class ZipRows:
    """Rows of a deflated npz member (np.savez_compressed) read in order from the zip's
    decompressing stream: memory stays one row plus zlib's buffers, whatever the member's
    size. `rows[i]` -> ndarray [*shape[1:]] (a copy); reading i after i + 1 reopens the
    stream (sequential use is the fast path). `.shape`, `.ndim`, `.dtype` like an array.
    Raises UnsafeSource (naming the file, member and row) for an object array, a
    Fortran-order array, a stream that ends early or fails its CRC / inflate."""

    def __init__(self, path: Path, member: str):
        self.path, self.member = Path(path), member
        self._z = self._fh = None
        try:
            fh = self._open()
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(fh)
            self._start = fh.tell()
        except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            self.close()
            raise UnsafeSource(f"{self.path}: member {member!r}: not a readable .npy "
                               f"(truncated or damaged?): {e}") from None
        if dtype.hasobject:
            self.close()
            raise UnsafeSource(f"{self.path}: member {member!r} is an object array (refused)")
        if fortran and len(shape) > 1:
            self.close()
            raise UnsafeSource(f"{self.path}: member {member!r} is stored in Fortran order; "
                               "re-save it with np.savez (C order)")
        self.shape, self.dtype, self.ndim = tuple(shape), dtype, len(shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * dtype.itemsize
        self._next = 0

    def _open(self):
        self.close()
        self._z = zipfile.ZipFile(self.path)
        self._fh = self._z.open(self.member)
        return self._fh

    def close(self) -> None:
        for f in (self._fh, self._z):
            if f is not None:
                f.close()
        self._z = self._fh = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < self.shape[0]:
            raise IndexError(i)
        try:
            if self._fh is None or i < self._next:
                self._open().seek(self._start)
                self._next = 0
            while self._next < i:   # skip forward in bounded reads
                step = min(i - self._next, max(1, (1 << 20) // max(1, self.row_bytes)))
                got = self._fh.read(step * self.row_bytes)
                if len(got) != step * self.row_bytes:
                    raise EOFError("stream ends early")
                self._next += step
            data = self._fh.read(self.row_bytes)
            if len(data) != self.row_bytes:
                raise EOFError(f"{len(data)} of {self.row_bytes} bytes")
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            self.close()
            raise UnsafeSource(f"{self.path}: member {self.member!r} row {i} cannot be read "
                               f"(truncated or damaged?): {e}") from None
        self._next = i + 1
        if self._next == self.shape[0]:
            self._fh.read(1)   # reach the end of the stream: zipfile checks the CRC there
        return np.frombuffer(data, self.dtype).reshape(self.shape[1:]).copy()

    def __del__(self):
        self.close()
