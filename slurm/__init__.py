"""Slurm launchers: sbatch scripts rendered from recipes (no torch, no Megatron-Core imported here)."""
