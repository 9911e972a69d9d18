"""Reading an ``s3://`` remote's objects (a pull's GETs) through obstore.

A pull is what every runner of a fleet does on every cold create: boto3 costs ~0.45 s
of CPU (its import, then its S3 model loaded for a client) before the first GET, a
fifth of a pull of ``big``, and its per-request Python holds the interpreter lock
the unpacking needs. obstore (Rust's ``object_store``) imports in ~20 ms and does its
requests outside the lock: paired on 2 cores, a pull of ``big`` from moto went from
1.74 s to 1.46 s. Pushes and prune keep boto3 (``s3.py``): they renew an object's
age by copying it onto itself, which obstore cannot ask for.

Credentials: static keys in the environment (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, with ``AWS_SESSION_TOKEN``, as CI jobs set them) are read
by obstore; otherwise boto3's own chain finds them (shared config and credentials
files, profiles, SSO, web identity, container and instance roles) and obstore asks
it again when they expire: a pull uses the credentials a push would. The endpoint is
``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``; the region ``AWS_DEFAULT_REGION``,
``AWS_REGION``, else the shared config's (as boto3 reads it). Unlike boto3, obstore
does not follow S3's redirect to a bucket's region: a wrong region is one warning
saying to set ``AWS_DEFAULT_REGION``. An endpoint set only in the shared config is not
read.

How failures count: a missing object is a miss, and so is S3's ``AccessDenied`` for
one (S3 answers so for a missing key when the reader may not list the bucket); a
refused credential, a wrong region, no such bucket, a refused request (400), a failed
connection, a timeout, a server error (after obstore's retry), a transfer that breaks,
or an endpoint or profile that cannot be used is the remote's as a whole: one warning,
and the rest from wheels.

obstore runs its requests on threads it starts at the first one; a forked child of a
process whose threads run would inherit a broken copy. ``workers`` forks only from a
process with one thread, so a process that has made a request pulls in threads, and
each forked child makes its own store (``S3Backend.forked``).
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from envstore.errors import RemoteError
from envstore.store.remote.backends import (
    ATTEMPTS,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    REQUEST_SECONDS,
    RemoteUnreachable,
    Stream,
)

__all__ = ["Credentials", "credentials", "endpoint", "failed", "make_store", "open_object"]

# The stream gives each chunk as it arrives (as HTTP's ``read1``), so ``Stream``'s
# deadline is checked often: a server trickling bytes is given up on in time. Asking
# for 64 KiB chunks instead cost the same CPU (paired), but a read would wait for
# each whole one. obstore's own bound on a whole GET is only a last resort.
_CHUNK = 1
_WHOLE_REQUEST = timedelta(hours=1)


def _seconds(s: float) -> timedelta:
    return timedelta(seconds=s)


class Credentials:
    """boto3's credential chain as obstore's credential provider (called again when
    what it returned expires); made before workers fork, inherited by each child."""

    def __init__(self, url: str) -> None:
        try:
            import boto3
        except ImportError:
            raise RemoteError(
                "an s3:// remote without AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY needs "
                "boto3 to find credentials: pip install 'envstore[remote]'"
            ) from None
        try:
            session = boto3.session.Session()
            found = session.get_credentials()
        except Exception as exc:  # botocore's ProfileNotFound, a malformed config file
            raise _configured(url, exc) from None
        if found is None:
            raise RemoteUnreachable(f"{url}: no AWS credentials found")
        self.region: str | None = session.region_name
        self._found = found

    def __call__(self) -> dict[str, Any]:
        frozen = self._found.get_frozen_credentials()
        return {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "token": frozen.token,
            # botocore refreshes what expires in the next 15 minutes: ask it again by then
            "expires_at": datetime.now(timezone.utc) + timedelta(minutes=10),
        }


def endpoint() -> str | None:
    """The endpoint from the environment (as boto3 reads it), checked: an http(s) URL
    with a host and a valid port. RemoteError otherwise (obstore would panic on it)."""
    from urllib.parse import urlsplit

    given = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not given:
        return None
    try:
        parts = urlsplit(given)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        ok = False
    if not ok:
        raise RemoteError(
            f"AWS_ENDPOINT_URL {given!r} is not an http(s) URL with a host (and a valid port)"
        )
    return given


def _configured(url: str, exc: Exception) -> RemoteUnreachable:
    """boto3's or botocore's configuration cannot be used (a profile that does not
    exist, a malformed config file): the remote's as a whole."""
    return RemoteUnreachable(f"{url}: the AWS configuration cannot be used ({type(exc).__name__})")


def credentials(url: str) -> Credentials | None:
    """None when obstore reads the credentials from the environment itself (static
    keys); else boto3's chain (RemoteError: none found, or no boto3)."""
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return None
    return Credentials(url)


def _region(url: str, creds: Credentials | None) -> str | None:
    """The region boto3 would use (obstore, left alone, falls back to us-east-1)."""
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        if os.environ.get(name):
            return os.environ[name]
    if creds is not None:
        return creds.region
    try:  # static keys in the environment, no region there: the shared config's
        import botocore.session
    except ImportError:
        return None
    try:
        region = botocore.session.Session().get_config_variable("region")
    except Exception as exc:  # botocore's ProfileNotFound, a malformed config file
        raise _configured(url, exc) from None
    return region if isinstance(region, str) and region else None


