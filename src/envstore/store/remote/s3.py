"""``s3://bucket/prefix``: any S3-API object store; reads through obstore
(``s3_reads``: a pull's GETs), writes and listings through boto3.

boto3 takes the standard credential chain (environment, shared config and
credentials files, SSO, container and instance roles) and ``AWS_ENDPOINT_URL``
(or ``AWS_ENDPOINT_URL_S3``) for MinIO, Ceph RGW, R2 and the like; the reads use the
same credentials, endpoint and region (``s3_reads`` says where they differ: a region
redirect is not followed, an endpoint only in the shared config is not read). The
libraries' defaults (boto3: 60 s timeouts, up to
5 attempts; obstore: 10 retries over up to 3 minutes) would let an unreachable
bucket stall a create for minutes: envstore's bounds replace them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, BinaryIO

from envstore.errors import RemoteError
from envstore.store.remote import s3_reads
from envstore.store.remote.backends import (
    ATTEMPTS,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    RemoteUnreachable,
    Stream,
    download,
)

__all__ = ["S3Backend"]


class S3Backend:
    writable = True

    def __init__(self, url: str) -> None:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise RemoteError(f"remote {url!r}: no bucket (s3://BUCKET/PREFIX)")
        self.url = url.rstrip("/")
        s3_reads.endpoint()  # checked now: one line for the remote, not one per object
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: Any = None  # boto3's, for writes and listings (~0.45 s to make)
        self._store: Any = None  # obstore's, for reads
        self._creds: s3_reads.Credentials | None = None  # None: obstore reads them
        self._found: RemoteError | bool = False  # looked for; how they were not found
        self._lock = threading.Lock()  # one client for every thread

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def client(self) -> Any:
        with self._lock:
            return self._client or self._make_client()

    def reader(self) -> Any:
        """obstore's store, made once per process."""
        with self._lock:
            self._find_credentials()
            if self._store is None:
                try:
                    self._store = s3_reads.make_store(self.bucket, self.url, self._creds)
                except RemoteError as exc:  # the remote's: remembered, not tried per object
                    self._found = exc
                    raise
            return self._store

    def _find_credentials(self) -> None:
        """Once per backend (and inherited by forked children): boto3's chain may wait
        on a metadata service, and a failure is remembered, not looked for again."""
        if isinstance(self._found, RemoteError):
            raise self._found
        if not self._found:
            try:
                self._creds = s3_reads.credentials(self.url)
            except RemoteError as exc:
                self._found = exc
                raise
            self._found = True

    def before_fork(self) -> None:
        """Before ``workers`` forks: obstore imported and the credentials found once,
        here, for every child to inherit; no store is made (its first request would
        start threads, and a fork must come before any)."""
        try:
            import obstore.store  # noqa: F401

            with self._lock:
                self._find_credentials()
                if self._creds is not None:
                    self._creds()  # an assumed role's first credentials: once, here
        except Exception:  # ImportError, RemoteError, boto3's: said by the first request
            pass

    def forked(self) -> None:
        """In a forked child: a store of its own (never the parent's threads or
        connections). Credentials from a metadata service (an instance or container
        role) are refreshed through the inherited boto3 session, which a child may share
        with its parent near their expiry: at worst a refusal (the wheel is used)."""
        self._lock = threading.Lock()
        self._store = self._client = None

    def _make_client(self) -> Any:
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise RemoteError(
                    "an s3:// remote needs boto3: pip install 'envstore[remote]'"
                ) from None
            config = Config(
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=READ_TIMEOUT,
                retries={"max_attempts": ATTEMPTS, "mode": "standard"},
                max_pool_connections=16,  # objects are fetched in parallel
            )
            self._client = boto3.session.Session().client("s3", config=config)
        return self._client

    def _failed(self, name: str, exc: Exception) -> RemoteError:
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        what = f"{self.url}/{name}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            return RemoteError(f"cannot use {what}: {error.get('Code')} {error.get('Message')}")
        if isinstance(exc, NoCredentialsError):
            return RemoteUnreachable(f"{self.url}: no AWS credentials found")
        if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
            return RemoteUnreachable(f"{self.url} is unreachable ({type(exc).__name__})")
        return RemoteError(f"cannot use {what}: {type(exc).__name__}")

    def download(self, name: str, dest: BinaryIO, limit: int) -> bool:
        return download(self, name, dest, limit)

    def open(self, name: str) -> Stream | None:
        return s3_reads.open_object(self.reader(), self.url, self._key(name), name)

    def read(self, name: str, limit: int) -> bytes | None:
        from io import BytesIO

        buf = BytesIO()
        return buf.getvalue() if self.download(name, buf, limit) else None

    def exists(self, name: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client().head_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._failed(name, exc) from None
        except BotoCoreError as exc:
            raise self._failed(name, exc) from None
        return True

    def write(self, name: str, source: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # One PUT (multipart above boto3's threshold): the object appears whole or not.
            self.client().upload_file(str(source), self.bucket, self._key(name))
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(name, exc) from None
        except Exception as exc:  # s3transfer wraps the client's errors in its own
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, (ClientError, BotoCoreError)):
                raise self._failed(name, cause) from None
            raise

    def touch(self, name: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(name)
        try:
            # A copy onto itself (metadata replaced) is S3's only way to renew
            # LastModified without uploading the object again.
            self.client().copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._failed(name, exc) from None
        except BotoCoreError as exc:
            raise self._failed(name, exc) from None
        return True

    def listing(self, prefix: str) -> list[tuple[str, float]]:
        from botocore.exceptions import BotoCoreError, ClientError

        base = self._key("")
        found: list[tuple[str, float]] = []
        try:
            pages = self.client().get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(base) :]
                    found.append((name, obj["LastModified"].timestamp()))
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(prefix, exc) from None
        return found

    def delete(self, name: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client().delete_object(Bucket=self.bucket, Key=self._key(name))
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(name, exc) from None
