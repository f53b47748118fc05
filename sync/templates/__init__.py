"""Files ``init`` writes (the commented example config); data, not code."""
