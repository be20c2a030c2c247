"""Reading and writing JSONL documents so that nothing is lost: robust readers, flat writers."""
