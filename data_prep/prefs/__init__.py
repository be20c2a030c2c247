"""Preference pairs for DPO (``midm data prefs``): torch-free.

``records`` maps JSONL records to (prompt, chosen, rejected) messages and classifies bad ones;
``build`` renders both sides with the chat template (``data_prep/sft/chat.py``) and writes Megatron
indexed datasets plus a summary; ``indexed`` writes that format with numpy alone.
"""
