"""A name → object registry used for tasks and methods (one shape for every plug-in)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from tunelab.errors import ConfigError
from tunelab.suggest import did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Refuses duplicate names; answers unknown names with the list and a 'did you mean'."""

    def __init__(self, kind: str, config_key: str) -> None:
        self.kind = kind
        self.config_key = config_key
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._items[name] = item
            return item

        return add

    def add(self, name: str, item: T) -> T:
        """Register `item` under `name` (a duplicate name is refused)."""
        return self.register(name)(item)

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ConfigError(self.unknown_message(name))
        return self._items[name]

    def unknown_message(self, name: str) -> str:
        known = ", ".join(sorted(self._items))
        return (
            f"{self.config_key} must be a known {self.kind}; got '{name}'."
            f"{did_you_mean(name, self._items)} Known: {known}."
        )

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())
