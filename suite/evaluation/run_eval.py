"""One evaluation of a model: sample with the EMA weights, compute the requested metrics, record
how (sampler, steps, CFG, label sampling, seed, extractor, reference), save a sample grid.

Used by the trainer (`make_evaluator(cfg, run_dir)` → called every `eval.every_images`) and by
`suite eval RUN_DIR` (suite.commands.eval). Extractors and reference statistics are built once per
Evaluator and cached on disk (cache.py), so periodic evaluation pays only for sampling.
Returned names carry the `eval/` prefix (ARCHITECTURE.md): `eval/fid2k_digits-classifier`,
`eval/class_consistency2k`, `eval/caption_consistency2k_colour`, `eval/probe_acc_block3`. Caption
consistency (captioned built-ins) samples for its own captions and is judged by a cached attribute
judge (caption_eval.py, caption_judge.py), not by an extractor.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

from suite.evaluation.metrics import JUDGED_KINDS, SCORE_KINDS, MetricSpec, compute_for_extractor, parse_metric
from suite.evaluation.registry import build_extractor, metric_group

PREFIX = "eval/"


def _is_main() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or torch.distributed.get_rank() == 0


def plan(cfg, metrics=None, n: int | None = None) -> tuple[dict[str, list[MetricSpec]], bool, list[MetricSpec]]:
    """Requested metrics → ({extractor group: specs}, whether to run the probe, judged specs). A
    group is an extractor kind, or `frames:<kind>` (an image extractor on every frame: frame-wise
    FID); judged specs (caption consistency) need no extractor."""
    from suite.evaluation.caption_eval import check_captioned

    e = cfg.eval
    names = list(metrics if metrics is not None else e.metrics)
    n = n or e.n_samples
    groups: dict[str, list[MetricSpec]] = {}
    probe, judged = False, []
    for m in names:
        if m.strip() == "probe" or m.strip().startswith("probe_acc"):
            probe = True
            continue
        for s in parse_metric(m, n, e.extractor, e.backends):
            if s.kind in JUDGED_KINDS:
                check_captioned(cfg.data)  # one line on data without an attribute judge
                judged.append(s)
                continue
            kind = metric_group(s, cfg.data)  # auto/domain/<data>-classifier → domain; one line if metric and extractor do not fit
            groups.setdefault(kind, []).append(s)
    return groups, probe, judged


class Evaluator:
    """Callable (model_ema, images_seen) → {`eval/...`: value}; extractors/references built lazily."""

    def __init__(self, cfg, run_dir=None, device=None, metrics=None, n: int | None = None, cache_dir=None):
        self.cfg = cfg
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.device = torch.device(device) if device is not None else None
        self.groups, self.probe, self.judged = plan(cfg, metrics, n)
        self.cache_dir = cache_dir if cache_dir is not None else getattr(cfg.eval, "cache_dir", None)
        self._extractors: dict = {}
        self._references: dict = {}
        self._dataset = None
        self._decoder = None
        self._caption_source = None
        self._judge = None

    # --------------------------------------------------------------- lazily built pieces
    def dataset(self):
        if self._dataset is None:
            from suite.data import build_dataset
            from suite.data.datasets import LatentDecoder

            d = self.cfg.data
            # latents without shards (an imported checkpoint): only the decoder is needed to make pixels
            self._dataset = LatentDecoder(d.vae) if d.name == "latents" and not d.root else build_dataset(d, "train")
        return self._dataset

    def decoder(self):
        """What turns generated examples into media, from the config alone (suite.data.media_decoder:
        latent shards' VAE with the normalisation their header records, the spectrogram view's
        Griffin-Lim), so sampling never reads the training data; else the dataset itself."""
        if self._decoder is None:
            from suite.data import media_decoder

            self._decoder = media_decoder(self.cfg.data) or self.dataset()
        return self._decoder

    def captions(self):
        """Where captioned sampling draws from: an object with `captions` (strings), `texts(indices)` and
        `conditions(indices)` (b, L, E). Captioned latent shards: only their caption columns
        (suite.data.shard_captions, memory-mapped; no latents or pixels read). Any other captioned
        dataset: its items."""
        if self._caption_source is None:
            d = self.cfg.data
            if d.name == "latents" and d.root:
                from suite.data import split_indices
                from suite.data.shard_captions import ShardCaptions

                table = ShardCaptions(d.root)  # the training split's captions, indexed as build_dataset(d, "train")
                if d.test_fraction > 0:
                    table = table.select(split_indices(len(table), d.test_fraction, d.seed, "train"))
                self._caption_source = table
            else:
                self._caption_source = _DatasetCaptions(self.dataset())
        return self._caption_source

    def judge_recipe(self):
        from suite.evaluation.caption_judge import JudgeRecipe

        return JudgeRecipe(n_images=self.cfg.eval.judge_images, steps=self.cfg.eval.judge_steps)

    def judge(self):
        """The dataset's attribute judge (caption consistency): cached on disk, trained there once."""
        if self._judge is None:
            from suite.evaluation.caption_judge import cached_judge

            self._judge = cached_judge(self.cfg.data, self.cache_dir, self.judge_recipe())
        return self._judge

    def to_media(self, x0: torch.Tensor) -> torch.Tensor:
        """Generated examples (b, ...) → what every metric reads (quantise): latents and spectrograms decoded."""
        from suite.evaluation.images import generated_to_pixels, quantise

        decoder = self.decoder() if x0.shape[1] not in (1, 3) else None
        return quantise(generated_to_pixels(x0, decoder))  # (b, 3, H, W) uint8; video/audio: see quantise

    def extractor(self, kind: str, device):
        if kind not in self._extractors:
            self._extractors[kind] = build_extractor(kind, self.cfg, device=device, cache_dir=self.cache_dir)
        return self._extractors[kind]

    def reference(self, kind: str, extractor):
        if kind not in self._references:
            from suite.evaluation.reference import adm_reference, dataset_reference

            e = self.cfg.eval
            if e.reference_npz:
                self._references[kind] = adm_reference(extractor, e.reference_npz, self.cache_dir,
                                                       need_features=any(s.kind in ("kid", "prc") for s in self.groups[kind]),
                                                       need_spatial=any(s.kind == "sfid" for s in self.groups[kind]))
            else:
                self._references[kind] = dataset_reference(extractor, self.cfg.data, e.reference_split, None, e.seed, self.cache_dir)
        return self._references[kind]

    # --------------------------------------------------------------- the evaluation
    def protocol(self, n_max: int, results: dict) -> dict:
        """Everything needed to reproduce the numbers, recorded beside them."""
        from suite.evaluation import _versions
        from suite.sampling import describe

        e = self.cfg.eval
        out = {"sampling": {**describe(self.cfg.sampling), "seed": e.seed, "chunk_size": e.batch_size}, "n_samples": n_max,
               "metrics": sorted(results),
               "extractors": {k: {"name": x.name, "fingerprint": x.fingerprint, "weights": x.weights_path,
                                  **({"preprocess": x.preprocess} if hasattr(x, "preprocess") else {})} for k, x in self._extractors.items()},
               "references": {k: r.provenance for k, r in self._references.items()},
               "backends": list(e.backends), "versions": _versions(), "precision": "fp32"}
        if self.judged:
            from suite.evaluation.caption_eval import SPLITS
            from suite.evaluation.caption_judge import judge_path

            recipe = self.judge_recipe()
            out["caption_consistency"] = {"n_per_split": sorted({s.n for s in self.judged}), "splits": dict(SPLITS),
                                          "judge": str(judge_path(self.cfg.data, recipe, self.cache_dir)),
                                          "judge_recipe": dataclasses.asdict(recipe), "caption_order_seed": e.seed}
        if self.probe:
            out["probe"] = {"t": e.probe_t, "blocks": list(e.probe_blocks) or "all", "n_train": e.probe_n_train,
                            "n_test": e.probe_n_test, "label": "null", "pooling": "mean over tokens",
                            "classifier": "multinomial logistic regression (L-BFGS, l2=1e-4, standardised features)"}
        return out

    def samples(self, model, n: int, device):
        """Yield (pixels (b, 3, H, W) uint8, labels (b,)) chunks of n samples from `model`.

        Streamed so a 50k-sample evaluation keeps features, not images, in memory. Labels are
        drawn once for all n (`sampling.label_sampling`, seeded by `eval.seed`); chunk i's noise is
        seeded by (eval.seed, i), so the samples depend only on the seed, n and the chunk size.
        """
        from suite.sampling import draw_labels, sample_images

        e = self.cfg.eval
        g = torch.Generator().manual_seed(e.seed)
        captioned, caption_ids = self._captioned(), self._builtin_caption_ids(n)
        if captioned:  # captioned shards: the "labels" are the dataset indices of the captions sampled for
            labels = torch.randint(0, len(self.captions().captions), (n,), generator=g)
        elif caption_ids is not None:  # captioned built-ins: the "labels" index the test-split captions drawn
            labels = torch.arange(n)
        else:
            labels = draw_labels(n, model.num_classes, self.cfg.sampling.label_sampling, g)
        for i, start in enumerate(range(0, n, e.batch_size)):
            y = labels[start : start + e.batch_size]
            if captioned:
                cond = self.captions().conditions(y)  # (b, L, E) caption embeddings
            else:
                cond = y if caption_ids is None else caption_ids[y]  # (b,) classes | (b, L) caption token ids
            x0, _ = sample_images(model, y.shape[0], self.cfg.sampling, device, seed=e.seed * 1_000_003 + i,
                                  labels=cond, batch_size=e.batch_size, clamp=self.cfg.data.name != "latents")
            yield self.to_media(x0), y  # (b, 3, H, W) uint8; video/audio: see quantise

    def _builtin_caption_ids(self, n: int) -> torch.Tensor | None:
        """Captioned built-ins (token-id captions): n caption ids (n, L) of the test split, drawn as
        caption consistency draws its seen captions, so every metric samples for real captions."""
        from suite.data.caption_schemes import CAPTIONED_BUILTINS

        if self.cfg.data.name not in CAPTIONED_BUILTINS:
            return None
        from suite.evaluation.caption_eval import draw_captions

        return draw_captions(self.cfg.data, "seen", n, self.cfg.eval.seed)[0]  # (n, L)

    def _captioned(self) -> bool:
        """Data whose conditions are caption embeddings with their caption strings (captioned latent shards).
        Decided from the config first (the shards' header), so evaluating class data never builds it."""
        from suite.data import condition_kind

        if condition_kind(self.cfg.data) != "text":
            return False
        captions = self.captions().captions
        return captions is not None and len(captions) > 0 and isinstance(captions[0], str)

    def __call__(self, model, images_seen: int) -> dict[str, float]:
        """Evaluate; the caller's RNG streams (CPU and the model's CUDA device) are left untouched,
        so switching evaluation on or off never changes a training run's trajectory."""
        device = self.device or next(model.parameters()).device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return self._evaluate(model, images_seen, device)

    def evaluate_images(self, batches, images_seen: int = 0) -> dict[str, float]:
        """The same metrics on given batches (pixels (b, 3, H, W) uint8, labels (b,)) instead of the
        model's samples: an ADM-style npz written by `suite sample --format npz` or by other code.
        Metrics that need the model itself (caption consistency, the probe) are refused in one line
        before any batch is read, never dropped from the results."""
        from suite.errors import ConfigError

        why = {"caption_consistency": "samples the model for captions of the test split and of held-out (unseen) attribute "
                                      "combinations, which given samples do not carry (an npz's arr_1 is labels, not captions)",
               "probe": "reads the model's hidden features"}
        asked = [k for k, on in (("caption_consistency", self.judged), ("probe", self.probe)) if on]
        if asked:
            raise ConfigError(f"eval.metrics: {' and '.join(asked)} cannot be computed from given samples (an npz): "
                              + "; ".join(f"{k} {why[k]}" for k in asked)
                              + f"; evaluate the run instead: suite eval RUN_DIR --metrics {' '.join(asked)}")
        return self._evaluate(None, images_seen, self.device or torch.device("cpu"), batches)

    def _evaluate(self, model, images_seen: int, device, batches=None) -> dict[str, float]:
        from suite.data import clip_rate
        from suite.evaluation.images import to_float
        from suite.media import save_samples

        start = time.time()
        e = self.cfg.eval
        was_training = model.training if model is not None else False
        if model is not None:
            model.eval()
        results: dict[str, float] = {}
        n_max = max((s.n for g in self.groups.values() for s in g), default=0)
        grid = None
        try:
            if n_max:
                exts = {kind: self.extractor(kind, device) for kind in self.groups}
                refs = {kind: None if all(s.kind in SCORE_KINDS for s in self.groups[kind]) else self.reference(kind, x)
                        for kind, x in exts.items()}  # media–caption scores need no reference statistics
                feats: dict[str, list[dict]] = {kind: [] for kind in self.groups}
                cf_feats: dict[str, list[torch.Tensor]] = {kind: [] for kind in self.groups}
                labels = []
                for pixels, y in (batches if batches is not None else self.samples(model, n_max, device)):
                    grid = pixels if grid is None else grid
                    labels.append(y)
                    for kind, ext in exts.items():
                        feats[kind].append(ext.extract(pixels))
                        cf = self._cleanfid_inception(kind, device)
                        if cf is not None:
                            cf_feats[kind].append(cf.features(pixels))
                labels = torch.cat(labels)
                for kind, specs in self.groups.items():
                    gen = {k: torch.cat([f[k] for f in feats[kind]]) for k in feats[kind][0]}
                    side = None
                    if cf_feats[kind]:
                        ref_c = self._references["cleanfid-inception"]
                        side = (torch.cat(cf_feats[kind]), ref_c.mu, ref_c.sigma, ref_c.features)
                    if any(s.kind == "clapscore" for s in specs):
                        gen["text"] = self._caption_features(exts[kind], labels)
                    if any(s.kind == "clipscore" for s in specs):
                        gen["text"] = self._sample_caption_features(exts[kind], labels)
                    vals = compute_for_extractor(specs, exts[kind].name, gen, refs[kind], labels, e.seed, side,
                                                 rows_per_sample=getattr(exts[kind], "rows_per_sample", 1))
                    results.update({PREFIX + k: v for k, v in vals.items()})
            if self.judged and model is not None:
                from suite.evaluation.caption_eval import caption_consistency_metrics

                vals = caption_consistency_metrics(model, self.judge(), self.cfg, [s.n for s in self.judged], device, self.to_media)
                results.update({PREFIX + k: v for k, v in vals.items()})
            if self.probe and model is not None:
                from suite.evaluation.probe import linear_probe

                accs = linear_probe(model, self.cfg.data, e.probe_blocks, e.probe_t, e.probe_n_train, e.probe_n_test,
                                    device, e.batch_size, e.seed, getattr(model, "num_classes", None))
                results.update({f"{PREFIX}probe_acc_block{b}": a for b, a in accs.items()})
        finally:
            if model is not None:
                model.train(was_training)
        if self.run_dir is not None and _is_main():
            record = {"images_seen": int(images_seen), "metrics": results, "protocol": self.protocol(n_max, results),
                      "seconds": round(time.time() - start, 2)}
            out = self.run_dir / "eval" / f"eval-{int(images_seen):010d}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
            if grid is not None:  # PNG grid, GIF (video) or WAV + spectrogram (audio)
                save_samples(to_float(grid[:64]), self.run_dir / "samples", f"eval-{int(images_seen):010d}", clip_rate(self.cfg.data))
        return results

    def _caption_features(self, extractor, labels: torch.Tensor) -> torch.Tensor:
        """(N,) class labels → (N, D) text embeddings of each label's class caption (CLAP score):
        the caption of what each sample was generated for, as the dataset words it."""
        from suite.errors import SuiteError

        captions = getattr(self.dataset(), "class_captions", None)
        if not captions:
            raise SuiteError(f"clapscore: dataset {self.cfg.data.name!r} has no class captions")
        classes = sorted(set(labels.tolist()))
        table = extractor.text_features([captions[c] for c in classes])  # (K, D)
        index = {c: i for i, c in enumerate(classes)}
        return table[torch.tensor([index[int(c)] for c in labels])]  # (N, D)

    def _sample_caption_features(self, extractor, labels: torch.Tensor) -> torch.Tensor:
        """(N,) dataset indices of the captions the samples were generated for → (N, D) text embeddings (CLIP score)."""
        from suite.errors import SuiteError

        if not self._captioned():
            raise SuiteError(f"clipscore: dataset {self.cfg.data.name!r} has no captions; use captioned latent shards "
                             "(suite data encode --text-encoder)")
        return extractor.text_features(self.captions().texts(labels))  # (N, D)

    def _cleanfid_inception(self, kind, device):
        """clean-fid with Inception: its own 'clean' resize and TorchScript model on both sides
        (None unless this group is Inception and asks for a clean-fid metric)."""
        if kind != "inception" or not any(s.backend == "clean-fid" for s in self.groups[kind]):
            return None
        if "cleanfid-inception" not in self._extractors:
            from suite.evaluation.extractors import CleanFidInception
            from suite.evaluation.reference import adm_reference, dataset_reference

            e = self.cfg.eval
            cext = CleanFidInception(e.inception_weights, device, e.batch_size)
            ref_c = (adm_reference(cext, e.reference_npz, self.cache_dir) if e.reference_npz
                     else dataset_reference(cext, self.cfg.data, e.reference_split, None, e.seed, self.cache_dir))
            self._extractors["cleanfid-inception"], self._references["cleanfid-inception"] = cext, ref_c
        return self._extractors["cleanfid-inception"]


class _DatasetCaptions:
    """A captioned dataset read through its items (`y` the caption's embeddings, `caption` its string)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.captions = getattr(dataset, "captions", None) if getattr(dataset, "condition", "class") == "text" else None

    def texts(self, indices) -> list[str]:
        return [self.captions[int(i)] for i in indices]

    def conditions(self, indices) -> torch.Tensor:
        return torch.stack([self.dataset[int(i)]["y"] for i in indices])  # (b, L, E)


def make_evaluator(cfg, run_dir=None, device=None, **kw) -> Evaluator:
    return Evaluator(cfg, run_dir, device, **kw)


def evaluate(model, cfg, device, images_seen: int, run_dir=None, **kw) -> dict[str, float]:
    return Evaluator(cfg, run_dir, device, **kw)(model, images_seen)
