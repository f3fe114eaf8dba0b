"""webCRM API authentication: application tokens (authCode) exchanged for Bearer access tokens.

* `POST /Auth/ApiLogin` form field `authCode` -> TokenResponseDto [D S1/S3]; unknown code -> 401.
* Access tokens live `token_lifetime` seconds (default 3600, webCRM's "1 hour" [D S1]).
* `POST /Auth/ApiRefresh` with `refreshToken` (header as in the Swagger, or form field as tap-webcrm
  sends it) -> a new pair; the old refresh token stops working (rotation - an assumption [U]).
  Refresh tokens live 14 days (assumption [U]).
* Access tokens look like JWTs (the Swagger's security definition says "JSON Web Token"), but the
  sandbox only looks them up; clients must treat them as opaque.

Sessions are kept in memory only: after a restart every client has to log in again (which a client
must survive anyway, since tokens expire).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass

REFRESH_LIFETIME = 14 * 24 * 3600


@dataclass(frozen=True)
class Session:
    code: str          # the application token (authCode) - the rate-limit key
    user: str          # display name of the API user, written to ...UpdatedBy
    expires_at: float  # epoch seconds


def parse_auth_codes(text: str | dict | None) -> dict[str, str]:
    """`code=Display Name,code2=Other Name` (or a dict) -> {code: display name}; ValueError if empty/bad."""
    if isinstance(text, dict):
        pairs = list(text.items())
    else:
        pairs = []
        for part in (text or "").split(","):
            part = part.strip()
            if not part:
                continue
            code, sep, name = part.partition("=")
            if not sep:
                raise ValueError(f"auth codes: {part!r} is not code=Display Name")
            pairs.append((code, name))
    codes: dict[str, str] = {}
    for code, name in pairs:
        if not isinstance(code, str) or not isinstance(name, str):
            raise ValueError("auth codes: codes and display names must be strings")
        code, name = code.strip(), name.strip()
        if not code or not name:
            raise ValueError(f"auth codes: empty code or display name in {code}={name}")
        codes[code] = name
    if not codes:
        raise ValueError("auth codes: at least one code=Display Name is required")
    return codes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Auth:
    """Issued tokens; the codes and lifetime are read from the live settings on every call."""

    def __init__(self, codes, lifetime) -> None:  # callables returning the current settings
        self._codes = codes
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._access: dict[str, Session] = {}
        self._refresh: dict[str, Session] = {}

    def _issue(self, code: str, user: str) -> dict:
        now = time.time()
        lifetime = int(self._lifetime())
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps({"sub": code[:4] + "...", "name": user, "iat": int(now),
                                   "exp": int(now + lifetime), "jti": secrets.token_hex(8)}).encode())
        access = f"{header}.{payload}.{_b64(secrets.token_bytes(32))}"
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._purge(now)
            self._access[access] = Session(code, user, now + lifetime)
            self._refresh[refresh] = Session(code, user, now + REFRESH_LIFETIME)
        return {
            "AccessToken": access,
            "RefreshToken": refresh,
            "Error": "",
            "ErrorDescription": "",
            "IsError": False,
            "ExpiresIn": lifetime,
            "TokenType": "Bearer",
        }

    def _purge(self, now: float) -> None:
        if len(self._access) > 1000:
            for token in [t for t, s in self._access.items() if s.expires_at <= now]:
                del self._access[token]
        if len(self._refresh) > 1000:
            for token in [t for t, s in self._refresh.items() if s.expires_at <= now]:
                del self._refresh[token]

    def user_of_code(self, code: str | None) -> str | None:
        if not code:
            return None
        return self._codes().get(code)

    def login(self, code: str) -> dict | None:
        """A TokenResponseDto for a known code, else None."""
        user = self.user_of_code(code)
        if user is None:
            return None
        return self._issue(code, user)

    def refresh(self, token: str) -> dict | None:
        with self._lock:
            session = self._refresh.pop(token, None) if token else None
        if session is None or session.expires_at <= time.time():
            return None
        user = self.user_of_code(session.code)
        if user is None:  # the application token was removed meanwhile
            return None
        return self._issue(session.code, user)

    def refresh_code(self, token: str) -> str | None:
        """The application token a refresh token belongs to (for rate limiting), or None."""
        with self._lock:
            session = self._refresh.get(token)
        return session.code if session else None

    def check(self, token: str) -> tuple[Session | None, str]:
        """(session, "") for a valid access token, else (None, why)."""
        with self._lock:
            session = self._access.get(token)
        if session is None:
            return None, "Authorization has been denied for this request."
        if session.expires_at <= time.time():
            expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(session.expires_at))
            return None, f"The access token expired at {expired}."
        if self.user_of_code(session.code) is None:
            return None, "Authorization has been denied for this request (application token revoked)."
        # the display name may have been changed through the admin API
        return Session(session.code, self.user_of_code(session.code) or session.user, session.expires_at), ""

    def expire_all(self) -> int:
        """Make every issued access token expired (refresh tokens stay valid); returns how many."""
        with self._lock:
            count = len(self._access)
            self._access = {t: Session(s.code, s.user, 0.0) for t, s in self._access.items()}
        return count

    def forget_all(self) -> None:
        with self._lock:
            self._access.clear()
            self._refresh.clear()
