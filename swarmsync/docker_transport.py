"""docker-py's Unix-socket transport, made to keep its connections.

docker-py's `UnixHTTPAdapter` keeps one urllib3 pool per URL (`get_connection(request.url)`): a container's
inspect, attach, start, wait, stats and delete each have a URL of their own, so every call of a job opened a
pool and a socket to the engine (7 per job), and the 25-pool cache closed older ones. All of them go to the
same socket, so one pool serves every URL: a job's Docker calls in a loop took 9.4-9.7 ms of CPU instead of
11.2-13.1 ms (docs/benchmarks.md, the worker's fourth round).

Such a client also leaves the environment alone (`trust_env = False`): requests looked for a `.netrc` file and
proxy variables at each call, which a local socket never uses (0.52 -> 0.38 ms of CPU per call, measured with
`ping` in a loop; the worker's fifth round).
"""

from __future__ import annotations

from typing import Any

import docker
from docker.transport import UnixHTTPAdapter

MOUNT = "http+docker://"  # where docker-py mounts its Unix-socket adapter
POOL_KEY = "http+docker://localhost"  # the one pool's key (docker-py's own base URL for a socket)


class OnePoolUnixAdapter(UnixHTTPAdapter):
    """docker-py's Unix-socket adapter with one connection pool for every URL."""

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None,
                                        cert: Any = None) -> Any:
        return self.get_connection(POOL_KEY, proxies)


def share_one_pool(client: docker.DockerClient, max_pool_size: int) -> None:
    """Give `client` one pool of up to `max_pool_size` connections for every request, and no environment
    lookups, when it talks to its engine over a Unix socket (docker-py's adapter as made; TCP and SSH clients
    keep theirs and the environment's proxies: requests' own adapter already keeps one pool per host)."""
    adapter = client.api.adapters.get(MOUNT)
    if type(adapter) is not UnixHTTPAdapter:
        return
    client.api.mount(MOUNT, OnePoolUnixAdapter(f"http+unix://{adapter.socket_path}", adapter.timeout,
                                               max_pool_size=max_pool_size))
    client.api.trust_env = False  # no .netrc or proxy lookups per call: a Unix socket uses neither
    adapter.close()
