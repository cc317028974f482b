"""Attainment: the portable reference computation (`reference`), the PostgreSQL engine that must agree with it
(`sql`), the recompute that writes snapshots (`services`), and the reads of the screens (`selectors`,
`late_changes`)."""
