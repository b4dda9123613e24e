"""An archive's layout in any store: `<job id>/{stdout.txt, stderr.txt, output.txt, files.tar.gz,
manifest.json}`, plus `services/<name>/{stdout.txt, stderr.txt}` for a job with services (then
stdout.txt and stderr.txt are the main container's, output.txt all containers' lines prefixed with
their names). Names are checked here before any store is touched."""

from __future__ import annotations

import re
import uuid

from swarmsync.archive.errors import ArchiveNotFound

TEXT_FILES = ("stdout.txt", "stderr.txt", "output.txt")
FILES_ARCHIVE = "files.tar.gz"
MANIFEST = "manifest.json"
ARCHIVE_FILES = (*TEXT_FILES, FILES_ARCHIVE, MANIFEST)
SERVICE_FILE_RE = re.compile(r"^services/[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?/(?:stdout|stderr)\.txt$")


def check_job_id(job_id: str) -> str:
    """Job ids are UUIDs; anything else (e.g. '../etc') is refused before touching storage."""
    try:
        return str(uuid.UUID(str(job_id)))
    except ValueError:
        raise ArchiveNotFound(f"{job_id!r} is not a job id (a UUID)") from None


def check_name(job_id: str, name: str) -> str:
    """The job id, checked, if `name` is a file an archive holds; else ArchiveNotFound."""
    job_id = check_job_id(job_id)
    if name not in ARCHIVE_FILES and not SERVICE_FILE_RE.match(name):
        raise ArchiveNotFound(f"{name!r} is not an archive file; expected one of {ARCHIVE_FILES} "
                              "or services/NAME/stdout.txt|stderr.txt")
    return job_id
