"""A command on a real terminal: a detached tmux session whose screen tests read (capture-pane)
and type into (send-keys). tmux: scripts/install-deps.sh --with-tests."""
import shutil
import subprocess
import time
import uuid

import pytest


class Tmux:
    def __init__(self, cmd, width=200, height=30, prefix="ls"):
        self.tmux = shutil.which("tmux")
        if not self.tmux:
            pytest.fail("tmux is not installed (scripts/install-deps.sh --with-tests installs it)")
        self.session = f"{prefix}-{uuid.uuid4().hex[:8]}"
        subprocess.run([self.tmux, "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height),
                        cmd], check=True)

    def pane(self):
        """The screen as it shows now, one string per row (trailing blanks cut)."""
        return subprocess.run([self.tmux, "capture-pane", "-p", "-t", self.session], capture_output=True,
                              text=True).stdout

    def wait_pane(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            text = self.pane()
            if pred(text):
                return text
            time.sleep(0.2)
        pytest.fail(f"tmux pane never showed {what}:\n{self.pane()}")

    def send_keys(self, *keys):
        subprocess.run([self.tmux, "send-keys", "-t", self.session, *keys], check=True)

    def kill(self):
        subprocess.run([self.tmux, "kill-session", "-t", self.session], capture_output=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
