"""fastText classifiers our own commands train: toxicity (stage 6) and quality (stage 8)."""
