"""The on-disk cache of compiled kernels (the compiled CPU tier, ``backend.c``).

Where: ``$TRACEGRAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/tracegrad``, else
``~/.cache/tracegrad``; the folder is made with mode 0700.

An entry is ``<key>.so`` (the shared library) and ``<key>.ok`` (its size and
SHA-256, written after the library). Both are written to a temporary file in
the folder and renamed into place, so a reader sees a whole file or none, and
two processes building the same kernel at once both end with a good entry
(the second rename replaces the first with equal bytes).

Loading a shared library runs its code, so an entry is loaded only when
the folder and both files are owned by this user and writable by nobody
else, and the library's bytes match the ``.ok`` record (a truncated or
altered file does not). Anything else is treated as absent and rebuilt.
The bytes checked are the bytes loaded: they are read once, checked, and
written to this process's private folder (``private_path``), which is what
gets loaded.
"""
import atexit
import hashlib
import os
import shutil
import stat
import tempfile
import threading

SUFFIX = ".so"


def cache_dir():
    """The cache folder (not created)."""
    env = os.environ.get("TRACEGRAD_CACHE_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tracegrad")


def ensure_dir():
    """The cache folder, made (mode 0700) when missing; ``None`` when it
    cannot be made or is not safe to load from (see ``safe_stat``)."""
    path = cache_dir()
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError:
        return None
    return path if safe_stat(st) else None


def safe_stat(st):
    """Whether a file or folder with stat ``st`` is this user's own and not
    writable by group or others."""
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return False
    return not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _record(data):
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}\n"


def lookup(key, load):
    """``load(path)`` of entry ``key`` when it is present and sound, else
    ``None``. ``path`` names exactly the bytes that were checked."""
    folder = ensure_dir()
    if folder is None:
        return None
    lib = os.path.join(folder, key + SUFFIX)
    try:
        fd = os.open(lib, os.O_RDONLY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        with open(os.path.join(folder, key + ".ok")) as f:
            record = f.read()
            rst = os.fstat(f.fileno())
        if not (safe_stat(st) and safe_stat(rst) and stat.S_ISREG(st.st_mode)):
            return None
        data = b""
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            data += chunk
        if _record(data) != record:
            return None
        return load(private_copy(data))
    except OSError:
        return None
    finally:
        os.close(fd)


_private = None
_private_lock = threading.Lock()


def private_copy(data):
    """A new file holding ``data`` in this process's private folder (mode
    0700, removed at exit), for loading.

    Libraries are loaded from files that stay in place while the process
    lives: the dynamic loader recognises a library already loaded by its
    path or by its file's device and inode, so neither may ever be reused
    for another kernel (a deleted file's inode can be)."""
    global _private
    with _private_lock:
        if _private is None or not os.path.isdir(_private):
            _private = tempfile.mkdtemp(prefix="tracegrad-kernels-")
            atexit.register(_remove_private, _private, os.getpid())
        folder = _private
    fd, path = tempfile.mkstemp(dir=folder, suffix=SUFFIX)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _remove_private(folder, pid):
    # (a forked child exiting normally must not remove its parent's folder)
    if os.getpid() == pid:
        shutil.rmtree(folder, True)


def store(key, data):
    """Write entry ``key`` (the library's bytes ``data``); ``False`` when
    the folder cannot be written (the kernel is then used uncached)."""
    folder = ensure_dir()
    if folder is None:
        return False
    try:
        _write_atomic(folder, key + SUFFIX, data)
        _write_atomic(folder, key + ".ok", _record(data).encode())
    except OSError:
        return False
    return True


def _write_atomic(folder, name, data):
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, os.path.join(folder, name))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def entries():
    """``[(key, bytes)]`` of the libraries in the cache folder."""
    folder = cache_dir()
    if not os.path.isdir(folder):
        return []
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(SUFFIX) and not name.startswith("."):
            try:
                out.append((name[: -len(SUFFIX)], os.path.getsize(os.path.join(folder, name))))
            except OSError:
                pass
    return out


def clear():
    """Remove every entry (and leftover temporary file); returns how many
    libraries were removed."""
    folder = cache_dir()
    if not os.path.isdir(folder):
        return 0
    removed = 0
    for name in os.listdir(folder):
        if name.endswith((SUFFIX, ".ok")) or name.startswith(".tmp-"):
            try:
                os.unlink(os.path.join(folder, name))
                removed += name.endswith(SUFFIX) and not name.startswith(".tmp-")
            except OSError:
                pass
    return removed
