"""Profile a worker with py-spy while it drains a pre-filled backlog; writes docs/profile-worker.*

    python -m tests.bench.profile [--seconds 30] [--phase reports|registry]

``reports`` (the default): 200,000 field reports, after 200,000 households were loaded.
``registry``: the load of 1,000,000 households (docs/profile-registry.* instead).

Outputs the raw collapsed stacks (``docs/profile-<name>.collapsed``, loadable in speedscope or
flamegraph.pl) and a summary of where the worker's time goes (``docs/profile-<name>.md``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from streams.ops.admin import ensure_topics
from tests.bench.run import ROOT, Run
from tests.bench.workload import generate

_LOOP = "asyncio/uvloop event loop"
_BUCKETS = [
    ("faust stream/agent machinery", ("faust/streams.py", "faust/agents/", "faust/channels.py", "mode/")),
    ("faust tables + changelog", ("faust/tables/", "faust/stores/", "rocksdict")),
    (
        "producing (aiokafka/faust producer)",
        ("aiokafka/producer", "faust/transport/producer", "faust/topics.py"),
    ),
    (
        "consuming (aiokafka fetch)",
        ("aiokafka/consumer", "faust/transport/consumer", "faust/transport/drivers"),
    ),
    ("pydantic validation", ("pydantic",)),
    ("ClickHouse insert (clickhouse-connect/chDB)", ("clickhouse_connect", "chdb")),
    (
        "dampak engine, features, domain",
        ("streams/engine/", "streams/features/", "streams/domain/", "streams/rows.py"),
    ),
    (_LOOP, ("asyncio/",)),
]


_WHAT = {
    "reports": "processing a backlog of 200,000 field reports with 200,000 households loaded",
    "registry": "loading a backlog of 1,000,000 households (the registry)",
}


def summarize(raw: Path, phase: str = "reports") -> str:
    """The main thread's samples by component and by function. The main thread runs the event
    loop, where all of dampak's Python runs; the others (the ClickHouse insert executor, Faust's
    service threads) mostly wait, and py-spy counts their waits as samples too."""
    total = main = inserting = 0
    inclusive, own = Counter[str](), Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        if not frames[0].startswith("_run_module_as_main"):
            if any("clickhouse_connect" in f or "chdb" in f for f in frames):
                inserting += n
            continue
        main += n
        own[frames[-1]] += n
        if frames[-1].startswith("Worker.execute_from_commandline"):  # uvloop's C code runs here
            inclusive[_LOOP] += n
            continue
        for label, needles in _BUCKETS:
            if any(any(k in f for k in needles) for f in frames[-3:]):
                inclusive[label] += n
                break
    lines = [
        "# Where a worker's time goes" + (" while it loads the registry" if phase == "registry" else ""),
        "",
        f"py-spy, {main} samples of a worker's main thread (uvloop) {_WHAT[phase]} "
        f"(`python -m tests.bench.profile --phase {phase}`; the other threads' {total - main} samples "
        f"are mostly waits and left out). Raw stacks of every thread: "
        f"`docs/{raw.name}`. Under uvloop, the event loop's own C code is counted "
        "in its caller, `Worker.execute_from_commandline`. ClickHouse inserts run on a thread of "
        f"their own: {inserting} samples there, {inserting / max(main, 1):.0%} as many as the main "
        "thread's.",
        "",
        "| component (innermost 3 frames) | share of samples |",
        "|---|---:|",
        *[f"| {label} | {inclusive[label] / main:.1%} |" for label, _ in _BUCKETS],
        "",
        "| hottest functions (self time) | share |",
        "|---|---:|",
        *[f"| `{name[:100]}` | {n / main:.1%} |" for name, n in own.most_common(15)],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--phase", choices=sorted(_WHAT), default="reports")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where to write profile-*.*")
    args = parser.parse_args()
    run = Run("quick")
    settings, env = run.settings("profile", 16700)
    ensure_topics(settings)
    if args.phase == "registry":
        w = generate(1_000_000, 0, 83_762)
        run.produce("households", w.households)
        worker = run.start_worker(env, 16700)
    else:
        w = generate(200_000, 200_000, 10_000)
        # As in the benchmark: the registry is loaded first, then the field reports arrive.
        run.produce("households", w.households)
        worker = run.start_worker(env, 16700)
        while not run.committed_all(settings.app_id, ("households", "households-by-id")):
            time.sleep(0.5)
        run.produce("field-reports", w.reports)
    docs = Path(args.out)
    docs.mkdir(parents=True, exist_ok=True)
    name = "profile-worker" if args.phase == "reports" else "profile-registry"
    raw = docs / f"{name}.collapsed"
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    spy = [py_spy, "record", "--pid", str(worker.pid), "--duration", str(args.seconds),
           "--format", "raw", "--rate", "100", "-o", str(raw)]  # fmt: skip
    subprocess.run(spy, check=True)
    run.stop(worker)
    run.delete_topics()
    (docs / f"{name}.md").write_text(summarize(raw, args.phase))
    print((docs / f"{name}.md").read_text())


if __name__ == "__main__":
    main()
