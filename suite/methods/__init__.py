"""Training objectives: vanilla flow matching and Self-Flow; other methods (REPA, SRA in
`baselines/`, or a lab's own) register as plugins (suite.plugins)."""
from suite.methods.base import Batch, Method, MethodConfig, MethodOutput
from suite.methods.registry import METHODS, available_methods, build_method, register_method
from suite.methods import selfflow, vanilla  # noqa: F401,E402  (the core's own methods register here)

__all__ = ["Batch", "Method", "MethodConfig", "MethodOutput", "METHODS", "available_methods", "build_method", "register_method"]
