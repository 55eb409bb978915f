"""A full disk on demand, for the tests of what the outputs do on ENOSPC."""
import contextlib
import subprocess

from harness.ci import skip_or_fail


@contextlib.contextmanager
def nearly_full_tmpfs(path, free_pages):
    """A 64 KiB tmpfs mounted at `path` (created) with `free_pages` 4 KiB pages left free."""
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        (path / "filler").write_bytes(b"\0" * ((16 - free_pages) * 4096))
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
