"""A DNS resolver that refuses non-global addresses (``block_private=True``).

Checking the addresses a name resolves to, in the resolver aiohttp then connects with, is
what closes the DNS-rebinding gap: a check on a separate lookup could see a public address
while the connection goes to 127.0.0.1. Literal IP hosts never reach a resolver in
aiohttp, so the client checks those itself (``safety.address_refusal``) on every hop.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult

from .safety import AddressRefused, Network, address_refusal


class GuardedResolver(AbstractResolver):
    """Wraps aiohttp's default resolver; one address refused refuses the name."""

    def __init__(self, inner: AbstractResolver, allowed: Sequence[Network] = ()) -> None:
        self._inner = inner
        self._allowed = tuple(allowed)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            # A name with one private address among public ones is refused as a whole:
            # round-robin would otherwise reach the private one sooner or later.
            reason = address_refusal(result["host"], self._allowed)
            if reason is not None:
                raise AddressRefused(host, result["host"], reason)
        return results

    async def close(self) -> None:
        await self._inner.close()
