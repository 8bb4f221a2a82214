"""The text demo's outputs (suite/commands/demo_text.py): sample files per set and report.html.

Images are one PNG grid per set, video one GIF grid, audio one WAV per clip (a player each) plus a
spectrogram grid. The page sits beside the files and points at them: caption consistency per
attribute against chance and the real data, then every set's samples above the captions they were
sampled for (in grid order: row by row).
"""
from __future__ import annotations

from html import escape
from pathlib import Path

import torch


def save_set(media: torch.Tensor, out: Path, stem: str, rate: float | None) -> list[str]:
    """media (n, ...) in [-1, 1] → files under out; their names, in the order the page shows them."""
    from suite.media import media_kind, save_samples, spectrogram_png, wav_bytes

    if media_kind(media.shape[1:]) != "audio":
        return [p.name for p in save_samples(media, out, stem, rate, nrow=4)]  # a PNG grid or a GIF grid
    files = {f"{stem}.spectrogram.png": spectrogram_png(media, nrow=4)}
    files.update({f"{stem}-{i:02d}.wav": wav_bytes(clip[None], int(rate or 8000)) for i, clip in enumerate(media)})  # (1, L) each
    for name, data in files.items():
        (out / name).write_bytes(data)
    return list(files)


def _player(name: str, caption: str = "") -> str:
    if name.endswith(".wav"):
        return f'<figure><audio controls preload="none" src="{escape(name)}"></audio><figcaption>{escape(caption)}</figcaption></figure>'
    return f'<figure><img alt="{escape(name)}" src="{escape(name)}"></figure>'


def write_report(out: Path, results: dict, shown: dict[str, list[str]], captions: dict[str, list[str]], attributes: list[str]) -> Path:
    """report.html under out: the caption-consistency table, then each set's samples and captions."""
    cols = ["all", *attributes]
    rows = [(k, r) for k, r in results.items() if isinstance(r, dict) and "all" in r]
    table = "".join(f"<tr><td>{escape(k)}</td>" + "".join(f"<td>{r[c]:.3f}</td>" for c in cols) + "</tr>" for k, r in rows)
    parts = [f"<h1>Text demo: {escape(results['dataset'])} ({escape(results['profile'])} profile)</h1>",
             "<p>Caption consistency: the fraction of samples whose attributes, as the attribute judge reads them, "
             "match their caption (<code>chance</code>: samples that ignore it; <code>real</code>: the data itself"
             + ("; <code>real/decoded</code>: real clips through the spectrogram view and Griffin-Lim, the decoder's ceiling"
                if "real/decoded" in results else "") + "). Seen: captions of the test split; unseen: held-out attribute pairs.</p>",
             "<table border=1 cellpadding=4><tr><th>set</th>" + "".join(f"<th>{escape(c)}</th>" for c in cols) + f"</tr>{table}</table>",
             f"<p>Time: {results['seconds']['total']} s, of which training {results['seconds']['training']} s.</p>"]
    if results.get("caveat"):
        parts.insert(1, f"<p><b>{escape(results['caveat'])}</b></p>")
    if "samples_per_set" in results:  # guided sets may be smaller (two passes per sample)
        parts.append("<p>Samples judged per set: " + ", ".join(f"{escape(k)} {v}" for k, v in results["samples_per_set"].items()) + ".</p>")
    for key, files in shown.items():  # "<method>/cfg<s>/<split>" → its files
        caps = captions[key.rsplit("/", 1)[1]]
        wavs = [f for f in files if f.endswith(".wav")]
        media = [_player(f) for f in files if not f.endswith(".wav")] + [_player(f, c) for f, c in zip(wavs, caps)]
        listing = "" if wavs else "<ol>" + "".join(f"<li>{escape(c)}</li>" for c in caps) + "</ol>"  # grid order
        parts.append(f"<h2>{escape(key)}</h2>" + "".join(media) + listing)
    path = out / "report.html"
    path.write_text("<!doctype html><html><head><meta charset='utf-8'><title>Text demo</title></head><body>"
                    + "\n".join(parts) + "</body></html>\n")
    return path
