"""Catalog of the synthetic instruments: label, General MIDI sound, pitch range and looks.

Labels follow the MUSIC / MUSIC-21 data sets where an equivalent exists, so tutorials and
configs written for the real data read the same on the synthetic data.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# GM percussion key numbers (channel 10) used by the drum-like instruments.
KICK, SNARE, CLOSED_HAT, OPEN_HAT, LOW_TOM, MID_TOM, HIGH_TOM = 36, 38, 42, 46, 45, 47, 50
MUTE_HI_CONGA, OPEN_HI_CONGA, LOW_CONGA = 62, 63, 64


@dataclass(frozen=True)
class Instrument:
    """One sound source.

    ``program`` is the 0-based General MIDI program, or ``None`` for the percussion channel,
    in which case ``drum_keys`` lists the GM percussion keys the rhythm draws from.
    ``low``/``high`` is the MIDI pitch range of its melodies (inclusive).
    ``synth`` names the numpy fallback voice (see ``avsep.synth.render``).
    ``color``/``shape`` draw the fallback picture when the emoji font is missing.
    """

    label: str
    program: int | None
    low: int
    high: int
    emoji: str
    synth: str
    color: tuple[int, int, int]
    shape: str
    drum_keys: tuple[int, ...] = field(default=())
    # Note lengths in beats the melody picks from: long notes for sustained instruments,
    # short ones for plucked/struck instruments that decay anyway.
    beats: tuple[float, ...] = (0.5, 1.0, 1.0, 1.5, 2.0)
    chord_prob: float = 0.0

    @property
    def percussive(self) -> bool:
        return self.program is None


CATALOG: dict[str, Instrument] = {
    inst.label: inst
    for inst in [
        Instrument("violin", 40, 64, 88, "\U0001F3BB", "bowed", (200, 90, 30), "ellipse"),
        Instrument("acoustic_guitar", 24, 43, 69, "\U0001F3B8", "pluck", (220, 40, 60), "triangle",
                   beats=(0.5, 0.5, 1.0, 1.0, 1.5), chord_prob=0.25),
        Instrument("trumpet", 56, 54, 74, "\U0001F3BA", "brass", (240, 200, 30), "star"),
        Instrument("saxophone", 65, 49, 73, "\U0001F3B7", "reed", (250, 170, 20), "hook"),
        Instrument("flute", 73, 74, 96, "\U0001FA88", "flute", (170, 110, 60), "bar"),
        Instrument("accordion", 21, 53, 77, "\U0001FA97", "organ", (220, 60, 40), "bellows",
                   chord_prob=0.3),
        Instrument("piano", 0, 45, 84, "\U0001F3B9", "piano", (40, 40, 40), "keys",
                   beats=(0.5, 0.5, 1.0, 1.0, 2.0), chord_prob=0.4),
        Instrument("banjo", 105, 55, 79, "\U0001FA95", "banjo", (180, 140, 90), "ring",
                   beats=(0.25, 0.5, 0.5, 0.5, 1.0)),
        Instrument("drum", None, 0, 127, "\U0001F941", "drum", (230, 50, 50), "drum",
                   drum_keys=(KICK, SNARE, CLOSED_HAT, OPEN_HAT, LOW_TOM, MID_TOM, HIGH_TOM),
                   beats=(0.25, 0.5, 0.5, 1.0)),
        Instrument("xylophone", 13, 65, 96, "\U0001F514", "bell", (240, 190, 40), "bell",
                   beats=(0.25, 0.5, 0.5, 1.0)),
        Instrument("congas", None, 0, 127, "\U0001FA98", "conga", (200, 100, 30), "hexagon",
                   drum_keys=(MUTE_HI_CONGA, OPEN_HI_CONGA, LOW_CONGA),
                   beats=(0.25, 0.5, 0.5, 1.0)),
    ]
}

# Five instruments whose pictures and spectra are far apart (bowed high strings, low plucked
# strings, reed, breathy high flute, noise-like drums): the quickstart's default, chosen as the
# set with the largest smallest distance between label-average log spectra, so a small model
# trained for a few minutes on a CPU can learn to tell them apart.
DEFAULT_LABELS: tuple[str, ...] = ("violin", "acoustic_guitar", "saxophone", "flute", "drum")
# The quickstart's training-pool solo videos per instrument. With 16 the vision network learnt
# its training pictures instead of the instruments on two data draws of three; with 32 and 4,350
# steps (the quickstart's default with 3 s clips) it met the held-out solo-pair and click targets on all
# three draws (docs/training.md, "Thirty-two videos an instrument").
DEFAULT_PER_LABEL = 32


def get_instrument(label: str) -> Instrument:
    """The catalog entry for ``label``; raises ``KeyError`` listing the known labels."""
    try:
        return CATALOG[label]
    except KeyError:
        raise KeyError(f"unknown instrument {label!r}; known: {', '.join(sorted(CATALOG))}") from None
