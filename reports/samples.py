"""Sample grids for the report: one picture per method × size, the run's latest grid.

Read from the run's MLflow artifacts (`samples/*.png`, logged by the trainer when
`tracking.log_samples` is on); when the artifact store is not reachable, from the run directory
recorded with the run (`run_dir/samples`). The first seed of each method × size is shown: a
reader sees what the numbers next to it mean.
"""
from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

import pandas as pd

from reports.style import method_label, sort_methods


def _latest_png(names) -> str | None:
    """The newest grid: eval-<images>.png beats grid-<images>.png at the same budget."""
    pngs = sorted(n for n in names if n.endswith(".png"))
    if not pngs:
        return None
    return max(pngs, key=lambda n: (Path(n).stem.rsplit("-", 1)[-1], Path(n).stem.startswith("eval")))


def latest_grid(tracking_uri: str, run_id: str, run_dir=None) -> bytes | None:
    """PNG bytes of the run's latest sample grid, or None when it has none."""
    try:
        from mlflow.tracking import MlflowClient

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        client = MlflowClient(tracking_uri=tracking_uri)
        name = _latest_png(a.path for a in client.list_artifacts(run_id, "samples"))
        if name:
            with tempfile.TemporaryDirectory() as tmp:
                return Path(client.download_artifacts(run_id, name, tmp)).read_bytes()
    except Exception:  # noqa: BLE001 - an unreachable artifact store falls back to the run dir
        pass
    if isinstance(run_dir, str) and run_dir:
        folder = Path(run_dir) / "samples"
        name = _latest_png(p.name for p in folder.glob("*.png")) if folder.is_dir() else None
        if name:
            return (folder / name).read_bytes()
    return None


def grids_html(runs: pd.DataFrame, tracking_uri: str, values: dict | None = None) -> tuple[str, int]:
    """(HTML table: rows = methods, columns = sizes, each cell the first seed's grid, shown = count).

    `values`: optional {(method_key, size_key): caption} printed under each grid (the numbers).
    """
    import base64

    sizes = runs.drop_duplicates("size_key").sort_values("size_key")
    head = "".join(f"<th>{html.escape(s)}</th>" for s in sizes["size"])
    body, shown = [], 0
    for mk in sort_methods(runs["method_key"]):
        cells = []
        for size_key in sizes["size_key"]:
            rs = runs[(runs["method_key"] == mk) & (runs["size_key"] == size_key)].sort_values("seed_key")
            png = None
            for r in rs.itertuples():
                png = latest_grid(tracking_uri, r.run_id, getattr(r, "run_dir", None))
                if png:
                    break
            cap = html.escape((values or {}).get((mk, size_key), ""))
            if png:
                shown += 1
                src = base64.b64encode(png).decode("ascii")
                cells.append(f'<td><img class="grid" alt="samples {html.escape(mk)}" '
                             f'src="data:image/png;base64,{src}"><br><small>{cap}</small></td>')
            else:
                cells.append(f"<td><small>no samples logged</small><br><small>{cap}</small></td>")
        body.append(f"<tr><th>{html.escape(method_label(mk))}</th>{''.join(cells)}</tr>")
    table = (f'<div class="scroll"><table class="grids"><thead><tr><th></th>{head}</tr></thead>'
             f"<tbody>{''.join(body)}</tbody></table></div>")
    return table, shown
