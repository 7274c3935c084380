"""History and versions of the published leads."""
