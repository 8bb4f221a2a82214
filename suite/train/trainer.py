"""The one training loop. It knows nothing of any method: methods return loss terms, it optimises.

AdamW (lr 1e-4, betas 0.9/0.999, wd 0), grad-clip 1.0, EMA 0.9999 updated every step, bf16
autocast on CUDA / fp32 on CPU, DDP when launched with several processes. Budgets and intervals
are in images seen. A run restarted in the same run directory resumes exactly where it stopped.
"""
from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from suite.config import RunConfig, config_hash, config_to_dict, dump_config, flatten
from suite.data import ResumableSampler, build_dataset, collate
from suite.data.shard_captions import text_encoder_record
from suite.errors import ConfigError, DivergenceError, SuiteError
from suite.flow import TimeSampler, broadcast_time, interpolate, velocity_target
from suite.methods import Batch, build_method
from suite.models import build_model, check_condition, model_spec
from suite.train import checkpoint as ckpt_io
from suite.train.distributed import (DistInfo, autocast, average_gradients_across_ranks, broadcast_from_rank0,
                                     init_distributed, resolve_parallel)
from suite.train.ema import make_ema, update_ema
from suite.train.flops import training_flops_per_image
from suite.train.log_window import LogWindow
from suite.train.state import RunState, check_run_dir

_ACTIVE = None


def active_trainer():
    """The trainer running in this process (for preemption handlers), or None."""
    return _ACTIVE


@dataclass
class TrainResult:
    run_dir: Path
    images_seen: int
    final_metrics: dict = field(default_factory=dict)
    mlflow_run_id: str | None = None
    status: str = "finished"


def resolve_run_dir(cfg: RunConfig, run_dir=None) -> Path:
    return Path(run_dir or cfg.train.run_dir or Path(cfg.train.runs_root) / cfg.name).resolve()


def pick_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{info.local_rank}" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name} requested but CUDA is not available here")
    return torch.device(name)


HOOKS = ("log", "val", "samples", "eval")  # what a position may be due for after a step, in order


@contextlib.contextmanager
def signals_deferred(signals=(signal.SIGINT, signal.SIGUSR2, signal.SIGTERM)):
    """Hold back `signals` (Ctrl-C or Submitit's local cancel, Submitit's preemption USR2, SLURM's
    TERM) until the block ends, then
    give each to the handler it would have reached. Python-level: a thread mask would not do, as
    the kernel hands a process signal to any thread (torch's, the data loader's) that does not
    block it. Main thread only (where Python runs handlers); elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[tuple[int, object]] = []
    signals = [s for s in signals if signal.getsignal(s) is not None]  # None: set outside Python, left alone
    previous = {s: signal.signal(s, lambda signum, frame: held.append((signum, frame))) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum, frame in held:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def interruption_behind(e: BaseException) -> BaseException | None:
    """The KeyboardInterrupt or SystemExit that `e` is, or was raised while handling; else None."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            return e
        seen.add(id(e))
        e = e.__context__
    return None


