"""Every git operation fixledger performs. This is the only module that imports GitPython.

Repositories handled here are bare clones that :func:`clone` made in a worker's data folder
(``repo_path`` is the git directory itself). Every failure, whatever its cause, is raised as
:class:`GitError` with a message meant for people; GitPython's own exceptions never escape.

How git is kept on a short leash:

* user text never becomes an option: revisions, tag names and URLs are validated first, and every
  place git parses options is closed with ``--end-of-options`` or ``--`` before them;
* each process has a timeout (its whole process tree is killed), no controlling terminal and no
  password prompt of any kind, so nothing ever waits for a human;
* ``GIT_ALLOW_PROTOCOL`` allows exactly the protocol of the repository being cloned or fetched
  (``https``, ``ssh`` or ``file`` for a local path) and nothing at all for local-only commands;
* the system git config, hooks, fsmonitor, signing and background gc are switched off, and git
  variables inherited from a calling git (``GIT_DIR``, ``GIT_INDEX_FILE``...) are dropped.

Requires git >= 2.24 (``--end-of-options``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import signal
import time
import unicodedata
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from apps.projects.revisions import validate_revision

# Seconds. Clones and fetches of large repositories over slow links need minutes; everything
# else works on local objects and should finish in seconds.
NETWORK_TIMEOUT = 600.0
LOCAL_TIMEOUT = 120.0

MIN_GIT_VERSION = (2, 24)
MAX_URL_LENGTH = 2048
MAX_IDENT_LENGTH = 255
MAX_TAG_MESSAGE_LENGTH = 10_000

_FULL_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?\Z")
_HEXISH = re.compile(r"^[0-9a-fA-F]{4,64}\Z")
# `<transport>::<address>` makes git run git-remote-<transport>; `ext::` runs any command.
_TRANSPORT_HELPER = re.compile(r"^[A-Za-z0-9+.-]+::")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HOSTNAME = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?\Z")
# scp-like ssh address. The user part is required: without it `host:path` is hard to tell from
# other forms at a glance, and `host::path` would be a transport helper.
_SCP_LIKE = re.compile(
    r"^(?P<user>[A-Za-z0-9_][A-Za-z0-9._-]*)@(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r":(?P<path>[^-:].*)$"
)

# Variables a calling git (a hook, `git rebase -x`...) exports for its own repository; inherited,
# they would point our commands at that repository or its index instead of ours.
_INHERITED_REPO_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE",
    "GIT_REPLACE_REF_BASE",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIFF_OPTS",
)

_CONFIG_OVERRIDES = (
    # Nothing in a repository may run code on our behalf.
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "submodule.recurse=false",
    # A detached gc would outlive the timeout and hold locks after we think git is done.
    "gc.autoDetach=false",
    "maintenance.autoDetach=false",
    # Signing would wait for a gpg agent or pinentry.
    "tag.gpgSign=false",
    "tag.forceSignAnnotated=false",
    "log.showSignature=false",
    "advice.detachedHead=false",
)

# Advice git prints after the actual reason; it only adds length to a message.
_STDERR_NOISE = ("Please make sure you have the correct access rights", "and the repository exists")

Status = Literal["A", "M", "D", "R"]
# Type changes (file <-> symlink) count as modifications; copies are not detected (-M only).
_STATUS: dict[str, Status] = {"A": "A", "M": "M", "D": "D", "R": "R", "T": "M", "C": "A"}


class GitError(Exception):
    """A git operation failed. ``str(error)`` says what happened, in words for people."""


@dataclasses.dataclass(frozen=True, slots=True)
class FileStat:
    """One file changed between two commits, as ``git diff --numstat`` counts it."""

    path: str
    status: Status
    added: int
    removed: int
    binary: bool = False
    old_path: str | None = None  # set for renames


@dataclasses.dataclass(frozen=True, slots=True)
class Commit:
    """One commit as listed by :func:`commit_log`."""

    sha: str
    subject: str
    author_name: str
    author_email: str
    authored_at: datetime  # aware, in the author's own UTC offset


@dataclasses.dataclass(frozen=True, slots=True)
class _Result:
    status: int
    stdout: bytes
    stderr: str


# --- validation -----------------------------------------------------------------------------


def _has_odd_characters(value: str, *, allow_space: bool = False) -> bool:
    """Whether ``value`` holds control/format characters or whitespace (bar plain spaces)."""
    return any(
        unicodedata.category(ch).startswith("C")
        or (ch.isspace() and not (allow_space and ch == " "))
        for ch in value
    )


def _protocol(url: str) -> str:
    """The GIT_ALLOW_PROTOCOL name of an already validated URL."""
    if url.startswith("https://"):
        return "https"
    if url.startswith("/"):
        return "file"
    return "ssh"


def validate_repository_url(url: str) -> str:
    """Return ``url`` if fixledger may clone it; raise ``ValidationError`` saying why not.

    Accepted: ``https://host/path``, ``ssh://[user@]host[:port]/path``, the scp-like ssh form
    ``user@host:path`` (as code hosts print it; the user is required), and the absolute path of
    a directory on this host. Refused: anything starting with ``-``, spaces or control
    characters, ``<transport>::`` helpers (``ext::`` runs commands), ``file://``, ``git://``,
    ``http://``, other schemes, relative paths and passwords inside the URL (use a git
    credential helper or an ssh key on the worker).
    """
    if not isinstance(url, str) or not url:
        raise ValidationError("Enter the repository's URL or local path.")
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"A repository URL is at most {MAX_URL_LENGTH} characters.")
    if url.startswith("-"):
        raise ValidationError("A repository URL may not start with '-'.")
    if _TRANSPORT_HELPER.match(url):
        raise ValidationError(
            "Git transport helpers ('name::address') are not allowed; "
            "use https://, ssh:// or an absolute local path."
        )
    if _has_odd_characters(url):
        raise ValidationError("A repository URL may not contain spaces or control characters.")

    scheme_match = _SCHEME.match(url)
    if scheme_match:
        _validate_network_url(url, scheme_match.group(1))
        return url
    if url.startswith("/"):
        if not os.path.isdir(url):
            raise ValidationError(f"There is no directory {url} on this host.")
        return url
    scp = _SCP_LIKE.match(url)
    if scp:
        if not _HOSTNAME.match(scp.group("host").lower()):
            raise ValidationError(f"{scp.group('host')} is not a valid host name.")
        return url
    if ":" in url.split("/", 1)[0]:
        raise ValidationError(
            "An scp-like ssh address must look like user@host:path (for example "
            "git@example.com:team/service.git)."
        )
    raise ValidationError(
        "Give an https:// or ssh:// URL, user@host:path, or the absolute path of a local "
        "repository."
    )


def _validate_network_url(url: str, scheme: str) -> None:
    lowered = scheme.lower()
    if lowered == "http":
        raise ValidationError("Plain http:// is not encrypted; use https://.")
    if lowered == "git":
        raise ValidationError(
            "git:// is neither encrypted nor authenticated; use https:// or ssh://."
        )
    if lowered == "file":
        raise ValidationError(
            "file:// URLs are not allowed; give the absolute path of the local repository."
        )
    if lowered not in ("https", "ssh"):
        raise ValidationError(
            f"{scheme}:// is not allowed; only https://, ssh:// and local paths are."
        )
    if scheme != lowered:
        raise ValidationError(f"Write the scheme in lower case: {lowered}://")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise ValidationError(f"This is not a valid URL: {exc}.") from None
    host = parts.hostname or ""
    if not host:
        raise ValidationError("The URL has no host name.")
    if not (_HOSTNAME.match(host) or (":" in host and re.fullmatch(r"[0-9a-f:.]+", host))):
        raise ValidationError(f"{host} is not a valid host name.")
    if parts.password is not None:
        raise ValidationError(
            "Do not put a password or token in the URL; configure a git credential helper "
            "or an ssh key on the workers."
        )
    if parts.username is not None and (not parts.username or parts.username.startswith("-")):
        raise ValidationError("The user name in the URL is not valid.")
    if parts.path in ("", "/"):
        raise ValidationError("The URL does not name a repository (it has no path).")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValidationError("A repository URL may not have a query (?) or fragment (#).")


def _validation_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _check_revision(revision: str) -> None:
    if not isinstance(revision, str) or not revision:
        raise GitError("No revision was given.")
    try:
        validate_revision(revision)
    except ValidationError as exc:
        raise GitError(_validation_text(exc)) from None


def _check_sha(value: str, what: str) -> str:
    if not isinstance(value, str) or not _FULL_SHA.match(value):
        raise GitError(f"{what} must be a full commit SHA (resolve() the revision first).")
    return value


def _check_path(path: str | os.PathLike[str], what: str) -> Path:
    text = os.fspath(path)
    # Worktree listings are read line by line, so a path may not carry a newline.
    if not text or _has_odd_characters(text, allow_space=True):
        raise GitError(f"The {what} path may not contain control characters.")
    return Path(text).resolve()


def _git_dir(repo_path: str | os.PathLike[str]) -> Path:
    path = _check_path(repo_path, "repository")
    if not path.is_dir():
        raise GitError(f"Repository {path} does not exist.")
    return path


# --- running git ----------------------------------------------------------------------------


@functools.cache
def _git_class() -> Any:
    # Imported here, not at the top, so that web processes can validate URLs on a host where
    # git is not installed (GitPython refuses to import without it).
    try:
        from git.cmd import Git

        version = Git().version_info
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise GitError(f"git is not usable on this host: {reason}") from None
    if version[:2] < MIN_GIT_VERSION:
        wanted = ".".join(map(str, MIN_GIT_VERSION))
        raise GitError(f"git {wanted} or newer is required; this host has {version}.")
    return Git


@functools.cache
def _program(name: str) -> str:
    return shutil.which(name) or f"/usr/bin/{name}"


def _environment(protocols: str) -> dict[str, str]:
    true = _program("true")
    return {
        # An empty list allows no transport at all, which is right for local-only commands.
        "GIT_ALLOW_PROTOCOL": protocols,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_ASKPASS": true,
        "SSH_ASKPASS": true,
        # ssh asks the (empty-answering) askpass instead of a terminal: no prompt can block.
        "SSH_ASKPASS_REQUIRE": "force",
        "GCM_INTERACTIVE": "never",
        "GIT_NO_REPLACE_OBJECTS": "1",
    }


def _detail(result: _Result) -> str:
    lines = [line.strip() for line in result.stderr.splitlines()]
    kept = [
        re.sub(r"^(fatal|error): ", "", line).rstrip(".")
        for line in lines
        if line and not any(line.startswith(noise) for noise in _STDERR_NOISE)
    ]
    text = "; ".join(kept)
    if len(text) > 500:
        text = text[:497] + "..."
    if text:
        return text
    if result.status < 0:
        return f"git was killed by signal {-result.status}"
    return f"git exited with status {result.status}"


def _run(
    args: list[str],
    *,
    git_dir: Path | None,
    cwd: Path,
    what: str,
    protocols: str = "",
    timeout: float | None = None,
    extra_env: dict[str, str] | None = None,
    check: bool = True,
) -> _Result:
    """Run one git command; raise GitError("<what>: <git's reason>") unless ``check`` is off."""
    git_class = _git_class()
    limit = LOCAL_TIMEOUT if timeout is None else timeout
    argv = [_program("env")]
    for name in _INHERITED_REPO_VARIABLES:
        argv += ["-u", name]
    argv.append(git_class.GIT_PYTHON_GIT_EXECUTABLE or "git")
    for override in _CONFIG_OVERRIDES:
        argv += ["-c", override]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    argv += args
    env = _environment(protocols)
    if extra_env:
        env.update(extra_env)

    started = time.monotonic()
    try:
        status, stdout, stderr = git_class(str(cwd)).execute(
            argv,
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
            kill_after_timeout=limit,
            env=env,
            # No controlling terminal: ssh and credential helpers cannot open /dev/tty.
            start_new_session=True,
        )
    except Exception as exc:  # GitPython, OSError, a NUL byte in an argument: all are ours now
        raise GitError(f"{what}: could not run git ({exc.__class__.__name__}: {exc}).") from None
    elapsed = time.monotonic() - started
    if status == -signal.SIGKILL and elapsed >= limit * 0.99:
        raise GitError(f"{what}: git did not finish within {limit:g} seconds and was stopped.")
    result = _Result(status=status, stdout=stdout or b"", stderr=stderr or "")
    if check and status != 0:
        raise _failure(result, what, git_dir)
    return result


def _failure(result: _Result, what: str, git_dir: Path | None) -> GitError:
    detail = _detail(result)
    if git_dir is not None and "not a git repository" in detail:
        return GitError(
            f"{what}: {git_dir} is not a usable git repository (its HEAD, objects or refs are "
            "missing or damaged); clone it again."
        )
    return GitError(f"{what}: {detail}.")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _file_errors_as_git_errors(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Callers handle one exception type, so a full disk or a permission problem is one too."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except OSError as exc:
            where = f" at {exc.filename}" if exc.filename else ""
            raise GitError(f"File system error{where}: {exc.strerror or exc}.") from None

    return wrapper


# --- repositories ---------------------------------------------------------------------------


@_file_errors_as_git_errors
def clone(url: str, dest: str | os.PathLike[str], *, timeout: float = NETWORK_TIMEOUT) -> None:
    """Make a bare clone of ``url`` (all branches and tags) at ``dest``.

    The clone is made in a hidden sibling folder and renamed into place, so ``dest`` is either a
    complete clone or absent, even if the worker dies halfway. ``dest`` must not exist or must
    be an empty directory. Local paths are cloned with ``--no-local``: no hard links into the
    source repository, and the same transport rules as a network clone.
    """
    try:
        validate_repository_url(url)
    except ValidationError as exc:
        raise GitError(_validation_text(exc)) from None
    target = _check_path(dest, "clone destination")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise GitError(f"Cannot clone into {target}: it already exists and is not empty.")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:12]}"
    args = ["clone", "--bare", "--quiet"]
    if url.startswith("/"):
        args.append("--no-local")
    try:
        _run(
            [*args, "--", url, str(partial)],
            git_dir=None,
            cwd=target.parent,
            what=f"Could not clone {url}",
            protocols=_protocol(url),
            timeout=timeout,
        )
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _checked_origin(git_dir: Path, what: str) -> str:
    """The clone's origin URL, validated again: the clone's config is a file on disk."""
    found = _run(
        ["config", "--get", "remote.origin.url"],
        git_dir=git_dir,
        cwd=git_dir,
        what=what,
        check=False,
    )
    url = found.stdout.decode("utf-8", "replace").strip()
    if found.status != 0 or not url:
        if found.status == 1:
            raise GitError(f"{what}: it has no origin remote.")
        raise _failure(found, what, git_dir)
    try:
        validate_repository_url(url)
    except ValidationError as exc:
        raise GitError(f"{what}: its origin URL is not allowed. {_validation_text(exc)}") from None
    return url


@_file_errors_as_git_errors
def fetch(repo_path: str | os.PathLike[str], *, timeout: float = NETWORK_TIMEOUT) -> None:
    """Bring a clone up to date with its origin: all branches (pruned) and all tags.

    Branches deleted upstream are deleted here. Tags are updated (forced) but never pruned, so
    release tags that :func:`tag_create` made in this clone survive the next fetch. The origin
    URL is validated again, as the clone's config is a file on disk. ``timeout`` applies to each
    of the two git processes (branches, then tags).
    """
    git_dir = _git_dir(repo_path)
    url = _checked_origin(git_dir, f"Could not fetch into {git_dir}")
    what = f"Could not fetch {url} into {git_dir}"
    for refspecs, prune in (
        (["+refs/heads/*:refs/heads/*"], ["--prune"]),
        (["+refs/tags/*:refs/tags/*"], []),
    ):
        _run(
            ["fetch", "--quiet", "--no-tags", *prune, "origin", *refspecs],
            git_dir=git_dir,
            cwd=git_dir,
            what=what,
            protocols=_protocol(url),
            timeout=timeout,
        )


@_file_errors_as_git_errors
def resolve(repo_path: str | os.PathLike[str], revision: str) -> str:
    """Return the full SHA of the commit that ``revision`` (SHA, branch or tag) names.

    The name is checked with :func:`apps.projects.revisions.validate_revision` before git sees
    it, so reflog (``@{...}``), range (``..``) and option-like forms never reach git.
    """
    git_dir = _git_dir(repo_path)
    _check_revision(revision)
    what = f"Could not resolve {revision!r} in {git_dir}"
    peeled = _run(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"],
        git_dir=git_dir,
        cwd=git_dir,
        what=what,
        check=False,
    )
    if peeled.status == 0:
        sha = peeled.stdout.decode("ascii", "replace").strip()
        if _FULL_SHA.match(sha):
            return sha
        raise GitError(f"{what}: git answered {sha!r}, which is not a SHA.")
    if peeled.status != 1 or peeled.stderr.strip():
        raise _failure(peeled, what, git_dir)
    raise GitError(_why_not_a_commit(git_dir, revision))


def _why_not_a_commit(git_dir: Path, revision: str) -> str:
    unknown = f"No commit named '{revision}' in {git_dir}."
    if _FULL_SHA.match(revision.lower()):
        return unknown  # rev-parse echoes any full SHA, known or not: nothing more to learn
    # git names non-commit objects itself (loudly); a silent failure on a name that still
    # resolves unpeeled means the ref points at an object that is not there.
    named = _run(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", revision],
        git_dir=git_dir,
        cwd=git_dir,
        what=unknown,
        check=False,
    )
    oid = named.stdout.decode("ascii", "replace").strip()
    if named.status != 0 or not oid:
        return unknown
    return (
        f"'{revision}' points to object {oid}, which is missing from {git_dir}: the clone is "
        "damaged; clone it again."
    )


# --- history --------------------------------------------------------------------------------


def _decode(raw: bytes) -> str:
    # Paths and names are bytes to git; undecodable bytes become U+FFFD so any database and any
    # page can store and show them.
    return raw.decode("utf-8", "replace")


@_file_errors_as_git_errors
def diff_stats(repo_path: str | os.PathLike[str], base_sha: str, head_sha: str) -> list[FileStat]:
    """Files changed from ``base_sha`` to ``head_sha``, with line counts, renames detected.

    Binary files have ``binary=True`` and zero counts. The order is git's.
    """
    git_dir = _git_dir(repo_path)
    base = _check_sha(base_sha, "The base revision")
    head = _check_sha(head_sha, "The head revision")
    result = _run(
        [
            "diff",
            "--raw",
            "--numstat",
            "-z",
            "-M",
            "--no-ext-diff",
            "--no-textconv",
            "--no-color",
            "--end-of-options",
            base,
            head,
        ],
        git_dir=git_dir,
        cwd=git_dir,
        what=f"Could not compare {base[:12]} and {head[:12]} in {git_dir}",
    )
    try:
        return _parse_raw_numstat(result.stdout)
    except (IndexError, ValueError):
        raise GitError(f"Could not read the diff of {git_dir}: unexpected git output.") from None


def _parse_raw_numstat(output: bytes) -> list[FileStat]:
    # `--raw --numstat -z` prints every raw record (":modes shas status\0path\0[new\0]") and then
    # every numstat record ("added\tremoved\tpath\0", or "added\tremoved\t\0old\0new\0" for a
    # rename), both in the same order.
    tokens = output.split(b"\0")
    pos = 0
    raw: list[tuple[str, bytes, bytes | None]] = []
    while pos < len(tokens) and tokens[pos].startswith(b":"):
        letter = tokens[pos].split(b" ")[-1][:1].decode("ascii", "replace")
        if letter in ("R", "C"):
            raw.append((letter, tokens[pos + 2], tokens[pos + 1]))
            pos += 3
        else:
            raw.append((letter, tokens[pos + 1], None))
            pos += 2
    stats: list[FileStat] = []
    for letter, path, old_path in raw:
        added, removed, rest = tokens[pos].split(b"\t", 2)
        pos += 3 if rest == b"" else 1
        binary = added == b"-"
        stats.append(
            FileStat(
                path=_decode(path),
                status=_STATUS.get(letter, "M"),
                added=0 if binary else int(added),
                removed=0 if binary else int(removed),
                binary=binary,
                old_path=_decode(old_path) if letter == "R" and old_path is not None else None,
            )
        )
    return stats


@_file_errors_as_git_errors
def commit_log(
    repo_path: str | os.PathLike[str], base_sha: str, head_sha: str, limit: int = 200
) -> list[Commit]:
    """Commits reachable from ``head_sha`` but not from ``base_sha``, newest first.

    Children always come before their parents (``--date-order``); merges are included.
    At most ``limit`` commits are returned.
    """
    git_dir = _git_dir(repo_path)
    base = _check_sha(base_sha, "The base revision")
    head = _check_sha(head_sha, "The head revision")
    if not isinstance(limit, int) or limit < 1:
        raise GitError("The commit limit must be a positive whole number.")
    result = _run(
        [
            "log",
            "-z",
            "--date-order",
            "--no-mailmap",
            "--no-show-signature",
            "--encoding=UTF-8",
            f"--max-count={limit}",
            "--format=%H%x00%an%x00%ae%x00%aI%x00%s",
            "--end-of-options",
            head,
            f"^{base}",
        ],
        git_dir=git_dir,
        cwd=git_dir,
        what=f"Could not list the commits from {base[:12]} to {head[:12]} in {git_dir}",
    )
    # `-z` ends every record with NUL, so an empty last subject is still a field of its own.
    output = result.stdout.removesuffix(b"\0")
    fields = output.split(b"\0") if output else []
    if len(fields) % 5:
        raise GitError(f"Could not read the commit list of {git_dir}: unexpected git output.")
    commits = []
    for at in range(0, len(fields), 5):
        sha, name, email, date, subject = (_decode(value) for value in fields[at : at + 5])
        try:
            authored_at = datetime.fromisoformat(date)
        except ValueError:
            raise GitError(f"Could not read the date of commit {sha} in {git_dir}.") from None
        commits.append(
            Commit(
                sha=sha,
                subject=subject,
                author_name=name,
                author_email=email,
                authored_at=authored_at,
            )
        )
    return commits


# --- worktrees ------------------------------------------------------------------------------


@_file_errors_as_git_errors
def worktree_add(repo_path: str | os.PathLike[str], dest: str | os.PathLike[str], sha: str) -> Path:
    """Check ``sha`` out, detached, in a new worktree at ``dest``; return its absolute path.

    If git fails, whatever it had created is removed again.
    """
    git_dir = _git_dir(repo_path)
    commit = _check_sha(sha, "The revision to check out")
    target = _check_path(dest, "worktree")
    existed = target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        _run(
            ["worktree", "add", "--detach", "--quiet", "--", str(target), commit],
            git_dir=git_dir,
            cwd=git_dir,
            what=f"Could not check {commit[:12]} out at {target}",
        )
    except GitError:
        if not existed:
            shutil.rmtree(target, ignore_errors=True)
        _prune_quietly(git_dir)
        raise
    return target


@_file_errors_as_git_errors
def worktree_remove(repo_path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Remove the worktree at ``dest``, local changes and all, and forget it.

    Quietly does nothing more than a prune when ``dest`` is already gone. A directory that is
    not a worktree of this repository is left alone.
    """
    git_dir = _git_dir(repo_path)
    target = _check_path(dest, "worktree")
    if target.exists() and _is_our_worktree(git_dir, target):
        removed = _run(
            ["worktree", "remove", "--force", "--force", "--", str(target)],
            git_dir=git_dir,
            cwd=git_dir,
            what=f"Could not remove the worktree {target}",
            check=False,
        )
        if removed.status != 0 and target.exists():
            # git refuses worktrees whose metadata is damaged; the folder still has to go.
            shutil.rmtree(target)
    _run(
        ["worktree", "prune"],
        git_dir=git_dir,
        cwd=git_dir,
        what=f"Could not prune the worktrees of {git_dir}",
    )


