"""Pinyin keys for names: 张伟 and 章伟 share ``zhangwei``. Per-value Python, so cached and batched."""

from __future__ import annotations

import re
from functools import lru_cache

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

