"""Training objectives: vanilla flow matching, Self-Flow (baselines register from `baselines/`)."""
from suite.methods.base import Batch, Method, MethodConfig, MethodOutput
from suite.methods.registry import available_methods, build_method, register_method

__all__ = ["Batch", "Method", "MethodConfig", "MethodOutput", "available_methods", "build_method", "register_method"]
