"""``leadfactory-dbt``: dbt that dies with the process that started it.

dbt runs as a child process and holds the DuckDB file lock while it works. If the run that started it
is killed (kill -9 leaves no chance to clean up), an orphaned dbt would keep the file locked and block
every later run. Linux's parent-death signal (prctl PR_SET_PDEATHSIG) makes the kernel kill this
process when its parent dies; it survives the exec into dbt.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def main() -> None:
    parent = os.getppid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: dbt then runs as a plain child
        pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        sys.exit(1)
    dbt = str(Path(sys.executable).with_name("dbt"))
    os.execv(dbt, [dbt, *sys.argv[1:]])


if __name__ == "__main__":
    main()
