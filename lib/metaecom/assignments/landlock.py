"""Landlock: let a process (and every process it starts) see only the folders it is given.

Landlock is a Linux security module (kernel 5.13 and later, enabled on current Debian and
Ubuntu kernels) that an *unprivileged* process can apply to itself: after
:func:`restrict`, opening a file outside the allowed folders fails with
``PermissionError``, for the process and all its children, and nothing can lift it. The
grader uses it so that a submission's kernel cannot read the teacher's notebook (the
hidden tests and the solutions), other students' submissions or the gradebook, and cannot
write anywhere but its own working folder. No root, no container, no extra package: three
system calls made through :mod:`ctypes`.

:func:`abi_version` says whether it is available (0 when not: another OS, an old kernel,
or the module switched off); the grader then records that submissions ran without
isolation. Signals to processes outside the sandbox are blocked too where the kernel
supports it (ABI 6, Linux 6.12), so a submission cannot kill the grader.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from pathlib import Path
from typing import Iterable

__all__ = ["abi_version", "restrict", "LandlockError"]

# x86_64, arm64 and most other architectures share these numbers (asm-generic).
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights (include/uapi/linux/landlock.h) and the ABI version that added each.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_DIR_CHANGES = sum(1 << bit for bit in range(4, 13))   # remove/make dir, file, fifo, sym, ...
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_RIGHTS_BY_ABI = {1: EXECUTE | WRITE_FILE | READ_FILE | READ_DIR | _DIR_CHANGES,
                  2: REFER, 3: TRUNCATE, 5: IOCTL_DEV}
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV   # allowed on a file
_SCOPE_SIGNAL = 1 << 1   # ABI 6


class LandlockError(OSError):
    """Landlock is unavailable or refused the ruleset."""


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The Landlock ABI version the running kernel offers, 0 when there is none."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = _libc()
        libc.syscall.restype = ctypes.c_long
        version = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                               ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _handled(abi: int) -> int:
    return sum(rights for version, rights in _RIGHTS_BY_ABI.items() if version <= abi)


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise LandlockError(errno, f"landlock {what} failed: {os.strerror(errno)}")
    return result


def restrict(read_only: Iterable[str | Path], read_write: Iterable[str | Path]) -> int:
    """Allow this process only ``read_only`` (read, list, execute) and ``read_write``
    (everything) folders or files, for good. Paths that do not exist are skipped.

    Returns the ABI version used. Raises :class:`LandlockError` when Landlock is not
    available; call :func:`abi_version` first to decide.
    """
    abi = abi_version()
    if abi < 1:
        raise LandlockError(0, "Landlock is not available on this system")
    handled = _handled(abi)
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    # struct landlock_ruleset_attr { u64 handled_access_fs; u64 handled_access_net; u64 scoped; }
    if abi >= 6:
        attr = struct.pack("=QQQ", handled, 0, _SCOPE_SIGNAL)
    else:
        attr = struct.pack("=Q", handled)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _check(libc.syscall(_SYS_CREATE_RULESET, buffer, ctypes.c_size_t(len(attr)),
                                  ctypes.c_uint32(0)), "create_ruleset")
    try:
        reading = EXECUTE | READ_FILE | READ_DIR
        for paths, rights in ((read_only, reading), (read_write, handled)):
            for path in paths:
                _add_rule(libc, ruleset, Path(path), rights & handled)
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
        _check(libc.syscall(_SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)), "restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _add_rule(libc, ruleset: int, path: Path, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not path.is_dir():
            rights &= _FILE_RIGHTS
        # struct landlock_path_beneath_attr { u64 allowed_access; s32 parent_fd; } __packed
        rule = struct.pack("=Qi", rights, fd)
        buffer = ctypes.create_string_buffer(rule, len(rule))
        _check(libc.syscall(_SYS_ADD_RULE, ruleset, ctypes.c_uint32(_RULE_PATH_BENEATH), buffer,
                            ctypes.c_uint32(0)), f"add_rule({path})")
    finally:
        os.close(fd)
