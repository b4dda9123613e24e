"""SSHSIG and OpenSSH public keys in pure Python (`swarmsync.auth.sshsig`), checked against real
`ssh-keygen` keys and signatures; the FIDO path (`sk-ssh-ed25519@openssh.com`) with signatures
built here per PROTOCOL.u2f from an Ed25519 key (no hardware key on a test machine), and
cross-checked by `ssh-keygen -Y verify`, which verifies sk signatures in software."""

from __future__ import annotations

import base64
import hashlib
import struct
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from swarmsync.auth import sshsig
from tests.accounts.sshkeys import fingerprint_of, keygen, public_line, ssh_sign


def _s(value: bytes | str) -> bytes:
    value = value.encode() if isinstance(value, str) else value
    return struct.pack(">I", len(value)) + value


def _armor(blob: bytes) -> str:
    body = base64.b64encode(blob).decode()
    lines = [body[i:i + 70] for i in range(0, len(body), 70)]
    return "\n".join([sshsig.ARMOR_BEGIN, *lines, sshsig.ARMOR_END]) + "\n"


def sk_signature(private: Ed25519PrivateKey, message: bytes, *, flags: int = 0x01, counter: int = 7,
                 application: str = "ssh:", namespace: str = sshsig.NAMESPACE) -> tuple[str, str]:
    """(public key line, armored SSHSIG) as a FIDO authenticator would make them (PROTOCOL.u2f):
    it signs SHA256(application) || flags || counter || SHA256(the SSHSIG signed data)."""
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_blob = _s(sshsig.SK_ED25519) + _s(raw) + _s(application)
    signed = b"SSHSIG" + _s(namespace) + _s(b"") + _s("sha512") + _s(hashlib.sha512(message).digest())
    u2f = hashlib.sha256(application.encode()).digest() + bytes([flags]) + struct.pack(">I", counter) \
        + hashlib.sha256(signed).digest()
    sig = _s(sshsig.SK_ED25519) + _s(private.sign(u2f)) + bytes([flags]) + struct.pack(">I", counter)
    blob = b"SSHSIG" + struct.pack(">I", 1) + _s(key_blob) + _s(namespace) + _s(b"") + _s("sha512") + _s(sig)
    return f"{sshsig.SK_ED25519} {base64.b64encode(key_blob).decode()} fido@test", _armor(blob)


def test_a_real_key_parses_with_the_fingerprint_ssh_keygen_prints(tmp_path):
    key = keygen(tmp_path, "alice")
    parsed = sshsig.parse_public_key(public_line(key))
    assert parsed.key_type == "ssh-ed25519" and parsed.comment == "alice@test"
    assert parsed.fingerprint == fingerprint_of(key)
    assert parsed.openssh() == public_line(key)


@pytest.mark.parametrize("line, says", [
    ("", "not an OpenSSH public key"),
    ("hello world", "unsupported key type 'hello'"),
    ("ssh-ed25519 !!!notbase64", "not base64"),
    ("ssh-ed25519 " + base64.b64encode(b"garbage").decode(), "truncated"),
    ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "unsupported key type 'ssh-rsa'"),
])
def test_garbage_and_unsupported_keys_are_refused_with_a_reason(line, says):
    with pytest.raises(sshsig.KeyFormatError, match=says):
        sshsig.parse_public_key(line)


def test_an_ecdsa_key_is_refused_naming_the_supported_types(tmp_path):
    with pytest.raises(sshsig.KeyFormatError, match="use ssh-ed25519 or sk-ssh-ed25519@openssh.com"):
        sshsig.parse_public_key(public_line(keygen(tmp_path, "ec", "ecdsa")))


def test_a_real_ssh_keygen_signature_verifies_and_nothing_else_does(tmp_path):
    key = keygen(tmp_path, "bob")
    signature = sshsig.parse_signature(ssh_sign(key, "ssn_nonce"))
    assert signature.public_key.fingerprint == fingerprint_of(key) and signature.hash_algorithm == "sha512"
    sshsig.verify(signature, b"ssn_nonce")
    with pytest.raises(sshsig.SignatureError, match="does not verify"):
        sshsig.verify(signature, b"ssn_other")
    elsewhere = sshsig.parse_signature(ssh_sign(key, "ssn_nonce", namespace="git"))
    with pytest.raises(sshsig.SignatureError, match="namespace 'git'"):
        sshsig.verify(elsewhere, b"ssn_nonce")
    with pytest.raises(sshsig.SignatureError, match="truncated"):
        sshsig.parse_signature("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----")
    with pytest.raises(sshsig.SignatureError, match="not an SSH signature"):
        sshsig.parse_signature("I promise it was me")


def test_a_fido_signature_built_per_protocol_u2f_verifies_and_ssh_keygen_agrees(tmp_path):
    private = Ed25519PrivateKey.generate()
    line, armored = sk_signature(private, b"ssn_nonce")
    key = sshsig.parse_public_key(line)
    assert key.key_type == sshsig.SK_ED25519 and key.application == "ssh:"
    signature = sshsig.parse_signature(armored)
    assert (signature.flags, signature.counter) == (0x01, 7)
    sshsig.verify(signature, b"ssn_nonce")
    # OpenSSH's own verifier accepts the same signature: the construction above is the protocol's
    (tmp_path / "allowed").write_text(f"fido@test {line}\n")
    (tmp_path / "sig").write_text(armored)
    checked = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", "fido@test",
                              "-n", sshsig.NAMESPACE, "-s", str(tmp_path / "sig")], input=b"ssn_nonce",
                             capture_output=True)
    assert checked.returncode == 0, checked.stderr
    with pytest.raises(sshsig.SignatureError, match="does not verify"):
        sshsig.verify(signature, b"ssn_other")


def test_a_fido_signature_without_user_presence_or_with_a_forged_counter_is_refused():
    private = Ed25519PrivateKey.generate()
    _line, untouched = sk_signature(private, b"ssn_nonce", flags=0x00)
    with pytest.raises(sshsig.SignatureError, match="user presence"):
        sshsig.verify(sshsig.parse_signature(untouched), b"ssn_nonce")
    _line, armored = sk_signature(private, b"ssn_nonce", counter=7)
    blob = bytearray(base64.b64decode("".join(armored.strip().splitlines()[1:-1])))
    blob[-1] ^= 0x01  # the counter's last byte, outside the Ed25519 signature
    with pytest.raises(sshsig.SignatureError, match="does not verify"):
        sshsig.verify(sshsig.parse_signature(_armor(bytes(blob))), b"ssn_nonce")


def test_a_signature_whose_algorithm_does_not_fit_its_key_is_refused():
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_blob = _s("ssh-ed25519") + _s(raw)
    sig = _s(sshsig.SK_ED25519) + _s(b"\0" * 64) + b"\x01" + struct.pack(">I", 1)
    blob = b"SSHSIG" + struct.pack(">I", 1) + _s(key_blob) + _s(sshsig.NAMESPACE) + _s(b"") + _s("sha512") + _s(sig)
    with pytest.raises(sshsig.SignatureError, match="does not fit"):
        sshsig.parse_signature(_armor(blob))
