"""The worker's (and the server's) CPU per job of this tree and another, side by side at the same moment: two
stacks start, one running each tree, and both get a burst of jobs at once, so that both see the same load (on a
machine whose speed drifts by 10-30% over minutes, alternating runs cannot show a change of a few percent).

    python bench/worker_ab.py --compare TREE [--jobs 100] [--rounds 2]

TREE: another tree laid out as the installed package (TREE/swarmsync with flows, blocks, deployments, dashboard
inside it; as `bench/cli.py --compare` takes it), given to its stack as PYTHONPATH. Each stack is
`bench/run.py`'s (`start_swarmsync`: `swarmsync up` on SQLite in a temp folder). Prints one line per tree and
round, then the medians and their ratio. Two stacks share 2 cores: both figures are higher than a run alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEUTRAL = tempfile.gettempdir()  # the stacks' working directory: not a checkout (`python -m` puts it first)


def side(port: int, jobs: int, ready: Path, go: Path) -> None:
    """One stack: start it, warm it up, say so, wait for `go`, run the burst, print the CPU per job."""
    sys.path[:0] = [str(ROOT / "bench")]
    import docker
    import run as bench  # bench/run.py

    import swarmsync
    from swarmsync.images import ensure_busybox_image
    from swarmsync.settings import get_settings

    image = ensure_busybox_image(docker.from_env())
    up = bench.start_swarmsync(Path(tempfile.mkdtemp(prefix="worker-ab-")) / "stack", port)
    try:
        get_settings.cache_clear()
        worker, server = bench.children(up.pid, "cli.main worker start"), bench.children(up.pid, "prefect[_ ]server")
        for _ in range(3):
            swarmsync.submit(image, ["echo", "hi"]).wait(120)
        ready.touch()
        while not go.exists():
            time.sleep(0.1)
        before = bench.cpu_seconds(worker), bench.cpu_seconds(server)
        spec = swarmsync.JobSpec(image=image, command=["echo", "hi"])
        handles = [entry.job for entry in swarmsync.submit_many([spec] * jobs) if entry.job]
        states = [handle.wait(600).status() for handle in handles]
        after = bench.cpu_seconds(worker), bench.cpu_seconds(server)
        print(f"{(after[0] - before[0]) / jobs:.4f} {(after[1] - before[1]) / jobs:.4f} "
              f"{states.count('Completed')}", flush=True)
    finally:
        bench.drain_events()
        bench.stop(up)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", type=Path, required=True, help="the other tree (see above)")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--side", nargs=4, metavar=("PORT", "JOBS", "READY", "GO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side(int(args.side[0]), int(args.side[1]), Path(args.side[2]), Path(args.side[3]))
        return
    trees = {"this tree": {}, str(args.compare): {"PYTHONPATH": str(args.compare)}}
    figures: dict[str, list[tuple[float, float]]] = {tree: [] for tree in trees}
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="worker-ab-") as marks:
            go = Path(marks) / "go"
            sides = {}
            for index, (tree, extra) in enumerate(trees.items()):
                ready = Path(marks) / f"ready-{index}"
                env = {**os.environ, **extra}
                if not extra:  # this tree: the checkout's package, whatever the working directory
                    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
                command = [sys.executable, str(Path(__file__).resolve()), "--compare", str(args.compare),
                           "--side", str(4700 + 10 * round_ + index), str(args.jobs), str(ready), str(go)]
                sides[tree] = (ready, subprocess.Popen(command, env=env, cwd=NEUTRAL, stdout=subprocess.PIPE,
                                                       text=True))
            while not all(ready.exists() for ready, _ in sides.values()):
                if any(proc.poll() is not None for _, proc in sides.values()):
                    raise SystemExit("a stack failed to start (its output is above)")
                time.sleep(0.5)
            go.touch()
            for tree, (_, proc) in sides.items():
                out, _ = proc.communicate(timeout=1800)
                worker, server, completed = out.strip().splitlines()[-1].split()
                figures[tree].append((float(worker), float(server)))
                print(f"round {round_ + 1} {tree}: worker {float(worker):.4f} s/job, server {float(server):.4f} "
                      f"s/job, {completed}/{args.jobs} completed", flush=True)
    this, other = (statistics.median(w for w, _ in figures[t]) for t in trees)
    print(f"\nworker CPU per job, median: this tree {this:.4f} s, {args.compare} {other:.4f} s "
          f"(this / other: {this / other:.3f}); load {os.getloadavg()[0]:.2f} (2 stacks at once)")


if __name__ == "__main__":
    main()
