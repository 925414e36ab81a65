"""Click-to-separate in the browser: a local web app over :class:`avsep.inference.Analysis`.

``avsep app --checkpoint CKPT [--videos DIR]`` serves a page on http://127.0.0.1:8765/ where a
user picks or uploads a video, sees where the sound comes from, and clicks (or drags a box
on) the playing video to hear that spot, everything but it, or the original. The server is the
standard library's ``ThreadingHTTPServer`` and the page plain HTML and JavaScript, so the app
needs nothing beyond avsep itself and works offline; docs/app.md explains the choice.

Modules: :mod:`~avsep.app.application` (the app object and ``run``), :mod:`~avsep.app.server`
(routes), :mod:`~avsep.app.jobs` (the analysis queue), :mod:`~avsep.app.library` (videos and
uploads), :mod:`~avsep.app.media` (checks and browser copies), :mod:`~avsep.app.stems` (audio
for the page), and ``static/`` (the page).
"""
from avsep.app.application import App, AppOptions, run

__all__ = ["App", "AppOptions", "run"]
