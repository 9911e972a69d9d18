"""The signed metadata of a store entry in a remote cache (store-layout.md, "Remote cache").

Remote layout 3 (``v3/``) keeps an entry in one object: a head (magic line, the
length of the metadata, the signed metadata) followed by its archive, an envstore
pack (a zstd frame with a member index), so a hit costs one GET. Layout 2
(``v2/``: the same pack, its metadata a separate object) and layout 1 (``v1/``, a
tar.gz) are what older envstores pushed, still read. One JSON document per
(layout, wheel sha256, ABI subtree): ``{"signed": {...}, "signature":
{"key": NAME, "ed25519": BASE64}}``. The signature covers the canonical form of
``signed`` (sorted keys, no spaces, ASCII) after a domain prefix, so a signature
over any other envstore document (or another layout version) never verifies as
this one. Everything in it comes from a remote and is untrusted until the
signature is checked, and is validated here before use either way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from envstore.model.keys import EntryKey, plain_name

__all__ = [
    "LAYOUTS",
    "REMOTE_LAYOUT",
    "RemoteMeta",
    "SignedMeta",
    "archive_name",
    "archive_named",
    "entry_head",
    "meta_name",
    "meta_prefix",
    "parse_document",
    "signed_bytes",
]

REMOTE_LAYOUT = 3  # what is pushed
LAYOUTS = (3, 2, 1)  # what is read, in the order looked for
_SUFFIX = {1: ".tar.gz", 2: ".pack.zst"}  # separate archives (layouts 1 and 2)
ENTRY_MAGIC = b"envstore-remote 3\n"  # the head of a layout 3 entry object
META_LIMIT = 4 << 20  # bytes of metadata (a seal lists every pyc)
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_HEX32 = re.compile(r"[0-9a-f]{32}\Z")
_TAG = re.compile(r"[a-z0-9_.-]{1,64}\Z")


def meta_name(wheel_sha256: str, abi: str, layout: int = REMOTE_LAYOUT) -> str:
    """Where the metadata of the entry made from that wheel for that ABI subtree lives
    (layout 3: the one object holding the metadata and then the archive)."""
    if layout >= 3:
        return f"v{layout}/entries/{wheel_sha256}/{abi}.entry"
    return f"v{layout}/meta/{wheel_sha256}/{abi}.json"


def meta_prefix(layout: int) -> str:
    """The directory of ``layout``'s metadata (layout 3: its entry objects)."""
    return f"v{layout}/entries/" if layout >= 3 else f"v{layout}/meta/"


def entry_head(document: bytes) -> bytes:
    """What a layout 3 entry object starts with: the magic line, the document's
    length (8 bytes, big-endian), the signed metadata document; the archive follows."""
    return ENTRY_MAGIC + len(document).to_bytes(8, "big") + document


def archive_name(archive_sha256: str, layout: int = 2) -> str:
    """Where an archive of layout 1 or 2 lives: named by its own sha256 (content-addressed);
    layout 3 has none (the archive is in the entry object)."""
    return f"v{layout}/archives/{archive_sha256}{_SUFFIX[layout]}"


def archive_named(document: bytes) -> str | None:
    """The archive a metadata document names, unverified (for touching and pruning,
    never for reading); None if it names none."""
    try:
        signed = json.loads(document)["signed"]
        digest, layout = signed["archive_sha256"], signed.get("layout")
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    if layout not in _SUFFIX or not isinstance(digest, str) or not _HEX64.match(digest):
        return None
    return archive_name(digest, layout)


