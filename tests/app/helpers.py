"""Small videos and a tiny model for the app's fast tests, and an HTTP client for them."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

from avsep.config import Config
from avsep.models.checkpoint import save_checkpoint
from avsep.models.sop import SoundOfPixels
from avsep.data.encode import write_mp4

TINY = Config.preset("small").replace(channels=8, resnet_width=8, unet_channels=8)


def tiny_checkpoint(path: Path) -> Path:
    """A small random model: the app's plumbing does not need a trained one."""
    torch.manual_seed(0)
    return save_checkpoint(path, SoundOfPixels(TINY), TINY)


def two_tone_video(path: Path, seconds: float = 4.0, size=(256, 128), fps: int = 8, rate: int = 22050) -> Path:
    """Left half red with a 330 Hz tone, right half blue with a 97 Hz buzz (H.264 + AAC mp4)."""
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.2 * np.sin(2 * np.pi * 330 * t) + 0.1 * np.sign(np.sin(2 * np.pi * 97 * t))
    frame = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    frame[:, : size[0] // 2] = (220, 30, 30)
    frame[:, size[0] // 2:] = (30, 30, 220)
    count = int(seconds * fps)
    write_mp4(path, (frame for _ in range(count)), size, fps, audio.astype(np.float32), rate, count)
    return path


class Client:
    """GET and POST against a running app; answers are (status, headers, body bytes)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def request(self, path: str, data: bytes | None = None, method: str | None = None, headers: dict | None = None):
        req = urllib.request.Request(self.url + path, data=data, method=method or ("POST" if data is not None else "GET"),
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def json(self, path: str, **kwargs):
        status, _, body = self.request(path, **kwargs)
        return status, json.loads(body)
