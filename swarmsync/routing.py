"""Routing by host labels, on Prefect's work queues.

A worker host started with labels (`swarmsync worker start --label gpu --label region=eu`)
polls the pool's `default` queue and one queue per non-empty set of its labels (`gpu`,
`region=eu`, `gpu+region=eu`). A job that requires labels is submitted to the queue named
for them (`queue_for(["region=eu", "gpu"])` is `gpu+region=eu`), so only workers having all
of them pick it up; Prefect's own per-worker limit (`--limit`) is the host's capacity, and the
workers polling a queue share its runs (each claims while it has free slots).
"""

from __future__ import annotations

from itertools import combinations

DEFAULT_QUEUE = "default"
MAX_LABELS = 6  # 2**6 - 1 queues per worker at most


def clean_labels(labels: list[str]) -> list[str]:
    """Sorted, de-duplicated, checked: no '+', '/', '%' or spaces (they would make queue names ambiguous)."""
    out = sorted({label.strip() for label in labels if label.strip()})
    for label in out:
        if any(ch in label for ch in "+/% ") or len(label) > 60:
            raise ValueError(f"host label {label!r}: use letters, digits, '-', '_', '.', ':', '=' (at most 60)")
    if len(out) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels per worker ({len(out)} given)")
    return out


def queue_for(labels: list[str]) -> str:
    """The work queue of jobs that require all of `labels` (none: the default queue)."""
    labels = clean_labels(labels)
    return "+".join(labels) if labels else DEFAULT_QUEUE


def worker_queues(labels: list[str]) -> list[str]:
    """Queues a worker with `labels` polls: `default` and every non-empty combination of its labels."""
    labels = clean_labels(labels)
    queues = [DEFAULT_QUEUE]
    for size in range(1, len(labels) + 1):
        queues += ["+".join(combo) for combo in combinations(labels, size)]
    return queues


def label_options(labels: list[str]) -> list[str]:
    """`swarmsync worker start` options for these labels."""
    return [arg for label in clean_labels(labels) for arg in ("--label", label)]