@dataclass(frozen=True)
class RemoteMeta:
    """What a pusher vouches for: this archive is the entry ``key`` made from this wheel."""

    key: EntryKey
    wheel: str  # the wheel's file name
    wheel_sha256: str
    archive_sha256: str
    archive_size: int
    cache_tags: tuple[str, ...]  # the bytecode the archive holds (its compiled-<tag> markers)
    seal: dict[str, object] = field(hash=False)  # entry.json, RECORD and pyc digests
    layout: int = REMOTE_LAYOUT

    @property
    def archive(self) -> str | None:
        """The separate archive object it names (layouts 1 and 2), else None."""
        return archive_name(self.archive_sha256, self.layout) if self.layout < 3 else None

    def to_json(self) -> dict[str, object]:
        return {
            "layout": self.layout,
            "key": str(self.key),
            "wheel": self.wheel,
            "wheel_sha256": self.wheel_sha256,
            "archive_sha256": self.archive_sha256,
            "archive_size": self.archive_size,
            "cache_tags": list(self.cache_tags),
            "seal": self.seal,
        }

    def signed_bytes(self) -> bytes:
        return signed_bytes(self.to_json(), self.layout)

    @classmethod
    def from_json(cls, data: object, layout: int = REMOTE_LAYOUT) -> RemoteMeta:
        """Validate ``data``, found where metadata of ``layout`` lives; ValueError naming
        the first bad field."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        if data.get("layout") != layout:
            raise ValueError(f"layout {data.get('layout')!r} is not {layout}")
        key = EntryKey.parse(data.get("key"))  # type: ignore[arg-type]
        wheel = data.get("wheel")
        if not plain_name(wheel) or not str(wheel).endswith(".whl"):
            raise ValueError(f"wheel {wheel!r} is not a wheel file name")
        for name in ("wheel_sha256", "archive_sha256"):
            if not isinstance(data.get(name), str) or not _HEX64.match(data[name]):
                raise ValueError(f"{name} is not 64 hex digits")
        size = data.get("archive_size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("archive_size is not a size")
        tags = data.get("cache_tags")
        if not isinstance(tags, list) or not all(
            isinstance(t, str) and _TAG.match(t) for t in tags
        ):
            raise ValueError("cache_tags is not a list of cache tags")
        return cls(
            key=key,
            wheel=str(wheel),
            wheel_sha256=data["wheel_sha256"],
            archive_sha256=data["archive_sha256"],
            archive_size=size,
            cache_tags=tuple(tags),
            seal=_seal(data.get("seal")),
            layout=layout,
        )


def _seal(value: object) -> dict[str, object]:
    """An entry seal as ``envstore.store.seal.entry_seal`` makes it."""
    if not isinstance(value, dict):
        raise ValueError("seal is not an object")
    for name in ("entry.json", "RECORD"):
        if not isinstance(value.get(name), str) or not _HEX32.match(value[name]):
            raise ValueError(f"seal.{name} is not a digest")
    pyc = value.get("pyc")
    if not isinstance(pyc, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _HEX32.match(v) for k, v in pyc.items()
    ):
        raise ValueError("seal.pyc is not a table of digests")
    return {"entry.json": value["entry.json"], "RECORD": value["RECORD"], "pyc": dict(pyc)}


def signed_bytes(signed: object, layout: int = REMOTE_LAYOUT) -> bytes:
    """The bytes a signature covers: a domain prefix naming the layout (a signature made
    for one layout never verifies as another), then the canonical JSON."""
    text = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"envstore-remote-entry-v{layout}\n".encode() + text.encode("ascii")


@dataclass(frozen=True)
class SignedMeta:
    """The document as stored: the metadata, the signer's key name and the signature."""

    meta: RemoteMeta
    key_name: str
    signature: bytes

    def dumps(self) -> str:
        import base64

        sig = {"key": self.key_name, "ed25519": base64.b64encode(self.signature).decode()}
        return json.dumps({"signed": self.meta.to_json(), "signature": sig}, indent=1) + "\n"


def parse_document(text: bytes) -> tuple[object, str, bytes]:
    """``(signed object, key name, signature)`` of a metadata document, not yet checked;
    ValueError if it is not one (no signature: "unsigned")."""
    import base64
    import binascii

    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    except RecursionError:  # nested deeper than Python's stack: not a document
        raise ValueError("not JSON (nested too deeply)") from None
    if not isinstance(data, dict) or "signed" not in data:
        raise ValueError("not a metadata document")
    sig = data.get("signature")
    if not isinstance(sig, dict):
        raise ValueError("unsigned")
    name, value = sig.get("key"), sig.get("ed25519")
    if not isinstance(name, str) or not isinstance(value, str):
        raise ValueError("unsigned")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("the signature is not base64") from None
    return data["signed"], name, raw
