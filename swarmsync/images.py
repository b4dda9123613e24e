"""Local images for offline use: a tiny busybox image built from the host's static
busybox binary (Debian package busybox-static), no registry needed."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import docker
import docker.errors

from swarmsync.errors import UnavailableError

LOCAL_BUSYBOX = "swarmsync/busybox:local"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


class ImageUnavailable(UnavailableError, RuntimeError):
    """No busybox image here and none to pull (offline, no registry): the message says what to do."""


def find_busybox() -> Path | None:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.exists() and _is_static(path):
            return path
    found = shutil.which("busybox")
    return Path(found) if found and _is_static(Path(found)) else None


def _is_static(path: Path) -> bool:
    out = subprocess.run(["file", "-L", str(path)], capture_output=True, text=True).stdout
    return "statically linked" in out or "static-pie" in out or not out  # no `file`: trust it


def busybox_rootfs_tar(busybox: Path) -> bytes:
    """A root filesystem: /bin/busybox, a symlink per applet, /tmp, /etc/passwd."""
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder, mode in (("bin", 0o755), ("tmp", 0o1777), ("etc", 0o755), ("root", 0o700)):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for name in applets.stdout.split():
            if name == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{name}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buf.getvalue()


def ensure_busybox_image(client: docker.DockerClient, tag: str = LOCAL_BUSYBOX) -> str:
    """Import the local busybox image unless it exists; returns its tag."""
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    busybox = find_busybox()
    if busybox is None:
        raise ImageUnavailable(
            "no static busybox binary found to build an offline image: "
            "install it with 'apt-get install busybox-static'"
        )
    repo, _, version = tag.partition(":")
    client.api.import_image_from_data(
        busybox_rootfs_tar(busybox), repository=repo, tag=version or "latest",
        changes=['CMD ["/bin/sh"]', "ENV PATH=/bin"],
    )
    client.images.get(tag)
    return tag


def demo_image(client: docker.DockerClient) -> str:
    """busybox from the registry when it can be pulled, else the local offline build."""
    for ref in ("busybox:latest",):
        try:
            client.images.get(ref)
            return ref
        except docker.errors.ImageNotFound:
            try:
                client.images.pull("busybox", tag="latest")
                return ref
            except docker.errors.APIError:
                break
    return ensure_busybox_image(client)
