"""Training: `train(cfg, run_dir=None, callbacks=())` runs (or resumes) one run."""
from suite.train.state import RunState, read_state
from suite.train.trainer import Trainer, TrainResult, active_trainer, resolve_run_dir, train

__all__ = ["Trainer", "TrainResult", "active_trainer", "train", "resolve_run_dir", "RunState", "read_state"]
