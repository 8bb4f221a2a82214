"""Baselines on the suite's one trainer: REPA (external encoders), SRA, and the encoder registry.

Importing this package registers the methods `repa` and `sra` (the core's `build_method` imports it).
"""
from baselines import repa, sra  # noqa: F401  (registration)
