"""The lead library: stable record ids, the append-only system of record, imports."""
