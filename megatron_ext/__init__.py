"""megatron_ext"""
