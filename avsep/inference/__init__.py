"""Separation and localization with a trained model: analyse a video once, then query it.

:class:`Separator` loads a checkpoint and analyses videos; an :class:`Analysis` answers queries
(points, boxes, boxes over time, tracked objects) without running a network again.
"""
from avsep.inference.analysis import Analysis, TrackedObject
from avsep.inference.regions import Box, BoxTrack, Point
from avsep.inference.separator import Separation, Separator, VideoClip

__all__ = ["Analysis", "Box", "BoxTrack", "Point", "Separation", "Separator", "TrackedObject", "VideoClip"]
