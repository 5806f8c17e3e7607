"""Progress of long reads: quiet for a short one, a line per interval in a log, a bar
redrawn in place on a terminal."""

import io

from mtl_keras.data.progress import RowProgress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_read_shorter_than_the_first_report_prints_nothing():
    out = io.StringIO()
    progress = RowProgress("reading big.csv", stream=out)  # first report after 2 s
    progress.update(10_000, 0.5)
    progress.done(20_000)
    assert out.getvalue() == ""


def test_a_log_gets_one_line_per_report_with_rows_rate_and_share():
    out = io.StringIO()
    progress = RowProgress("reading big.csv", stream=out, interval=0, first=0)
    progress.update(250_000, 0.25)
    progress.update(1_000_000, 1.0)
    progress.done(1_000_000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in out.getvalue()
    assert lines[0].startswith("reading big.csv: 250,000 rows, ") and lines[0].endswith("(25%)")
    assert "rows/s" in lines[1] and lines[2].startswith("reading big.csv: 1,000,000 rows in ")


def test_a_terminal_gets_a_bar_redrawn_in_place():
    out = Terminal()
    progress = RowProgress("reading big.csv", stream=out, interval=0, first=0)
    progress.update(500, 0.5)
    progress.done(1000)
    text = out.getvalue()
    assert text.startswith("\r\033[K[" + "=" * 15 + "." * 15 + "]  50% reading big.csv: 500")
    assert text.count("\n") == 1 and text.endswith("1,000 rows in 0s\n")
