"""Cluster mode: one fleet over several processes and machines (SPEC §7)."""
