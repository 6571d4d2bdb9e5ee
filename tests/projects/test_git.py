"""apps.projects.git against real repositories built with the git command line."""

import http.server
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from apps.projects import git as g

pytestmark = pytest.mark.config_independent

PLUS_ONE = timezone(timedelta(hours=1))
UNICODE_NAME = "docs/ünïcode ✓.txt"


def run_git(*args, cwd=None, env=None, check=True) -> str:
    """The git command line, isolated from the machine's and the user's configuration."""
    full_env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Ada Author",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Author",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
        **(env or {}),
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {args} failed: {done.stderr}")
    return done.stdout.strip()


def commit(repo: Path, message: str, day: int, author=None) -> str:
    date = f"2024-01-0{day}T10:00:00+01:00"
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    if author:
        env.update({"GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1]})
    run_git("add", "-A", cwd=repo)
    run_git("commit", "--quiet", "--allow-empty", "-m", message, cwd=repo, env=env)
    return run_git("rev-parse", "HEAD", cwd=repo)


def write(repo: Path, name: str, content) -> None:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A working repository: a rename, a binary file, a merge, odd paths and two kinds of tag.

    c1 -- c2 (tag v1.0) -- c4 (tag light) -- c5 (merge) -- c6   main
              \\                            /
               c3 -------------------------             feature
    """
    repo = tmp_path_factory.mktemp("source") / "service"
    repo.mkdir()
    run_git("init", "--quiet", "-b", "main", cwd=repo)
    shas = {}

    write(repo, "README.md", "line1\nline2\nline3\n")
    write(repo, "src/cache.py", "".join(f"value_{n} = {n}\n" for n in range(1, 11)))
    write(repo, "docs/read me.txt", "first\nsecond\n")
    write(repo, "assets/logo.bin", bytes(range(256)))
    shas["c1"] = commit(repo, "Add cache and docs", 1)

    lines = [f"value_{n} = {n}\n" for n in range(1, 11)]
    lines[2] = "value_3 = 'three'\n"
    write(repo, "src/cache.py", "".join([*lines, "value_11 = 11\n"]))
    shas["c2"] = commit(repo, "Tune cache", 2)
    run_git(
        "tag",
        "-a",
        "v1.0",
        "-m",
        "First release",
        cwd=repo,
        env={"GIT_COMMITTER_DATE": "2024-01-02T11:00:00+01:00"},
    )

    run_git("checkout", "--quiet", "-b", "feature", cwd=repo)
    write(repo, "src/feature.py", "".join(f"feature_{n} = {n}\n" for n in range(5)))
    shas["c3"] = commit(repo, "Add feature", 3, author=("Zoë Dev", "zoe@example.com"))

    run_git("checkout", "--quiet", "main", cwd=repo)
    run_git("mv", "src/cache.py", "src/store.py", cwd=repo)
    with (repo / "src/store.py").open("a", encoding="utf-8") as handle:
        handle.write("value_12 = 12\n")
    write(repo, "assets/logo.bin", bytes(reversed(range(256))))
    write(repo, "docs/read me.txt", "first\nsecond\nthird\n")
    write(repo, UNICODE_NAME, "hello\n")
    shas["c4"] = commit(repo, "Rename cache to store\n\nThe module holds more than a cache.", 4)
    run_git("tag", "light", cwd=repo)

    date = "2024-01-05T10:00:00+01:00"
    run_git(
        "merge", "--quiet", "--no-ff", "-m", "Merge branch 'feature'", "feature",
        cwd=repo, env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
    )  # fmt: skip
    shas["c5"] = run_git("rev-parse", "HEAD", cwd=repo)

    (repo / "README.md").unlink()
    shas["c6"] = commit(repo, "Drop README", 6)
    return repo, shas


@pytest.fixture(scope="module")
def shared(source, tmp_path_factory):
    """A clone for tests that only read."""
    dest = tmp_path_factory.mktemp("shared") / "service.git"
    g.clone(str(source[0]), dest)
    return dest


@pytest.fixture
def repo(source, tmp_path):
    """A fresh clone for tests that write."""
    dest = tmp_path / "data" / "service.git"
    g.clone(str(source[0]), dest)
    return dest


@pytest.fixture
def shas(source):
    return source[1]


@pytest.fixture
def git_runs(monkeypatch):
    """Every git process the module starts, recorded by its arguments."""
    g._git_class()  # the version check may run once; it is not what is being counted
    calls = []
    real = g._run

    def spy(args, **kwargs):
        calls.append(args)
        return real(args, **kwargs)

    monkeypatch.setattr(g, "_run", spy)
    return calls


@pytest.fixture
def sentinel(tmp_path, monkeypatch):
    """Where `touch pwned` would land if anything ever ran it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path / "pwned"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/billing.git",
        "https://git.example.com:8443/team/billing",
        "https://deploy@git.example.com/team/billing.git",
        "ssh://git@example.com/acme/billing.git",
        "ssh://git@example.com:2222/acme/billing.git",
        "ssh://[::1]/srv/git/billing.git",
        "git@github.com:acme/billing.git",
        "deploy_bot@git.example.com:/srv/git/billing.git",
    ],
)
def test_url_accepted(url):
    assert g.validate_repository_url(url) == url


