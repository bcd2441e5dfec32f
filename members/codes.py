"""The dynamic member code: a signed QR payload the member's app shows, valid about a minute.

The static ``o2o:member:<phone>`` code and a typed phone number only say who the
customer is (enough to earn points).  Spending the wallet or points needs proof
that the customer is present and agrees: this code, minted for the member by the
app (``POST /api/v1/members/{id}/code/``) and scanned at the till or passed with
an online order.  It is signed (``TimestampSigner``: it cannot be forged nor moved
to another member), expires after ``MEMBER_CODE_MAX_AGE`` seconds, and is taken
once: ``member_code_take`` marks it used in the cache, so a photographed code
cannot pay twice.

Not a service: it writes no table (the cache mark is outside any transaction,
so a code taken for a sale that then fails is spent; the app shows a new one).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core import signing
from django.core.cache import cache
from django.utils import timezone

from members import selectors as member_read
from members.exceptions import MemberCodeExpired, MemberCodeInvalid, MemberCodeMismatch, MemberCodeUsed
from members.models import Member

MEMBER_CODE_PREFIX = "o2o:mc:"
MEMBER_CODE_MAX_AGE = 60
_SALT = "o2o.members.member-code"


@dataclass(frozen=True)
class MemberCode:
    code: str
    member_id: int
    expires_at: datetime


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT)


def is_member_code(text: object) -> bool:
    return isinstance(text, str) and text.strip().lower().startswith(MEMBER_CODE_PREFIX)


def member_code_mint(*, member: Member | int) -> MemberCode:
    """A fresh code for the member (a merged duplicate's id mints the surviving member's code)."""
    found = member_read.member_get(member)
    value = _signer().sign(f"{found.pk}.{secrets.token_urlsafe(6)}")
    return MemberCode(code=f"{MEMBER_CODE_PREFIX}{value}", member_id=found.pk,
                      expires_at=timezone.now() + timedelta(seconds=MEMBER_CODE_MAX_AGE))


def member_code_read(code: object, *, max_age: int = MEMBER_CODE_MAX_AGE) -> Member:
    """The member a code was minted for.  Raises member_code_invalid / member_code_expired."""
    if not is_member_code(code):
        raise MemberCodeInvalid(field="member_code")
    try:
        value = _signer().unsign(code.strip()[len(MEMBER_CODE_PREFIX):], max_age=max_age)
    except signing.SignatureExpired:
        raise MemberCodeExpired(field="member_code") from None
    except signing.BadSignature:
        raise MemberCodeInvalid(field="member_code") from None
    member_id, _, _nonce = value.partition(".")
    if not member_id.isdigit():
        raise MemberCodeInvalid(field="member_code")
    return member_read.member_get(int(member_id))


def member_code_take(code: object, *, member: Member | int | None = None,
                     max_age: int = MEMBER_CODE_MAX_AGE) -> Member:
    """Read a code and mark it used; the member it proves.  Raises the read errors,
    member_code_mismatch (minted for someone other than ``member``) and member_code_used."""
    found = member_code_read(code, max_age=max_age)
    if member is not None and member_read.member_get(member).pk != found.pk:
        raise MemberCodeMismatch(field="member_code")
    key = "member-code-used:" + hashlib.sha256(code.strip().encode()).hexdigest()
    if not cache.add(key, 1, timeout=max_age * 2):
        raise MemberCodeUsed(field="member_code")
    return found
