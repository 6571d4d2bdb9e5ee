"""How long diff_stats takes on a large history: a script, not a test.

Builds (with `git fast-import`, in a few seconds) a bare repository of 10,000 commits over 1,000
files: the first commit adds them all, each later commit edits one, and the last 100 commits also
rename one file each. Between the first and the last commit every file differs (900 modified,
100 renamed), which is a large "files touched" list for one change. Prints the median of 5 timed
calls of diff_stats (after one warm-up), the same git command run bare (the wrapper's overhead
is the difference), and commit_log and resolve for scale.

    .venv/bin/python tests/benchmarks/git_files_touched.py [--keep DIR]
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from apps.projects import git

FILES = 1_000
COMMITS = 10_000
RENAMES = 100
REPEATS = 5


def fast_import_stream() -> bytes:
    contents = ["".join(f"value_{n}_{line} = {line}\n" for line in range(30)) for n in range(FILES)]
    # 20 packages of 50 modules: one edit rewrites a small tree, which keeps the import fast.
    paths = [f"src/pkg_{n // 50:02d}/module_{n:04d}.py" for n in range(FILES)]
    out: list[bytes] = []

    def blob(path: str, text: str) -> None:
        data = text.encode()
        out.append(b"M 644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))

    for number in range(1, COMMITS + 1):
        message = f"Commit {number}".encode()
        out.append(b"commit refs/heads/main\nmark :%d\n" % number)
        out.append(b"committer Bench <bench@example.com> %d +0000\n" % (1_700_000_000 + number))
        out.append(b"data %d\n%s\n" % (len(message), message))
        if number == 1:
            for path, text in zip(paths, contents, strict=True):
                blob(path, text)
            continue
        target = (number - 2) % FILES
        contents[target] += f"edit_{number} = {number}\n"
        if number > COMMITS - RENAMES:
            renamed = paths[target].replace("src/", "lib/", 1)
            out.append(b"R %s %s\n" % (paths[target].encode(), renamed.encode()))
            paths[target] = renamed
        blob(paths[target], contents[target])
    return b"".join(out)


def build(repo: Path) -> None:
    subprocess.run(["git", "init", "--quiet", "--bare", str(repo)], check=True)
    subprocess.run(
        ["git", f"--git-dir={repo}", "fast-import", "--quiet"],
        input=fast_import_stream(),
        check=True,
    )


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="fixledger-bench-"))
    repo = workdir / "bench.git"
    try:
        if not (repo / "HEAD").exists():
            started = time.perf_counter()
            build(repo)
            print(f"built {COMMITS:,} commits in {time.perf_counter() - started:.1f} s")
        head = git.resolve(repo, "main")
        first = subprocess.run(
            ["git", f"--git-dir={repo}", "rev-list", "--max-parents=0", head],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

        stats = git.diff_stats(repo, first, head)  # warm-up: page cache, packed objects
        renamed = sum(1 for s in stats if s.status == "R")
        diff_times = [timed(lambda: git.diff_stats(repo, first, head)) for _ in range(REPEATS)]
        log_times = [timed(lambda: git.commit_log(repo, first, head)) for _ in range(REPEATS)]
        resolve_times = [timed(lambda: git.resolve(repo, "main")) for _ in range(REPEATS)]
        plain = ["git", f"--git-dir={repo}", "diff", "--raw", "--numstat", "-z", "-M", first, head]
        plain_times = [
            timed(lambda: subprocess.run(plain, capture_output=True, check=True))
            for _ in range(REPEATS)
        ]

        print(f"diff_stats: {len(stats)} files ({renamed} renames) between commit 1 and {COMMITS}")
        print(f"  median of {REPEATS}: {statistics.median(diff_times) * 1000:.1f} ms")
        print(f"  all: {', '.join(f'{t * 1000:.1f}' for t in diff_times)} ms")
        print(f"  same git diff, run bare: {statistics.median(plain_times) * 1000:.1f} ms")
        print(f"commit_log (200 of {COMMITS - 1}): {statistics.median(log_times) * 1000:.1f} ms")
        print(f"resolve('main'): {statistics.median(resolve_times) * 1000:.1f} ms")
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
