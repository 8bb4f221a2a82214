"""The report's media: each run's latest video (GIF) and audio (WAV player + spectrogram) samples,
read from its MLflow artifacts (`samples/`) and embedded in the page, beside the metrics.

Image runs are left out (their grids add nothing the metrics tables do not say); a store with no
video or audio runs adds no section.
"""
from __future__ import annotations

import base64
import re
import tempfile
from pathlib import Path

import pandas as pd

from reports.html import esc
from reports.style import method_label

_SAMPLE = re.compile(r"^(grid|eval)-(\d+)(\.gif|\.wav|\.spectrogram\.png)$")
MIME = {".gif": "image/gif", ".wav": "audio/wav", ".spectrogram.png": "image/png"}


def latest_media(client, run_id: str) -> dict[str, str]:
    """{suffix: artifact path} of the run's most recent sample files (training grids first)."""
    try:
        arts = [a.path for a in client.list_artifacts(run_id, "samples")]
    except Exception:  # a run without artifacts, an unreachable artifact store
        return {}
    best: dict[str, tuple] = {}
    for path in arts:
        m = _SAMPLE.match(Path(path).name)
        if m:
            key = (int(m.group(2)), m.group(1) == "grid")
            if m.group(3) not in best or key > best[m.group(3)][0]:
                best[m.group(3)] = (key, path)
    return {suffix: path for suffix, (_, path) in best.items()}


def media_html(suffix: str, data: bytes, caption: str) -> str:
    """One embedded player: <img> for GIF / spectrogram, <audio controls> for WAV."""
    uri = f"data:{MIME[suffix]};base64,{base64.b64encode(data).decode('ascii')}"
    if suffix == ".wav":
        return f'<figure class="media"><audio controls preload="auto" data-name="{esc(caption)}" src="{uri}"></audio><figcaption>{esc(caption)}</figcaption></figure>'
    return f'<figure class="media"><img alt="{esc(caption)}" src="{uri}"><figcaption>{esc(caption)}</figcaption></figure>'


def add_media(sec, runs: pd.DataFrame, tracking_uri: str) -> int:
    """Every video/audio run's latest media, appended to the report's 'Samples' section (pictures
    first); returns how many were embedded."""
    from reports.mlflow_io import _client

    client = _client(tracking_uri)
    blocks = []
    with tempfile.TemporaryDirectory() as scratch:
        for r in runs.sort_values(["method_key", "size_key"]).itertuples():
            found = latest_media(client, r.run_id)
            if not ({".gif", ".wav"} & found.keys()):
                continue
            label = f"{method_label(r.method_key)}, {r.size} ({r.run_name})"
            for suffix in (".gif", ".wav", ".spectrogram.png"):
                if suffix in found:
                    local = Path(client.download_artifacts(r.run_id, found[suffix], scratch))
                    what = {".gif": "video samples", ".wav": "audio samples", ".spectrogram.png": "spectrogram"}[suffix]
                    blocks.append(media_html(suffix, local.read_bytes(), f"{label}: {what}, {Path(found[suffix]).name}"))
    if blocks:
        sec.para("Each run's latest samples (EMA weights, classes in turn), as logged to MLflow: "
                 "videos as looping GIFs, audio as WAV players with their spectrograms.")
        sec.raw('<div class="media-grid">' + "".join(blocks) + "</div>")
    return len(blocks)
