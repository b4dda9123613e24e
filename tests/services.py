"""Where the tests find the host's Redis: the server infra/host-setup.sh starts on
127.0.0.1:6379 with a password it generated once into a file only its owner can read
(/etc/swarmsync/redis.pass; SWARMSYNC_TEST_REDIS_PASSWORD_FILE names another).
SWARMSYNC_TEST_REDIS (and SWARMSYNC_TEST_PREFECT_REDIS for the split-server test) still
name a Redis URL of your own. There is no password-less default."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
PASSWORD_FILE = Path(os.environ.get("SWARMSYNC_TEST_REDIS_PASSWORD_FILE", "/etc/swarmsync/redis.pass"))


def redis_url(db: int) -> str:
    """redis://:PASSWORD@127.0.0.1:6379/DB with the password of host-setup.sh's Redis."""
    try:
        password = PASSWORD_FILE.read_text().strip()
    except OSError as exc:
        raise RuntimeError(
            f"cannot read the Redis password ({PASSWORD_FILE}: {exc.strerror}): run `make test` "
            "(or `sudo bash infra/host-setup.sh test`), or set SWARMSYNC_TEST_REDIS to a Redis URL"
        ) from None
    return f"redis://:{quote(password, safe='')}@{REDIS_HOST}:{REDIS_PORT}/{db}"
