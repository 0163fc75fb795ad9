"""Rate and peak memory of ``dampak import-registry`` on a generated DTSEN-style export.

    python -m tests.bench.import_registry --rows 1000000      (make bench-import)

Generates the CSV (and, with ``--parquet``, the same rows as Parquet) under the data directory,
publishes it to a fresh topic prefix on the local broker, and prints rows/s and the peak RSS that
``/usr/bin/time -v`` saw. One broken row in 10,000 exercises the rejects file.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.integration import registry_export
from tests.integration.registry_export import write_csv, write_parquet

ROOT = Path(__file__).resolve().parents[2]


def measure(path: Path, prefix: str) -> dict[str, float]:
    env = {**os.environ, "DAMPAK_KAFKA__TOPIC_PREFIX": prefix, "DAMPAK_DEV_MODE": "true"}
    subprocess.run(
        [sys.executable, "-m", "streams", "up"], env=env, check=True, capture_output=True, cwd=ROOT
    )
    started = time.monotonic()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-m", "streams", "import-registry", str(path), "--restart"],
        env=env, capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    seconds = time.monotonic() - started
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    rows = int(re.search(r"^([\d,]+) rows in", proc.stdout, re.M).group(1).replace(",", ""))  # type: ignore[union-attr]
    print(proc.stdout.strip())
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "peak_rss_mb": rss_kb / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parquet", action="store_true", help="also measure the same rows as Parquet")
    args = parser.parse_args()
    base = ROOT / ".dampak" / "bench-import"
    base.mkdir(parents=True, exist_ok=True)
    files = [base / f"dtsen-{args.rows}.csv"]
    if args.parquet:
        files.append(base / f"dtsen-{args.rows}.parquet")
    generator = Path(registry_export.__file__).stat().st_mtime
    for path in files:
        # A file written by an older generator may break rules the contract has gained since.
        if not path.exists() or path.stat().st_mtime < generator:
            writer = write_parquet if path.suffix == ".parquet" else write_csv
            writer(path, args.rows, bad_every=10_000)
        result = measure(path, f"bench-import-{uuid.uuid4().hex[:8]}-")
        size_mb = path.stat().st_size / 1e6
        print(
            f"{path.name} ({size_mb:,.0f} MB): {result['rows']:,} rows in {result['seconds']:.1f} s "
            f"(wall, process start included) = {result['rows_per_s']:,.0f} rows/s, "
            f"peak RSS {result['peak_rss_mb']:,.0f} MB"
        )


if __name__ == "__main__":
    main()
