"""Stage 7 — PII detection and masking into Mi:dm's typed placeholder tokens."""
from data_prep.pii.detector import PiiDetector, Span, mask_text  # noqa: F401
from data_prep.pii.types import PII_TOKENS  # noqa: F401
