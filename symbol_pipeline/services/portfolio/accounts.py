"""Users and API keys, and the per-process memory of accepted keys."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from symbol_pipeline.lib import rules
from symbol_pipeline.services.portfolio.errors import NotFoundError, ValidationError
from symbol_pipeline.services.portfolio.inputs import checked
from symbol_pipeline.storage.dialect import autocommit
from symbol_pipeline.storage.portfolio import accounts as store

# Accepted keys are remembered per process: the lookup was a round trip on every request. A
# revocation through this process clears the memory at once; one made by another process (the
# CLI while the API runs) takes effect within the seconds the reader allows: for most requests
# SYMBOL_PIPELINE_AUTH_CACHE_SECONDS, while a read that checks its key in its own query (the
# analytics GETs, `lookup_document`) may use an older memory and still refuses a revoked key.
DEFAULT_AUTH_CACHE_SECONDS = 5.0
_AUTH_CACHE_MAX = 100_000  # a few hundred bytes each: the seed's 10,000 users and more


@dataclass(frozen=True)
class User:
    id: int
    name: str
    is_admin: bool


# key hash -> (when this process last accepted it from the database, on the monotonic clock; its user)
_auth_cache: dict[str, tuple[float, User]] = {}


def _hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def key_hash(api_key: str) -> str:
    """What is stored of a key (its SHA-256), and what a read that checks the key is given."""
    return _hash_key(api_key)


def create_user(engine: Engine, name: str, is_admin: bool = False) -> User:
    # No control characters: a name is printed in `symbols queue` and the admin API, where a newline
    # or an escape sequence would forge lines.
    name = checked("user name", rules.user_name, name)
    with engine.begin() as conn:
        if store.user_by_name(conn, name) is not None:
            raise ValidationError(f"user {name!r} already exists")
        user_id = store.insert_user(conn, name, is_admin)
    return User(user_id, name, is_admin)


def get_user(engine: Engine, name: str) -> User:
    with engine.connect() as conn:
        row = store.user_by_name(conn, name)
    if row is None:
        raise NotFoundError(f"user {name!r} not found")
    return User(row.id, row.name, row.is_admin)


def issue_api_key(engine: Engine, user_name: str) -> str:
    """A new key for the user. Returned once; only its SHA-256 is stored."""
    user = get_user(engine, user_name)
    api_key = "sp_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        store.insert_api_key(conn, user.id, _hash_key(api_key), api_key[:11])
    return api_key


def revoke_api_key(engine: Engine, api_key: str | None = None, *, prefix: str | None = None,
                   user_name: str | None = None) -> int:
    """Revoke a key (given whole or by its first 11 characters), or every key of a user."""
    if not (api_key or prefix or user_name):
        raise ValidationError("name the key, its prefix or the user")
    user_id = get_user(engine, user_name).id if user_name else None
    with engine.begin() as conn:
        count = store.revoke_api_keys(
            conn, key_hash=_hash_key(api_key) if api_key else None, key_prefix=prefix, user_id=user_id
        )
    clear_auth_cache()
    if count == 0:
        raise NotFoundError("no matching active API key")
    return count


def clear_auth_cache() -> None:
    _auth_cache.clear()


def remembered_user(api_key: str | None, within_seconds: float = DEFAULT_AUTH_CACHE_SECONDS) -> User | None:
    """The user of a key this process accepted within the last `within_seconds`, without I/O
    (None: not remembered, ask authenticate())."""
    if not api_key:
        return None
    found = _auth_cache.get(_hash_key(api_key))
    return found[1] if found is not None and time.monotonic() - found[0] < within_seconds else None


def forget_key(hashed: str) -> None:
    """Drop a key from this process's memory (a read found it revoked)."""
    _auth_cache.pop(hashed, None)


def authenticate(engine: Engine, api_key: str | None,
                 remember_seconds: float = DEFAULT_AUTH_CACHE_SECONDS) -> User | None:
    """The user holding this unrevoked key, or None. A key accepted within the last
    `remember_seconds` (0: none) is not looked up again; rejections are never remembered."""
    if not api_key:
        return None
    hashed = _hash_key(api_key)
    found = _auth_cache.get(hashed)
    if found is not None and time.monotonic() - found[0] < remember_seconds:
        return found[1]
    with autocommit(engine).connect() as conn:
        row = store.user_for_key_hash(conn, hashed)
    if row is None:
        _auth_cache.pop(hashed, None)
        return None
    user = User(row.id, row.name, bool(row.is_admin))
    if len(_auth_cache) >= _AUTH_CACHE_MAX:
        _auth_cache.clear()
    _auth_cache[hashed] = (time.monotonic(), user)
    return user
