#!/usr/bin/env python3
"""The side-by-side benchmark behind `scripts/bench` (run that: it builds Vellum and sets up
the venv first).

Builds a corpus of real files (scripts/make-corpus.py; tiny text files where the package
averages under 2 KB a file), packs it as a transfer package, and in one invocation runs:

- Vellum: `vellum ingest` with its defaults, the scanner and normalization off;
- the standard tools in sequence over the same bytes: `unzip`, `sha256sum`, `tar | gzip -1`,
  and with --with-tools `exiftool -json -n -@ LIST` and `mediainfo` over the files they
  apply to, each once;
- with --with-a3m, a3m 0.8.1 (Archivematica's headless core) on the same transfer;
- with --normalize, both normalizing as a3m does (preservation copies and OCR, with the
  same ImageMagick, FFmpeg, Ghostscript and Tesseract; no DIP, which a3m does not make).

and prints one table: wall time, files/s, MB/s, peak RSS, CPU utilisation, each stage's busy
time, and the ratios (with --rounds, every round and the medians), and draws the stages'
busy times and each round's ratio as an SVG beside the corpus (--svg). Timing is wall clock
on this machine; compare ratios from one run.
"""
import argparse
import csv
import importlib.util
import json
import math
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY_BYTES = 2048
# The files Vellum's format policy gives each tool (config/fpr.json: PNG, GIF, JPEG, TIFF to
# ExifTool; WAVE, AVI, MPEG, QuickTime to MediaInfo), by extension for the baseline.
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff"}
MEDIA_EXT = {".wav", ".avi", ".mpg", ".mpeg", ".mov", ".mp4"}


