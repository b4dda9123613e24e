"""The stock-Prefect baseline: a plain flow that runs one container through the Docker
SDK, deployed to a stock `process` work pool (one Python process per run)."""

import docker
from prefect import flow


@flow(name="stock-container-job")
def stock_container_job(image: str, command: list[str]) -> str:
    client = docker.from_env()
    output = client.containers.run(image, command, remove=True)
    return output.decode(errors="replace")