@_file_errors_as_git_errors
def worktree_prune_stale(
    repo_path: str | os.PathLike[str], root: str | os.PathLike[str], older_than_seconds: float
) -> list[Path]:
    """Remove this repository's worktrees under ``root`` untouched for ``older_than_seconds``.

    Age is the time since the worktree's folder last changed, which in practice is when it was
    added: choose a threshold above the longest run's hard time limit. Also forgets worktrees
    whose folders vanished, and removes folders directly under ``root`` that still point into
    this repository but that git no longer lists (e.g. after the clone was made again).
    Returns the paths removed or forgotten, sorted.
    """
    git_dir = _git_dir(repo_path)
    base = _check_path(root, "worktree root")
    registered = [path for path in _worktrees(git_dir) if path.is_relative_to(base)]
    gone = [path for path in registered if not path.exists()]
    _prune_quietly(git_dir)
    candidates = {path for path in registered if path.exists()}
    if base.is_dir():
        candidates.update(
            child
            for child in base.iterdir()
            if child.is_dir() and not child.is_symlink() and _points_into(git_dir, child)
        )
    cutoff = time.time() - older_than_seconds
    stale = []
    for path in sorted(candidates):
        try:
            if path.lstat().st_mtime >= cutoff:
                continue
        except FileNotFoundError:
            continue
        worktree_remove(git_dir, path)
        stale.append(path)
    return sorted(gone + stale)


