"""Back to back against a baseline commit: the worker's CPU per report, its rate and peak RSS, on
this host, in one run.

Rates move with the host (a shared 2-core machine can be 1.5x slower in one hour than in the
next), so an issue's "half of today's CPU per report" is measured here: the baseline commit (a
``git worktree`` under .dampak/bench) and the working tree take turns on the same workload, each
through its own benchmark harness and its own worker code, on the local broker.

    python -m tests.bench.baseline --baseline 6f76165 [--size 200000] [--rounds 2]

Writes docs/baseline.md and docs/baseline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def phase(size: int, villages: int) -> dict[str, Any]:
    """One tree's turn, run inside that tree (its ``tests.bench.run`` and its worker): load
    ``size`` households, then time ``size`` field reports on a restarted worker."""
    import tests.bench.run as bench

    try:
        from streams.ops.admin import ensure_topics
    except ImportError:  # a tree from before streams/ops/ (6f76165 and older)
        from streams.admin import ensure_topics  # type: ignore[no-redef]
    from tests.bench.workload import generate

    bench.MODES["baseline"] = {
        **bench.MODES["quick"],
        "households": size,
        "reports": size,
        "villages": villages,
    }
    run = bench.Run("baseline")
    w = generate(size, size, villages)
    setup, _ = run.settings("one", 16500)
    ensure_topics(setup)
    run.produce("households", w.households)
    registry, proc = run.registry_load(w, 16500)
    registry["peak_rss_mb"] = round(run.peak_rss_mb(proc.pid), 1)
    run.wait_idle(proc.pid)
    run.stop(proc)
    run.produce("field-reports", w.reports)
    reports = run.dampak(w, 16500)
    proc = reports.pop("proc")
    queries = query_seconds(run, 16500)
    run.stop(proc)
    # The old harness gives cores busy; CPU-seconds follow from it and the elapsed time.
    cpu = reports.get("cpu_s_per_1000_reports") or reports["cores_busy"] * reports["seconds"] / size * 1000
    return {
        "registry": registry,
        "reports": reports,
        "queries": queries,
        "cpu_s_per_1000_reports": round(cpu, 3),
    }


#: The analysts' queries of issue 32 in a form both trees answer (the baseline has no incidents):
#: each through the idle worker's ``/query``, after its reports.
QUERIES = {
    "event_summary": "SELECT * FROM dampak.event_summary",
    **{
        f"impact_{level}": f"SELECT * FROM dampak.impact_{level} ORDER BY households_affected DESC LIMIT 1000"
        for level in ("village", "district", "regency")
    },
    "registry_candidates": "SELECT reason, count() FROM dampak.registry_candidates GROUP BY reason",
}


def query_seconds(run: Any, port: int, repeats: int = 5) -> dict[str, float]:
    """Each of ``QUERIES`` ``repeats`` times through the worker on ``port``: the median seconds."""
    out = {}
    for name, sql in QUERIES.items():
        seconds = []
        for _ in range(repeats):
            t = time.perf_counter()
            run.query(port, sql)
            seconds.append(time.perf_counter() - t)
        out[name] = round(statistics.median(seconds), 3)
    return out


def _tree(commit: str) -> Path:
    sha = subprocess.run(["git", "rev-parse", "--short", commit], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    path = ROOT / ".dampak" / "bench" / f"baseline-{sha}"
    if not path.exists():
        # A tree deleted by hand (or by a clean of .dampak) stays registered until pruned.
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=ROOT, check=True)
    return path


def _turn(tree: Path, size: int, villages: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    # The phase imports the tree's harness: this module is loaded by its path, the rest from the tree.
    code = (
        f"import importlib.util, json; "
        f"spec = importlib.util.spec_from_file_location('baseline', {__file__!r}); "
        f"m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        f"print('RESULT', json.dumps(m.phase({size}, {villages})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    return dict(json.loads(line.removeprefix("RESULT ")))


def compare(baseline: str, size: int, villages: int, rounds: int) -> dict[str, Any]:
    trees = {"baseline": _tree(baseline), "current": ROOT}
    turns: dict[str, list[dict[str, Any]]] = {"baseline": [], "current": []}
    for i in range(rounds):
        for name, tree in trees.items():
            turns[name].append(_turn(tree, size, villages))
            print(f"round {i + 1} {name}: {turns[name][-1]}", flush=True)

    def median(name: str, *path: str) -> float:
        values = []
        for t in turns[name]:
            v: Any = t
            for p in path:
                v = v[p]
            values.append(float(v))
        return statistics.median(values)

    summary = {
        name: {
            "cpu_s_per_1000_reports": median(name, "cpu_s_per_1000_reports"),
            "reports_per_s": median(name, "reports", "reports_per_s"),
            "households_per_s": median(name, "registry", "households_per_s"),
            "peak_rss_mb_reports": median(name, "reports", "peak_rss_mb"),
            **{f"query_s_{q}": median(name, "queries", q) for q in QUERIES},
        }
        for name in turns
    }
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    return {
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "baseline": trees["baseline"].name.removeprefix("baseline-"),
        "current": head,
        "size": size,
        "villages": villages,
        "rounds": rounds,
        "turns": turns,
        "median": summary,
        "cpu_ratio": round(
            summary["current"]["cpu_s_per_1000_reports"] / summary["baseline"]["cpu_s_per_1000_reports"], 2
        ),
    }


def write_docs(r: dict[str, Any], docs: Path) -> None:
    (docs / "baseline.json").write_text(json.dumps(r, indent=2) + "\n")
    b, c = r["median"]["baseline"], r["median"]["current"]

    def row(label: str, key: str, fmt: str) -> str:
        ratio = c[key] / b[key] if b[key] else float("nan")
        return f"| {label} | {b[key]:{fmt}} | {c[key]:{fmt}} | {ratio:.2f} |"

    lines = [
        f"# Back to back against {r['baseline']} (finished {r['finished']})",
        "",
        f"Command: `python -m tests.bench.baseline --baseline {r['baseline']} --size {r['size']} "
        f"--rounds {r['rounds']}`, on {r['current']} (working tree). Each tree in turn, {r['rounds']} "
        f"rounds, through its own harness and worker on the local broker: {r['size']:,} households loaded, "
        f"then {r['size']:,} field reports over {r['villages']:,} villages on a restarted worker. Medians.",
        "",
        "| figure | baseline | current | current ÷ baseline |",
        "|---|---:|---:|---:|",
        row("worker CPU-seconds per 1,000 reports", "cpu_s_per_1000_reports", ".3f"),
        row("reports/s", "reports_per_s", ",.0f"),
        row("registry load, households/s", "households_per_s", ",.0f"),
        row("worker peak RSS, reports (MB)", "peak_rss_mb_reports", ",.0f"),
        *[
            row(f"`{q}` through the idle worker's /query (s, median of 5)", f"query_s_{q}", ".3f")
            for q in QUERIES
        ],
        "",
        "The queries: `QUERIES` in `tests/bench/baseline.py`, in the form both trees answer.",
        "",
    ]
    (docs / "baseline.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="a commit")
    parser.add_argument("--size", type=int, default=200_000, help="households, and as many reports")
    parser.add_argument("--villages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    r = compare(args.baseline, args.size, args.villages, args.rounds)
    write_docs(r, ROOT / "docs")
    print((ROOT / "docs" / "baseline.md").read_text())


if __name__ == "__main__":
    main()
