"""Named things of one kind that other packages may add to: the built-in
ones, those of a Python entry-point group (read on first use, so the
`ovnlb-lab` command sees them too), and those added at run time (pytest's
hooks, pytest_ovnlb/plugin/hookspecs.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import entry_points

from pytest_ovnlb.errors import LabError


class Registry:
    def __init__(self, kind: str, group: str, builtin: Iterable,
                 check: Callable[[object], object]):
        self.kind, self.group = kind, group
        self.check = check  # a valid item as it is kept; LabError otherwise
        self._items = {item.name: check(item) for item in builtin}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in entry_points(group=self.group):
            try:
                item = ep.load()
            except Exception as exc:
                raise LabError(f"{self.kind} entry point {ep.name} ({ep.value}): "
                               f"{type(exc).__name__}: {exc}") from None
            self.add(item)

    def add(self, item) -> None:
        name = getattr(item, "name", None)
        if not isinstance(name, str):
            raise LabError(f"{self.kind} {item!r} has no name")
        if name in self._items and self._items[name] is not item:
            raise LabError(f"{self.kind} {name!r} is defined twice")
        self._items[name] = self.check(item)

    def remove(self, name: str) -> None:
        """Forget one added at run time (a pytest run in the same process
        as another: pytester's inline runs)."""
        self._items.pop(name, None)

    def names(self) -> list[str]:
        self._load()
        return list(self._items)

    def values(self) -> list:
        self._load()
        return list(self._items.values())

    def get(self, name: str):
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise LabError(f"unknown {self.kind} {name!r} "
                           f"(known: {', '.join(self.names())})") from None
