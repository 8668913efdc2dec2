"""Header fields as a server sent them, looked up by name in any case.

HTTP field names are case-insensitive (RFC 9110, section 5.1), and servers
differ: Gunicorn's WSGI workers send ``Content-Length``, its ASGI worker
``content-length``. ``Headers`` keeps every field in order with the name as
sent (so a notebook can show the difference) and answers ``headers["content-length"]``
whatever the spelling. Every part of the library that reads response headers
uses it: the raw socket client, the framing rules, ``measure()``, the WSGI
tools and the tests' hostile-request suite.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping


class Headers(Mapping[str, str]):
    """An ordered list of ``(name, value)`` fields with case-insensitive lookup.

    ``headers[name]`` is the last value sent under that name; ``get_all``
    gives every value. Iterating yields each name once, spelt as first sent.
    """

    def __init__(self, fields: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        items = fields.items() if isinstance(fields, Mapping) else fields
        self.fields: list[tuple[str, str]] = [(str(n), str(v)) for n, v in items]

    @classmethod
    def parse(cls, head: bytes) -> Headers:
        """The fields of a response or request head (its first line is skipped)."""
        lines = head.decode("latin-1").split("\r\n")[1:]
        return cls(
            (name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in lines)
            if name.strip()
        )

    def get_all(self, name: str) -> list[str]:
        """Every value sent under ``name``, in order."""
        key = name.lower()
        return [value for field, value in self.fields if field.lower() == key]

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return values[-1]

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self.fields:
            if name.lower() not in seen:
                seen.add(name.lower())
                yield name

    def __len__(self) -> int:
        return len({name.lower() for name, _ in self.fields})

    def __repr__(self) -> str:
        return f"Headers({self.fields!r})"

    @property
    def chunked(self) -> bool:
        """True when ``Transfer-Encoding`` ends in ``chunked`` (RFC 9112, section 6.1)."""
        codings = ",".join(self.get_all("Transfer-Encoding")).replace(" ", "").lower()
        return codings.split(",")[-1] == "chunked"
