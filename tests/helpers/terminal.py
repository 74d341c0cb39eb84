"""Running ``tgspread`` in a pseudo-terminal of a given width, for the tests of what the terminal shows."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def in_terminal(argv: list[str], columns: int, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``tgspread argv`` in a pseudo-terminal ``columns`` wide; (exit code, output without ANSI styling)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, columns, 0, 0))
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TGSPREAD_ARCHIVE")}
    proc = subprocess.Popen([sys.executable, "-m", "collector", *argv], stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, env={**base, "TERM": "xterm", "PYTHONPATH": str(ROOT), **(env or {})})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:      # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=120)
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r\n", "\n")
