"""Getting a dataset file reproducibly: offline mirror, then cache, then official download.

A :class:`RemoteFile` names one file by its relative ``path`` and its checksum. :func:`fetch`
looks for it, in order, in the read-only mirror named by ``$METAECOM_DATA_MIRROR``, in the
download cache (:func:`cache_dir`), at its official ``url``, and inside an official ``archive``.
Every copy is verified before it is returned; downloads and extractions are written to a
temporary file next to their final place and renamed only once verified, so an interrupted
or corrupt transfer never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from metaecom.progress import progress

__all__ = [
    "CACHE_ENV", "MIRROR_ENV", "ChecksumError", "DataUnavailableError", "RemoteFile",
    "UnsafeArchiveError", "cache_dir", "fetch", "mirror_dir", "safe_extract_member",
    "sha256_of", "verify",
]

MIRROR_ENV = "METAECOM_DATA_MIRROR"
CACHE_ENV = "METAECOM_DATA_CACHE"

_CHUNK = 1 << 20  # 1 MiB
_HEX_LENGTHS = {"sha256": 64, "md5": 32, "gitblob": 40}
# Failures of the network or the server: the file is unavailable, not wrong.
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


class DataUnavailableError(RuntimeError):
    """The file is in neither the mirror nor the cache, and cannot be downloaded."""


class ChecksumError(ValueError):
    """A copy of a file does not have the expected digest."""


class UnsafeArchiveError(ValueError):
    """An archive member name is absolute or climbs out of the target with '..'."""


def _is_unsafe_name(name: str) -> bool:
    """True for absolute names ('/x', '\\x', 'C:x') and names with a '..' component."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return ".." in re.split(r"[/\\]", name)


@dataclass(frozen=True)
class RemoteFile:
    """One dataset file: where it lives relative to mirror and cache, its digest, its sources."""

    path: str
    checksum: str | None
    url: str | None = None
    archive: RemoteFile | None = None
    member: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not self.path or _is_unsafe_name(self.path):
            raise ValueError(f"RemoteFile.path must be a relative path without '..', got {self.path!r}")
        if self.checksum is not None:
            _split_checksum(self.checksum)
        if (self.archive is None) != (self.member is None):
            raise ValueError(f"{self.path}: 'archive' and 'member' must be given together")
        if self.archive is not None and self.checksum is None:
            raise ValueError(f"{self.path}: a file taken from an archive needs its own checksum")


def _split_checksum(checksum: str) -> tuple[str, str]:
    """Split 'algo:hex' and check both parts; return (algo, lower-case hex)."""
    algo, _, hexdigest = checksum.partition(":")
    if algo not in _HEX_LENGTHS or not re.fullmatch(r"[0-9a-fA-F]{%d}" % _HEX_LENGTHS[algo], hexdigest):
        raise ValueError(f"checksum must be 'sha256:<64 hex>', 'md5:<32 hex>' or 'gitblob:<40 hex>', "
                         f"got {checksum!r}")
    return algo, hexdigest.lower()


def _digest(path: Path, algo: str) -> str:
    """Hex digest of a file, read in 1 MiB chunks; 'gitblob' is git's SHA-1 of the blob object."""
    h = hashlib.new("sha1" if algo == "gitblob" else algo)
    if algo == "gitblob":
        h.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    """The sha256 of a file as hex, streamed in 1 MiB chunks (files may be gigabytes)."""
    return _digest(Path(path), "sha256")


def _mismatch(path: Path, checksum: str) -> str | None:
    """None when ``path`` matches ``checksum``, else the actual digest as 'algo:hex'."""
    algo, expected = _split_checksum(checksum)
    actual = sha256_of(path) if algo == "sha256" else _digest(Path(path), algo)
    return None if actual == expected else f"{algo}:{actual}"


