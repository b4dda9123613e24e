"""How fast the `swarmsync` command starts: `--help` and commands that only talk to a SwarmSync API,
against `python -c pass` (the interpreter's own start), each a new process.

    python bench/cli.py [--repeat 7] [--compare /tmp/old-tree]

A fresh stack (`swarmsync up` on free ports and fresh PostgreSQL databases, as the test suite makes
them: SWARMSYNC_TEST_PG) is started; an operator and a token of theirs are made, and 20 jobs are submitted
for later (they stay Scheduled: no container runs), so that `swarmsync jobs` shows a full page. The commands
then run through the API (SWARMSYNC_URL and SWARMSYNC_TOKEN set, so the CLI never asks Prefect itself):

- `swarmsync --help`;
- `swarmsync whoami` (GET /me);
- `swarmsync template list` (GET /templates);
- `swarmsync jobs` (GET /jobs, default 20 rows);
- `swarmsync status ID` (GET /jobs/ID);
- `swarmsync logs ID` (GET /jobs/ID/logs: none yet);
- `swarmsync schedule list` (GET /schedules and /pipelines/schedules: none);
- `swarmsync submit --in 1d busybox true` (POST /jobs: a job due tomorrow, so no container runs; each run adds
  one);

and, as the floor no Typer command line goes under, `typer --help (floor)`: the `--help` of a Typer app of two
commands and nothing else (Python, Typer, Click, Rich and Typer's help formatting).

Each runs `--repeat` times, alternating between commands (and trees, with `--compare`), and the
median wall time is printed with its ratio to `python -c pass`, and whether the process imported
Prefect (`-X importtime`, a separate run). `--compare PATH`: the same commands again with
PYTHONPATH=PATH, a copy of another tree laid out as the installed package (PATH/swarmsync with
flows, blocks, deployments, dashboard inside it), in the same run: before and after side by side.
The target (issue 29): at most 0.3 s each.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests.conftest import running_stack  # noqa: E402 - the suite's own stack helper (fresh PG databases)

TARGET_S = 0.3
PAGE = 20  # `swarmsync jobs` shows 20 rows by default: the stack has that many jobs before the first run
# the commands run here: `python -m` puts its working directory first on sys.path, and a checkout's own
# `swarmsync/` folder would win over --compare's PYTHONPATH
NEUTRAL = tempfile.gettempdir()


def commands(job_id: str) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "swarmsync.cli.main"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "swarmsync --help": [*cli, "--help"],
        "swarmsync whoami": [*cli, "whoami"],
        "swarmsync template list": [*cli, "template", "list"],
        "swarmsync jobs": [*cli, "jobs"],
        "swarmsync status ID": [*cli, "status", job_id],
        "swarmsync logs ID": [*cli, "logs", job_id],
        "swarmsync schedule list": [*cli, "schedule", "list"],
        "swarmsync submit --in 1d": [*cli, "submit", "--in", "1d", "busybox", "true"],
        "typer --help (floor)": [sys.executable, "-c", FLOOR_APP, "--help"],
    }


# a Typer app of one command and one group, nothing else: what any Typer command line costs to start
FLOOR_APP = """
import typer
app = typer.Typer(add_completion=False, no_args_is_help=True, help="The floor.")
@app.command()
def run(count: int = 1) -> None:
    \"\"\"A command.\"\"\"
group = typer.Typer(help="A group.")
@group.command("list")
def list_() -> None:
    \"\"\"A command of the group.\"\"\"
app.add_typer(group, name="group")
app()
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, cwd=NEUTRAL)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return seconds


def imports_prefect(argv: list[str], env: dict[str, str]) -> bool:
    """Whether the command imports Prefect (`-X importtime` lists every module it imports)."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, capture_output=True, cwd=NEUTRAL)
    return any(re.search(r"\|\s+prefect$", line.rstrip()) for line in done.stderr.decode().splitlines())


def prepare(env: dict[str, str]) -> tuple[str, str, str]:
    """An operator with a token, and a page of jobs of theirs due tomorrow (they stay Scheduled); returns (API URL,
    token, the first job's id)."""
    from swarmsync.auth import tokens, users
    from swarmsync.auth.roles import Principal
    from swarmsync.client import Client

    name = f"bench-{uuid.uuid4().hex[:6]}"
    users.add_user(Principal.local(), name, "correct horse battery staple", "operator")
    token = tokens.create_token(Principal.local(), "bench", name).token
    url = f"http://127.0.0.1:{env['SWARMSYNC_API_PORT']}"
    api = Client(url, token)
    later = datetime.now(UTC) + timedelta(days=1)
    jobs = [api.submit("busybox", ["echo", "hi"], at=later) for _ in range(PAGE)]  # `jobs` shows a full page
    return url, token, jobs[0].id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--compare", type=Path, help="another tree, as PYTHONPATH (see above)")
    parser.add_argument("--api", nargs=3, metavar=("URL", "TOKEN", "JOB_ID"),
                        help="time against this running API (a token that may read JOB_ID) instead of a new stack")
    args = parser.parse_args()
    if args.api:
        with tempfile.TemporaryDirectory(prefix="swarmsync-cli-bench-") as home:
            run(args, home, *args.api)
        return
    with tempfile.TemporaryDirectory(prefix="swarmsync-cli-bench-") as home, \
            running_stack(Path(home), name="cli-bench") as env:
        from swarmsync.settings import get_settings

        get_settings.cache_clear()
        run(args, home, *prepare(env))


def run(args: argparse.Namespace, home: str, url: str, token: str, job_id: str) -> None:
    """Time the commands (see the module's docstring) and print the table."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWARMSYNC_", "PREFECT_"))}
    trees = {"this tree": {**base, "SWARMSYNC_URL": url, "SWARMSYNC_TOKEN": token,
                           "SWARMSYNC_HOME": str(Path(home) / "cli"), "COLUMNS": "200"}}
    if args.compare:
        trees[f"{args.compare}"] = {**trees["this tree"], "PYTHONPATH": str(args.compare)}
    runs = commands(job_id)
    for env_ in trees.values():  # warm the page cache once, untimed
        for argv in runs.values():
            timed(argv, env_)
    times: dict[tuple[str, str], list[float]] = {(t, c): [] for t in trees for c in runs}
    for _ in range(args.repeat):
        for command, argv in runs.items():
            for tree, env_ in trees.items():
                times[(tree, command)].append(timed(argv, env_))
    load = os.getloadavg()
    print(f"\nload average during the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"({os.cpu_count()} cores); median of {args.repeat}")
    print(f"\n| command | {' | '.join(f'{t} (s)' for t in trees)} | ratio to python -c pass | imports Prefect |")
    print(f"|---|{'---|' * len(trees)}---|---|")
    floor = {t: statistics.median(times[(t, "python -c pass")]) for t in trees}
    worst = (0.0, "")
    for command, argv in runs.items():
        medians = [statistics.median(times[(t, command)]) for t in trees]
        ratios = " / ".join(f"{m / floor[t]:.1f}x" for m, t in zip(medians, trees, strict=True))
        prefect = " / ".join("yes" if imports_prefect(argv, e) else "no" for e in trees.values())
        print(f"| `{command}` | {' | '.join(f'{m:.3f}' for m in medians)} | {ratios} | {prefect} |")
        if command.startswith("swarmsync") and medians[0] > worst[0]:
            worst = (medians[0], command)
    print(f"\nslowest command: {worst[0]:.3f} s ({worst[1]}); target {TARGET_S} s: "
          f"{'met' if worst[0] <= TARGET_S else 'not met'}")


if __name__ == "__main__":
    main()
