"""Open an HTML page in Debian's headless Chromium and report what a person would see."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
_CHECK = """<script>
window.addEventListener('error', e => { document.body.setAttribute('data-js-error', String(e.message)); });
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const m = document.createElement('div'); m.id = 'figure-check';
  m.textContent = 'FIGURES-DECODED ' + ok + '/' + imgs.length;
  document.body.appendChild(m);
  const players = Array.from(document.querySelectorAll('audio, video'));
  Promise.all(players.map(a => new Promise(res => {
    if (a.readyState >= 1) return res();
    a.addEventListener('loadedmetadata', res); a.addEventListener('error', res); a.load();
  }))).then(() => {
    const playable = players.filter(a => a.readyState >= 1 && a.duration > 0 && !a.error).length;
    const p = document.createElement('div'); p.id = 'media-check';
    p.textContent = 'MEDIA-PLAYABLE ' + playable + '/' + players.length;
    document.body.appendChild(p);
  });
});
</script></body>"""


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


def open_in_chromium(html: Path, scratch: Path) -> dict:
    """{'decoded': n images decoded (GIFs included), 'images': n <img> in the page, 'playable':
    n <audio>/<video> with metadata loaded and a duration > 0, 'players': n of them,
    'js_error': bool, 'screenshot': Path}."""
    page = Path(html).read_text()
    probe = scratch / "probe.html"
    probe.write_text(page.replace("</body>", _CHECK, 1))
    base = [CHROMIUM, *FLAGS, f"--user-data-dir={scratch / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run(base + ["--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    if dom.returncode != 0:
        raise RuntimeError(dom.stderr[-2000:])
    found = re.search(r"FIGURES-DECODED (\d+)/(\d+)", dom.stdout)
    media = re.search(r"MEDIA-PLAYABLE (\d+)/(\d+)", dom.stdout)
    shot = scratch / "shot.png"
    subprocess.run(base + [f"--screenshot={shot}", "--window-size=1280,2400", Path(html).as_uri()],
                   capture_output=True, text=True, timeout=120)
    return {"decoded": int(found.group(1)) if found else -1, "images": page.count("<img "),
            "playable": int(media.group(1)) if media else -1, "players": page.count("<audio ") + page.count("<video "),
            "js_error": re.search(r"<body[^>]*data-js-error=", dom.stdout) is not None, "screenshot": shot}
