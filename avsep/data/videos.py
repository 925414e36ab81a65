"""Solo videos as the mixing code reads them: audio windows and frames, wherever they are stored.

:class:`VideoFiles` reads a video preprocessed into a WAV file and a folder of JPEG frames (an
index row). Any other storage (for example a sample streamed from a tar shard) only has to
offer the same few methods (:class:`SoloVideo`) to be mixed in exactly the same way.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
from PIL import Image

from avsep.data.decode import load_audio, read_wav, wav_info
from avsep.data.index import IndexRow, frame_path
from avsep.data.splits import row_video_id
from avsep.errors import AvsepError


class SoloVideo(Protocol):
    """What the mixing code needs of one solo video."""
    label: str
    num_frames: int

    @property
    def video_id(self) -> str: ...

    def audio_length(self) -> int: ...

    def audio(self, start: int, length: int) -> np.ndarray: ...

    def frame(self, index: int, min_side: int) -> Image.Image: ...


def read_frame(source: Path | BinaryIO, min_side: int) -> Image.Image:
    """A frame (a file, or a JPEG's bytes in a file object) as RGB, decoded at the smallest JPEG
    scale whose shorter side is >= ``min_side``."""
    if isinstance(source, (str, Path)):
        # One read of the whole file: PIL reading from the file itself makes dozens of small
        # reads of a 12 kB frame, a cost that training pays for every view of every item.
        source = io.BytesIO(Path(source).read_bytes())
    with Image.open(source) as img:
        img.draft("RGB", (min_side, min_side))  # JPEG DCT scaling: much cheaper than decoding full size
        return img.convert("RGB")


@dataclass
class VideoFiles:
    """A preprocessed video: ``row.audio`` (WAV, or any format at the cost of decoding it whole)
    and the JPEG frames of ``row.frames``."""
    row: IndexRow
    sample_rate: int
    _length: int | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return self.row.label

    @property
    def num_frames(self) -> int:
        return self.row.num_frames

    @property
    def video_id(self) -> str:
        return row_video_id(self.row)

    @property
    def where(self) -> str:
        return str(self.row.audio)

    def audio_length(self) -> int:
        """Samples at ``sample_rate`` (from the WAV header alone)."""
        if self._length is None:
            if self.row.audio.suffix.lower() == ".wav":
                rate, self._length = wav_info(self.row.audio)
                if rate != self.sample_rate:
                    raise AvsepError(f"{self.row.audio}: sample rate {rate} Hz, but the configuration needs "
                                     f"{self.sample_rate} Hz")
            else:
                self._length = len(load_audio(self.row.audio, self.sample_rate))
        return self._length

    def audio(self, start: int, length: int) -> np.ndarray:
        """``length`` samples from ``start``, zero-padded past the end: (length,) float32."""
        if self.row.audio.suffix.lower() == ".wav":
            return read_wav(self.row.audio, start, length)
        audio = load_audio(self.row.audio, self.sample_rate)[start:start + length]
        return np.pad(audio, (0, length - len(audio)))

    def frame(self, index: int, min_side: int) -> Image.Image:
        return read_frame(frame_path(self.row, index), min_side)
