"""Synthetic data through any OpenAI-compatible endpoint (e.g. ``vllm serve``)."""
