"""asyncio_sleep.py under a hostile name: before its loop starts, the process sets its comm to a
terminal escape sequence (any user can: prctl(PR_SET_NAME) or /proc/self/comm), then one
coroutine blocks the loop with time.sleep(). Same arguments and protocol as asyncio_sleep.py.
"""
import runpy
import sys
from pathlib import Path

# ESC ] 0 ; ... BEL retitles an xterm; ESC [ 2 J clears the screen. 12 bytes (comm holds 15).
COMM = b"\x1b]0;pwn\x07\x1b[2J"

if __name__ == "__main__":
    with open("/proc/self/comm", "wb") as f:
        f.write(COMM)
    here = Path(__file__).resolve().parent
    sys.argv[0] = str(here / "asyncio_sleep.py")
    runpy.run_path(sys.argv[0], run_name="__main__")
