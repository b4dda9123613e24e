"""`inputs_from`: a step's archived output folder handed to a later step of the same pipeline.

The pipeline flow (on Core) reads the earlier step's `files.tar.gz` through the archive store,
checked against its manifest's SHA-256 (`archive.iter_verified_file`), and gives each file to the
later step as an inline input file with its own SHA-256 (`InputFile`), which the worker checks
again before the container starts. Nothing needs a shared disk: the bytes go from the archive
store through Core into the run's parameters, so it works whichever hosts ran the two steps.
The folder is capped (`HANDOFF_MAX_BYTES`): larger data belongs in an object store the steps
reach themselves.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import PurePosixPath

from swarmsync import archive
from swarmsync.errors import Error
from swarmsync.spec import InputFile

HANDOFF_MAX_BYTES = 8 * 2**20  # the files of one handed-over folder, uncompressed


class HandoffError(Error, RuntimeError):
    """A step's output folder cannot be handed over (none archived, too large, not valid)."""


def read_output_folder(job_id: str) -> bytes:
    """The job's archived output folder (files.tar.gz), checked against its manifest."""
    try:
        _meta, chunks = archive.iter_verified_file(job_id, archive.FILES_ARCHIVE)
        return b"".join(chunks)
    except archive.ArchiveNotFound:
        raise HandoffError(f"job {job_id} archived no output folder (did its output_dir exist?)") from None


def folder_inputs(tar_gz: bytes, mount: str, limit: int = HANDOFF_MAX_BYTES) -> list[InputFile]:
    """The regular files of an archived output folder (Docker's tar: `<folder>/...`) as input files under
    `mount`, each with its SHA-256 and mode; links, devices and paths leaving the folder are refused."""
    files: list[InputFile] = []
    total = 0
    with tarfile.open(fileobj=io.BytesIO(tar_gz), mode="r:gz") as tar:
        for member in tar:
            if member.isdir():
                continue
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) < 2 or ".." in parts or PurePosixPath(member.name).is_absolute():
                raise HandoffError(f"output folder entry {member.name!r} is not a plain file inside the folder")
            total += member.size
            if total > limit:
                raise HandoffError(f"the output folder is larger than {limit} bytes: hand over less, or write "
                                   "to an object store both steps reach")
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            path = str(PurePosixPath(mount, *parts[1:]))
            files.append(InputFile.from_bytes(path, data).model_copy(update={"mode": member.mode & 0o777}))
    return files
