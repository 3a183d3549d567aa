"""Users and their API keys (only the keys' SHA-256 is stored)."""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from symbol_pipeline.storage.portfolio import now
from symbol_pipeline.storage.portfolio_schema import api_keys, users


def insert_user(conn: Connection, name: str, is_admin: bool) -> int:
    return conn.execute(users.insert().values(name=name, is_admin=is_admin).returning(users.c.id)).scalar_one()


def user_by_name(conn: Connection, name: str):
    return conn.execute(sa.select(users).where(users.c.name == name)).first()


def insert_api_key(conn: Connection, user_id: int, key_hash: str, key_prefix: str) -> None:
    conn.execute(api_keys.insert().values(user_id=user_id, key_hash=key_hash, key_prefix=key_prefix))


def revoke_api_keys(conn: Connection, *, key_hash: str | None = None, key_prefix: str | None = None,
                    user_id: int | None = None) -> int:
    """Mark matching unrevoked keys revoked; return how many."""
    stmt = api_keys.update().where(api_keys.c.revoked_at.is_(None))
    if key_hash is not None:
        stmt = stmt.where(api_keys.c.key_hash == key_hash)
    if key_prefix is not None:
        stmt = stmt.where(api_keys.c.key_prefix == key_prefix)
    if user_id is not None:
        stmt = stmt.where(api_keys.c.user_id == user_id)
    return conn.execute(stmt.values(revoked_at=now())).rowcount


@lru_cache(maxsize=1)
def _user_for_key_stmt() -> sa.Select:
    """Built once: on the request path, building and hashing a statement costs more than running it."""
    return (
        sa.select(users.c.id, users.c.name, users.c.is_admin)
        .join(api_keys, api_keys.c.user_id == users.c.id)
        .where(api_keys.c.key_hash == sa.bindparam("key_hash"), api_keys.c.revoked_at.is_(None))
    )


def user_for_key_hash(conn: Connection, key_hash: str):
    """(id, name, is_admin) of the user holding this unrevoked key, or None."""
    return conn.execute(_user_for_key_stmt(), {"key_hash": key_hash}).first()
