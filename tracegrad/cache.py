"""``python -m tracegrad.cache info|clear``: the disk cache of compiled kernels.

``info`` prints the folder (``$TRACEGRAD_CACHE_DIR``, else the user cache
folder), the number of kernels and their total size; ``clear`` removes them.
See ``tracegrad.backend.diskcache`` for what an entry is and when one is
trusted.
"""
import sys

from tracegrad.backend import diskcache


def info():
    """``(folder, number of kernels, total bytes)``."""
    found = diskcache.entries()
    return diskcache.cache_dir(), len(found), sum(size for _, size in found)


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["info"]:
        folder, count, total = info()
        print(f"folder: {folder}\nkernels: {count}\nsize: {total / 1024:.1f} KiB")
        return 0
    if args == ["clear"]:
        print(f"removed {diskcache.clear()} kernels from {diskcache.cache_dir()}")
        return 0
    print("usage: python -m tracegrad.cache info|clear", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
