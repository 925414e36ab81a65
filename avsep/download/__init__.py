"""Download MUSIC, VGGSound or your own list of videos with yt-dlp, resumably, into OUT/<label>/<name>.mp4.

``avsep download DATASET INDEX OUT``: see docs/datasets.md. From Python::

    from avsep.download import Options, download, load_index
    items = load_index("vggsound", "vggsound.csv")
    summary = download(items[:100], "data/vggsound", Options(workers=4))
    print(summary.table())

Modules: :mod:`.indexes` (parse and select), :mod:`.fetch` (yt-dlp), :mod:`.media` (verify and
convert), :mod:`.failures` (what to retry), :mod:`.throttle` (backoff and global slow-down),
:mod:`.runner` (ledger, resume, workers) and :mod:`.report` (progress and summary).
"""
from .cli import add_arguments, run
from .indexes import Item, limit, load_index, safe_label, select, shard
from .options import Options
from .runner import download

__all__ = ["Item", "Options", "add_arguments", "download", "limit", "load_index", "run", "safe_label", "select",
           "shard"]
