"""Credentials from arguments, environment variables or ``~/.netrc``; never shown.

Lookup order: explicit arguments, then ``<PREFIX>_USERNAME`` and
``<PREFIX>_PASSWORD`` (``CDSE_USERNAME``...), then the ``machine`` entries of
``~/.netrc`` (or the file named by ``$NETRC``) for the service's hosts.

A :class:`Credentials` never prints its password (``repr`` hides it), and no
message of this package includes one.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import AuthenticationError

__all__ = ["Credentials", "netrc_path", "resolve_credentials"]


@dataclass(frozen=True)
class Credentials:
    """A user name and password, and where they were found.

    Examples
    --------
    >>> Credentials("me@example.org", "s3cret", "arguments")
    Credentials(username='me@example.org', password=<hidden>, source='arguments')
    """

    username: str
    password: str = field(repr=False)
    source: str = "arguments"

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>, source={self.source!r})"

    __str__ = __repr__


def netrc_path() -> Path:
    """The netrc file consulted: ``$NETRC`` or ``~/.netrc``."""
    return Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()


def _from_netrc(hosts: Sequence[str]) -> Credentials | None:
    path = netrc_path()
    if not path.is_file():
        return None
    try:
        entries = netrc.netrc(str(path))
    except netrc.NetrcParseError as error:
        # the parser's message may quote a token of the file (a password): leave it out
        raise AuthenticationError(
            f"{path} cannot be parsed (line {error.lineno}); fix its syntax "
            "('machine HOST login USER password PASS') or pass the credentials explicitly"
        ) from None
    except OSError as error:
        raise AuthenticationError(f"{path} cannot be read ({error.strerror})") from None
    for host in hosts:
        found = entries.authenticators(host)
        if found and found[0] and found[2]:
            return Credentials(found[0], found[2], f"{path} (machine {host})")
    return None


def resolve_credentials(
    username: str | None,
    password: str | None,
    *,
    env_prefix: str,
    hosts: Sequence[str],
    service: str,
    required: bool = True,
) -> Credentials | None:
    """Find credentials for ``service``: arguments, environment, then ``~/.netrc``.

    Parameters
    ----------
    username, password : str or None
        Explicit credentials; both or neither.
    env_prefix : str
        ``"CDSE"`` reads ``CDSE_USERNAME`` and ``CDSE_PASSWORD``.
    hosts : sequence of str
        ``machine`` names looked up in the netrc file.
    service : str
        Name for messages (``"Copernicus Data Space"``).
    required : bool
        Raise when nothing is found (else return None).

    Raises
    ------
    AuthenticationError
        Only one of username/password given, or none found while required.

    Examples
    --------
    >>> resolve_credentials("me", "pw", env_prefix="X", hosts=(), service="X").source
    'arguments'
    """
    if (username is None) != (password is None):
        raise AuthenticationError(
            f"{service}: pass both username and password (or neither, to read "
            f"{env_prefix}_USERNAME/{env_prefix}_PASSWORD or {netrc_path()})"
        )
    if username is not None and password is not None:
        return Credentials(username, password, "arguments")
    env_user = os.environ.get(f"{env_prefix}_USERNAME")
    env_password = os.environ.get(f"{env_prefix}_PASSWORD")
    if env_user and env_password:
        return Credentials(env_user, env_password, f"environment ({env_prefix}_USERNAME)")
    found = _from_netrc(hosts)
    if found is not None:
        return found
    if not required:
        return None
    machines = ", ".join(hosts) or "the server"
    raise AuthenticationError(
        f"{service} needs an account: pass username= and password=, or set "
        f"{env_prefix}_USERNAME and {env_prefix}_PASSWORD, or add "
        f"'machine {hosts[0] if hosts else 'HOST'} login USER password PASS' to "
        f"{netrc_path()} (machines looked up: {machines})"
    )
