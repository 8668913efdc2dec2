"""The CSV the demo serves, produced row by row.

The same rows feed the plain view (joined into one body), the streaming view
(batched into chunks) and the benchmark's in-process ceiling (no HTTP at all),
so every measurement compares like with like.
"""

import csv
import time
from collections.abc import Iterable, Iterator

HEADER = ("One", "Two", "Three")


class Echo:
    """A pseudo-buffer: ``write`` returns what it is given instead of storing it.

    ``csv.writer`` insists on a file to write to. Handing it this object makes
    ``writer.writerow(row)`` return the formatted line, so each line can be
    yielded and forgotten, and nothing grows with the size of the file.
    """

    def write(self, value: str) -> str:
        return value


_writer = csv.writer(Echo())


def iter_lines(rows: int) -> Iterator[str]:
    """Yield ``rows`` CSV lines: a header, then ``Hello,world,1`` ... ``Hello,world,rows-1``."""
    if rows <= 0:
        return
    yield _writer.writerow(HEADER)
    for i in range(1, rows):
        yield _writer.writerow(("Hello", "world", i))


def batched(lines: Iterable[str], size: int, delay_s: float = 0.0) -> Iterator[str]:
    """Join ``lines`` ``size`` at a time into chunks, sleeping ``delay_s`` after each.

    One line per chunk is what most examples do; each chunk then costs a trip
    through Django, Gunicorn and a socket write, which is why batching is faster.
    """
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield "".join(batch)
            batch.clear()
            if delay_s:
                time.sleep(delay_s)
    if batch:
        yield "".join(batch)


def iter_chunks(rows: int, chunk_rows: int, delay_s: float = 0.0) -> Iterator[str]:
    """Yield the CSV in chunks of ``chunk_rows`` lines, sleeping ``delay_s`` after each."""
    return batched(iter_lines(rows), chunk_rows, delay_s)


def csv_text(rows: int) -> str:
    """The whole CSV as one string, as a non-streaming view builds it."""
    return "".join(iter_lines(rows))


def csv_size(rows: int) -> int:
    """The size in bytes of the CSV for ``rows`` rows, computed without building it."""
    if rows <= 0:
        return 0
    size = len("One,Two,Three\r\n")
    low, digits = 1, 1
    while low <= rows - 1:  # data rows numbered low..high all have `digits` digits
        high = min(rows - 1, low * 10 - 1)
        size += (high - low + 1) * (len("Hello,world,\r\n") + digits)
        low, digits = low * 10, digits + 1
    return size


def rows_for_size(nbytes: int) -> int:
    """The smallest row count whose CSV is at least ``nbytes`` long."""
    low, high = 0, 1
    while csv_size(high) < nbytes:
        high *= 2
    while low < high:
        mid = (low + high) // 2
        if csv_size(mid) < nbytes:
            low = mid + 1
        else:
            high = mid
    return low
