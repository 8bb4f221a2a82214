"""`suite demo --modality video|audio --quick` end to end: the sweep trains vanilla FM and
Self-Flow on the built-in video / audio data, evaluates with the dataset's domain classifier,
and the report embeds GIF / WAV players that load in headless Chromium."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from browser import have_chromium, open_in_chromium

DATASET = {"video": "moving-shapes", "audio": "tones"}


@pytest.fixture(scope="module", params=["video", "audio"])
def demo(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"demo-{request.param}")
    env = {**os.environ, "SUITE_CACHE": str(out / "cache")}
    r = subprocess.run([sys.executable, "-m", "suite.cli", "demo", "--modality", request.param, "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=900, env=env, cwd=out)
    return request.param, out, r


def test_media_demo_quick_trains_evaluates_and_reports(demo, tmp_path):
    modality, out, r = demo
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "4 finished" in r.stdout  # 2 methods × 2 sizes
    html = Path(re.search(r"Report: (\S+\.html)", r.stdout).group(1))
    page = html.read_text()
    assert "Vanilla FM" in page and "Self-Flow" in page and 'id="samples"' in page
    assert f"fd100_{DATASET[modality]}-classifier" in page
    if modality == "video":
        assert page.count('src="data:image/gif;base64,') == 4
    else:
        assert page.count("<audio ") == 4 and page.count('src="data:audio/wav;base64,') == 4
    if have_chromium():
        seen = open_in_chromium(html, tmp_path)
        assert not seen["js_error"] and seen["decoded"] == seen["images"] >= 4  # GIFs and spectrograms decode
        assert seen["playable"] == seen["players"] == (4 if modality == "audio" else 0)  # every WAV player has a duration
