"""Stage 5 — exact and MinHash near-duplicate removal on datatrove's dedup stages."""
