"""OpenSSH public keys and SSH signatures (SSHSIG), checked in pure Python.

What `ssh-keygen -Y sign -n NAMESPACE` writes is verified here with `cryptography`'s
Ed25519, following OpenSSH's PROTOCOL.sshsig and, for FIDO hardware keys
(`sk-ssh-ed25519@openssh.com`), PROTOCOL.u2f: the authenticator signs
`SHA256(application) || flags || counter || SHA256(signed data)`, and a signature without
the user-presence flag is refused.

Only `ssh-ed25519` and `sk-ssh-ed25519@openssh.com` keys are accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from swarmsync.errors import InvalidError
from swarmsync.sshsign import NAMESPACE  # the one SSHSIG namespace of a SwarmSync login

__all__ = ["NAMESPACE", "KeyFormatError", "PublicKey", "Signature", "SignatureError", "fingerprint",
           "parse_public_key", "parse_signature", "verify"]
ED25519 = "ssh-ed25519"
SK_ED25519 = "sk-ssh-ed25519@openssh.com"
KEY_TYPES = (ED25519, SK_ED25519)
HASHES = {"sha512": hashlib.sha512, "sha256": hashlib.sha256}
USER_PRESENT = 0x01
MAGIC = b"SSHSIG"
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
MAX_COMMENT = 200


class KeyFormatError(InvalidError):
    """Not an OpenSSH public key of a supported type (the message says what is wrong)."""


class SignatureError(InvalidError):
    """A signature that is malformed, in another namespace, or does not verify (message says which)."""


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: bytes  # the SSH wire encoding (what the fingerprint is taken of)
    raw: bytes  # the 32-byte Ed25519 public key
    application: str | None  # sk keys: the FIDO application, usually "ssh:"
    comment: str = ""

    @property
    def fingerprint(self) -> str:
        """As `ssh-keygen -l` prints it: SHA256:<base64 without padding>."""
        return fingerprint(self.blob)

    def openssh(self) -> str:
        """The `TYPE BASE64 COMMENT` line."""
        line = f"{self.key_type} {base64.b64encode(self.blob).decode()}"
        return f"{line} {self.comment}" if self.comment else line


def fingerprint(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


class _Reader:
    """SSH wire format (RFC 4251): uint32 and length-prefixed strings."""

    def __init__(self, data: bytes, what: str, error: type[ValueError]):
        self.data, self.pos, self.what, self.error = data, 0, what, error

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.error(f"{self.what} is truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def uint32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def byte(self) -> int:
        return self.take(1)[0]

    def string(self) -> bytes:
        return self.take(self.uint32())

    def text(self) -> str:
        try:
            return self.string().decode()
        except UnicodeDecodeError:
            raise self.error(f"{self.what} has a field that is not text") from None

    def done(self) -> None:
        if self.pos != len(self.data):
            raise self.error(f"{self.what} has {len(self.data) - self.pos} trailing bytes")


def _string(value: bytes | str) -> bytes:
    value = value.encode() if isinstance(value, str) else value
    return struct.pack(">I", len(value)) + value


def key_from_blob(blob: bytes, comment: str = "", error: type[ValueError] = KeyFormatError) -> PublicKey:
    reader = _Reader(blob, "the public key", error)
    key_type = reader.text()
    if key_type not in KEY_TYPES:
        raise error(f"unsupported key type {key_type[:60]!r}: use ssh-ed25519 or {SK_ED25519} "
                    "(ssh-keygen -t ed25519 or -t ed25519-sk)")
    raw = reader.string()
    if len(raw) != 32:
        raise error("an Ed25519 public key has 32 bytes")
    application = reader.text() if key_type == SK_ED25519 else None
    reader.done()
    return PublicKey(key_type, blob, raw, application, comment)


def parse_public_key(line: str) -> PublicKey:
    """One line of an OpenSSH `.pub` file (`TYPE BASE64 [COMMENT]`), e.g. `ssh-ed25519 AAAAC3... me@laptop`."""
    if "PRIVATE KEY" in line:
        raise KeyFormatError("this is a private key: give its public half (the .pub file), never the private key")
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise KeyFormatError("not an OpenSSH public key: expected 'TYPE BASE64 [COMMENT]', "
                             "the one line of a .pub file (e.g. ~/.ssh/id_ed25519.pub)")
    key_type, encoded = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        raise KeyFormatError(f"unsupported key type {key_type[:60]!r}: use ssh-ed25519 or {SK_ED25519} "
                             "(ssh-keygen -t ed25519 or -t ed25519-sk)")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("not an OpenSSH public key: the key part is not base64") from None
    comment = parts[2].strip() if len(parts) > 2 else ""
    if len(comment) > MAX_COMMENT or any(ord(c) < 32 for c in comment):
        raise KeyFormatError(f"the key's comment must be at most {MAX_COMMENT} printable characters")
    key = key_from_blob(blob, comment)
    if key.key_type != key_type:
        raise KeyFormatError(f"the key says {key_type!r} but its data is a {key.key_type!r} key")
    return key


@dataclass(frozen=True)
class Signature:
    """An SSHSIG blob, parsed."""

    public_key: PublicKey
    namespace: str
    hash_algorithm: str
    reserved: bytes
    sig_algorithm: str
    sig: bytes  # 64 bytes of Ed25519
    flags: int | None  # sk keys only
    counter: int | None

    def signed_data(self, message: bytes) -> bytes:
        """What the key signed (PROTOCOL.sshsig): MAGIC, namespace, reserved, hash alg, H(message)."""
        digest = HASHES[self.hash_algorithm](message).digest()
        return (MAGIC + _string(self.namespace) + _string(self.reserved) + _string(self.hash_algorithm)
                + _string(digest))


def parse_signature(armored: str) -> Signature:
    """The armored text `ssh-keygen -Y sign` writes (`-----BEGIN SSH SIGNATURE-----` ...)."""
    text = armored.strip()
    if not (text.startswith(ARMOR_BEGIN) and text.endswith(ARMOR_END)):
        raise SignatureError("not an SSH signature: expected the armored output of 'ssh-keygen -Y sign'")
    body = "".join(text[len(ARMOR_BEGIN):-len(ARMOR_END)].split())
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("not an SSH signature: its body is not base64") from None
    reader = _Reader(blob, "the SSH signature", SignatureError)
    if reader.take(6) != MAGIC:
        raise SignatureError("not an SSH signature (no SSHSIG magic)")
    if reader.uint32() != 1:
        raise SignatureError("unsupported SSHSIG version")
    public_key = key_from_blob(reader.string(), error=SignatureError)
    namespace = reader.text()
    reserved = reader.string()
    hash_algorithm = reader.text()
    wrapped = reader.string()
    reader.done()
    if hash_algorithm not in HASHES:
        raise SignatureError(f"unsupported hash algorithm {hash_algorithm[:20]!r} (sha512 or sha256)")
    inner = _Reader(wrapped, "the signature", SignatureError)
    sig_algorithm = inner.text()
    sig = inner.string()
    flags = counter = None
    if sig_algorithm == SK_ED25519:
        flags, counter = inner.byte(), inner.uint32()
    inner.done()
    if sig_algorithm != public_key.key_type:
        raise SignatureError(f"signature algorithm {sig_algorithm[:40]!r} does not fit a {public_key.key_type} key")
    if len(sig) != 64:
        raise SignatureError("an Ed25519 signature has 64 bytes")
    return Signature(public_key, namespace, hash_algorithm, reserved, sig_algorithm, sig, flags, counter)


def verify(signature: Signature, message: bytes, namespace: str = NAMESPACE) -> None:
    """Raise SignatureError unless `signature` is its key's signature of `message` in `namespace`."""
    if signature.namespace != namespace:
        raise SignatureError(f"signed in namespace {signature.namespace[:60]!r}, not {namespace!r}")
    data = signature.signed_data(message)
    key = signature.public_key
    if key.key_type == SK_ED25519:
        assert signature.flags is not None and signature.counter is not None and key.application is not None
        if not signature.flags & USER_PRESENT:
            raise SignatureError("the hardware key did not confirm user presence (touch)")
        data = (hashlib.sha256(key.application.encode()).digest() + bytes([signature.flags])
                + struct.pack(">I", signature.counter) + hashlib.sha256(data).digest())
    try:
        Ed25519PublicKey.from_public_bytes(key.raw).verify(signature.sig, data)
    except InvalidSignature:
        raise SignatureError("the signature does not verify") from None