def corpus_module():
    spec = importlib.util.spec_from_file_location("make_corpus", ROOT / "scripts" / "make-corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "scripts"))
    spec.loader.exec_module(module)
    return module


def build_corpus(out: Path, files: int, mb: float) -> None:
    """Exactly `files` files under out/objects, about `mb` MB in all."""
    objects = out / "objects"
    if files and mb * 1e6 / files < TINY_BYTES:
        # Tiny files: short text records in folders of 1,000, as a scanned-letters
        # transcription or an e-mail export lays them out.
        each = max(16, int(mb * 1e6 / files))
        for i in range(files):
            folder = objects / f"box-{i // 1000:03d}"
            if i % 1000 == 0:
                folder.mkdir(parents=True, exist_ok=True)
            line = f"Record {i}: transcription of item {i}, page {i % 7 + 1}.\n"
            text = (line * (each // len(line) + 1))[:each]
            (folder / f"item-{i:06d}.txt").write_text(text)
        return
    make = corpus_module()
    for sub in ["img", "pdf", "audio", "office", "text", "packed", "fonts"]:
        (objects / sub).mkdir(parents=True, exist_ok=True)
    n = 0
    while sum(1 for p in objects.rglob("*") if p.is_file()) < files:
        make.images(objects, n)
        for v in ["1.3", "1.4", "1.5", "1.6", "1.7"]:
            (objects / f"pdf/doc-{n}-{v}.pdf").write_bytes(make.pdf(v, f"Document {n} in PDF {v}"))
        make.audio(objects, n)
        make.documents(objects, n)
        make.texts(objects, n)
        make.compressed(objects, n)
        make.fonts(objects, n)
        n += 1
    every = sorted(p for p in objects.rglob("*") if p.is_file())
    for extra in every[files:]:
        extra.unlink()
    # Top up to the size asked with recordings: long WAV files, a few of them replacing
    # as many text files so the count stays exact.
    have = sum(p.stat().st_size for p in every[:files])
    missing = int(mb * 1e6) - have
    if missing > 1e6:
        count = max(1, math.ceil(missing / 64e6))
        # The smallest files give way (text, where there is any).
        texts = sorted(every[:files], key=lambda p: (p.parent.name != "text", p.stat().st_size, p.name))[:count]
        rnd = random.Random(7)
        block = rnd.randbytes(1 << 20)
        for i, victim in enumerate(texts):
            missing += victim.stat().st_size
            victim.unlink()
        each = missing // len(texts)
        for i in range(len(texts)):
            write_wav(objects / "audio" / f"recording-{i:03d}.wav", each, block, i)


def write_wav(path: Path, size: int, block: bytes, seed: int) -> None:
    data = max(0, size - 44)
    header = (b"RIFF" + (36 + data).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
              + (1).to_bytes(2, "little") + (2).to_bytes(2, "little") + (44100).to_bytes(4, "little")
              + (44100 * 4).to_bytes(4, "little") + (4).to_bytes(2, "little") + (16).to_bytes(2, "little")
              + b"data" + data.to_bytes(4, "little"))
    with open(path, "wb") as f:
        f.write(header)
        k = 0
        while data > 0:
            chunk = block[(k * 7919 + seed) % 4096:] + block[: (k * 7919 + seed) % 4096]
            f.write(chunk[:data])
            data -= min(data, len(chunk))
            k += 1


def build_package(work: Path, files: int, mb: float) -> Path:
    name = f"BENCH-{files}-{mb:g}"
    package = work / f"{name}.zip"
    if package.exists():
        return package
    corpus = work / name
    shutil.rmtree(corpus, ignore_errors=True)
    build_corpus(corpus, files, mb)
    (corpus / "metadata").mkdir(exist_ok=True)
    with open(corpus / "metadata" / "metadata.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "dc.identifier", "dc.title"])
        w.writerow(["objects/", name, f"Benchmark corpus, {files} files"])
    partial = package.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(corpus.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(corpus).as_posix())
    partial.rename(package)
    shutil.rmtree(corpus)
    return package


class Run:
    def __init__(self, name):
        self.name = name
        self.wall = 0.0
        self.cpu = 0.0
        self.peak_kb = 0
        self.stages = {}
        self.note = ""

    def add(self, wall, usage):
        self.wall += wall
        self.cpu += usage.ru_utime + usage.ru_stime
        self.peak_kb = max(self.peak_kb, usage.ru_maxrss)


def timed(argv, run: Run, stdout=subprocess.DEVNULL, stderr=None, env=None, check=True):
    """Runs one command and adds its wall time, CPU time and peak RSS (the largest process
    it or its children had) to `run`. What the last command wrote is on disk first, so
    that one side does not pay for the other's writes."""
    os.sync()
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    run.add(time.monotonic() - start, usage)
    if check and proc.returncode != 0:
        sys.exit(f"{argv if isinstance(argv, str) else ' '.join(map(str, argv))} exited {proc.returncode}")
    return proc


NORMALIZATION_SWITCHES = ["normalize_for_preservation", "normalize_for_access", "thumbnails", "store_dip", "transcribe"]


# What a3m does with normalize=yes and transcribe_files=yes: preservation copies and OCR (it
# makes no DIP).
AS_A3M_NORMALIZES = ["normalize_for_preservation", "transcribe"]


def config_args(vellum: str, scratch: Path, with_tools: bool, normalize: bool = False) -> list:
    """The defaults with normalization off, as the anchors run (a3m with normalize=no and
    transcribe_files=no; the tools' rows have no converter), or with `normalize` as a3m
    normalizes (preservation copies and OCR, no DIP); without tools, less the format policy
    rules too (ExifTool and MediaInfo go unused even where they are installed)."""
    config = json.loads(subprocess.run([vellum, "config", "show"], check=True, capture_output=True).stdout)
    for profile in config["profiles"]:
        for switch in NORMALIZATION_SWITCHES:
            profile[switch] = normalize and switch in AS_A3M_NORMALIZES
    if not with_tools and not normalize:
        config["format_policy"] = []
    (scratch / "config.json").write_text(json.dumps(config))
    return ["--config", str(scratch / "config.json")]


def run_vellum(vellum: str, package: Path, scratch: Path, with_tools: bool, normalize: bool = False) -> Run:
    run = Run("vellum ingest" + (", normalizing" if normalize else ""))
    data = scratch / "vellum-data"
    shutil.rmtree(data, ignore_errors=True)
    argv = [vellum, "ingest", str(package), "--json", "--clamd", "none", "--data-dir", str(data)]
    argv += config_args(vellum, scratch, with_tools, normalize)
    out = scratch / "vellum.json"
    with open(out, "w") as f, open(scratch / "vellum.log", "w") as log:
        proc = timed(argv, run, stdout=f, stderr=log, check=False)
    report = json.loads(out.read_text() or "{}")
    if proc.returncode != 0 or report.get("status") != "COMPLETE":
        sys.exit(f"vellum ingest did not complete: {report}\n{(scratch / 'vellum.log').read_text()[-4000:]}")
    run.stages = report.get("stage_busy_seconds", {})
    run.files = report.get("files")
    run.per_10k = seconds_per_10k_files(data / "vellum.db")
    aips = list((data / "aips").rglob("*")) if (data / "aips").exists() else []
    run.note = f"AIP {sum(p.stat().st_size for p in aips if p.is_file()) / 1e6:.0f} MB"
    if normalize:
        run.note += f"; {report.get('files_not_normalized')} files not normalized"
    shutil.rmtree(data, ignore_errors=True)
    return run


def seconds_per_10k_files(db: Path) -> list:
    """Seconds between the last per-file stage finishing one 10,000 files' batches and the
    next 10,000's, from the batches' commit times in the state store: flat when the cost of
    a file does not grow with the files before it."""
    import sqlite3
    from datetime import datetime
    if not db.exists():
        return []
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT batch, recorded_at FROM batches WHERE stage = 'characterize' ORDER BY batch").fetchall()
        counts = dict(c.execute("SELECT batch, COUNT(*) FROM files GROUP BY batch").fetchall())
    done, marks, files = None, [], 0
    for batch, at in rows:
        files += counts.get(batch, 0)
        t = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        done = t if done is None else max(done, t)
        if files >= 10_000 * (len(marks) + 1):
            marks.append(done)
    return [round(b - a, 1) for a, b in zip(marks, marks[1:])]


def run_many(vellum: str, package: Path, copies: int, scratch: Path, with_tools: bool) -> Run:
    """`copies` copies of the package dropped at once into the uploads folder of a running
    `vellum serve`; the time from the drop to the last one's final answer."""
    run = Run(f"vellum serve, {copies} packages at once")
    data = scratch / "serve-data"
    shutil.rmtree(data, ignore_errors=True)
    uploads = data / "uploads" / "born-digital"
    uploads.mkdir(parents=True)
    staging = data / "staging"
    staging.mkdir()
    for i in range(copies):
        shutil.copy(package, staging / f"{package.stem}-{i:03d}.zip")
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [vellum, "serve", "--data-dir", str(data), "--clamd", "none", "--listen", f"127.0.0.1:{port}",
            "--settle-secs", "1", "--scan-interval-ms", "200"] + config_args(vellum, scratch, with_tools)
    os.sync()
    with open(scratch / "serve.log", "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        start = time.monotonic()
        for p in sorted(staging.iterdir()):
            p.rename(uploads / p.name)
        while True:
            answers = [p.name for p in uploads.iterdir() if p.name.endswith(".log") and ".accepted." not in p.name]
            if len(answers) >= copies:
                break
            if proc.poll() is not None or time.monotonic() - start > 3600:
                sys.exit(f"vellum serve stopped or took over an hour: {(scratch / 'serve.log').read_text()[-4000:]}")
            time.sleep(0.2)
        run.wall = time.monotonic() - start
        failed = [a for a in answers if ".failed." in a]
        if failed:
            sys.exit(f"{len(failed)} of the packages failed: {failed[:3]}")
    finally:
        proc.terminate()
        _, _, usage = os.wait4(proc.pid, 0)
    run.cpu = usage.ru_utime + usage.ru_stime
    run.peak_kb = usage.ru_maxrss
    shutil.rmtree(data, ignore_errors=True)
    return run


def run_tools(package: Path, scratch: Path, with_tools: bool) -> Run:
    run = Run("unzip, sha256sum, tar|gzip -1" + (", exiftool, mediainfo" if with_tools else ""))
    out = scratch / "tools"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    timed(["unzip", "-q", str(package), "-d", str(out / "x")], run)
    timed(["sh", "-c", f"cd '{out}/x' && find . -type f -print0 | xargs -0 sha256sum > ../sums"], run)
    timed(["sh", "-c", f"tar -C '{out}/x' -cf - . | gzip -1 > '{out}/aip.tar.gz'"], run)
    if with_tools:
        every = sorted(p for p in (out / "x").rglob("*") if p.is_file())
        images = [str(p) for p in every if p.suffix.lower() in IMAGE_EXT]
        media = [str(p) for p in every if p.suffix.lower() in MEDIA_EXT]
        (out / "images.list").write_text("\n".join(images) + "\n")
        (out / "media.list").write_text("\0".join(media))
        if images:
            timed(["sh", "-c", f"exiftool -json -n -@ '{out}/images.list' > /dev/null"], run, check=False)
        if media:
            timed(["sh", "-c", f"xargs -0 mediainfo --Output=JSON < '{out}/media.list' > /dev/null"], run)
    shutil.rmtree(out, ignore_errors=True)
    return run


def python_312() -> str:
    """A Python 3.12 that runs (a pyenv shim for a version not selected does not). a3m 0.8.1
    needs 3.12 or newer, and its lxml (4.9) has wheels up to 3.12 only: on 3.13 pip tries to
    build it and fails."""
    candidates = ["python3.12", "python3"]
    pyenv = Path.home() / ".pyenv" / "versions"
    if pyenv.is_dir():
        candidates += [str(p / "bin" / "python3") for p in sorted(pyenv.iterdir(), reverse=True)]
    for candidate in candidates:
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found and subprocess.run([found, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                                    capture_output=True).returncode == 0:
            return found
    sys.exit("--with-a3m needs Python 3.12 (a3m 0.8.1 requires 3.12 or newer, and its lxml 4.9 "
             "installs on 3.12 at most): install python3.12 (e.g. `apt-get install python3.12 "
             "python3.12-venv`, or `pyenv install 3.12`) and run again")


def run_a3m(package: Path, scratch: Path, normalize: bool = False) -> Run:
    """a3m 0.8.1 in its own venv, normalization and transcription off (on with `normalize`),
    everything else its defaults. a3m calls outside tools of its own (tree, 7z, atool;
    ExifTool, MediaInfo and FFprobe to characterize; ImageMagick, FFmpeg, Ghostscript,
    Tesseract and MediaConch to normalize): a failed run ends with a3m's own report."""
    run = Run("a3m 0.8.1" + (", normalizing" if normalize else ""))
    venv = ROOT / ".tools" / "a3m-venv"
    if not (venv / "bin" / "pip").exists():
        subprocess.run([python_312(), "-m", "venv", str(venv)], check=True)
    # Every run, so that a venv made before the pin gets it (quick when it is there).
    # pygfried is pinned to the release a3m 0.8.1 was made with: the newer ones pip picks
    # (0.21) answer "empty source" for every file inside a3m's job workers, and every
    # transfer fails at "Identify file format".
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "a3m==0.8.1", "pygfried==0.6.0"], check=True)
    share = scratch / "a3m-share"
    shutil.rmtree(share, ignore_errors=True)
    share.mkdir()
    transfer = scratch / "a3m-transfer"
    shutil.rmtree(transfer, ignore_errors=True)
    with zipfile.ZipFile(package) as z:
        z.extractall(transfer)
    # a3m keeps its database and shared directory under the user's data folder; setting
    # A3M_SHARED_DIRECTORY alone leaves its processing folders relative (and every job
    # failing), so the data folder itself is moved into the scratch folder.
    env = dict(os.environ, XDG_DATA_HOME=str(share))
    with open(scratch / "a3m.log", "w") as log:
        proc = timed([str(venv / "bin" / "a3m"), "--name", "bench", "--no-input",
                      "--processing-config", f"normalize={'yes' if normalize else 'no'}",
                      "--processing-config", f"transcribe_files={'yes' if normalize else 'no'}",
                      f"file://{transfer}"], run, stdout=log, stderr=log, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"a3m did not make an AIP (exit {proc.returncode}); its report:\n"
                 f"{(scratch / 'a3m.log').read_text()[:3000]}")
    shutil.rmtree(transfer, ignore_errors=True)
    # a3m ends "successfully" with tasks failed on the way (a tool it lacks, its own bugs):
    # said, from its database, so its figure is read for what it did.
    db = sqlite3.connect(share / "a3m" / "db.sqlite")
    failed = db.execute("SELECT j.jobType, COUNT(*) FROM Tasks t JOIN Jobs j ON t.jobuuid = j.jobUUID "
                        "WHERE t.exitCode != 0 GROUP BY j.jobType ORDER BY 2 DESC").fetchall()
    tasks = db.execute("SELECT COUNT(*) FROM Tasks").fetchone()[0]
    db.close()
    run.note = (f"a3m ran {tasks} tasks; failed: " + "; ".join(f"{job} {n}" for job, n in failed)) if failed \
        else f"a3m ran {tasks} tasks, none failed"
    return run


def draw_svg(path: Path, title: str, stages: dict, rounds: list, goal: float) -> None:
    """Where the time went, for people: each stage's busy seconds (the median run's, both
    cores added) as bars, and each round's ratio Vellum/tools as a bar against the goal."""
    from xml.sax.saxutils import escape
    width, label, row, gap = 760, 150, 20, 36
    plot = width - label - 90
    stage_items = list(stages.items())
    top = 40
    height = top + row * max(1, len(stage_items)) + gap + 20 + row * len(rounds) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="#fff"/>',
           f'<text x="10" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
           f'<text x="10" y="{top - 6}" fill="#555">Busy seconds a stage (both cores added)</text>']
    longest = max([v for _, v in stage_items] + [0.001])
    for i, (name, busy) in enumerate(stage_items):
        y = top + row * i
        w = plot * busy / longest
        out.append(f'<text x="{label - 6}" y="{y + 14}" text-anchor="end">{escape(name)}</text>'
                   f'<rect class="stage" x="{label}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 6}" fill="#2d5b7a">'
                   f'<title>{escape(name)}: {busy:.2f} s</title></rect>'
                   f'<text x="{label + max(w, 1) + 4:.1f}" y="{y + 14}">{busy:.1f} s</text>')
    y0 = top + row * max(1, len(stage_items)) + gap
    out.append(f'<text x="10" y="{y0 - 6}" fill="#555">Vellum / tools, each round (goal ≤ {goal:g})</text>')
    largest = max([r for _, _, r in rounds] + [goal, 0.001]) * 1.1
    for i, (vellum_s, tools_s, ratio) in enumerate(rounds):
        y = y0 + row * i
        w = plot * ratio / largest
        colour = "#1f7a4a" if ratio <= goal else "#b3261e"
        out.append(f'<text x="{label - 6}" y="{y + 14}" text-anchor="end">round {i + 1}</text>'
                   f'<rect class="round" x="{label}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 6}" fill="{colour}">'
                   f'<title>{vellum_s:.1f} s / {tools_s:.1f} s</title></rect>'
                   f'<text x="{label + max(w, 1) + 4:.1f}" y="{y + 14}">{ratio:.2f}</text>')
    gx = label + plot * goal / largest
    out.append(f'<line class="goal" x1="{gx:.1f}" y1="{y0}" x2="{gx:.1f}" y2="{y0 + row * len(rounds)}" '
               f'stroke="#000" stroke-dasharray="4 3"/>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def median_run(runs: list) -> "Run":
    """The run of median wall time (the lower middle one of an even count)."""
    return sorted(runs, key=lambda r: r.wall)[(len(runs) - 1) // 2]


def fmt_row(run: Run, files: int, size: float, base: Run):
    return (f"{run.name:<44} {run.wall:>8.1f} {files / run.wall:>9.0f} {size / 1e6 / run.wall:>7.1f} "
            f"{run.peak_kb / 1024:>9.0f} {100 * run.cpu / run.wall:>6.0f}% {run.wall / base.wall:>7.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--mb", type=float, default=1000)
    ap.add_argument("--with-tools", action="store_true", help="ExifTool and MediaInfo installed, used by both sides")
    ap.add_argument("--with-a3m", action="store_true", help="also run a3m 0.8.1 on the same transfer")
    ap.add_argument("--normalize", action="store_true",
                    help="Vellum and a3m both normalize as a3m does (preservation copies and OCR), with the same tools")
    ap.add_argument("--packages", type=int, default=1,
                    help="with more than one, that many copies of the package dropped at once into `vellum serve`, "
                         "against one package of as many files in all")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run Vellum and the tools in turn this many times; the table shows each side's median run "
                         "(this machine's disk moves a run's time by half) and the largest peak RSS")
    ap.add_argument("--svg", help="where to draw the stages' busy times and each round's ratio "
                    "(default: beside the package in --work, named after it)")
    ap.add_argument("--vellum", default=str(ROOT / "target" / "release" / "vellum"))
    ap.add_argument("--work", default=str(ROOT / ".bench"), help="where corpora are kept between runs")
    args = ap.parse_args()

    for tool in ["unzip", "sha256sum", "tar", "gzip"] + (["exiftool", "mediainfo"] if args.with_tools else []):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed: scripts/bench installs it; or `apt-get install` it")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    package = build_package(work, args.files, args.mb)
    print(f"package {package.name}: {args.files} files, {package.stat().st_size / 1e6:.0f} MB zipped "
          f"(built or found in {time.monotonic() - t:.0f} s)", flush=True)
    with zipfile.ZipFile(package) as z:
        size = sum(i.file_size for i in z.infolist())
        files = sum(1 for i in z.infolist() if not i.is_dir())
    scratch = Path(tempfile.mkdtemp(prefix="vellum-bench-", dir=work))
    if args.packages > 1:
        try:
            many = run_many(args.vellum, package, args.packages, scratch, args.with_tools)
            whole = build_package(work, args.files * args.packages, args.mb * args.packages)
            one = run_vellum(args.vellum, whole, scratch, args.with_tools)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        total = files * args.packages
        print(f"\n{args.packages} packages of {files} files at once, against one package of {one.files} files; "
              f"{os.cpu_count()} cores")
        print(f"{'':<44} {'wall s':>8} {'files/s':>9} {'peak MB':>9} {'CPU':>7}")
        for run, n in [(many, total), (one, one.files)]:
            print(f"{run.name:<44} {run.wall:>8.1f} {n / run.wall:>9.0f} {run.peak_kb / 1024:>9.0f} "
                  f"{100 * run.cpu / run.wall:>6.0f}%")
        print(f"many / one, files/s: {(total / many.wall) / (one.files / one.wall):.2f} (goal ≥ 0.80)")
        return
    try:
        rounds = [(run_vellum(args.vellum, package, scratch, args.with_tools, args.normalize),
                   run_tools(package, scratch, args.with_tools)) for _ in range(max(1, args.rounds))]
        vellum = median_run([v for v, _ in rounds])
        tools = median_run([t for _, t in rounds])
        peak_kb = max(v.peak_kb for v, _ in rounds)
        runs = [vellum, tools]
        if args.with_a3m:
            runs.append(run_a3m(package, scratch, args.normalize))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{files} files, {size / 1e6:.0f} MB unpacked; {os.cpu_count()} cores; "
          f"ExifTool and MediaInfo {'installed' if args.with_tools else 'absent'}")
    print(f"{'':<44} {'wall s':>8} {'files/s':>9} {'MB/s':>7} {'peak MB':>9} {'CPU':>7} {'ratio':>7}")
    for run in runs:
        print(fmt_row(run, files, size, tools))
    if getattr(vellum, "per_10k", None):
        print(f"Vellum, seconds for each further 10,000 files (by batch order): {vellum.per_10k}")
    if vellum.stages:
        busy = ", ".join(f"{k} {v:.1f}" for k, v in vellum.stages.items())
        print(f"Vellum's stages, busy seconds (both cores added): {busy}")
    goal_value = 3.0 if size / files < TINY_BYTES else 0.5
    goal = f"≤ {goal_value:g}"
    if len(rounds) > 1:
        print("Every round:")
        for i, (v, t) in enumerate(rounds, 1):
            print(f"  round {i}: Vellum {v.wall:.1f} s ({v.peak_kb / 1024:.0f} MB peak, {100 * v.cpu / v.wall:.0f}% CPU), "
                  f"tools {t.wall:.1f} s, ratio {v.wall / t.wall:.2f}")
        ratios = sorted(v.wall / t.wall for v, t in rounds)
        print(f"Medians: Vellum {vellum.wall:.1f} s, tools {tools.wall:.1f} s (the table's rows); "
              f"median of the rounds' ratios {ratios[(len(ratios) - 1) // 2]:.2f}")
    svg = Path(args.svg) if args.svg else work / f"{package.stem}.svg"
    draw_svg(svg, f"{files} files, {size / 1e6:.0f} MB; {os.cpu_count()} cores; ExifTool and MediaInfo "
             f"{'installed' if args.with_tools else 'absent'}", vellum.stages,
             [(v.wall, t.wall, v.wall / t.wall) for v, t in rounds], goal_value)
    print(f"Drawn: {svg}")
    print(f"Vellum / tools: {vellum.wall / tools.wall:.2f} (goal {goal}); peak RSS {peak_kb / 1024:.0f} MB "
          f"(goal ≤ 150{', the largest of the rounds' if len(rounds) > 1 else ''}); {vellum.note}")
    if args.with_a3m:
        a3m = runs[2]
        goal = "≥ 3×, both normalizing" if args.normalize else "≥ 100×"
        print(f"a3m / Vellum, files/s: Vellum {a3m.wall / vellum.wall:.1f}× faster (goal {goal})")
        print(a3m.note)


if __name__ == "__main__":
    main()