def make_store(bucket: str, url: str, creds: Credentials | None) -> Any:
    """An obstore ``S3Store`` for ``bucket`` with envstore's bounds (obstore's defaults
    retry 10 times over up to 3 minutes)."""
    try:
        from obstore.store import S3Store
    except ImportError:
        raise RemoteError("an s3:// remote needs obstore: pip install 'envstore[remote]'") from None
    given = endpoint()
    options: dict[str, Any] = {}
    if given:
        options["endpoint"] = given
    if creds is not None:
        options["credential_provider"] = creds
    region = _region(url, creds)
    if region:
        options["region"] = region
    try:
        return S3Store(
            bucket,
            client_options={
                "allow_http": bool(given and given.lower().startswith("http://")),
                "connect_timeout": _seconds(CONNECT_TIMEOUT),
                "read_timeout": _seconds(READ_TIMEOUT),
                "timeout": _WHOLE_REQUEST,
            },
            retry_config={
                "max_retries": ATTEMPTS - 1,
                "retry_timeout": _seconds(REQUEST_SECONDS),
                "backoff": {"init_backoff": _seconds(0.1), "max_backoff": _seconds(1.0), "base": 2},
            },
            **options,
        )
    except BaseException as exc:  # obstore's errors (a panic is a BaseException)
        if not _panic(exc) and not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit
        raise RemoteUnreachable(
            f"remote {url}: {type(exc).__name__} (check AWS_ENDPOINT_URL)"
        ) from None


def _panic(exc: BaseException) -> bool:
    """A panic inside obstore's Rust code, raised as pyo3's PanicException (a
    BaseException): the remote's as a whole, never a traceback."""
    return type(exc).__name__ == "PanicException"


_CREDENTIALS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken")


def failed(url: str, what: str, exc: BaseException) -> RemoteError:
    """A GET that failed (after obstore's retry) as envstore's error: the remote's as a
    whole (RemoteUnreachable: not asked again in this run) unless it is about this
    object alone. obstore's text is read for the cause but never shown (it is the
    request's description over many lines)."""
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    text = str(exc)
    code = re.search(r"<Code>(\w+)</Code>", text)
    status = re.search(r"status code: (\d{3})", text)
    if isinstance(exc, (PermissionDeniedError, UnauthenticatedError)) or (
        code and code.group(1) in _CREDENTIALS
    ):
        return RemoteUnreachable(f"{url}: access denied (check the credentials)")
    if code and code.group(1) == "NoSuchBucket":
        return RemoteUnreachable(f"{url}: no such bucket")
    if status and status.group(1) == "400":  # a malformed request: the configuration's
        reason = f"HTTP 400 {code.group(1)}" if code else "HTTP 400"
        return RemoteUnreachable(f"{url}: the request was refused ({reason})")
    if "incorrectly configured region" in text or (status and status.group(1) == "301"):
        return RemoteUnreachable(
            f"{url}: the bucket is in another region (set AWS_DEFAULT_REGION to its region)"
        )
    if status and status.group(1).startswith("5"):
        return RemoteUnreachable(f"{url} is unreachable (HTTP {status.group(1)})")
    if "kind: Timeout" in text or "TimedOut" in text:
        return RemoteUnreachable(f"{url} is unreachable (timed out)")
    if "kind: Connect" in text:
        return RemoteUnreachable(f"{url} is unreachable (cannot connect)")
    if "HttpError" in text or "error sending request" in text:
        return RemoteUnreachable(f"{url} is unreachable (the request failed)")
    return RemoteError(f"cannot use {what}: {type(exc).__name__}")


def _broken(url: str, what: str) -> RemoteError:
    """A transfer that broke after obstore's own resume: a timeout or a dropped
    connection, the remote's (its text varies with where it broke)."""
    return RemoteUnreachable(f"{url} is unreachable (the transfer of {what} failed)")


def _missing(exc: BaseException) -> bool:
    """S3's answer for a missing key: 404, or 403 AccessDenied to a reader that may not
    list the bucket (``s3:ListBucket``)."""
    from obstore.exceptions import PermissionDeniedError

    if isinstance(exc, FileNotFoundError):  # obstore's "not found" (the key's, not
        return "<Code>NoSuchBucket</Code>" not in str(exc)  # the bucket's)
    return isinstance(exc, PermissionDeniedError) and "<Code>AccessDenied</Code>" in str(exc)


class _Chunks:
    """A file's ``read`` over obstore's stream of chunks."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks
        self._left = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        if size < 0:  # the rest
            return b"".join(iter(lambda: self.read(1 << 30), b""))
        if not self._left:
            try:
                self._left = memoryview(next(self._chunks))
            except StopIteration:
                return b""
            except BaseException as exc:
                if _panic(exc):  # as a broken transfer (``Stream`` says so)
                    raise OSError("obstore failed while reading") from None
                raise
        if size >= len(self._left):
            out, self._left = self._left, memoryview(b"")
        else:
            out, self._left = self._left[:size], self._left[size:]
        return bytes(out)

    def close(self) -> None:
        self._chunks, self._left = iter(()), memoryview(b"")


def open_object(store: Any, url: str, key: str, name: str) -> Stream | None:
    """The object ``key`` as a stream (None if it is not there)."""
    import obstore
    from obstore.exceptions import BaseError

    what = f"{url}/{name}"
    errors = (BaseError, ValueError, OSError)  # obstore's own, and some of Python's
    try:
        got = obstore.get(store, key)
        chunks = got.stream(min_chunk_size=_CHUNK)
    except errors as exc:
        if _missing(exc):
            return None
        raise failed(url, what, exc) from None
    except BaseException as exc:
        if _panic(exc):
            raise RemoteUnreachable(f"{url} cannot be read (obstore failed)") from None
        raise
    return Stream(
        _Chunks(chunks),
        errors,
        lambda exc: _broken(url, what),
        what=what,
        size=got.meta["size"],
    )
