"""Everything the sync keeps in Redis: keys, intake, locks, links, fingerprints, journal,
dead letters, rate limits, reviews and records waiting on a dependency."""