def verify(path: Path, checksum: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has digest ``checksum`` ('algo:hex').

    Every copy is verified so that a changed upstream file or a corrupt transfer cannot
    silently change the numbers in the book.
    """
    actual = _mismatch(path, checksum)
    if actual is not None:
        raise ChecksumError(f"{path}: checksum mismatch: expected {checksum}, got {actual}")


def cache_dir() -> Path:
    """Where downloads are kept: ``$METAECOM_DATA_CACHE``, else ``data/cache`` in a checkout
    of the book, else ``~/.cache/metaecom``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    root = Path(__file__).resolve().parents[3]
    if (root / "_config.yml").is_file():
        return root / "data" / "cache"
    return Path.home() / ".cache" / "metaecom"


def mirror_dir() -> Path | None:
    """The read-only offline mirror named by ``$METAECOM_DATA_MIRROR``, or None when unset.

    A variable that names no directory is an error rather than silently ignored, so that a
    typo in CI does not turn into a download.
    """
    value = os.environ.get(MIRROR_ENV)
    if not value:
        return None
    mirror = Path(value).expanduser()
    if not mirror.is_dir():
        raise DataUnavailableError(f"{MIRROR_ENV} is set to {value!r}, which is not a directory")
    return mirror


def _unavailable(file: RemoteFile, mirror: Path | None, reason: str) -> DataUnavailableError:
    """The one message that says what is missing, from where it comes, and how to work offline."""
    where = f"{MIRROR_ENV} is not set" if mirror is None else f"not under {MIRROR_ENV}={mirror}"
    text = (f"{file.path} is unavailable: it is not in the offline mirror ({where}) nor in the cache "
            f"({cache_dir()}), and {reason}. To use an offline copy, set {MIRROR_ENV} to a "
            f"directory that holds it at <mirror>/{file.path}.")
    return DataUnavailableError(f"{text} {file.note}".strip())


@contextlib.contextmanager
def _atomic(final: Path) -> Iterator[Path]:
    """Yield a new, uniquely named '.part-' file beside ``final``; it becomes ``final`` only
    when the block succeeds, and is deleted whatever happens (even KeyboardInterrupt)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(delete=False, dir=final.parent, prefix=".part-") as f:
        tmp = Path(f.name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def safe_extract_member(archive_path: Path, member: str, target: Path) -> Path:
    """Extract one member of a zip archive to ``target`` atomically; return ``target``.

    Refuses absolute names and names with '..' (in the request and anywhere in the archive),
    because such an archive is malformed or hostile and could write outside the cache.
    """
    archive_path, target = Path(archive_path), Path(target)
    if _is_unsafe_name(member):
        raise UnsafeArchiveError(f"refusing archive member {member!r}: absolute or contains '..'")
    with zipfile.ZipFile(archive_path) as zf:
        names = zf.namelist()
        unsafe = [n for n in names if _is_unsafe_name(n)]
        if unsafe:
            raise UnsafeArchiveError(f"{archive_path} has unsafe member names (absolute or with '..'): "
                                     f"{', '.join(map(repr, unsafe[:5]))}; refusing to extract from it")
        if member not in names or member.endswith("/"):
            raise ValueError(f"{archive_path} has no file member {member!r}; "
                             f"it has e.g. {', '.join(map(repr, names[:5]))}")
        with _atomic(target) as tmp, zf.open(member) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
    return target


def _download(file: RemoteFile, final: Path, show_progress: bool, timeout: float) -> None:
    """Download ``file.url`` into ``final`` via a verified temporary file."""
    request = urllib.request.Request(file.url, headers={"User-Agent": "metaecom (python urllib)"})
    try:
        with _atomic(final) as tmp:
            with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
                length = response.headers.get("Content-Length", "")
                total = int(length) if length.isdigit() else None
                bar = progress(total=total, unit="B", unit_scale=True, desc=file.path, disable=not show_progress)
                received = 0
                try:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                finally:
                    bar.close()
            if total is not None and received < total:
                raise ConnectionError(f"the connection closed after {received} of {total} bytes")
            actual = _mismatch(tmp, file.checksum) if file.checksum else None
            if actual is not None:
                raise ChecksumError(f"{file.path}: checksum mismatch in the download from {file.url}: "
                                    f"expected {file.checksum}, got {actual}; the bad download was removed")
    except _NETWORK_ERRORS as error:
        raise _unavailable(file, mirror_dir(), f"downloading {file.url} failed ({error})") from error


def _extract(file: RemoteFile, final: Path, show_progress: bool, timeout: float) -> None:
    """Obtain ``file.archive``, then extract ``file.member`` into ``final`` and verify it."""
    source = file.archive.url or file.archive.path
    try:
        archive = _fetch(file.archive, show_progress, timeout)
    except DataUnavailableError as error:
        cause = error.__cause__ or "it has no official download URL"
        raise _unavailable(file, mirror_dir(), f"it is member {file.member!r} of the archive {source}, "
                                               f"which could not be obtained ({cause}); the mirror may "
                                               f"also hold the archive at <mirror>/{file.archive.path}") from error
    with _atomic(final) as tmp:
        safe_extract_member(archive, file.member, tmp)
        actual = _mismatch(tmp, file.checksum)
        if actual is not None:
            raise ChecksumError(f"{file.path}: checksum mismatch for member {file.member!r} of {archive}: "
                                f"expected {file.checksum}, got {actual}; the extracted copy was removed")


def _fetch(file: RemoteFile, show_progress: bool, timeout: float) -> Path:
    """:func:`fetch` without its guard, so that unverified archives can be obtained for a member."""
    mirror = mirror_dir()
    if mirror is not None and (mirror / file.path).is_file():
        copy = mirror / file.path
        actual = _mismatch(copy, file.checksum) if file.checksum else None
        if actual is not None:
            raise ChecksumError(f"the mirror copy {copy} is bad ({MIRROR_ENV}): expected {file.checksum}, "
                                f"got {actual}; replace it with the official file (the mirror is never modified)")
        return copy
    final = cache_dir() / file.path
    if final.is_file():
        actual = _mismatch(final, file.checksum) if file.checksum else None
        if actual is None:
            return final
        warnings.warn(f"cached {final} has {actual}, expected {file.checksum}; removing it and fetching again",
                      RuntimeWarning, stacklevel=3)
        final.unlink(missing_ok=True)
    if file.url is not None:
        _download(file, final, show_progress, timeout)
    elif file.archive is not None:
        _extract(file, final, show_progress, timeout)
    else:
        raise _unavailable(file, mirror, "it has no official download URL")
    return final


def fetch(file: RemoteFile, *, show_progress: bool = True, timeout: float = 60.0) -> Path:
    """Return a verified local path of ``file``: mirror, else cache, else download or extract.

    Raises :class:`ChecksumError` for a bad copy, :class:`DataUnavailableError` when no
    source works (with a message on how to supply an offline copy).
    """
    if file.checksum is None:
        raise ValueError(f"{file.path} has no checksum; unverified files are only allowed as archives "
                         "whose members carry checksums (fetch the members instead)")
    return _fetch(file, show_progress, timeout)
