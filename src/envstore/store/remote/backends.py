"""Where a remote cache's objects are: a shared directory, an S3 bucket, a web server.

Each backend reads and writes named objects (``v3/entries/...``, ``v2/meta/...``,
``v2/archives/...``), and opens one as a stream (``open``: a pull reads an entry
object's head, then downloads its archive, one GET per entry). A missing object is
``None`` or ``False``; anything else that goes wrong is a ``RemoteError`` naming the
object (never a credential). A request has a deadline (``Stream``). Reads are
bounded: an object larger than its caller's limit is refused. Writes are atomic per
object (a temporary name renamed, or one S3 PUT), so a reader never sees half of one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from envstore.errors import RemoteError
from envstore.model.sources import public_url

__all__ = [
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "Backend",
    "FileBackend",
    "HttpBackend",
    "RemoteUnreachable",
    "Stream",
    "download",
]

CONNECT_TIMEOUT = 3.0  # seconds; a remote that does not answer costs little
READ_TIMEOUT = 10.0  # seconds of silence in a response
ATTEMPTS = 2  # one retry of a failed request
# A whole request (an object read start to end) may take the longer of these: a
# server trickling bytes slower than every READ_TIMEOUT cannot hold a create forever.
REQUEST_SECONDS = 30.0
REQUEST_RATE = 1 << 20  # bytes per second


class RemoteUnreachable(RemoteError):
    """The remote as a whole cannot be used (refused connection, timeout, no credentials):
    not worth asking again in this run."""


class Stream:
    """An object being read: ``read`` as a file's, its failures a RemoteError
    (``failed``); closed by the caller (``with``). A read past the request's deadline
    (``REQUEST_SECONDS``, or ``size`` bytes at ``REQUEST_RATE`` if longer) closes it
    and raises RemoteUnreachable. ``read1``, if given, is what reads: one that returns
    what has arrived (not waiting for a whole chunk), so the deadline is checked often."""

    def __init__(
        self,
        raw: Any,
        errors: tuple[type[BaseException], ...],
        failed: Callable[[BaseException], RemoteError],
        *,
        what: str = "the remote",
        size: int | None = None,
        read1: Callable[[int], bytes] | None = None,
    ) -> None:
        self.raw, self.errors, self.failed, self.what = raw, errors, failed, what
        self.seconds = max(REQUEST_SECONDS, (size or 0) / REQUEST_RATE)
        self.deadline = time.monotonic() + self.seconds
        self._read: Callable[[int], bytes] = read1 or raw.read

    def read(self, size: int = -1) -> bytes:
        if time.monotonic() > self.deadline:
            self.close()
            raise RemoteUnreachable(f"{self.what} is too slow (not read in {self.seconds:.0f} s)")
        try:
            return self._read(size)
        except self.errors as exc:
            raise self.failed(exc) from None

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:  # closing early (a refused head) may fail: nothing to keep
            pass

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend(Protocol):
    url: str  # as shown in messages: no credentials
    writable: bool

    def read(self, name: str, limit: int) -> bytes | None: ...

    def open(self, name: str) -> Stream | None:
        """The object as a stream, or None if it is not there."""
        ...

    def download(self, name: str, dest: BinaryIO, limit: int) -> bool: ...

    def exists(self, name: str) -> bool: ...

    def write(self, name: str, source: Path) -> None: ...

    def touch(self, name: str) -> bool:
        """Mark the object as used now (prune keeps it); False if it is not there."""
        ...

    def listing(self, prefix: str) -> list[tuple[str, float]]:
        """Every object whose name starts with ``prefix``: (name, last modified)."""
        ...

    def delete(self, name: str) -> None: ...


def _copy(source: BinaryIO, dest: BinaryIO, limit: int, what: str) -> None:
    copied = 0
    while chunk := source.read(1 << 20):
        copied += len(chunk)
        if copied > limit:
            raise RemoteError(f"{what} is larger than {limit} bytes")
        dest.write(chunk)


def download(backend: Backend, name: str, dest: BinaryIO, limit: int) -> bool:
    """Copy the object ``name`` into ``dest``; False if it is not there."""
    stream = backend.open(name)
    if stream is None:
        return False
    with stream:
        _copy(stream, dest, limit, f"{backend.url}/{name}")  # type: ignore[arg-type]
    return True


class FileBackend:
    """``file:///path``: a directory, on any shared filesystem."""

    writable = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def _path(self, name: str) -> Path:
        return self.root / name  # names are made by model.remote: plain components

    def read(self, name: str, limit: int) -> bytes | None:
        from io import BytesIO

        buf = BytesIO()
        return buf.getvalue() if self.download(name, buf, limit) else None

    def download(self, name: str, dest: BinaryIO, limit: int) -> bool:
        return download(self, name, dest, limit)

    def open(self, name: str) -> Stream | None:
        what = f"{self.url}/{name}"
        try:
            f = open(self._path(name), "rb")  # noqa: SIM115 (the Stream closes it)
        except FileNotFoundError:
            if not self.root.is_dir():
                raise RemoteUnreachable(f"{self.url} is not a directory") from None
            return None
        except OSError as exc:
            raise RemoteError(f"cannot read {what}: {exc.strerror}") from None
        failed = lambda exc: RemoteError(f"cannot read {what}: {exc}")  # noqa: E731
        return Stream(f, (OSError,), failed, what=what, size=os.fstat(f.fileno()).st_size)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def write(self, name: str, source: Path) -> None:
        import shutil
        import tempfile

        final = self._path(name)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
            try:
                with open(fd, "wb") as out, open(source, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
                os.chmod(tmp, 0o644)
                os.replace(tmp, final)  # last writer wins: each wrote a whole object
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            raise RemoteError(f"cannot write {self.url}/{name}: {exc.strerror}") from None

    def touch(self, name: str) -> bool:
        try:
            os.utime(self._path(name))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise RemoteError(f"cannot touch {self.url}/{name}: {exc.strerror}") from None
        return True

    def listing(self, prefix: str) -> list[tuple[str, float]]:
        found: list[tuple[str, float]] = []
        top = self._path(prefix)
        for dirpath, _dirnames, filenames in os.walk(top):  # never follows links
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue  # deleted meanwhile
                rel = os.path.relpath(path, self.root)
                found.append((rel.replace(os.sep, "/"), st.st_mtime))
        return found

    def delete(self, name: str) -> None:
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise RemoteError(f"cannot delete {self.url}/{name}: {exc.strerror}") from None


class HttpBackend:
    """``https://host/prefix`` (or ``http://``): read-only, plain GETs (a static server
    or a CDN in front of a pushed tree)."""

    writable = False

    def __init__(self, url: str) -> None:
        import base64
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(url.rstrip("/"))
        self._headers: dict[str, str] = {}
        if parts.username is not None:  # user:password@ is HTTP basic auth, never shown
            token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        netloc = parts.netloc.rpartition("@")[2]
        self._base = parts._replace(netloc=netloc).geturl()
        self.url = public_url(self._base)
        self._opener = _opener()

    def open(self, name: str) -> Stream | None:
        import http.client
        import urllib.error
        import urllib.request

        what = f"{self.url}/{name}"
        for attempt in range(ATTEMPTS):
            try:
                request = urllib.request.Request(f"{self._base}/{name}", headers=self._headers)
                r = self._opener.open(request, timeout=CONNECT_TIMEOUT)  # then READ_TIMEOUT
            except urllib.error.HTTPError as exc:
                if exc.code in (403, 404, 410):  # a static server says 403 for absent keys too
                    return None
                if attempt + 1 == ATTEMPTS or exc.code < 500:
                    raise RemoteError(f"cannot get {what}: HTTP {exc.code}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt + 1 == ATTEMPTS:
                    reason = getattr(exc, "reason", exc)
                    raise RemoteUnreachable(f"{self.url} is unreachable ({reason})") from None
            else:

                def failed(exc: BaseException) -> RemoteError:
                    if isinstance(exc, (TimeoutError, ConnectionError)):
                        return RemoteUnreachable(f"{self.url} is unreachable ({exc})")
                    return RemoteError(f"cannot get {what}: {type(exc).__name__}")

                errors = (OSError, http.client.HTTPException)
                return Stream(r, errors, failed, what=what, size=r.length, read1=r.read1)
        return None

    def download(self, name: str, dest: BinaryIO, limit: int) -> bool:
        return download(self, name, dest, limit)

    def read(self, name: str, limit: int) -> bytes | None:
        from io import BytesIO

        buf = BytesIO()
        return buf.getvalue() if self.download(name, buf, limit) else None

    def exists(self, name: str) -> bool:
        raise RemoteError(f"{self.url} is read-only (http): push to its s3:// or file:// side")

    def write(self, name: str, source: Path) -> None:
        raise RemoteError(f"{self.url} is read-only (http): push to its s3:// or file:// side")

    def touch(self, name: str) -> bool:
        raise RemoteError(f"{self.url} is read-only (http): push to its s3:// or file:// side")

    def listing(self, prefix: str) -> list[tuple[str, float]]:
        raise RemoteError(f"{self.url} is read-only (http): prune its s3:// or file:// side")

    def delete(self, name: str) -> None:
        raise RemoteError(f"{self.url} is read-only (http): prune its s3:// or file:// side")


def _opener() -> Any:
    """A urllib opener whose connections wait ``CONNECT_TIMEOUT`` to connect, then
    ``READ_TIMEOUT`` per read, and whose redirects carry the Authorization header only
    to the same scheme, host and port (urllib would send the password anywhere)."""
    import http.client
    import urllib.request
    from urllib.parse import urlsplit

    class Timeouts:
        sock: Any

        def connect(self) -> None:
            super().connect()  # type: ignore[misc]  # under CONNECT_TIMEOUT (https: and TLS)
            self.sock.settimeout(READ_TIMEOUT)

    class Http(Timeouts, http.client.HTTPConnection):
        pass

    class Https(Timeouts, http.client.HTTPSConnection):
        pass

    class HttpHandler(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(Http, req)

    class HttpsHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(Https, req, context=self._context)  # type: ignore[attr-defined]

    class Redirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(
            self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
        ) -> Any:
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None:
                old, to = urlsplit(req.full_url), urlsplit(new.full_url)
                if (old.scheme, old.hostname, old.port) != (to.scheme, to.hostname, to.port):
                    new.remove_header("Authorization")
            return new

    return urllib.request.build_opener(HttpHandler, HttpsHandler, Redirects)