def _worktrees(git_dir: Path) -> list[Path]:
    listed = _run(
        ["worktree", "list", "--porcelain"],
        git_dir=git_dir,
        cwd=git_dir,
        what=f"Could not list the worktrees of {git_dir}",
    )
    paths = [
        Path(_decode(line[len(b"worktree ") :]))
        for line in listed.stdout.splitlines()
        if line.startswith(b"worktree ")
    ]
    return [path for path in paths if path != git_dir]


def _points_into(git_dir: Path, folder: Path) -> bool:
    """Whether ``folder/.git`` is a worktree link into ``git_dir``."""
    try:
        text = (folder / ".git").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if not text.startswith("gitdir: "):
        return False
    admin = Path(text[len("gitdir: ") :].strip())
    return (
        admin.parent == git_dir / "worktrees"
        or admin.resolve().parent == (git_dir / "worktrees").resolve()
    )


def _is_our_worktree(git_dir: Path, folder: Path) -> bool:
    return folder in _worktrees(git_dir) or _points_into(git_dir, folder)


def _prune_quietly(git_dir: Path) -> None:
    # Best effort inside cleanup paths, where the original error is the one worth reporting.
    _run(["worktree", "prune"], git_dir=git_dir, cwd=git_dir, what="prune", check=False)


# --- tags -----------------------------------------------------------------------------------