class _Interval:
    """Fires when images seen crosses a multiple of `every` (0 = never)."""

    def __init__(self, every: int, start: int):
        self.every, self.last = every, (start // every if every else 0)

    def due(self, images: int) -> bool:
        if not self.every or images // self.every == self.last:
            return False
        self.last = images // self.every
        return True


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir=None, callbacks=()):
        self.cfg, self.callbacks = cfg, list(callbacks)
        self.run_dir = resolve_run_dir(cfg, run_dir)
        self.dist = init_distributed()
        self.device = pick_device(cfg.train.device, self.dist)
        self.amp_dtype = torch.bfloat16 if (cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and self.device.type == "cuda")) else None
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if self.device.type == "cuda":  # TF32 for the fp32 matmuls (bf16 autocast covers the rest)
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = cfg.train.tf32
        if cfg.train.batch_size % self.dist.world_size:
            raise ConfigError(f"train.batch_size: {cfg.train.batch_size} not divisible by {self.dist.world_size} processes")
        self.hash = config_hash(cfg)
        check_run_dir(self.run_dir, self.hash)  # refuse early, before any work, if it holds another run

        # Build everything first (data, model, method with its encoders, optimizer): a config that
        # fails here leaves nothing behind, so the corrected config can use the same run directory.
        torch.manual_seed(cfg.seed * 1000 + self.dist.rank)
        self.train_set = build_dataset(cfg.data, "train")
        self.model_spec = model_spec(cfg.model, self.train_set.image_shape, self.train_set.num_classes,
                                     text_encoder_record(getattr(self.train_set, "meta", None)))
        self.model = build_model(cfg.model, self.train_set.image_shape, self.train_set.num_classes).to(self.device)
        check_condition(self.model, getattr(self.train_set, "condition", "class"), getattr(self.train_set, "text_dim", 0))
        self.model.grad_checkpointing = cfg.train.activation_checkpointing
        self.ema = make_ema(self.model)
        self.time_sampler = TimeSampler(cfg.time)
        self.method = build_method(cfg.method, self.model, self.time_sampler).to(self.device)
        for module in (self.model, self.ema, self.method):
            broadcast_from_rank0(module, self.dist)
        self.parallel = resolve_parallel(cfg.train.parallel, self.dist.world_size, sum(p.numel() for p in self.model.parameters()))
        if self.parallel == "fsdp":  # before the optimizer: sharding replaces the parameters by DTensors
            from suite.train import fsdp

            mp = fsdp.mixed_precision(self.amp_dtype)
            fsdp.shard_backbone(self.model, mp)
            fsdp.shard_backbone(self.ema, mp)
            fsdp.shard_method(self.method, mp)
        params = list(self.model.parameters()) + list(self.method.parameters())
        o = cfg.optim
        fused = cfg.train.fused_optimizer and self.device.type == "cuda"  # one kernel for all parameters
        self.opt = torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay, eps=o.eps,
                                     **({"fused": True} if fused else {"foreach": True}))
        self.log_window = LogWindow(self.dist)
        self.step, self.images_seen, self.data_position = 0, 0, 0

        # Only now is the run directory claimed (state.json, config.yaml).
        self.state = RunState.open(self.run_dir, self.hash, self.dist.is_main)
        if self.dist.is_main:
            (self.run_dir / "config.yaml").write_text(dump_config(cfg))
            self.state.update(model_spec=self.model_spec)
        self._phase, self._step_rng, self._stop_signal = "idle", None, None
        # The hooks due at this position that have not run yet, and the training log flushed for the
        # first of them (see `_run_hooks`); a checkpoint carries both, so a resume finishes them.
        self._pending_hooks: list[str] = []
        self._hooks_due = None  # run(): images seen → the hooks that position is due for (set with each update)
        self._flushed_log: dict | None = None
        self._resume()
        self.state.update(parallel=self.parallel, world_size=self.dist.world_size)  # recorded with the run
        self.net = self.model
        if self.parallel == "ddp":
            self.net = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if cfg.train.compile:
            self.net = torch.compile(self.net)

    # ------------------------------------------------------------------ checkpoints
    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / "checkpoints" / ckpt_io.LATEST

    def _resume(self) -> None:
        if not self.ckpt_path.exists():
            return
        ck = ckpt_io.load_checkpoint(self.ckpt_path, map_location="cpu" if self.parallel == "fsdp" else self.device)
        sharded = "dcp" in ck
        if sharded != (self.parallel == "fsdp"):
            raise SuiteError(f"checkpoint {self.ckpt_path} was written {'with' if sharded else 'without'} FSDP; "
                             f"resume it with train.parallel={'fsdp' if sharded else 'ddp'} and several processes")
        try:
            if sharded:
                from suite.train import fsdp

                fsdp.load_sharded(self.ckpt_path.parent / ck["dcp"], fsdp.Trainable(self.model, self.method), self.ema, self.opt)
            else:
                self.model.load_state_dict(ck["model"])
                self.ema.load_state_dict(ck["ema"])
                self.method.load_state_dict(ck["method"])
                self.opt.load_state_dict(ck["optimizer"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise SuiteError(f"checkpoint {self.ckpt_path} does not fit this config ({str(e).splitlines()[0][:150]})") from None
        self.step, self.images_seen, self.data_position = int(ck["step"]), int(ck["images_seen"]), int(ck["data_position"])
        self._pending_hooks, self._flushed_log = list(ck.get("pending_hooks", [])), ck.get("pending_log")
        rng = ck["rng"]
        ckpt_io.set_rng_state(rng[self.dist.rank % len(rng)] if isinstance(rng, list) else rng)
        self.resumed_from = self.images_seen

    def save_checkpoint(self, snapshot: bool = False) -> bool:
        """Write a consistent checkpoint now; safe from a signal handler (Submitit's preemption hook).

        During a step's forward/backward the weights are still those of the last finished step, so
        the checkpoint is that step's, with the RNG state it started with (the step is redone on
        resume, identically). During the short weight update it cannot be consistent: it is skipped
        and the last periodic checkpoint stands. Between a step and the end of its hooks (training
        log, validation, samples, evaluation) it records the hooks not yet run, with the training
        log flushed, and the resumed run runs them first: no logged position is lost.
        """
        if self._phase == "update":
            return False
        if self.log_window.nonfinite():  # a non-finite loss never reaches a checkpoint
            return False
        if "log" in self._pending_hooks and self._flushed_log is None:
            self._flushed_log = self._flush_training_log()
        rng = self._step_rng if self._phase == "compute" else ckpt_io.rng_state()
        if self.dist.enabled:
            gathered = [None] * self.dist.world_size
            torch.distributed.all_gather_object(gathered, rng)
            rng = gathered
        counters = {"step": self.step, "images_seen": self.images_seen, "data_position": self.data_position,
                    "rng": rng, "config_hash": self.hash,
                    "pending_hooks": list(self._pending_hooks), "pending_log": self._flushed_log,
                    "model_spec": self.model_spec}  # rebuilds the model without the data (suite sample / eval)
        # Signals land after the write: torch.save cut mid-file by Ctrl-C raises its own
        # RuntimeError, which would mark an interrupted run failed.
        with signals_deferred():
            if self.parallel == "fsdp":
                return self._save_sharded(counters, snapshot)
            if not self.dist.is_main:
                return
            obj = {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "method": self.method.state_dict(),
                   "optimizer": self.opt.state_dict(), **counters}
            ckpt_io.save_atomic(obj, self.ckpt_path)
            if snapshot:
                ckpt_io.save_atomic(obj, self.ckpt_path.with_name(f"snapshot-{self.images_seen:010d}.pt"))
            self.state.update(images_seen=self.images_seen, step=self.step)
            return True

    def _save_sharded(self, counters: dict, snapshot: bool) -> bool:
        """FSDP: every rank writes its shards (DCP); rank 0 then writes latest.pt naming the complete
        directory, with a consolidated EMA for `suite sample`/`suite eval` (see suite.train.fsdp)."""
        from suite.train import fsdp

        ckpt_dir = self.ckpt_path.parent
        name = fsdp.save_sharded(ckpt_dir, self.images_seen, fsdp.Trainable(self.model, self.method), self.ema, self.opt, self.dist.is_main)
        ema_full = fsdp.full_state_dict(self.ema)  # collective; the tensors land on rank 0
        if self.dist.is_main:
            obj = {"model": {}, "ema": ema_full, "dcp": name, **counters}
            ckpt_io.save_atomic(obj, self.ckpt_path)
            if snapshot:  # evaluation only (EMA weights), not resumable
                ckpt_io.save_atomic(obj, self.ckpt_path.with_name(f"snapshot-{self.images_seen:010d}.pt"))
            fsdp.remove_stale(ckpt_dir, keep=name)
            self.state.update(images_seen=self.images_seen, step=self.step)
        return True

    # ------------------------------------------------------------------ pieces of the loop
    def _batches(self):
        per_rank = self.cfg.train.batch_size // self.dist.world_size
        sampler = ResumableSampler(len(self.train_set), self.cfg.seed, self.data_position, self.dist.rank, self.dist.world_size)
        # Its own generator: creating the loader must not draw from the global RNG (exact resume).
        loader = DataLoader(self.train_set, batch_size=per_rank, sampler=sampler, collate_fn=collate,
                            num_workers=self.cfg.train.num_workers, drop_last=True, pin_memory=self._pinned,
                            generator=torch.Generator().manual_seed(self.cfg.seed))
        for b in loader:
            yield self._to_batch(b)

    @property
    def _pinned(self) -> bool:
        return self.device.type == "cuda" and self.cfg.train.pin_memory

    def _to_batch(self, b: dict) -> Batch:
        """Every tensor of the batch to the device; from pinned memory without blocking the host."""
        move = lambda x: x.to(self.device, non_blocking=self._pinned)  # noqa: E731
        return Batch(x0=move(b["x0"]), y=move(b["y"]), pixels=move(b["pixels"]) if "pixels" in b else None,
                     index=move(b["index"]))

    def _lr(self) -> float:
        o = self.cfg.optim
        if o.warmup_images and self.images_seen < o.warmup_images:
            return o.lr * (self.images_seen + self.cfg.train.batch_size) / o.warmup_images
        return o.lr

    def train_step(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One optimisation step, with no host sync: logs stay tensors on the device and go to
        `self.log_window`, which synchronises only at the log interval (nanoGPT style). A non-finite
        loss is flagged on the device; `check_finite` (log interval, before every checkpoint)
        turns it into a DivergenceError, so it never reaches a checkpoint."""
        self._step_rng, self._phase = ckpt_io.rng_state(), "compute"
        lr = self._lr()
        for g in self.opt.param_groups:
            g["lr"] = lr
        with autocast(self.device.type, self.amp_dtype):
            out = self.method.loss(batch, self.net, self.ema, self.step)
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.parallel == "ddp":
            average_gradients_across_ranks(self.method, self.dist)  # projectors live outside the DDP wrapper
        params = [p for g in self.opt.param_groups for p in g["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.optim.grad_clip, foreach=True)
        logs = {"train/loss": out.loss.detach(), **{f"train/loss_{k}": v.detach() for k, v in out.terms.items()},
                **{f"train/{k}": v.detach() for k, v in out.logs.items()}, "train/grad_norm": grad_norm.detach()}
        # A preemption signal waits until the step is whole: weights, counters, its log entry and the
        # hooks its new position is due for. A handler running in between would checkpoint the new
        # position with its loss missing from the log window and its hooks unrecorded: lost.
        with signals_deferred():
            self._phase = "update"
            self.opt.step()
            update_ema(self.ema, self.model, self.cfg.optim.ema_decay)
            self.step += 1
            self.images_seen += self.cfg.train.batch_size
            self.data_position += self.cfg.train.batch_size
            self.log_window.add(logs, {"train/lr": lr}, out.loss, self.step)
            if self._hooks_due is not None:
                self._pending_hooks = self._hooks_due(self.images_seen)
            self._phase = "idle"
        return logs, grad_norm

    def check_finite(self) -> None:
        """DivergenceError if any loss so far was not finite (one host sync); the last good
        checkpoint stays on disk."""
        if self.log_window.nonfinite():
            first = self.log_window.first_bad_step()
            where = f"step {first}" if first is not None else f"another process by step {self.step}"
            raise DivergenceError(f"loss is not finite (first at {where}); the last good checkpoint is kept in {self.ckpt_path.parent}")

    @torch.no_grad()
    def validation_losses(self) -> dict[str, float]:
        """Vanilla flow-matching loss of the EMA model at fixed t on held-out data, fixed noise:
        method-independent and far less noisy than FID (measuring.md §6)."""
        test = build_dataset(self.cfg.data, "test")
        n = min(self.cfg.train.val_images, len(test))
        items = collate([test[i] for i in range(n)])
        x0, y = items["x0"].to(self.device), items["y"].to(self.device)
        g = torch.Generator().manual_seed(12345)
        x1 = torch.randn(x0.shape, generator=g).to(self.device)
        out = {}
        for t_val in self.cfg.train.val_times:
            t = torch.full((n,), t_val, device=self.device)
            losses = []
            for i in range(0, n, 256):
                sl = slice(i, i + 256)
                xt = interpolate(x0[sl], x1[sl], broadcast_time(t[sl], x0[sl]))
                v = self.ema(xt, t[sl], y[sl])
                losses.append((v.float() - velocity_target(x0[sl], x1[sl])).square().flatten(1).mean(1))  # (b,) any layout
            out[f"val/loss_t{t_val:g}"] = torch.cat(losses).mean().item()
        out["val/loss_mean"] = sum(out.values()) / len(out)
        return out

    def write_samples(self) -> list[Path]:
        """64 samples, classes in turn: a PNG grid (images), GIF (video) or WAV + spectrogram (audio)."""
        from suite.evaluation.images import generated_to_pixels
        from suite.data import clip_rate
        from suite.media import save_samples
        from suite.sampling import sample_images

        n = 64
        preview = getattr(self.train_set, "preview_conditions", None)  # captions for text data
        labels = preview(n) if preview else None
        if labels is None:
            labels = torch.arange(n) % self.model.num_classes
        x0, _ = sample_images(self.ema, n, self.cfg.sampling, self.device, labels=labels)  # collective under FSDP
        if not self.dist.is_main:
            return []
        try:
            pixels = generated_to_pixels(x0, self.train_set)
        except SuiteError:  # latents without a decoder (data.vae unset): nothing a person could view
            return []
        return save_samples(pixels, self.run_dir / "samples", f"grid-{self.images_seen:010d}", clip_rate(self.cfg.data), nrow=8)

    def _evaluator(self):
        if not self.cfg.eval.metrics:
            return None
        from suite.evaluation import make_evaluator

        return make_evaluator(self.cfg, self.run_dir)

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainResult:
        global _ACTIVE
        _ACTIVE = self
        cfg, main = self.cfg, self.dist.is_main
        tags = {"method": cfg.method.name, "preset": cfg.model.preset, "dataset": cfg.data.name,
                "seed": str(cfg.seed), "config_hash": self.hash, "status": "running"}
        from suite.tracking import open_tracker

        self.tracker = open_tracker(cfg, self.run_dir, self.state.get("mlflow_run_id"), tags, main)
        self.state.update(status="running", mlflow_run_id=self.tracker.run_id)
        evaluator = self._evaluator()
        batches = self._batches()
        if self._rank0_says(self.tracker.resumed):
            self.tracker.skip_logged_steps()
            self.tracker.set_tags({"status": "running"})
        elif main or self.parallel == "fsdp":  # FSDP: the FLOP count's passes are collective
            self._log_static(self._to_batch(collate([self.train_set[i] for i in range(2)])))
        self.metrics_log = MetricsLog(self.run_dir / "metrics.jsonl", self.images_seen, main)
        t = cfg.train
        log_iv, ckpt_iv = _Interval(t.log_every_images, self.images_seen), _Interval(t.ckpt_every_images, self.images_seen)
        sample_iv, val_iv = _Interval(t.sample_every_images, self.images_seen), _Interval(t.val_every_images, self.images_seen)
        eval_iv = _Interval(cfg.eval.every_images, self.images_seen)
        if self.images_seen == 0:
            self.save_checkpoint(snapshot=True)  # step 0: what evaluations compare against
        if not self._pending_hooks:
            self.log_window.flush()  # drop anything logged before the loop (e.g. bench warm-up)
        self._tic, self._imgs_at_tic, steps_here = time.perf_counter(), self.images_seen, 0
        from tqdm.auto import tqdm

        self._bar = bar = tqdm(total=t.total_images, initial=self.images_seen, unit="img", desc=cfg.name,
                               disable=not (main and t.progress), dynamic_ncols=True, leave=False)
        status, self._last_eval = "finished", -1
        restore_sigterm = self._catch_sigterm()

        def hooks_due(x: int) -> list[str]:  # called by train_step with the update (see there)
            due = {"log": log_iv.due(x) or x >= t.total_images, "val": val_iv.due(x),
                   "samples": sample_iv.due(x) and (main or self.parallel == "fsdp"),
                   "eval": bool(evaluator) and eval_iv.due(x)}
            return [h for h in HOOKS if due[h]]

        self._hooks_due = hooks_due
        try:
            self._run_hooks(evaluator)  # those a checkpoint taken mid-bookkeeping left undone
            while self.images_seen < t.total_images:
                self.train_step(next(batches))  # no host sync; sets the new position's pending hooks
                steps_here += 1
                bar.update(t.batch_size)
                self._run_hooks(evaluator)
                if ckpt_iv.due(self.images_seen):
                    self.check_finite()
                    self.save_checkpoint()
                if self._stop_signal is not None:  # SIGTERM (preemption, scancel): checkpoint and leave resumable
                    self.check_finite()
                    self.save_checkpoint()
                    status = "interrupted"
                    break
                if t.max_steps and steps_here >= t.max_steps and self.images_seen < t.total_images:
                    status = "interrupted"  # simulated kill: no extra checkpoint, the run stays resumable
                    break
            if status == "finished":
                self.check_finite()
                self.save_checkpoint(snapshot=True)
                final = self.validation_losses()
                self._emit(final, "on_log")
                if evaluator and self._last_eval != self.images_seen:
                    self._evaluate(evaluator)
                if main or self.parallel == "fsdp":  # FSDP: every rank takes part in the sampler's passes
                    self._log_samples()
        except BaseException as e:
            # SystemExit: Submitit's requeue after a preemption checkpoint; the run resumes later.
            # An error raised while a Ctrl-C unwound (a library's cleanup) is that interruption.
            interrupt = interruption_behind(e)
            status = "pruned" if type(e).__name__ == "TrialPruned" else ("interrupted" if interrupt else "failed")
            if not isinstance(e, DivergenceError):
                self.save_checkpoint()
            self._close(status)
            if interrupt is not None and interrupt is not e:
                raise interrupt from None
            raise
        finally:
            self._hooks_due = None
            bar.close()
            restore_sigterm()
            _ACTIVE = None
        self._close(status)
        return TrainResult(self.run_dir, self.images_seen, self.metrics_log.last, self.tracker.run_id, status)

    def _rank0_says(self, flag: bool) -> bool:
        """Rank 0's value of `flag` on every rank (only rank 0 tracks; collective code must agree)."""
        if not self.dist.enabled:
            return flag
        box = [flag]
        torch.distributed.broadcast_object_list(box, src=0)
        return bool(box[0])

    def _catch_sigterm(self):
        """A plain SLURM preemption or `scancel` sends SIGTERM: finish the step, checkpoint, stop.
        Only when nobody else (e.g. Submitit) handles SIGTERM; returns the undo."""
        if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return lambda: None

        def on_term(signum, frame):
            self._stop_signal = signum

        signal.signal(signal.SIGTERM, on_term)
        return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _run_hooks(self, evaluator) -> None:
        """Run the pending hooks of this position in order, each dropped from the list once done.

        A checkpoint taken meanwhile (Submitit's handler) records the rest, so a resumed run does
        each at most once more: the one the signal interrupted, whose repeated MLflow steps the
        tracker skips.
        """
        while self._pending_hooks:
            hook = self._pending_hooks[0]
            if hook == "log":  # kept in `_flushed_log` until emitted: a signal during the emit must not re-flush an empty window
                with signals_deferred():  # nor may a handler's checkpoint flush again while this flush empties the window
                    if self._flushed_log is None:
                        self._flushed_log = self._flush_training_log()
                self._emit(self._flushed_log, "on_log")
                self._flushed_log = None
            elif hook == "val":
                self._emit(self.validation_losses(), "on_log")
            elif hook == "samples":
                self._log_samples()
            elif evaluator is not None:
                self._evaluate(evaluator)
            self._pending_hooks.pop(0)

    def _flush_training_log(self) -> dict:
        """The log window's means and the throughput since the last flush; the log interval is where
        the host waits for the device."""
        self.check_finite()
        metrics = self.log_window.flush()
        now = time.perf_counter()
        metrics["perf/images_per_s"] = (self.images_seen - self._imgs_at_tic) / max(now - self._tic, 1e-9)
        self._tic, self._imgs_at_tic = now, self.images_seen
        if "train/loss" in metrics:
            self._bar.set_postfix(loss=f"{metrics['train/loss']:.4f}")
        return metrics

    def _evaluate(self, evaluator) -> None:
        self._last_eval = self.images_seen
        self._emit(evaluator(self.ema, self.images_seen), "on_eval")

    def _emit(self, metrics: dict, hook: str) -> None:
        self.metrics_log.write(self.images_seen, metrics)
        self.tracker.log_metrics(metrics, self.images_seen)
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn:
                fn(self.images_seen, metrics)

    def _log_samples(self) -> None:
        for path in self.write_samples():
            if self.cfg.tracking.log_samples:
                self.tracker.log_artifact(path, "samples")

    def _log_static(self, batch: Batch) -> None:
        """Params once per run: the resolved config, sizes and FLOPs per image."""
        flops = training_flops_per_image(self.model, self.ema, self.method, batch)
        self.flops = flops
        params = flatten(config_to_dict(self.cfg))
        params.update({"n_params": sum(p.numel() for p in self.model.parameters()),
                       "n_params_method": sum(p.numel() for p in self.method.parameters()),
                       "model.depth_resolved": self.model.depth, "model.hidden_size_resolved": self.model.hidden_size,
                       "flops_per_image_backbone": flops["backbone"], "flops_per_image_total": flops["total"],
                       "flops_per_image_aux": flops["aux"], "config_hash": self.hash})
        self.tracker.log_params(params)
        self.tracker.log_artifact(self.run_dir / "config.yaml")
        self.state.update(flops_per_image=flops)

    def _close(self, status: str) -> None:
        self.state.update(status=status, images_seen=self.images_seen, step=self.step)
        mlflow_status = {"finished": "FINISHED", "failed": "FAILED", "pruned": "KILLED", "interrupted": "KILLED"}[status]
        try:
            self.tracker.set_tags({"status": status})
            self.tracker.finish(mlflow_status)
        except Exception:  # tracking must never hide the real outcome of the run
            pass


class MetricsLog:
    """metrics.jsonl beside the run: one JSON line per logged step (images seen). On resume, lines
    past the checkpoint are dropped so a redone step is never recorded twice."""

    def __init__(self, path: Path, resume_images: int, enabled: bool):
        self.path, self.enabled, self.last = path, enabled, {}
        if enabled and path.exists():
            kept = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["images_seen"] <= resume_images]
            path.write_text("".join(ln + "\n" for ln in kept))

    def write(self, images_seen: int, metrics: dict) -> None:
        self.last.update(metrics)
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps({"images_seen": images_seen, **{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}}) + "\n")


def train(cfg: RunConfig, run_dir=None, callbacks=()) -> TrainResult:
    return Trainer(cfg, run_dir, callbacks).run()
