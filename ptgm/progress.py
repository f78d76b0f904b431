"""Progress of long work: a live bar on a terminal, a line every few percent in a log file."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm import tqdm

#: Percent of the total between two lines when the output is not a terminal.
LOG_EVERY_PERCENT = 5


class progress(tqdm):
    """``tqdm`` on a terminal; elsewhere (a log file, a pipe) one plain line per ``LOG_EVERY_PERCENT`` % of the
    total (and at the end), instead of thousands of redraws."""

    def __init__(self, iterable: Iterable | None = None, *args, **kwargs):
        stream = kwargs.get("file") or sys.stderr
        self._plain = not (hasattr(stream, "isatty") and stream.isatty())
        self._next_line = 0.0
        if self._plain:
            kwargs.update(mininterval=0, miniters=1)
        super().__init__(iterable, *args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> None:
        if not self._plain:
            return super().display(msg, pos)
        if not self.total:
            return None
        percent = 100.0 * self.n / self.total
        if percent + 1e-9 >= self._next_line:
            self._next_line = (int(percent // LOG_EVERY_PERCENT) + 1) * LOG_EVERY_PERCENT
            self.fp.write(self.__str__().replace("\r", "").strip() + "\n")
            self.fp.flush()
        return None
