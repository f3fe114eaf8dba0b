"""HTTP Basic authentication the way odata.uniconta.com takes it (reference §1b).

`/api/Entities/...`: username `00<CompanyId>/<user>` ("00" marks that a company id follows); a
zero-padded id such as `0001234/<user>` is accepted too, since public clients disagree on padding.
`/odata/<CompanyId>/...`: the plain username, or the prefixed form (its company part is ignored in
favour of the path).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass, field

from sandbox.uniconta.errors import UnicontaError

_PREFIXED = re.compile(r"^00(\d{1,12})/(.+)$")
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Uniconta"'}


def no_rights(message: str) -> UnicontaError:
    return UnicontaError(401, "NoRights", message, None, _CHALLENGE)


def unknown_company(company: int | str) -> UnicontaError:
    return UnicontaError(404, "CouldNotFind", f"Company {company} not found")


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """`Basic base64(user:password)` -> (user, password); None when absent or malformed."""
    if not header:
        return None
    scheme, _, data = header.strip().partition(" ")
    if scheme.lower() != "basic" or not data.strip():
        return None
    try:
        decoded = base64.b64decode(data.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


def split_username(username: str) -> tuple[int | None, str]:
    """`001234/sandbox` -> (1234, "sandbox"); `sandbox` -> (None, "sandbox")."""
    m = _PREFIXED.match(username)
    if m:
        return int(m.group(1)), m.group(2)
    return None, username


@dataclass
class Accounts:
    """The one company and its users (name -> password; names are case-insensitive)."""

    company: int
    users: dict[str, str] = field(default_factory=dict)

    def check_password(self, user: str, password: str) -> str | None:
        """The canonical user name when the password is right, else None."""
        for name, secret in self.users.items():
            if name.lower() == user.lower():
                if hmac.compare_digest(secret.encode(), password.encode()):
                    return name
                return None
        return None

    def authenticate_entities(self, header: str | None) -> str:
        """The user of an /api/Entities call; raises 401 / 404 as UnicontaError."""
        creds = parse_basic(header)
        if creds is None:
            raise no_rights("Authorization required: HTTP Basic with username 00<CompanyId>/<user>")
        company, user = split_username(creds[0])
        if company is None:
            raise no_rights("Username must be 00<CompanyId>/<user> for the Entities API")
        name = self.check_password(user, creds[1])
        if name is None:
            raise no_rights("Wrong user name or password")
        if company != self.company:
            raise unknown_company(company)
        return name

    def authenticate_odata(self, header: str | None, company: int | None) -> str:
        """The user of an /odata call for `company` (None = the user's default company)."""
        creds = parse_basic(header)
        if creds is None:
            raise no_rights("Authorization required: HTTP Basic with your Uniconta user")
        _, user = split_username(creds[0])
        name = self.check_password(user, creds[1])
        if name is None:
            raise no_rights("Wrong user name or password")
        if company is not None and company != self.company:
            raise unknown_company(company)
        return name

    @staticmethod
    def user_of(header: str | None) -> str:
        """The user part of a Basic header without checking it (for the call log)."""
        creds = parse_basic(header)
        return split_username(creds[0])[1] if creds else ""
