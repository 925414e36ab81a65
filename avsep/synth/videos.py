"""Video settings of the generated scenes (the mp4 writer is :func:`avsep.data.encode.write_mp4`)."""

DEFAULT_FPS = 24
# x264 quality of generated videos: CRF 26 rather than the writer's 23 is a third faster and half
# the size, with no visible blocks on these scenes.
SYNTH_CRF = 26
