"""Progress bars: live on a terminal, a line every ~30 s in a log (nucvn.core.progress)."""

from __future__ import annotations

import io
import time

import pytest

from nucvn.core.progress import progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(stream: io.StringIO) -> int:
    return stream.getvalue().count("\r") + stream.getvalue().count("\n")


def test_bar_in_a_log_prints_rarely_and_on_a_terminal_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """5,000 updates over ~0.5 s: a log (not a terminal) gets the first and the final line only,
    a terminal gets redrawn many times."""
    monkeypatch.delenv("NUCVN_PROGRESS_INTERVAL", raising=False)
    outputs = {}
    for name, stream in (("log", io.StringIO()), ("tty", _Tty())):
        with progress_bar(total=5000, desc="x", file=stream) as bar:
            if name == "tty":
                bar.mininterval = 0.0
                bar.miniters = 1
            for _ in range(5000):
                bar.update(1)
                time.sleep(0.0001)
        outputs[name] = _lines(stream)
    assert outputs["log"] <= 3
    assert outputs["tty"] > 50


def test_interval_can_be_set_for_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUCVN_PROGRESS_INTERVAL", "5")
    bar = progress_bar(total=10, file=io.StringIO())
    assert bar.mininterval == 5.0
    bar.close()
    bar = progress_bar(total=10, file=_Tty())
    assert bar.mininterval < 1.0
    bar.close()
