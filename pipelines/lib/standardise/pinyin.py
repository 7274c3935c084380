"""Pinyin keys for names: 张伟 and 章伟 share ``zhangwei``. Per-value Python, so cached and batched."""

from __future__ import annotations

import re
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
from pypinyin import Style, lazy_pinyin

_NOT_KEY = re.compile(r"[^0-9a-z]")


@lru_cache(maxsize=50_000)
def _char_key(char: str) -> str:
    """One character's toneless pinyin (Latin letters lower-cased, anything else dropped)."""
    return _NOT_KEY.sub("", "".join(lazy_pinyin(char, style=Style.NORMAL, errors="default")).lower())


@lru_cache(maxsize=500_000)
def pinyin_key(text: str) -> str | None:
    """Toneless pinyin of a name, character by character: 张伟 and 章伟 share ``zhangwei``.

    By character, not by phrase: names are not dictionary phrases, and a per-character cache makes
    a new name cost a few dictionary lookups instead of pypinyin's segmentation (~20 us a name).
    """
    key = "".join(_char_key(ch) for ch in text)
    return key or None


def pinyin_key_arrow(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Vectorised entry for DuckDB: compute each distinct value once, then take by dictionary index."""
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    dictionary = [pinyin_key(v) if v is not None else None for v in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(dictionary, type=pa.string()), encoded.indices)
