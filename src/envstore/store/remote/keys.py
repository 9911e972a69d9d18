"""ed25519 keys for the remote cache, as Nix's binary-cache keys: a name and the key.

A secret key file holds one line ``NAME:BASE64`` (the 32-byte private seed), mode
0600; a public key is one line ``NAME:BASE64`` (the 32-byte public key).
Pushers sign with ``ENVSTORE_SIGNING_KEY`` (a secret key file); readers trust the
public keys listed in ``ENVSTORE_TRUSTED_KEYS`` (whitespace-separated), several at
once while a key is rotated. Built on ``cryptography`` (the ``remote`` extra).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from pathlib import Path

from envstore.errors import RemoteError

__all__ = [
    "PublicKey",
    "SecretKey",
    "generate_key",
    "load_secret_key",
    "signing_key_from_env",
    "trusted_keys_from_env",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


def _split(line: str, what: str) -> tuple[str, bytes]:
    name, sep, value = line.strip().rpartition(":")
    if not sep or not _NAME.match(name):
        raise RemoteError(f"{what} is not NAME:BASE64 (a name of letters, digits, . _ -)")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise RemoteError(f"{what}: the key is not base64") from None
    if len(raw) != 32:
        raise RemoteError(f"{what}: an ed25519 key is 32 bytes, this one {len(raw)}")
    return name, raw


@dataclass(frozen=True)
class PublicKey:
    name: str
    raw: bytes

    @classmethod
    def parse(cls, line: str) -> PublicKey:
        name, raw = _split(line, f"trusted key {line[:40]!r}")
        return cls(name, raw)

    def line(self) -> str:
        return f"{self.name}:{base64.b64encode(self.raw).decode()}"

    def verifies(self, data: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SecretKey:
    name: str
    seed: bytes

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(data)

    def public(self) -> PublicKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        key = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        return PublicKey(self.name, key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def generate_key(name: str, secret_file: Path, public_file: Path) -> PublicKey:
    """A new key pair: the secret file created 0600 (never over an existing file), the
    public file one line ``NAME:BASE64``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    if not _NAME.match(name):
        raise RemoteError(f"key name {name!r}: use letters, digits, '.', '_' and '-'")
    seed = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    secret = SecretKey(name, seed)
    try:
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise RemoteError(f"{secret_file} exists; not overwriting a key") from None
    with open(fd, "w") as f:
        f.write(f"{name}:{base64.b64encode(seed).decode()}\n")
    public = secret.public()
    public_file.write_text(public.line() + "\n")
    return public


def load_secret_key(path: Path) -> SecretKey:
    """The secret key in ``path``; refused if others may read it."""
    try:
        st = os.stat(path)
        text = path.read_text()
    except OSError as exc:
        raise RemoteError(f"cannot read the signing key {path}: {exc.strerror}") from None
    if st.st_mode & 0o077:
        raise RemoteError(f"the signing key {path} may be read by others; chmod 600 it")
    name, seed = _split(text, f"the signing key {path}")
    return SecretKey(name, seed)


def signing_key_from_env() -> SecretKey | None:
    path = os.environ.get("ENVSTORE_SIGNING_KEY")
    return load_secret_key(Path(path)) if path else None


def trusted_keys_from_env() -> list[PublicKey]:
    return [PublicKey.parse(w) for w in os.environ.get("ENVSTORE_TRUSTED_KEYS", "").split()]
