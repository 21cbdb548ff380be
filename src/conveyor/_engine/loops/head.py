"""The head of a pipeline, opened and run: what a loop process does with each item.

The head is the first stage (an async function, perhaps its service's ``call``) and the
plain maps after it (``fold.py``). A loop process (``worker.py``) runs it, and so does
the run's own loop before ``loops="auto"`` moves it to the loop processes (``grow.py``),
so an item goes through the same steps, and fails the same way, wherever it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from ..outcomes import RemoteFailure
from ..ports import Budget, Carry, Service
from ..spec import StageSpec


class Head:
    """The head's functions, opened: the first stage's (perhaps from its service), then
    the plain maps, each with its stage name for failures."""

    def __init__(self, first: StageSpec, service: Service | None, rest: list[StageSpec]):
        assert first.fn is not None
        self.first: Callable[[Any], Any] = first.fn if service is None else service.call
        self.first_name = first.name
        self.service = service
        self.rest: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
            (spec.name, spec.fn) for spec in rest if spec.fn is not None
        )

    @classmethod
    async def open(
        cls, stages: tuple[StageSpec, ...], budget: Budget | None, stack: AsyncExitStack
    ) -> Head:
        """Open the first stage's service (bound to ``budget``, when the loops share
        one) in ``stack``, which closes it."""
        first, *rest = stages
        if first.factory is None:
            return cls(first, None, rest)
        factory = first.factory if budget is None else first.factory.bind(budget)
        return cls(first, await stack.enter_async_context(factory()), rest)

    async def run(self, value: Any) -> tuple[Any, int]:
        """The head's result for ``value`` and the retries its service made for it;
        a failure raises as ``RemoteFailure``, naming the stage that raised (and carrying
        the first stage's ``Carry.extra``, when a later one raised)."""
        stage = self.first_name
        retries = 0
        carried = None
        try:
            value = await self.first(value)
            if self.service is not None:
                retries = self.service.attempts(value) - 1
            carried = value if type(value) is Carry else None
            if carried is not None:
                value = carried.value
            if carried is None or not carried.drop:
                for name, fn in self.rest:
                    stage = name  # named in the failure if this one raises
                    value = fn(value)
            if carried is not None:  # the parent's stage takes the extra off again
                value = carried._replace(value=value)
        except Exception as exc:
            failure = RemoteFailure.describe(exc, stage=stage)
            if carried is not None:  # a later stage failed: the extra still goes back
                failure.extra = carried.extra
            raise failure from None
        return value, retries
