"""Which correction holds for each lead field: DESIGN.md's precedence, in one SQL pass.

A manual edit beats an event, which beats survivorship over the records (a field with no correction keeps
its surviving value). Within one level the later ``occurred_at`` wins, then the later ``event_id`` (a
deterministic tie-break), so the same corrections give the same state whatever order they arrived in:
nothing here depends on arrival. Every correction that does not hold is ``superseded`` by the one that does.
"""

from __future__ import annotations

import duckdb

# Higher wins. Survivorship is what is left when no correction holds, so it has no row here.
LEVELS = {"manual_edit": 2, "event": 1}


def holding_corrections_sql(corrections: str) -> str:
    """For a relation of corrections (``correction_id, lead_id, field, value, level, occurred_at``) one row
    per (lead_id, field): the value that holds and the correction it comes from."""
    levels = " ".join(f"when '{name}' then {rank}" for name, rank in LEVELS.items())
    return f"""
        select lead_id, field,
               arg_max(value, (case level {levels} end, occurred_at, correction_id)) as value,
               arg_max(correction_id, (case level {levels} end, occurred_at, correction_id)) as correction_id
        from {corrections}
        group by lead_id, field
    """


def superseded_corrections_sql(corrections: str) -> str:
    """The corrections that do not hold, each with the correction that superseded it."""
    return f"""
        select c.correction_id, h.correction_id as superseded_by
        from {corrections} c
        join ({holding_corrections_sql(corrections)}) h using (lead_id, field)
        where c.correction_id <> h.correction_id
    """


def check_levels(conn: duckdb.DuckDBPyConnection, corrections: str) -> None:
    """Refuse corrections of a level the precedence does not know (a typo would otherwise lose to all)."""
    unknown = conn.execute(f"select distinct level from {corrections} where level not in "
                           f"({', '.join(repr(name) for name in LEVELS)})").fetchall()
    if unknown:
        raise ValueError(f"unknown correction levels {[u[0] for u in unknown]}; known: {', '.join(LEVELS)}")
