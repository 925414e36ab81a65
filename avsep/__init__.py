"""avsep: audio-visual sound separation and localization (The Sound of Pixels).

The public API::

    from avsep import Config, Separator, Point, Box
    separator = Separator.from_checkpoint("run/best.pt")
    analysis = separator.analyze("duet.mp4")
    violin = analysis.separate(point=(120, 200))
"""
__version__ = "0.2.0"

from avsep.config import Config  # noqa: E402
from avsep.errors import AvsepError  # noqa: E402

# These pull in torch: imported only when asked for, so `avsep --help` and `import avsep` stay fast.
_LAZY = {"Separator": "avsep.inference", "Analysis": "avsep.inference", "Point": "avsep.inference",
         "Box": "avsep.inference", "BoxTrack": "avsep.inference", "VideoClip": "avsep.inference"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'avsep' has no attribute {name!r}")


__all__ = ["AvsepError", "Analysis", "Box", "BoxTrack", "Config", "Point", "Separator", "VideoClip", "__version__"]
