"""Credentials the client sends for the user: user info in a URL, and ``.netrc``.

* ``http://user:password@host/`` is fetched with ``Authorization: Basic`` made from the
  user info (percent-decoded, as the user wrote it), unless the request carries its own
  ``Authorization``. It is an ordinary ``Authorization`` header from then on: dropped on
  a redirect to another origin (``safety.should_strip_credentials``), never written into
  the request line. User info in a redirect's ``Location`` is not used.
* With ``trust_env``, a host named in ``.netrc`` (``$NETRC``, else ``~/.netrc``) gets its
  login as Basic credentials when neither the request nor the URL has any, as aiohttp's
  ``trust_env`` did; a proxy URL without credentials gets the proxy host's.
"""

from __future__ import annotations

import base64
import netrc
import os
from pathlib import Path
from urllib.parse import unquote_to_bytes

from yarl import URL

from .._errors import UsageError


def basic(user: bytes, password: bytes) -> str:
    """An ``Authorization`` (or ``Proxy-Authorization``) value for Basic credentials."""
    return "Basic " + base64.b64encode(user + b":" + password).decode("ascii")


def userinfo(url: URL) -> tuple[bytes, bytes] | None:
    """The user and password of ``url``, percent-decoded to bytes, or None."""
    if url.raw_user is None:
        return None
    return unquote_to_bytes(url.raw_user), unquote_to_bytes(url.raw_password or "")


class Netrc:
    """Logins from a ``.netrc`` file, read once (``load`` runs on a thread)."""

    def __init__(self, entries: dict[str, str]) -> None:
        self._entries = entries

    @classmethod
    def load(cls) -> Netrc:
        """Read ``$NETRC`` or ``~/.netrc``; an absent file has no logins.

        Raises:
            UsageError: the file is there but cannot be read or parsed.
        """
        path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
        if not path.is_file():
            return cls({})
        try:
            parsed = netrc.netrc(str(path))
        except (netrc.NetrcParseError, OSError) as exc:
            raise UsageError(
                f"trust_env: {path} cannot be read ({exc}); fix it, or fetch without trust_env"
            ) from None
        entries = {}
        for host, (login, _, password) in parsed.hosts.items():
            entries[host.lower()] = basic(login.encode(), (password or "").encode())
        return cls(entries)

    def authorization(self, host: str) -> str | None:
        """The Basic credentials for ``host`` (its ``default`` entry otherwise), or None."""
        return self._entries.get(host.lower()) or self._entries.get("default")
