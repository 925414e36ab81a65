"""Sort download errors into transient (retry), throttled (retry, and slow everyone down) and permanent.

yt-dlp reports everything as :class:`yt_dlp.utils.DownloadError`; the original exception, when
there is one, is in ``exc_info`` (an ``HTTPError`` from the extractor's requests, with the response
and so its Retry-After header) or in ``ExtractorError.cause``. Some failures only exist as text:
YouTube's own reasons ("Private video", "Sign in to confirm you're not a bot"), a body shorter
than its Content-Length, ffmpeg's exit status. So this looks at both the exception chain and the
message.
"""
from __future__ import annotations

import email.utils
import re
import socket
import time
from dataclasses import dataclass
from typing import Optional

TRANSIENT, THROTTLED, PERMANENT = "transient", "throttled", "permanent"


class MediaError(Exception):
    """A downloaded file that is not a playable video with sound; ``transient`` if a retry may help."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Failure:
    kind: str                       # TRANSIENT, THROTTLED or PERMANENT
    reason: str                     # short and stable, for grouping in the summary
    detail: str                     # the original message
    retry_after: Optional[float] = None  # seconds, from a Retry-After header

    @property
    def retryable(self) -> bool:
        return self.kind != PERMANENT


# (pattern on the lower-cased message, kind, reason); first match wins, so bot checks come before
# the generic "sign in" and "not available" patterns that share words with them.
_MESSAGE_RULES = [
    (r"not a bot|unusual traffic|captcha", THROTTLED, "bot check"),
    (r"too many requests|http error 429", THROTTLED, "HTTP 429"),
    (r"confirm your age|age[- ]restricted|inappropriate for some users", PERMANENT, "age check"),
    (r"private video|video is private", PERMANENT, "private video"),
    (r"members[- ]only|join this channel", PERMANENT, "members only"),
    (r"copyright", PERMANENT, "removed (copyright)"),
    (r"account .*terminated|has been removed|no longer available|video has been deleted", PERMANENT, "removed"),
    (r"not (?:made this video )?available in your country|geo[- ]?restrict", PERMANENT, "geo-blocked"),
    (r"premieres in|live event will begin|this live stream", PERMANENT, "not yet available"),
    (r"video unavailable|is not available|does not exist|unsupported url|no video formats found"
     r"|requested format is not available", PERMANENT, "unavailable"),
    (r"\bsign in\b|login required|\blog in\b", PERMANENT, "sign-in required"),
    (r"downloaded \d+ bytes, expected \d+ bytes|incomplete ?read|content too short", TRANSIENT, "truncated download"),
    (r"timed? ?out", TRANSIENT, "timeout"),
    (r"connection (?:reset|aborted|refused)|remote end closed|broken pipe|eof occurred", TRANSIENT, "connection error"),
]
_PERMANENT_STATUS = {400, 401, 404, 410, 451}


def classify(err: BaseException) -> Failure:
    """Decide what to do about ``err``."""
    detail = _one_line(err)
    if isinstance(err, MediaError):
        return Failure(TRANSIENT if err.transient else PERMANENT, _media_reason(str(err)), detail)
    status, retry_after = _http_status(err)
    text = detail.lower().replace("\u2019", "'")
    for pattern, kind, reason in _MESSAGE_RULES:
        if re.search(pattern, text):
            return Failure(kind, reason, detail, retry_after)
    if status is not None:
        if status == 429:
            return Failure(THROTTLED, "HTTP 429", detail, retry_after)
        kind = PERMANENT if status in _PERMANENT_STATUS else TRANSIENT
        return Failure(kind, f"HTTP {status}", detail, retry_after)
    if any(isinstance(e, (TimeoutError, socket.timeout)) for e in _chain(err)):
        return Failure(TRANSIENT, "timeout", detail)
    if any(isinstance(e, ConnectionError) for e in _chain(err)):
        return Failure(TRANSIENT, "connection error", detail)
    # Unknown errors are retried: giving up on a video for good needs evidence that it is gone.
    return Failure(TRANSIENT, "other error", detail)


def _chain(err: BaseException):
    """The exception and everything it wraps: exc_info, cause, __cause__, __context__."""
    seen, todo = set(), [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or not isinstance(e, BaseException):
            continue
        seen.add(id(e))
        yield e
        exc_info = getattr(e, "exc_info", None)
        todo += [exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
                 getattr(e, "cause", None), e.__cause__, e.__context__]


def _http_status(err: BaseException) -> tuple[Optional[int], Optional[float]]:
    """The HTTP status and Retry-After of the first HTTP error in the chain, else from the message."""
    for e in _chain(err):
        status = getattr(e, "status", None) or getattr(e, "code", None)
        if isinstance(status, int) and 100 <= status <= 599:
            response = getattr(e, "response", None) or e
            headers = getattr(response, "headers", None)
            value = headers.get("Retry-After") if headers is not None else None
            return status, parse_retry_after(value)
    match = re.search(r"HTTP Error (\d{3})", str(err))
    return (int(match.group(1)), None) if match else (None, None)


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _media_reason(message: str) -> str:
    return message.split(":", 1)[0]


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return re.sub(r"^ERROR:\s*", "", text)[:500]
