"""Checkpoints as plain dicts of tensors, the configuration and library versions.

Every checkpoint loads with ``torch.load(path, weights_only=True)``: it holds only tensors,
numbers, strings, lists and dicts, never pickled objects.
"""
from __future__ import annotations

import pickle
import platform
import zipfile
from pathlib import Path
from typing import Any

import torch

from avsep import __version__
from avsep.config import Config
from avsep.errors import AvsepError
from avsep.utils import atomic_path, atomic_write_text

FORMAT = "avsep-checkpoint-1"


def versions() -> dict[str, str]:
    import torchvision

    # str(): torch.__version__ is a TorchVersion object, which weights_only loading refuses.
    return {"avsep": __version__, "torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
            "python": platform.python_version()}


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A model's state dict as detached CPU tensors, as checkpoints store it."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def save_checkpoint(path: str | Path, model: torch.nn.Module, cfg: Config, **extra: Any) -> Path:
    """Write ``{"format", "config", "versions", "model", **extra}`` atomically to ``path``.

    ``config.json`` is written beside it, so the configuration can be read without torch.
    """
    path = Path(path)
    state = {"format": FORMAT, "config": cfg.to_dict(), "versions": versions(),
             "model": cpu_state(model), **extra}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    atomic_write_text(path.with_name("config.json"), cfg.to_json())
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict safely (``weights_only=True``), with a clear error for bad files."""
    path = Path(path)
    if not path.is_file():
        raise AvsepError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, or holds pickled objects
        raise AvsepError(f"{path}: not a readable checkpoint: {_load_problem(path, err)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise AvsepError(f"{path}: not an avsep checkpoint (no '{FORMAT}' format tag)")
    return state


def _load_problem(path: Path, err: Exception) -> str:
    """Say in a few words why torch could not load ``path`` (its own messages run to paragraphs)."""
    try:
        with open(path, "rb") as file:
            magic = file.read(2)
    except OSError as unreadable:   # the file itself cannot be read
        return unreadable.strerror or type(unreadable).__name__
    if not magic:
        return "an empty file, from a copy or save that was cut off?"
    if magic[:1] == b"\x80":   # torch's format before 1.6: a cut file can even look like one with objects
        return "a PyTorch file in the format before torch 1.6, which avsep never writes, and torch cannot read it"
    if magic != b"PK":
        return "not a PyTorch file"
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:   # its list of files is cut off or damaged
        return "a PyTorch file that is truncated or damaged"
    if not any(name.endswith("/data.pkl") for name in names):
        return "a zip archive, not a PyTorch file"
    if "Unsupported global" in str(err):
        return "it holds Python objects that weights-only loading refuses; avsep never saves them"
    if isinstance(err, (RuntimeError, EOFError, OSError, pickle.UnpicklingError)):   # OSError: a seek past the end
        return "a PyTorch file that is truncated or damaged"
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:160]}" if text else type(err).__name__


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the model of a checkpoint in eval mode; returns ``(model, config, state)``."""
    from avsep.models.sop import SoundOfPixels

    state = load_checkpoint(path)
    missing = [key for key in ("config", "model") if not isinstance(state.get(key), dict)]
    if missing:
        raise AvsepError(f"{path}: a damaged avsep checkpoint (no {' or '.join(missing)})")
    cfg = Config.from_dict(state["config"])
    model = SoundOfPixels(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:  # weights of another network than the one its configuration builds
        lines = str(err).splitlines()
        first = (lines[1] if len(lines) > 1 else lines[0]).strip()
        first = first if len(first) <= 200 else first[:200] + "..."   # missing keys are listed in full
        raise AvsepError(f"{path}: its weights do not fit the network its configuration describes ({first})") from None
    return model.to(device).eval(), cfg, state