def _check_tag_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise GitError("The tag needs a name.")
    try:
        validate_revision(name)
    except ValidationError as exc:
        raise GitError(f"{name!r} is not a valid tag name. {_validation_text(exc)}") from None
    if _HEXISH.match(name):
        raise GitError(f"'{name}' looks like a commit SHA; choose a tag name that does not.")
    if name == "HEAD" or name.startswith("refs/"):
        raise GitError(f"'{name}' cannot be used as a tag name.")
    if any(part.endswith(".lock") for part in name.split("/")):
        raise GitError(f"'{name}' is not a valid tag name: no part may end in '.lock'.")


def _check_ident(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GitError(f"The tagger's {what} is required.")
    if len(value) > MAX_IDENT_LENGTH or _has_odd_characters(value, allow_space=True):
        raise GitError(f"The tagger's {what} may not contain control characters.")
    if any(ch in value for ch in "<>"):
        raise GitError(f"The tagger's {what} may not contain '<' or '>'.")
    return value.strip()


@_file_errors_as_git_errors
def tag_create(
    repo_path: str | os.PathLike[str],
    name: str,
    sha: str,
    message: str,
    tagger_name: str,
    tagger_email: str,
) -> None:
    """Create the annotated tag ``name`` on commit ``sha``, signed by nobody.

    Refuses a name that is not strict ref syntax, looks like a SHA, or already exists here. The
    message is kept verbatim apart from surrounding whitespace (lines starting with '#' stay).
    """
    git_dir = _git_dir(repo_path)
    _check_tag_name(name)
    commit = _check_sha(sha, "The revision to tag")
    who = _check_ident(tagger_name, "name")
    email = _check_ident(tagger_email, "email")
    if " " in email:
        raise GitError("The tagger's email may not contain spaces.")
    if not isinstance(message, str) or not message.strip():
        raise GitError("The tag needs a message.")
    if "\0" in message or len(message) > MAX_TAG_MESSAGE_LENGTH:
        raise GitError(
            f"A tag message is at most {MAX_TAG_MESSAGE_LENGTH} characters, without NUL bytes."
        )
    what = f"Could not create tag '{name}' in {git_dir}"
    _run(
        ["check-ref-format", f"refs/tags/{name}"],
        git_dir=git_dir,
        cwd=git_dir,
        what=f"'{name}' is not a valid tag name",
    )
    existing = _run(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"refs/tags/{name}"],
        git_dir=git_dir,
        cwd=git_dir,
        what=what,
        check=False,
    )
    if existing.status == 0:
        raise GitError(f"Tag '{name}' already exists in {git_dir}.")
    if existing.status != 1 or existing.stderr.strip():
        raise _failure(existing, what, git_dir)
    if resolve(git_dir, commit) != commit:
        raise GitError(f"{what}: {commit} is not a commit.")
    created = _run(
        [
            "tag",
            "--annotate",
            "--cleanup=whitespace",
            f"--message={message}",
            "--",
            name,
            commit,
        ],
        git_dir=git_dir,
        cwd=git_dir,
        what=what,
        extra_env={"GIT_COMMITTER_NAME": who, "GIT_COMMITTER_EMAIL": email},
        check=False,
    )
    if created.status != 0:
        if "already exists" in created.stderr:
            raise GitError(f"Tag '{name}' already exists in {git_dir}.")
        raise _failure(created, what, git_dir)


@_file_errors_as_git_errors
def tag_push(
    repo_path: str | os.PathLike[str], name: str, *, timeout: float = NETWORK_TIMEOUT
) -> None:
    """Push the tag ``name`` from this clone to its origin (which must not have it yet)."""
    git_dir = _git_dir(repo_path)
    _check_tag_name(name)
    url = _checked_origin(git_dir, f"Could not push tag '{name}' from {git_dir}")
    _run(
        ["push", "--quiet", "--no-verify", "origin", "--", f"refs/tags/{name}:refs/tags/{name}"],
        git_dir=git_dir,
        cwd=git_dir,
        what=f"Could not push tag '{name}' to {url}",
        protocols=_protocol(url),
        timeout=timeout,
    )
