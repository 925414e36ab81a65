"""Stage 2: spectrograms, model inputs (frames, loudness) and masks."""
