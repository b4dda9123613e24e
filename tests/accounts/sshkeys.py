"""Real OpenSSH keys and signatures for the key-login tests (`ssh-keygen`, package openssh-client)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from swarmsync.sshsign import NAMESPACE


def keygen(folder: Path, name: str, kind: str = "ed25519") -> Path:
    """A new key pair without passphrase; returns the private key's path (`.pub` beside it)."""
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"{name}@test", "-f", str(path)], check=True)
    return path


def public_line(key: Path) -> str:
    return key.with_name(key.name + ".pub").read_text().strip()


def ssh_sign(key: Path, message: str, namespace: str = NAMESPACE) -> str:
    """`ssh-keygen -Y sign` of `message`: the armored SSHSIG."""
    done = subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", str(key)], input=message.encode(),
                          capture_output=True, check=True)
    return done.stdout.decode()


def fingerprint_of(key: Path) -> str:
    """What `ssh-keygen -l` prints as the fingerprint."""
    done = subprocess.run(["ssh-keygen", "-l", "-f", str(key.with_name(key.name + ".pub"))], capture_output=True,
                          text=True, check=True)
    return done.stdout.split()[1]


def random_public_line(comment: str = "generated@test") -> str:
    """A fresh ed25519 public key line without a file (for tests that only register keys)."""
    import base64
    import struct

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    blob = b"".join(struct.pack(">I", len(part)) + part for part in (b"ssh-ed25519", raw))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"
