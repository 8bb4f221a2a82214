"""Self-supervised flow matching benchmark suite."""
