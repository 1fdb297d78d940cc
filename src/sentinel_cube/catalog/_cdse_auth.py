"""Access tokens of the Copernicus Data Space identity service (Keycloak, OpenID Connect).

``POST .../protocol/openid-connect/token`` with ``grant_type=password`` (and the
public client ``cdse-public``) returns an access token valid for minutes
(``expires_in``) and a refresh token valid longer (``refresh_expires_in``).
:class:`TokenManager` hands out a valid access token to any number of threads:
it refreshes shortly *before* expiry with ``grant_type=refresh_token``, logs in
again with the password when the refresh token has expired or is refused, and
renews on demand after a download service answers 401.

Tokens and passwords are never logged, printed or put into messages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from ._credentials import Credentials
from ._errors import AuthenticationError
from ._http import redact_url

__all__ = ["TokenManager"]

_CLIENT_ID = "cdse-public"


class TokenManager:
    """A thread-safe source of valid CDSE access tokens.

    Parameters
    ----------
    session : requests.Session
        Used for token requests (with retries on 5xx/429).
    token_url : str
        The identity service token endpoint.
    credentials : Credentials, optional
        For password logins; without them only ``token`` can be used.
    token : str, optional
        An access token obtained elsewhere; used until the server refuses it.
    margin : float
        Renew this many seconds before expiry (at most a fifth of the lifetime).
    clock : callable
        Monotonic seconds; replaceable in tests.

    Examples
    --------
    >>> manager = TokenManager(requests.Session(), "https://id/token", token="abc")
    >>> manager.access_token()
    'abc'
    >>> manager
    TokenManager(user=None, token=<hidden>)
    """

    def __init__(
        self,
        session: requests.Session,
        token_url: str,
        credentials: Credentials | None = None,
        token: str | None = None,
        *,
        client_id: str = _CLIENT_ID,
        margin: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._token_url = token_url
        self._credentials = credentials
        self._client_id = client_id
        self._margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._access: str | None = token
        self._access_until = float("inf") if token else 0.0
        self._refresh: str | None = None
        self._refresh_until = 0.0
        #: grant types requested so far, in order (for diagnostics and tests)
        self.grants: list[str] = []

    def __repr__(self) -> str:
        user = self._credentials.username if self._credentials else None
        return f"TokenManager(user={user!r}, token=<hidden>)"

    def access_token(self) -> str:
        """A token valid for at least the safety margin; logs in or refreshes as needed."""
        with self._lock:
            if self._access is not None and self._clock() < self._access_until:
                return self._access
            self._renew()
            assert self._access is not None
            return self._access

    def invalidate(self) -> None:
        """Forget the access token (the server refused it); the next call renews it."""
        with self._lock:
            self._access_until = 0.0
            if self._credentials is None and self._refresh is None:
                self._access = None

    # -- internals -----------------------------------------------------------------------
    def _renew(self) -> None:
        if self._refresh is not None and self._clock() < self._refresh_until:
            try:
                self._grant({"grant_type": "refresh_token", "refresh_token": self._refresh})
                return
            except AuthenticationError:
                self._refresh = None  # refused (expired or revoked): log in again
        self._login()

    def _login(self) -> None:
        if self._credentials is None:
            raise AuthenticationError(
                f"the CDSE access token has expired or was refused by {redact_url(self._token_url)}"
                " and no user name and password are available to get a new one: pass "
                "username=/password= (or set CDSE_USERNAME and CDSE_PASSWORD, or add "
                "identity.dataspace.copernicus.eu to ~/.netrc), or a fresh token="
            )
        self._grant(
            {
                "grant_type": "password",
                "username": self._credentials.username,
                "password": self._credentials.password,
            }
        )

    def _grant(self, data: dict[str, str]) -> None:
        grant = data["grant_type"]
        self.grants.append(grant)
        try:
            response = self._session.post(
                self._token_url, data={**data, "client_id": self._client_id}, timeout=60
            )
        except requests.RequestException as error:
            raise AuthenticationError(
                f"the CDSE identity service {redact_url(self._token_url)} cannot be reached "
                f"({type(error).__name__}); check the network and try again"
            ) from None
        payload = _json(response)
        if response.status_code != 200 or "access_token" not in payload:
            reason = payload.get("error_description") or payload.get("error") or response.reason
            if grant == "password":
                assert self._credentials is not None
                raise AuthenticationError(
                    f"CDSE login of {self._credentials.username!r} (credentials from "
                    f"{self._credentials.source}) refused by {redact_url(self._token_url)}: "
                    f"HTTP {response.status_code} {reason}; check the user name and password "
                    "(accounts: https://dataspace.copernicus.eu)"
                )
            raise AuthenticationError(
                f"CDSE token refresh refused: HTTP {response.status_code} {reason}"
            )
        now = self._clock()
        lifetime = float(payload.get("expires_in") or 600)
        self._access = str(payload["access_token"])
        self._access_until = now + lifetime - min(self._margin, lifetime / 5)
        if payload.get("refresh_token"):
            refresh_life = float(payload.get("refresh_expires_in") or 3600)
            self._refresh = str(payload["refresh_token"])
            self._refresh_until = now + refresh_life - min(self._margin, refresh_life / 5)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