def test_url_accepts_existing_absolute_local_directory(tmp_path):
    folder = tmp_path / "some_repo.git"
    folder.mkdir()
    assert g.validate_repository_url(str(folder)) == str(folder)
    # URLs and paths alike: a space is one of the characters refused.
    (tmp_path / "some repo").mkdir()
    with pytest.raises(ValidationError, match="spaces"):
        g.validate_repository_url(str(tmp_path / "some repo"))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ext::sh -c touch% pwned", "transport helpers"),
        ("ext::sh", "transport helpers"),
        ("fd::17", "transport helpers"),
        ("file::/etc", "transport helpers"),
        ("https::example.com/repo", "transport helpers"),
        ("file:///etc", "file://"),
        ("FILE:///etc", "file://"),
        ("git://example.com/repo.git", "git://"),
        ("http://example.com/repo.git", "http://"),
        ("ftp://example.com/repo.git", "only https://"),
        ("HTTPS://example.com/repo.git", "lower case"),
        ("-oProxyCommand=x", "start with '-'"),
        ("--upload-pack=touch pwned", "start with '-'"),
        ("ssh://-oProxyCommand=x/repo", "not a valid host"),
        ("ssh://-oProxyCommand=x@host/repo", "user name"),
        ("https://user:s3cret@example.com/repo.git", "password"),
        ("ssh://git:pw@example.com/repo.git", "password"),
        ("https://example.com", "no path"),
        ("https://example.com/", "no path"),
        ("https:///repo.git", "no host"),
        ("https://exa_mple.com/repo.git", "not a valid host"),
        ("https://example.com:99999/repo.git", "not a valid URL"),
        ("https://example.com/repo.git?x=1", "query"),
        ("https://example.com/repo.git#main", "fragment"),
        ("https://example.com/my repo.git", "spaces"),
        ("https://example.com/repo.git\n", "control"),
        ("\thttps://example.com/repo.git", "control"),
        ("https://example.com/re\x00po.git", "control"),
        ("https://example.com/re\u202epo.git", "control"),
        ("relative/path", "absolute path"),
        ("./repo", "absolute path"),
        ("/no/such/directory/anywhere", "no directory"),
        ("example.com:acme/repo.git", "user@host:path"),
        ("git@example.com::repo", "user@host:path"),
        ("git@-example.com:repo", "user@host:path"),
        ("git@example.com:-oProxyCommand=x", "user@host:path"),
        ("", "Enter"),
        ("https://example.com/" + "x" * 3000, "at most"),
    ],
)
def test_url_refused(url, says):
    with pytest.raises(ValidationError) as caught:
        g.validate_repository_url(url)
    assert says in " ".join(caught.value.messages)


# --- clone and fetch -------------------------------------------------------------------------


