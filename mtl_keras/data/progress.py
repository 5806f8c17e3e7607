"""Progress of a long read: rows done and the rate, so a big file never reads in silence.

On a terminal a bar redrawn in place; in a log (not a terminal) one line per interval.
A read that ends before the first report prints nothing, so small files stay quiet.
"""

import sys
import time

BAR = 30  # characters of the bar on a terminal


class RowProgress:
    """`update(rows, fraction)` as work goes; `done(rows)` at the end."""

    def __init__(self, what, stream=None, interval=None, first=None):
        self.what, self.stream = what, stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval if interval is not None else (0.5 if self.tty else 10.0)
        self.started = time.monotonic()
        # The first report waits for `first` seconds (a short read never prints).
        self.last = self.started + (first if first is not None else 2.0) - self.interval
        self.shown = False

    def update(self, rows, fraction=None):
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last, self.shown = now, True
        self.write(self.line(rows, fraction, now), end="" if self.tty else "\n")

    def done(self, rows):
        if self.shown:
            seconds = time.monotonic() - self.started
            self.write(f"{self.what}: {rows:,} rows in {seconds:.0f}s", end="\n")

    def line(self, rows, fraction, now):
        rate = rows / max(now - self.started, 1e-9)
        text = f"{self.what}: {rows:,} rows, {rate:,.0f} rows/s"
        if fraction is None:
            return text
        if self.tty:
            filled = int(BAR * min(fraction, 1.0))
            return f"[{'=' * filled}{'.' * (BAR - filled)}] {fraction:4.0%} {text}"
        return f"{text} ({fraction:.0%})"

    def write(self, text, end):
        prefix = "\r\033[K" if self.tty else ""
        self.stream.write(prefix + text + end)
        self.stream.flush()
