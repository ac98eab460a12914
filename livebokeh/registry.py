"""A small name -> object registry, used for segmenters, sources and sinks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from livebokeh.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (usually classes); lookups of unknown names list the known ones.

    >>> r = Registry[int]("colour")
    >>> r.add("red", 1)
    >>> r.get("red")
    1
    """

    def __init__(self, kind: str, order: tuple[str, ...] = ()) -> None:
        self._kind = kind
        self._items: dict[str, T] = {}
        self._order = order  # names listed in this order (whichever registers first), the others after

    def add(self, name: str, item: T) -> None:
        if name in self._items:
            raise ValueError(f"{self._kind} {name!r} is already registered")
        self._items[name] = item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorate(item: T) -> T:
            self.add(name, item)
            return item

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self._kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> tuple[str, ...]:
        rank = {name: i for i, name in enumerate(self._order)}
        return tuple(sorted(self._items, key=lambda n: rank.get(n, len(rank))))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
