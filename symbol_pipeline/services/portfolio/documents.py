"""JSON text of the service's documents: compact, dates in ISO form, no NaN (null instead)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(doc: Any) -> str:
    return json.dumps(doc, default=_json_default, separators=(",", ":"))


def iso(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def number(value: float | None) -> float | None:
    """JSON has no NaN: an undefined figure is null."""
    return None if value is None or not math.isfinite(value) else float(value)


def number_texts(values: np.ndarray) -> np.ndarray:
    """Floats as JSON number text (what json.dumps writes: repr), non-finite as null; same shape, object dtype."""
    values = np.asarray(values, dtype=float)
    out = np.array(list(map(repr, values.ravel().tolist())) or [], dtype=object)
    out[~np.isfinite(values.ravel())] = "null"
    return out.reshape(values.shape)
