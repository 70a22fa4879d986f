#!/usr/bin/env python3
"""Load: many packages dropped at once into `vellum serve`, some bad in different ways, first
alone and then under concurrent readers of the status API. Checks that every package gets
its one right answer (COMPLETE with a .success. log, or REJECTED/FAILED with a .failed. log
and a reason) and that nothing is dead-lettered, and prints the time, the files/s, the
readers' requests and errors, and the ratio of the two ingest times.

    scripts/load [--packages 50] [--bad 10] [--files 200] [--readers 100] [--rounds 3]

Run through scripts/load, which builds the release binary first.
"""
import argparse
import io
import json
import os
import shutil
import socket
import statistics
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import bench  # noqa: E402  (the corpus builder the benchmark uses)


def zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


CSV = b"filename,dc.identifier,dc.title\nobjects/,PP/LOAD/%d,Load test\n"


def bad_packages():
    """Ten packages, each wrong in its own way, with the status Vellum must end them in."""
    good = [("metadata/metadata.csv", CSV % 0), ("objects/a.txt", b"a\n")]
    whole = zip_bytes(good)
    return [
        ("no-metadata", zip_bytes([("objects/a.txt", b"a\n")]), "REJECTED"),
        ("empty", zip_bytes([]), "REJECTED"),
        ("not-a-zip", b"this is a letter, not a zip\n" * 10, "REJECTED"),
        ("traversal", zip_bytes(good + [("../escape.txt", b"x")]), "REJECTED"),
        ("no-identifier", zip_bytes([("metadata/metadata.csv", b"filename,dc.title\nobjects/,T\n"),
                                     ("objects/a.txt", b"a\n")]), "REJECTED"),
        ("truncated", whole[: len(whole) // 2], "REJECTED"),
        ("wrapped", zip_bytes([("package/" + n, d) for n, d in good]), "REJECTED"),
        ("stray-top-level", zip_bytes(good + [("notes.txt", b"x")]), "REJECTED"),
        ("absolute", zip_bytes(good + [("/etc/evil", b"x")]), "REJECTED"),
        ("no-objects", zip_bytes([("metadata/metadata.csv", CSV % 1)]), "REJECTED"),
    ]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vellum(binary, *args, data):
    out = subprocess.run([binary, *args, "--data-dir", str(data)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"vellum {' '.join(args)}: {out.stderr}")
    return out.stdout


def readers(port, auth, n, stop, counts):
    """`n` threads reading until `stop`, with no pause, what scripts and dashboards read: the
    status API, the transfer list (JSON and the dashboard's page) and a transfer in progress
    (what an open dashboard polls); counts requests and errors."""
    lock = threading.Lock()
    seen = []

    def read():
        i = 0
        while not stop.is_set():
            paths = ["/status", "/api/transfers?limit=20", "/"] + ([f"/api/transfers/{seen[-1]}"] if seen else [])
            path = paths[i % len(paths)]
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": auth})
            i += 1
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    body = r.read()
                    ok = r.status == 200
                if path.startswith("/api/transfers?"):
                    ids = [t["id"] for t in json.loads(body)["transfers"] if t["status"] == "PROCESSING"]
                    if ids:
                        seen.append(ids[0])
            # Any failure is counted, an answer that is not what it should be too: a reader
            # never stops quietly.
            except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
                ok = False
                with lock:
                    counts.setdefault("first_error", str(e))
            with lock:
                counts["requests"] = counts.get("requests", 0) + 1
                counts["details"] = counts.get("details", 0) + path.startswith("/api/transfers/")
                counts["errors"] = counts.get("errors", 0) + (0 if ok else 1)

    threads = [threading.Thread(target=read, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def process_cpu(pid):
    """CPU seconds (user and system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(binary, good_zip, good_copies, bad, scratch, n_readers):
    data = scratch / f"data-{n_readers}"
    shutil.rmtree(data, ignore_errors=True)
    uploads = data / "uploads" / "born-digital"
    uploads.mkdir(parents=True)
    staging = data / "staging"
    staging.mkdir()
    expected = {}
    for i in range(good_copies):
        name = f"good-{i:03d}.zip"
        shutil.copy(good_zip, staging / name)
        expected[name] = "COMPLETE"
    for name, data_bytes, status in bad:
        (staging / f"bad-{name}.zip").write_bytes(data_bytes)
        expected[f"bad-{name}.zip"] = status
    vellum(binary, "users", "add", "reader", data=data)
    key = vellum(binary, "api-keys", "create", "--user", "reader", data=data).strip().splitlines()[-1]
    port = free_port()
    log = open(scratch / f"serve-{n_readers}.log", "w")
    proc = subprocess.Popen([binary, "serve", "--data-dir", str(data), "--clamd", "none", "--listen",
                             f"127.0.0.1:{port}", "--settle-secs", "1", "--scan-interval-ms", "200",
                             # A zip without its end record waits this long for the rest (10 min
                             # by default, for slow uploads): two of the bad ones are such zips.
                             "--grace-secs", "5"],
                            stdout=log, stderr=log)
    stop = threading.Event()
    counts = {}
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if time.monotonic() > deadline:
                sys.exit("vellum serve never answered")
            time.sleep(0.1)
        serve_cpu, readers_cpu = process_cpu(proc.pid), time.process_time()
        threads = readers(port, f"ApiKey reader:{key}", n_readers, stop, counts) if n_readers else []
        start = time.monotonic()
        for p in sorted(staging.iterdir()):
            p.rename(uploads / p.name)
        while True:
            answers = [p.name for p in uploads.iterdir() if p.name.endswith(".log") and ".accepted." not in p.name]
            if len(answers) >= len(expected):
                break
            if proc.poll() is not None or time.monotonic() - start > 3600:
                sys.exit(f"vellum serve stopped or took over an hour; see {scratch}")
            time.sleep(0.2)
        wall = time.monotonic() - start
        stop.set()
        for t in threads:
            t.join(timeout=60)
        counts["serve_cpu"] = process_cpu(proc.pid) - serve_cpu
        counts["readers_cpu"] = time.process_time() - readers_cpu
    finally:
        stop.set()
        proc.terminate()
        proc.wait()
    # Every package its one right answer; nothing dead-lettered.
    db = sqlite3.connect(data / "vellum.db")
    wrong = []
    for name, status in expected.items():
        logs = [p.name for p in uploads.iterdir() if p.name.startswith(name + ".") and ".accepted." not in p.name]
        row = db.execute("SELECT status, failure_reason FROM transfers WHERE source_key = ?",
                         (f"born-digital/{name}",)).fetchone()
        kind = "success" if status == "COMPLETE" else "failed"
        if row is None or row[0] != status or len(logs) != 1 or f".{kind}." not in logs[0]:
            wrong.append(f"{name}: {row} {logs}")
        elif status != "COMPLETE" and not row[1]:
            wrong.append(f"{name}: ended without a reason")
    dead = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
    return wall, counts, wrong, dead


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", type=int, default=50)
    ap.add_argument("--bad", type=int, default=10)
    ap.add_argument("--files", type=int, default=200, help="files in each good package")
    ap.add_argument("--readers", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="runs alone and under readers, alternated")
    ap.add_argument("--vellum", default=str(ROOT / "target" / "release" / "vellum"))
    ap.add_argument("--work", default=str(ROOT / ".bench"))
    args = ap.parse_args()
    bad = bad_packages()[: args.bad]
    good_copies = args.packages - len(bad)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    good_zip = bench.build_package(work, args.files, args.files / 10)
    scratch = Path(tempfile.mkdtemp(prefix="vellum-load-", dir=work))
    files = good_copies * args.files
    rows = []
    failed = False
    # Alternated, rounds times: this machine's noise moves one run by a fifth; the medians
    # of the two are compared.
    for n_readers in [0, args.readers] * args.rounds:
        wall, counts, wrong, dead = run(args.vellum, good_zip, good_copies, bad, scratch, n_readers)
        rows.append((n_readers, wall, counts))
        for w in wrong:
            print(f"WRONG ANSWER: {w}")
        if dead:
            print(f"DEAD-LETTERED: {dead} messages")
        failed |= bool(wrong) or bool(dead) or bool(counts.get("errors"))
        if counts.get("errors"):
            print(f"READ ERRORS: {counts['errors']} of {counts['requests']}, first: {counts.get('first_error')}")
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{args.packages} packages at once into vellum serve ({len(bad)} bad, {good_copies} of "
          f"{args.files} files); {os.cpu_count()} cores")
    print(f"{'readers':>8} {'wall s':>8} {'files/s':>9} {'requests':>9} {'errors':>7} {'vellum cpu s':>13} {'readers cpu s':>14}")
    for n, wall, counts in rows:
        print(f"{n:>8} {wall:>8.1f} {files / wall:>9.0f} {counts.get('requests', 0):>9} {counts.get('errors', 0):>7}"
              f" {counts['serve_cpu']:>13.1f} {counts['readers_cpu']:>14.1f}")
    details = sum(c.get("details", 0) for _, _, c in rows)
    print(f"(requests: /status, /api/transfers?limit=20, the dashboard's page / and, {details} in all, a "
          "transfer in progress as an open dashboard polls it)")
    alone = statistics.median(w for n, w, _ in rows if n == 0)
    read = statistics.median(w for n, w, _ in rows if n != 0)
    print(f"ingest time with {args.readers} readers / without (medians of {args.rounds}): "
          f"{read:.1f} s / {alone:.1f} s = {read / alone:.2f} (goal ≤ 1.20)")
    if failed:
        sys.exit(1)
    print("every package answered correctly; nothing dead-lettered")


if __name__ == "__main__":
    main()
