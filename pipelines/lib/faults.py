"""Named points where a test can kill the process for real (SIGKILL, as kill -9 does), to prove a crash there
leaves the system of record consistent and the next run finishes the work once. Set LEADFACTORY_KILL_AT to a
point's name; unset (always, in production) it does nothing."""

from __future__ import annotations

import os
import signal

KILL_AT_ENV = "LEADFACTORY_KILL_AT"


def kill_point(name: str) -> None:
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
