"""Signing a SwarmSync login challenge with an SSH key, through `ssh-keygen -Y sign`.

`ssh-keygen` does what a login key needs: it asks ssh-agent first (when SSH_AUTH_SOCK is
set and the agent holds the key), else reads the private key file (asking for its
passphrase on the terminal), and drives FIDO hardware keys (touch). So `key` may be the
private key file or its `.pub` half whose private key is in the agent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from swarmsync.errors import Error

NAMESPACE = "swarmsync-login"  # the same as swarmsync.auth.sshsig.NAMESPACE (the server's)


class SigningError(Error, RuntimeError):
    """ssh-keygen could not sign (no such key, wrong passphrase, agent without the key, ...)."""


def public_key_path(key: str | Path) -> Path:
    """The `.pub` file of a key given as its private or public file."""
    path = Path(key).expanduser()
    return path if path.suffix == ".pub" else path.with_name(path.name + ".pub")


def sign(key: str | Path, message: str, namespace: str = NAMESPACE, timeout: float = 120) -> str:
    """The armored SSH signature (`-----BEGIN SSH SIGNATURE-----` ...) of `message` by `key`."""
    path = Path(key).expanduser()
    if not path.exists():
        raise SigningError(f"no key file {path}")
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise SigningError("ssh-keygen is not installed (Debian/Ubuntu: apt-get install openssh-client)")
    try:
        done = subprocess.run([exe, "-q", "-Y", "sign", "-n", namespace, "-f", str(path)], input=message.encode(),
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SigningError(f"ssh-keygen did not sign within {timeout:.0f} s (a hardware key waiting for a touch?)") \
            from None
    if done.returncode != 0 or b"BEGIN SSH SIGNATURE" not in done.stdout:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        hint = (" (given a .pub file, ssh-keygen signs through ssh-agent, else with the private key beside it: "
                "is SSH_AUTH_SOCK set and the key added with ssh-add?)") if path.suffix == ".pub" else ""
        raise SigningError(f"ssh-keygen could not sign with {path}: {why[-1] if why else 'failed'}{hint}")
    return done.stdout.decode()
