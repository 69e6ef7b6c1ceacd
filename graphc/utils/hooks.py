"""`RemovableHandle`: what hook registration returns (torch.utils.hooks)."""

from __future__ import annotations

import itertools


class RemovableHandle:
    """Returned by hook registration; `remove()` unregisters the hook from
    every dict it was added to (a module hook with kwargs lives in two)."""

    _ids = itertools.count()

    def __init__(self, hooks: dict, *extra: dict):
        self._hooks = hooks
        self._extra = extra
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)
        for d in self._extra:
            d.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


__all__ = ["RemovableHandle"]
