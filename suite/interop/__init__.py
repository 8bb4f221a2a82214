"""Interop with the field: published checkpoints → suite run directories (`checkpoints.py`)."""