def test_clone_local_path_makes_a_bare_clone_with_all_branches_and_tags(shared, shas):
    assert run_git("--git-dir", str(shared), "rev-parse", "--is-bare-repository") == "true"
    refs = run_git("--git-dir", str(shared), "for-each-ref", "--format=%(refname)").split()
    assert refs == ["refs/heads/feature", "refs/heads/main", "refs/tags/light", "refs/tags/v1.0"]
    # --no-local: nothing is shared with the source through hard links or alternates.
    assert not (shared / "objects" / "info" / "alternates").exists()


def test_clone_refuses_a_non_empty_destination(source, tmp_path):
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(g.GitError, match="already exists and is not empty"):
        g.clone(str(source[0]), dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_clone_into_an_empty_directory(source, tmp_path):
    dest = tmp_path / "empty"
    dest.mkdir()
    g.clone(str(source[0]), dest)
    assert (dest / "HEAD").is_file()


def test_failed_clone_leaves_nothing_behind(tmp_path):
    not_a_repo = tmp_path / "plain_folder"
    not_a_repo.mkdir()
    parent = tmp_path / "data"
    with pytest.raises(g.GitError, match=r"Could not clone .*plain_folder: .*does not exist"):
        g.clone(str(not_a_repo), parent / "x.git")
    assert list(parent.iterdir()) == []


@pytest.mark.parametrize(
    "url", ["ext::sh -c touch% pwned", "--upload-pack=touch pwned", "file:///etc", "fd::3"]
)
def test_clone_refuses_dangerous_urls_without_running_git(url, tmp_path, sentinel, git_runs):
    with pytest.raises(g.GitError):
        g.clone(url, tmp_path / "c.git")
    assert git_runs == []
    assert not sentinel.exists()
    assert not (tmp_path / "c.git").exists()


def test_clone_into_a_path_under_a_file_is_a_git_error(source, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(g.GitError, match="File system error"):
        g.clone(str(source[0]), blocker / "c.git")


def test_clone_from_an_unreachable_https_server(tmp_path):
    url = f"https://127.0.0.1:{closed_port()}/acme/billing.git"
    with pytest.raises(g.GitError, match=r"Could not clone https://127\.0\.0\.1.*connect"):
        g.clone(url, tmp_path / "c.git")
    assert not (tmp_path / "c.git").exists()


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client here")
def test_clone_from_an_unreachable_ssh_server(tmp_path):
    url = f"ssh://git@127.0.0.1:{closed_port()}/acme/billing.git"
    with pytest.raises(g.GitError, match="Connection refused"):
        g.clone(url, tmp_path / "c.git")


def test_clone_that_hangs_is_killed_at_the_timeout(tmp_path):
    # A server that completes the TCP handshake but never answers the TLS hello.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"https://127.0.0.1:{server.getsockname()[1]}/acme/billing.git"
        started = time.monotonic()
        with pytest.raises(g.GitError, match="did not finish within 1 seconds"):
            g.clone(url, tmp_path / "c.git", timeout=1.0)
        assert time.monotonic() - started < 10
    assert not (tmp_path / "c.git").exists()
    # The whole process tree went, including git-remote-https.
    leftover = subprocess.run(["pgrep", "-f", url], capture_output=True, text=True, check=False)
    assert leftover.stdout == ""


@pytest.fixture
def https_server_wanting_a_password(tmp_path, monkeypatch):
    """A real HTTPS server (trusted through GIT_SSL_CAINFO) that answers 401 to everything."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip

    class WantsPassword(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WantsPassword)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GIT_SSL_CAINFO", str(cert))
    yield f"https://127.0.0.1:{server.server_address[1]}/acme/private.git"
    server.shutdown()
    server.server_close()


def test_clone_never_waits_for_a_password(https_server_wanting_a_password, tmp_path):
    started = time.monotonic()
    with pytest.raises(g.GitError, match="Authentication failed"):
        g.clone(https_server_wanting_a_password, tmp_path / "c.git", timeout=20)
    assert time.monotonic() - started < 10


def test_fetch_picks_up_new_commits_and_prunes_deleted_branches(source, tmp_path):
    upstream = tmp_path / "upstream.git"
    run_git("clone", "--quiet", "--bare", str(source[0]), str(upstream))
    repo = tmp_path / "data" / "service.git"
    g.clone(str(upstream), repo)
    work = tmp_path / "work"
    run_git("clone", "--quiet", str(upstream), str(work))
    run_git("push", "--quiet", "origin", "main:short-lived", cwd=work)
    g.fetch(repo)
    assert g.resolve(repo, "short-lived") == g.resolve(repo, "main")

    write(work, "NEWS.md", "news\n")
    new = commit(work, "Add news", 7)
    run_git("push", "--quiet", "origin", "main", "main:refs/tags/v2.0", ":short-lived", cwd=work)
    g.fetch(repo)
    assert g.resolve(repo, "main") == new
    assert g.resolve(repo, "v2.0") == new
    with pytest.raises(g.GitError, match="No commit named 'short-lived'"):
        g.resolve(repo, "short-lived")


def test_fetch_keeps_tags_made_in_the_clone(repo, shas):
    g.tag_create(repo, "release-7", shas["c6"], "Shipped", "Rita", "rita@example.com")
    g.fetch(repo)
    assert g.resolve(repo, "release-7") == shas["c6"]


def test_fetch_refuses_a_tampered_origin_url(repo, sentinel):
    run_git("--git-dir", str(repo), "config", "remote.origin.url", "ext::sh -c touch% pwned")
    with pytest.raises(g.GitError, match=r"origin URL is not allowed.*transport helpers"):
        g.fetch(repo)
    assert not sentinel.exists()


def test_fetch_without_origin(repo):
    run_git("--git-dir", str(repo), "remote", "remove", "origin")
    with pytest.raises(g.GitError, match="has no origin remote"):
        g.fetch(repo)


def test_git_allow_protocol_is_enforced_by_git_itself(source, tmp_path):
    with pytest.raises(g.GitError, match="transport 'file' not allowed"):
        g._run(
            ["ls-remote", str(source[0])], git_dir=None, cwd=tmp_path, what="ls", protocols="https"
        )
    with pytest.raises(g.GitError, match="transport 'file' not allowed"):
        g._run(["ls-remote", str(source[0])], git_dir=None, cwd=tmp_path, what="ls")
    listed = g._run(
        ["ls-remote", str(source[0])], git_dir=None, cwd=tmp_path, what="ls", protocols="file"
    )
    assert b"refs/heads/main" in listed.stdout


# --- resolve ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        ("main", "c6"),
        ("HEAD", "c6"),
        ("refs/heads/main", "c6"),
        ("feature", "c3"),
        ("v1.0", "c2"),  # annotated: peeled to its commit
        ("light", "c4"),
    ],
)
def test_resolve_names(shared, shas, revision, expected):
    assert g.resolve(shared, revision) == shas[expected]


def test_resolve_short_and_full_shas(shared, shas):
    assert g.resolve(shared, shas["c3"][:7]) == shas["c3"]
    assert g.resolve(shared, shas["c4"]) == shas["c4"]
    assert g.resolve(str(shared), shas["c4"]) == shas["c4"]


@pytest.mark.parametrize("revision", ["nope", "0" * 40, "release/2099", "deadbeef12"])
def test_resolve_unknown(shared, revision):
    with pytest.raises(g.GitError, match=re.escape(f"No commit named '{revision}' in {shared}.")):
        g.resolve(shared, revision)


def test_resolve_a_tag_of_a_tree_says_so(repo, shas):
    tree = run_git("--git-dir", str(repo), "rev-parse", f"{shas['c1']}^{{tree}}")
    run_git("--git-dir", str(repo), "tag", "tree-tag", tree)
    with pytest.raises(g.GitError, match=r"Could not resolve 'tree-tag'.*dereferences to tree"):
        g.resolve(repo, "tree-tag")


@pytest.mark.parametrize(
    "revision",
    [
        "--upload-pack=touch pwned",
        "-c core.sshCommand=touch pwned",
        "-ccore.sshCommand=touch pwned",
        "--output=/tmp/x",
        "--output=pwned",
        "HEAD@{0}",
        "main@{1}",
        "@{-1}",
        "@",
        "main..evil",
        "main...evil",
        "refs/heads/../x",
        "main^{tree}",
        "main~1",
        "main^",
        ":/Drop",
        "main:README.md",
        "with space",
        "main\nevil",
        "main\n",
        "abcd\n",
        "main\revil",
        "main\tevil",
        "ma\x07in",
        "main\x00",
        "$(touch pwned)",
        "`touch pwned`",
        "main;touch pwned",
        ".hidden",
        "x.lock",
        "trailing/",
        "a//b",
        "-",
        "--",
        "x" * 300,
        "",
    ],
)
def test_resolve_refuses_injection_without_running_git(shared, revision, sentinel, git_runs):
    with pytest.raises(g.GitError):
        g.resolve(shared, revision)
    assert git_runs == []
    assert not sentinel.exists()


def test_resolve_passes_end_of_options(shared, git_runs):
    g.resolve(shared, "main")
    assert git_runs[0][:4] == ["rev-parse", "--verify", "--quiet", "--end-of-options"]


# --- broken repositories ---------------------------------------------------------------------


def test_vanished_repository(tmp_path, shas):
    gone = tmp_path / "gone.git"
    for call in (
        lambda: g.resolve(gone, "main"),
        lambda: g.fetch(gone),
        lambda: g.diff_stats(gone, shas["c1"], shas["c2"]),
        lambda: g.commit_log(gone, shas["c1"], shas["c2"]),
        lambda: g.worktree_add(gone, tmp_path / "wt", shas["c2"]),
        lambda: g.worktree_remove(gone, tmp_path / "wt"),
        lambda: g.tag_create(gone, "t", shas["c2"], "m", "n", "e@x"),
    ):
        with pytest.raises(g.GitError, match=re.escape(f"Repository {gone} does not exist.")):
            call()


@pytest.mark.parametrize("damage", ["HEAD", "objects", "refs"])
def test_clone_missing_a_vital_part(repo, damage):
    target = repo / damage
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(g.GitError, match=r"is not a usable git repository.*clone it again"):
        g.resolve(repo, "main")


def test_clone_missing_its_objects(repo, shas):
    for pack in (repo / "objects" / "pack").iterdir():
        pack.unlink()
    with pytest.raises(g.GitError, match=r"'main' points to object .* which is missing"):
        g.resolve(repo, "main")
    with pytest.raises(g.GitError, match="Could not compare"):
        g.diff_stats(repo, shas["c1"], shas["c2"])
    with pytest.raises(g.GitError, match="Could not list the commits"):
        g.commit_log(repo, shas["c1"], shas["c2"])


def test_a_plain_folder_is_not_a_repository(tmp_path):
    with pytest.raises(g.GitError, match="is not a usable git repository"):
        g.resolve(tmp_path, "main")


def test_missing_git_executable_is_a_git_error(shared, monkeypatch):
    monkeypatch.setattr(g._git_class(), "GIT_PYTHON_GIT_EXECUTABLE", "/no/such/git")
    with pytest.raises(g.GitError, match="No such file"):
        g.resolve(shared, "main")


def test_inherited_git_variables_do_not_leak_in(repo, shas, tmp_path, monkeypatch):
    decoy = tmp_path / "decoy"
    run_git("init", "--quiet", str(decoy))
    outer_index = tmp_path / "outer-index"
    monkeypatch.setenv("GIT_DIR", str(decoy / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(decoy))
    monkeypatch.setenv("GIT_INDEX_FILE", str(outer_index))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.hookspath'='/tmp'")
    assert g.resolve(repo, "main") == shas["c6"]
    dest = g.worktree_add(repo, tmp_path / "wt", shas["c2"])
    assert (dest / "src" / "cache.py").is_file()
    assert not outer_index.exists()
    g.worktree_remove(repo, dest)


# --- diff_stats ------------------------------------------------------------------------------


def test_diff_stats_rename_binary_space_unicode_merge(shared, shas):
    stats = sorted(g.diff_stats(shared, shas["c2"], shas["c6"]), key=lambda s: s.path)
    assert stats == [
        g.FileStat(path="README.md", status="D", added=0, removed=3),
        g.FileStat(path="assets/logo.bin", status="M", added=0, removed=0, binary=True),
        g.FileStat(path="docs/read me.txt", status="M", added=1, removed=0),
        g.FileStat(path=UNICODE_NAME, status="A", added=1, removed=0),
        g.FileStat(path="src/feature.py", status="A", added=5, removed=0),
        g.FileStat(path="src/store.py", status="R", added=1, removed=0, old_path="src/cache.py"),
    ]


def test_diff_stats_single_modification(shared, shas):
    assert g.diff_stats(shared, shas["c1"], shas["c2"]) == [
        g.FileStat(path="src/cache.py", status="M", added=2, removed=1)
    ]


def test_diff_stats_reverse_and_empty(shared, shas):
    back = {s.path: s for s in g.diff_stats(shared, shas["c6"], shas["c2"])}
    assert back["README.md"] == g.FileStat(path="README.md", status="A", added=3, removed=0)
    assert back["src/cache.py"].old_path == "src/store.py"
    assert g.diff_stats(shared, shas["c4"], shas["c4"]) == []


def test_diff_stats_paths_with_newlines_and_tabs(repo, source, tmp_path):
    work = tmp_path / "work"
    run_git("clone", "--quiet", str(source[0]), str(work))
    base = run_git("rev-parse", "HEAD", cwd=work)
    write(work, "odd\nname\t.txt", "a\nb\n")
    write(work, ":colon -dash.txt", "a\n")
    head = commit(work, "Odd names", 8)
    run_git("push", "--quiet", str(repo), "HEAD:refs/heads/odd", cwd=work)
    assert sorted(g.diff_stats(repo, base, head), key=lambda s: s.path) == [
        g.FileStat(path=":colon -dash.txt", status="A", added=1, removed=0),
        g.FileStat(path="odd\nname\t.txt", status="A", added=2, removed=0),
    ]


@pytest.mark.parametrize("bad", ["main", "HEAD", "--output=pwned", "abc123", "0" * 39, "G" * 40])
def test_diff_stats_and_commit_log_want_full_shas(shared, shas, bad, sentinel, git_runs):
    with pytest.raises(g.GitError, match="full commit SHA"):
        g.diff_stats(shared, bad, shas["c2"])
    with pytest.raises(g.GitError, match="full commit SHA"):
        g.commit_log(shared, shas["c1"], bad)
    assert git_runs == []
    assert not sentinel.exists()


def test_diff_stats_unknown_commit(shared, shas):
    with pytest.raises(g.GitError, match="Could not compare"):
        g.diff_stats(shared, "1" * 40, shas["c2"])


# --- commit_log ------------------------------------------------------------------------------


def test_commit_log_order_and_contents(shared, shas):
    log = g.commit_log(shared, shas["c2"], shas["c6"])
    assert [c.sha for c in log] == [shas["c6"], shas["c5"], shas["c4"], shas["c3"]]
    assert [c.subject for c in log] == [
        "Drop README",
        "Merge branch 'feature'",
        "Rename cache to store",
        "Add feature",
    ]
    assert log[3].author_name == "Zoë Dev"
    assert log[3].author_email == "zoe@example.com"
    assert log[0].author_name == "Ada Author"
    assert log[2].authored_at == datetime(2024, 1, 4, 10, 0, tzinfo=PLUS_ONE)
    assert log[2].authored_at.utcoffset() == timedelta(hours=1)


def test_commit_log_limit_and_empty(shared, shas):
    assert [c.sha for c in g.commit_log(shared, shas["c1"], shas["c6"], limit=2)] == [
        shas["c6"],
        shas["c5"],
    ]
    assert g.commit_log(shared, shas["c6"], shas["c6"]) == []
    assert g.commit_log(shared, shas["c6"], shas["c2"]) == []
    with pytest.raises(g.GitError, match="positive"):
        g.commit_log(shared, shas["c1"], shas["c6"], limit=0)


def test_commit_log_empty_message_and_odd_author(repo, source, tmp_path):
    work = tmp_path / "work"
    run_git("clone", "--quiet", str(source[0]), str(work))
    base = run_git("rev-parse", "HEAD", cwd=work)
    env = {"GIT_AUTHOR_DATE": "2024-02-01T08:30:00-05:00", "GIT_AUTHOR_NAME": 'O\'Brien, "Pat" Jr'}
    run_git(
        "commit", "--quiet", "--allow-empty", "--allow-empty-message", "-m", "", cwd=work, env=env
    )
    head = run_git("rev-parse", "HEAD", cwd=work)
    run_git("push", "--quiet", str(repo), "HEAD:refs/heads/empty", cwd=work)
    [entry] = g.commit_log(repo, base, head)
    assert entry == g.Commit(
        sha=head,
        subject="",
        author_name='O\'Brien, "Pat" Jr',
        author_email="ada@example.com",
        authored_at=datetime(2024, 2, 1, 8, 30, tzinfo=timezone(timedelta(hours=-5))),
    )


# --- worktrees -------------------------------------------------------------------------------


def registered(repo: Path) -> list[str]:
    listing = run_git("--git-dir", str(repo), "worktree", "list", "--porcelain")
    return [line[len("worktree ") :] for line in listing.splitlines() if line[:9] == "worktree "][
        1:
    ]


def test_worktree_add_and_remove(repo, shas, tmp_path):
    dest = g.worktree_add(repo, tmp_path / "work trees" / "run 1", shas["c2"])
    assert dest == (tmp_path / "work trees" / "run 1").resolve()
    assert (dest / "src" / "cache.py").is_file()
    assert not (dest / "src" / "store.py").exists()
    assert run_git("rev-parse", "HEAD", cwd=dest) == shas["c2"]
    assert run_git("symbolic-ref", "-q", "HEAD", cwd=dest, check=False) == ""  # detached
    assert registered(repo) == [str(dest)]

    (dest / "README.md").write_text("changed")
    (dest / "untracked.txt").write_text("scratch")
    g.worktree_remove(repo, dest)
    assert not dest.exists()
    assert registered(repo) == []
    g.worktree_remove(repo, dest)  # twice is fine


def test_worktree_remove_when_the_folder_already_vanished(repo, shas, tmp_path):
    dest = g.worktree_add(repo, tmp_path / "wt", shas["c4"])
    shutil.rmtree(dest)
    g.worktree_remove(repo, dest)
    assert registered(repo) == []


def test_worktree_remove_with_damaged_metadata(repo, shas, tmp_path):
    dest = g.worktree_add(repo, tmp_path / "wt", shas["c4"])
    admin = Path((dest / ".git").read_text().split(": ", 1)[1].strip())
    (admin / "gitdir").unlink()
    g.worktree_remove(repo, dest)
    assert not dest.exists()
    assert registered(repo) == []


def test_worktree_remove_leaves_foreign_folders_alone(repo, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("keep")
    g.worktree_remove(repo, foreign)
    assert (foreign / "keep.txt").read_text() == "keep"


def test_worktree_add_failures_leave_nothing(repo, shas, tmp_path):
    with pytest.raises(g.GitError, match="Could not check 111111111111 out"):
        g.worktree_add(repo, tmp_path / "wt", "1" * 40)
    assert not (tmp_path / "wt").exists()
    assert registered(repo) == []

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("keep")
    with pytest.raises(g.GitError, match="already exists"):
        g.worktree_add(repo, busy, shas["c2"])
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]

    with pytest.raises(g.GitError, match="full commit SHA"):
        g.worktree_add(repo, tmp_path / "wt", "main")
    with pytest.raises(g.GitError, match="control characters"):
        g.worktree_add(repo, tmp_path / "w\nt", shas["c2"])


def test_worktree_prune_stale(repo, shas, tmp_path):
    root = tmp_path / "worktrees"
    old = g.worktree_add(repo, root / "old", shas["c2"])
    fresh = g.worktree_add(repo, root / "fresh", shas["c2"])
    vanished = g.worktree_add(repo, root / "vanished", shas["c2"])
    orphan = g.worktree_add(repo, root / "orphan", shas["c2"])
    elsewhere = g.worktree_add(repo, tmp_path / "elsewhere", shas["c2"])
    unrelated = root / "unrelated"
    unrelated.mkdir()
    shutil.rmtree(vanished)
    # As after the clone was made again: the folder is there, git no longer knows it.
    shutil.rmtree(Path((orphan / ".git").read_text().split(": ", 1)[1].strip()))
    two_hours_ago = time.time() - 7200
    for path in (old, orphan, elsewhere, unrelated):
        os.utime(path, (two_hours_ago, two_hours_ago))

    removed = g.worktree_prune_stale(repo, root, older_than_seconds=3600)

    assert removed == sorted([old, orphan, vanished])
    assert not old.exists() and not orphan.exists()
    assert fresh.exists() and elsewhere.exists() and unrelated.exists()
    assert sorted(registered(repo)) == sorted([str(elsewhere), str(fresh)])
    assert g.worktree_prune_stale(repo, root, older_than_seconds=3600) == []
    for path in (fresh, elsewhere):
        g.worktree_remove(repo, path)


def test_worktree_prune_stale_with_missing_root(repo, tmp_path):
    assert g.worktree_prune_stale(repo, tmp_path / "nothing here", 60) == []


# --- tags ------------------------------------------------------------------------------------


def test_tag_create_makes_an_annotated_tag(repo, shas):
    message = "Ship the store rename\n\n#42 fixed: lower peak RSS"
    g.tag_create(repo, "release/2024.01", shas["c4"], message, "Rita Reviewer", "rita@example.com")
    assert run_git("--git-dir", str(repo), "cat-file", "-t", "refs/tags/release/2024.01") == "tag"
    assert g.resolve(repo, "release/2024.01") == shas["c4"]
    body = run_git("--git-dir", str(repo), "cat-file", "-p", "refs/tags/release/2024.01")
    assert "tagger Rita Reviewer <rita@example.com>" in body
    assert body.endswith(message)


def test_tag_create_refuses_an_existing_tag(repo, shas):
    with pytest.raises(g.GitError, match=re.escape(f"Tag 'v1.0' already exists in {repo}.")):
        g.tag_create(repo, "v1.0", shas["c6"], "again", "Rita", "rita@example.com")
    g.tag_create(repo, "v2.0", shas["c6"], "new", "Rita", "rita@example.com")
    with pytest.raises(g.GitError, match=r"Tag 'v2\.0' already exists"):
        g.tag_create(repo, "v2.0", shas["c5"], "moved", "Rita", "rita@example.com")
    assert g.resolve(repo, "v2.0") == shas["c6"]


@pytest.mark.parametrize(
    "name",
    [
        "-f",
        "--force",
        "v1 0",
        "a..b",
        "HEAD@{0}",
        "HEAD",
        "refs/heads/main",
        "deadbeef",
        "a.lock",
        "x/y.lock/z",
        "v1\n",
        "v1~1",
        "v1^",
        "v1:x",
        "",
    ],
)
def test_tag_create_refuses_bad_names_without_running_git(shared, shas, name, git_runs, sentinel):
    with pytest.raises(g.GitError):
        g.tag_create(shared, name, shas["c6"], "m", "Rita", "rita@example.com")
    assert git_runs == []
    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("tagger", "email", "message", "says"),
    [
        ("Eve\nEvil", "e@x", "m", "control"),
        ("", "e@x", "m", "name is required"),
        ("Eve", "<e@x>", "m", "'<' or '>'"),
        ("Eve", "e x@y", "m", "spaces"),
        ("Eve", "e@x", "  ", "needs a message"),
        ("Eve", "e@x", "a\x00b", "NUL"),
    ],
)
def test_tag_create_refuses_bad_details(shared, shas, tagger, email, message, says):
    with pytest.raises(g.GitError, match=says):
        g.tag_create(shared, "v9", shas["c6"], message, tagger, email)


def test_tag_create_on_an_unknown_commit(shared):
    with pytest.raises(g.GitError, match="No commit named"):
        g.tag_create(shared, "v9", "1" * 40, "m", "Rita", "rita@example.com")
