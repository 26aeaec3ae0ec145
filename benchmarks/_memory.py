"""Peak resident memory of a block of code, for the side-by-side benchmarks (Linux ``/proc``)."""
from __future__ import annotations

import threading


def rss_mib() -> float:
    """This process's current resident set size in MiB (NaN where ``/proc`` is missing)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class PeakRSS:
    """Samples this process's RSS every ``interval`` seconds in a thread.

    ``start`` is the RSS on entry and ``peak`` the maximum seen during the block.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval

    def __enter__(self) -> PeakRSS:
        self.start = rss_mib()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())
