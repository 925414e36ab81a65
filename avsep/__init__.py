"""avsep: audio-visual sound separation and localization (The Sound of Pixels).

The public API::

    from avsep import Config, Separator
"""
__version__ = "0.1.0"

from avsep.config import Config  # noqa: E402
from avsep.errors import AvsepError  # noqa: E402


def __getattr__(name: str):
    # Separator pulls in torch and torchvision: import it only when asked for.
    if name == "Separator":
        from avsep.inference.separator import Separator
        return Separator
    raise AttributeError(f"module 'avsep' has no attribute {name!r}")


__all__ = ["AvsepError", "Config", "Separator", "__version__"]
