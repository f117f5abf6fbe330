"""Images named by URL (``image_url``, or an ``image_path`` or list line that is a URL), as DIGITS took them.

Only ``http`` and ``https`` are fetched, redirects included; an answer is read up to ``max_bytes`` and for at
most ``timeout`` seconds in all, and must be an image Pillow can open. Every refusal is a
:class:`FetchError` whose message says why. Nothing here imports Flask.

The server fetches what a logged-in user names: addresses on its own network included (DIGITS did the
same). ``DIGITS_FETCH_URLS=0`` turns fetching off.
"""

from __future__ import annotations

import io
import re
import time
import urllib.error
import urllib.parse
import urllib.request

from digits.imaging import ImageError, open_image

ALLOWED_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CHUNK = 64 * 1024


class FetchError(ValueError):
    """A URL that was not fetched, or whose answer is not an image; the message says why."""


def is_url(text: str) -> bool:
    """Whether ``text`` is a URL (``scheme://...``) rather than a server path; any scheme counts, so that
    ``file://`` or ``ftp://`` are refused as URLs, not looked for as files."""
    return bool(_SCHEME.match((text or "").strip()))


def check_scheme(url: str) -> None:
    """Raise FetchError unless ``url`` is http or https."""
    match = _SCHEME.match(url.strip())
    scheme = match.group(1).lower() if match else ""
    if scheme not in ALLOWED_SCHEMES:
        raise FetchError(f"only http and https URLs are fetched, not {scheme or 'this'}://")


class _HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
    # urllib follows ftp:// redirects too; a redirect may lead only where a URL may.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        try:
            check_scheme(newurl)
        except FetchError as exc:
            raise FetchError(f"redirected to {newurl}: {exc}") from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    # build_opener adds the default handlers (proxies from the environment, http, https) except those
    # replaced here; no file: or ftp: handler is reachable because the scheme is checked first.
    return urllib.request.build_opener(_HttpRedirectsOnly())


def fetch(url: str, *, max_bytes: int, timeout: float) -> bytes:
    """The body of ``url`` (http or https); raises FetchError when the scheme is refused, the server answers
    an error status or cannot be reached, the body exceeds ``max_bytes``, or it takes over ``timeout`` s."""
    url = url.strip()
    check_scheme(url)
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": "DIGITS", "Accept": "image/*"})
    try:
        with _opener().open(request, timeout=timeout) as answer:
            length = answer.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise FetchError(f"the answer is {int(length)} bytes, over the limit of {max_bytes}")
            body = bytearray()
            # read1 returns what has arrived, so a server that dribbles bytes meets the deadline too.
            while chunk := answer.read1(_CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"the answer is over the limit of {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise FetchError(f"timed out after {timeout:g} s")
            return bytes(body)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"the server answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, FetchError):
            raise reason from None
        if isinstance(reason, TimeoutError):
            raise FetchError(f"timed out after {timeout:g} s") from None
        raise FetchError(f"cannot reach {urllib.parse.urlsplit(url).netloc}: {reason}") from None
    except TimeoutError:
        raise FetchError(f"timed out after {timeout:g} s") from None
    except OSError as exc:
        raise FetchError(f"cannot read the answer: {exc}") from None


def fetch_image(url: str, *, max_bytes: int, timeout: float) -> tuple[bytes, str]:
    """The image at ``url`` and a file suffix for its format (``.png``...); raises FetchError as :func:`fetch`
    does, or when the answer is not an image."""
    body = fetch(url, max_bytes=max_bytes, timeout=timeout)
    try:
        with open_image(io.BytesIO(body)) as image:
            image_format = (image.format or "").lower()
            image.verify()
    except ImageError as exc:
        raise FetchError(f"the answer is not a usable image: {exc.reason}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise FetchError(f"the answer is not an image ({type(exc).__name__})") from None
    return body, f".{image_format or 'img'}"
