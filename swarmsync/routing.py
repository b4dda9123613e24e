"""Routing by host labels, on Prefect's work queues.

A job that requires host labels is submitted to the work queue named for them, with a prefix
reserved for host labels: `queue_for(["region=eu", "gpu"])` is `host:gpu+region=eu`
(`swarmsync submit --require gpu --require region=eu`, or `queue` in the API). A worker started
with labels (`swarmsync worker start --label gpu --label region=eu`, or
SWARMSYNC_WORKER_LABELS=gpu,region=eu) takes a run of a `host:` queue only when it has every
label the queue names, and every other run of the queues it polls; a worker without labels
takes no `host:` run at all. So the pool's other queues (`default`, queues of your own, their
priorities and limits) work as in Prefect, and an unlabelled worker polling the whole pool never
takes a job meant for a GPU host. Prefect's own per-worker limit (`--limit`) is the host's
capacity, and the workers that can take a run share the queue (each claims while it has free
slots).
"""

from __future__ import annotations

from itertools import combinations

DEFAULT_QUEUE = "default"
HOST_QUEUE_PREFIX = "host:"
MAX_LABELS = 6  # the queues a worker creates: 2**6 - 1 at most


def clean_labels(labels: list[str]) -> list[str]:
    """Sorted, de-duplicated, checked: no '+', '/', '%', ',' or spaces (they would make queue names
    ambiguous)."""
    out = sorted({label.strip() for label in labels if label.strip()})
    for label in out:
        if any(ch in label for ch in "+/%, ") or len(label) > 60:
            raise ValueError(f"host label {label!r}: use letters, digits, '-', '_', '.', ':', '=' (at most 60)")
    if len(out) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels ({len(out)} given)")
    return out


def queue_for(labels: list[str]) -> str:
    """The work queue of jobs that require all of `labels` (none: the default queue)."""
    labels = clean_labels(labels)
    return HOST_QUEUE_PREFIX + "+".join(labels) if labels else DEFAULT_QUEUE


def labels_of_queue(queue: str | None) -> list[str] | None:
    """The labels a `host:` queue requires; None for any other queue."""
    if not queue or not queue.startswith(HOST_QUEUE_PREFIX):
        return None
    return clean_labels(queue[len(HOST_QUEUE_PREFIX):].split("+"))


def can_take(queue: str | None, labels: list[str]) -> bool:
    """Whether a worker with `labels` may run a run of `queue` (a malformed `host:` queue: no one)."""
    try:
        required = labels_of_queue(queue)
    except ValueError:
        return False
    return required is None or set(required) <= set(labels)


def host_queues(labels: list[str]) -> list[str]:
    """The `host:` queues a worker with `labels` serves: one per non-empty combination of them."""
    labels = clean_labels(labels)
    return [queue_for(list(combo)) for size in range(1, len(labels) + 1) for combo in combinations(labels, size)]


def parse_labels(text: str | None) -> list[str]:
    """SWARMSYNC_WORKER_LABELS ("gpu,region=eu") as a clean list."""
    return clean_labels((text or "").split(","))


def label_options(labels: list[str]) -> list[str]:
    """`swarmsync worker start` options for these labels."""
    return [arg for label in clean_labels(labels) for arg in ("--label", label)]
