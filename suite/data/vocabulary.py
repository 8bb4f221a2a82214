"""Compositional captions of the captioned built-ins: one convention for all of them.

A `CaptionScheme` names the attributes a built-in generator varies (each a tuple of values), a
caption template over them, a fixed word vocabulary, and the held-out attribute combinations:
pairs of values of two attributes (`pair`) that never appear in the train or test splits and
are all the `unseen` split holds (every value is still seen in training, just never together).
Captions travel as token ids over the vocabulary, padded to `length` with the null token
`len(vocab)` — the same id the model uses for a dropped condition (docs/ARCHITECTURE.md,
"Conditions"). `suite.data.caption_schemes.caption_scheme(name)` is the scheme of a captioned built-in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class CaptionScheme:
    attributes: dict[str, tuple[str, ...]]  # name → values, in the order attribute indices use
    template: str  # str.format over the attribute names: "a {size} {colour} {shape} in the {position}"
    vocab: tuple[str, ...]  # every word a caption may hold; id = position, len(vocab) = the null token
    pair: tuple[str, str]  # the two attributes whose value pairs `unseen_pairs` hold out
    unseen_pairs: tuple[tuple[str, str], ...]
    length: int  # caption length in tokens (padded with the null token)

    def __post_init__(self):  # a scheme whose own captions would not tokenize is a programming error
        words = set(self.template.format(**{k: "" for k in self.attributes}).split())
        words |= {w for values in self.attributes.values() for v in values for w in v.split()}
        assert words <= set(self.vocab), sorted(words - set(self.vocab))
        assert all(a in self.attributes[self.pair[0]] and b in self.attributes[self.pair[1]] for a, b in self.unseen_pairs)

    @property
    def null_token(self) -> int:
        return len(self.vocab)

    def caption(self, attrs: dict[str, str]) -> str:
        return self.template.format(**attrs)

    def tokenize(self, text: str) -> torch.Tensor:
        """Caption → (length,) long ids, padded with the null token; an unknown word is a one-line error."""
        from suite.errors import SuiteError

        words = text.lower().split()
        unknown = [w for w in words if w not in self.vocab]
        if unknown or len(words) > self.length:
            raise SuiteError(f"caption {text!r}: " + (f"unknown words {unknown}; vocabulary: {' '.join(self.vocab)}" if unknown
                                                      else f"longer than {self.length} words"))
        ids = [self.vocab.index(w) for w in words] + [self.null_token] * (self.length - len(words))
        return torch.tensor(ids, dtype=torch.long)

    def detokenize(self, ids: torch.Tensor) -> str:
        return " ".join(self.vocab[i] for i in ids.tolist() if i != self.null_token)

    def is_unseen(self, attrs: dict[str, str]) -> bool:
        return (attrs[self.pair[0]], attrs[self.pair[1]]) in self.unseen_pairs

    def draw_attributes(self, rng: np.random.Generator, unseen: bool | None) -> dict[str, str]:
        """Uniform over the seen (False), only the unseen (True) or all (None) attribute combinations."""
        while True:
            a = {k: v[rng.integers(len(v))] for k, v in self.attributes.items()}
            if unseen is None or self.is_unseen(a) == unseen:
                return a

    def attribute_indices(self, attrs: dict[str, str]) -> list[int]:
        return [self.attributes[k].index(attrs[k]) for k in self.attributes]

    def chance_levels(self) -> dict[str, float]:
        """Caption consistency of samples that ignore their captions (uniform attributes): per attribute and 'all'."""
        out = {k: 1.0 / len(v) for k, v in self.attributes.items()}
        out["all"] = float(np.prod(list(out.values())))
        return out


def draw_captioned(scheme: CaptionScheme, n: int, seed: int, unseen: bool | None, render):
    """n examples of a captioned built-in: render(attrs, rng) → one example as a numpy array.

    → (examples (n, ...) float tensor, captions (n, length) long, attributes (n, A) long). The
    random stream depends on (seed, which combinations), so the splits are independent draws."""
    rng = np.random.default_rng((seed, {False: 0, True: 1, None: 2}[unseen]))
    examples, tokens, attrs = [], [], []
    for _ in range(n):
        a = scheme.draw_attributes(rng, unseen)
        examples.append(render(a, rng))
        tokens.append(scheme.tokenize(scheme.caption(a)))
        attrs.append(scheme.attribute_indices(a))
    return torch.from_numpy(np.stack(examples)), torch.stack(tokens), torch.tensor(attrs, dtype=torch.long)
