"""The production deployment: `check --deploy` is clean under production settings, every
environment variable is documented in deploy/env.example, and the deploy files agree with the
settings they depend on.

Settings are read once per process, so each configuration is checked in a fresh `manage.py`
subprocess with an environment built from scratch and a private FIXLEDGER_DATA_DIR.
"""

import ast
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

pytestmark = pytest.mark.config_independent

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / "env.example"
NGINX = DEPLOY / "nginx.conf.template"
GUIDE = DEPLOY / "README.md"
# The files whose variables env.example must document.
ENV_READERS = [ROOT / "apps" / "settings.py", DEPLOY / "gunicorn.conf.py"]
ENV_HELPERS = {"env_str", "env_bool", "env_int", "env_list"}
# A variable line of env.example: `NAME=value`, or `#NAME=default` for an optional one.
# Prose comments start with "# ", so they never look like variables.
ENV_LINE = re.compile(r"^(#?)([A-Z][A-Z0-9_]*)=(.*)$")
CHECK_ID = re.compile(r"\(([a-z_]+\.[CEW]\d+)\)")
NO_ISSUES = "System check identified no issues (0 silenced)."

# What DESIGN.md calls production: PostgreSQL, Redis, https behind a proxy.
PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "fixledger.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_COOKIES": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "BEHIND_PROXY": "true",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/fl_deploy",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
}


def manage(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    # Nothing inherited but what Python needs: a DATABASE_URL or DEBUG in the caller's
    # environment must not leak into "production" or "embedded defaults".
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "apps.settings",
            "FIXLEDGER_DATA_DIR": str(data_dir),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def check_deploy(data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    return manage(data_dir, "check", "--deploy", "--fail-level", "WARNING", **env)


def random_secret_key() -> str:
    return secrets.token_urlsafe(50)


def env_example_lines() -> list[tuple[bool, str, str]]:
    """(optional, name, value) for each variable line of deploy/env.example."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := ENV_LINE.match(line):
            lines.append((match[1] == "#", match[2], match[3]))
    return lines


def _is_os_environ(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def variables_read(path: Path) -> set[str]:
    """Names read through the env_* helpers, os.environ[...], os.environ.get() or os.getenv()."""
    tree = ast.parse(path.read_text(), filename=str(path))
    helper_bodies = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name in ENV_HELPERS
        for inner in ast.walk(node)
    }
    names, unreadable = set(), []
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            key = node.slice
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            if (
                (isinstance(func, ast.Name) and func.id in ENV_HELPERS)
                or (isinstance(func, ast.Attribute) and _is_os_environ(func.value))
                or (
                    isinstance(func, ast.Attribute)
                    and func.attr == "getenv"
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "os"
                )
            ):
                key = node.args[0]
        if key is None:
            continue
        if (name := _literal(key)) is not None:
            names.add(name)
        elif id(node) not in helper_bodies:
            unreadable.append(f"{path.name}:{node.lineno}")
    # A computed name would slip past the documentation check below.
    assert not unreadable, f"variable names that are not string literals: {unreadable}"
    return names


# --- (a) production settings pass `check --deploy` --------------------------------------------


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    result = check_deploy(tmp_path, SECRET_KEY=random_secret_key(), **PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert NO_ISSUES in result.stdout
    assert "WARNING" not in result.stderr + result.stdout


def test_env_example_is_production_ready_once_the_secret_key_is_set(tmp_path):
    shipped = {name: value for optional, name, value in env_example_lines() if not optional}
    shipped["FIXLEDGER_DATA_DIR"] = str(tmp_path)

    as_shipped = check_deploy(tmp_path, **shipped)
    # The placeholder key is refused, and nothing else is wrong with the file.
    assert as_shipped.returncode == 1
    assert set(CHECK_ID.findall(as_shipped.stderr)) == {"security.W009"}

    with_key = check_deploy(tmp_path, **{**shipped, "SECRET_KEY": random_secret_key()})
    assert with_key.returncode == 0, with_key.stderr
    assert NO_ISSUES in with_key.stdout


# --- (b) the embedded default is not production, and the check says so -------------------------


def test_check_deploy_reports_the_embedded_defaults(tmp_path):
    result = check_deploy(tmp_path)

    assert result.returncode == 1
    reported = set(CHECK_ID.findall(result.stderr))
    # HSTS, https redirect, secure session and CSRF cookies: what the production variables fix.
    assert {"security.W004", "security.W008", "security.W012", "security.W016"} <= reported


# --- (c) deploy/env.example documents exactly the variables that are read ----------------------


def test_every_variable_read_is_in_env_example_and_none_is_stale():
    read = set().union(*(variables_read(path) for path in ENV_READERS))
    documented = [name for _optional, name, _value in env_example_lines()]

    # The parser found the obvious ones, so an empty result cannot pass by accident.
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "PORT"} <= read
    assert sorted(read - set(documented)) == [], "read but missing from deploy/env.example"
    assert sorted(set(documented) - read) == [], "in deploy/env.example but read nowhere"
    assert len(documented) == len(set(documented)), "listed twice in deploy/env.example"


def test_every_variable_in_env_example_has_a_comment_with_its_default():
    undocumented, comment = [], []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := ENV_LINE.match(line):
            if not any("Default" in text for text in comment):
                undocumented.append(match[2])
            comment = []
        elif line.startswith("# "):
            comment.append(line)
        else:
            comment = []
    assert undocumented == []


# --- (d) a bad value stops the process with a message naming the variable ---------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG must be a boolean (true/false), not 'maybe'"),
        ("DATABASE_CONN_MAX_AGE", "abc", "DATABASE_CONN_MAX_AGE must be an integer, not 'abc'"),
    ],
)
def test_a_bad_value_fails_with_a_clear_message(tmp_path, name, value, message):
    result = manage(tmp_path, "check", **{name: value})

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == f"django.core.exceptions.ImproperlyConfigured: {message}"


# --- the deploy files agree with the settings -----------------------------------------------


def test_nginx_body_limit_matches_max_request_bytes():
    if "MAX_REQUEST_BYTES" in os.environ:
        pytest.skip("compares with the default of MAX_REQUEST_BYTES")
    size = re.search(r"client_max_body_size\s+(\d+)([km]?);", NGINX.read_text())
    assert size, "deploy/nginx.conf.template sets no client_max_body_size"
    # nginx's units are binary: 1m is 1024 * 1024 bytes.
    nginx_bytes = int(size[1]) * {"": 1, "k": 1024, "m": 1024 * 1024}[size[2]]
    assert nginx_bytes == settings.MAX_REQUEST_BYTES == 10 * 1024 * 1024
    # Django's own limits follow the one setting.
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == settings.MAX_REQUEST_BYTES
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE == settings.MAX_REQUEST_BYTES


def test_gunicorn_and_nginx_refuse_the_same_headers():
    namespace: dict = {}
    exec((DEPLOY / "gunicorn.conf.py").read_text(), namespace)  # noqa: S102 - our own file
    buffers = re.search(r"large_client_header_buffers\s+(\d+)\s+(\d+)k;", NGINX.read_text())
    assert buffers, "deploy/nginx.conf.template sets no large_client_header_buffers"
    # nginx fits a request line or header field, CRLF included, in one buffer.
    line_bytes = int(buffers[2]) * 1024 - 2
    assert namespace["limit_request_line"] == line_bytes
    assert namespace["limit_request_field_size"] == line_bytes
    assert namespace["limit_request_fields"] >= 50


def test_nginx_serves_static_files_from_where_collectstatic_puts_them():
    data_dirs = {
        "env.example": {n: v for _o, n, v in env_example_lines()}["FIXLEDGER_DATA_DIR"],
        "Dockerfile": re.search(r"FIXLEDGER_DATA_DIR=(\S+)", (DEPLOY / "Dockerfile").read_text())[
            1
        ],
        "nginx.conf.template": re.search(
            r"location /static/ \{\s*root ([^;]+);", NGINX.read_text()
        )[1],
    }
    assert len(set(data_dirs.values())) == 1, data_dirs
    # With `root`, nginx maps /static/x to <root>/static/x: STATIC_ROOT must be <data dir>/static.
    assert settings.STATIC_URL.strip("/") == "static"
    assert settings.STATIC_ROOT.name == "static"
    default = settings.BASE_DIR / "var"
    assert (
        settings.STATIC_ROOT.parent == Path(os.environ.get("FIXLEDGER_DATA_DIR", default)).resolve()
    )


def test_compose_keeps_gunicorn_private_and_feeds_the_default_queue():
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]

    assert {"postgres", "redis", "web", "worker", "beat", "nginx"} <= services.keys()
    # BEHIND_PROXY trusts X-Forwarded-Proto, so only nginx may talk to gunicorn.
    assert "ports" not in services["web"]
    assert "http://127.0.0.1:8000/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    worker = services["worker"]["command"]
    assert worker[worker.index("--queues") + 1] == settings.CELERY_TASK_DEFAULT_QUEUE
    for name in ("web", "worker", "beat", "migrate"):
        assert services[name]["env_file"] == "fixledger.env"


def test_systemd_units_read_the_environment_file():
    units = sorted((DEPLOY / "systemd").glob("*.service"))

    assert [unit.name for unit in units] == [
        "fixledger-beat.service",
        "fixledger-web.service",
        "fixledger-worker@.service",
    ]
    for unit in units:
        assert "EnvironmentFile=/etc/fixledger/fixledger.env" in unit.read_text(), unit.name
    assert "--queues %i" in (DEPLOY / "systemd" / "fixledger-worker@.service").read_text()


# --- the operator's guide and the nginx template ------------------------------------------------

# The guide's command that renders the template: envsubst with the names it may replace.
ENVSUBST = re.compile(r"envsubst '([^']+)'\s*\\?\s*<\s*deploy/nginx\.conf\.template")
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def guide_envsubst_names() -> list[str]:
    match = ENVSUBST.search(GUIDE.read_text())
    assert match, "deploy/README.md does not render deploy/nginx.conf.template with envsubst"
    return [name.lstrip("$") for name in match[1].split()]


def render_nginx(values: dict[str, str]) -> str:
    """The template as the guide's envsubst command renders it."""
    names = " ".join(f"${name}" for name in guide_envsubst_names())
    result = subprocess.run(
        ["envsubst", names],
        input=NGINX.read_text(),
        env={"PATH": os.environ["PATH"], **values},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_the_guide_compose_and_the_template_name_the_same_values():
    placeholders = set(PLACEHOLDER.findall(NGINX.read_text()))
    nginx = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["nginx"]
    environment = dict(nginx["environment"])
    only = re.compile(environment.pop("NGINX_ENVSUBST_FILTER"))

    assert placeholders == {"FIXLEDGER_SERVER_NAME", "FIXLEDGER_UPSTREAM", "FIXLEDGER_TLS_DIR"}
    assert set(guide_envsubst_names()) == placeholders
    assert set(environment) == placeholders
    # The image's envsubst replaces only what the filter lets through: nginx's own $host,
    # $request_id and the like must stay.
    assert all(only.search(name) for name in placeholders)
    assert not any(only.search(name) for name in ("host", "request_id", "HOSTNAME", "PATH"))
    assert environment["FIXLEDGER_UPSTREAM"] == "web:8000"


def test_the_rendered_nginx_config_keeps_nginx_variables_and_has_a_catch_all_server():
    config = render_nginx(
        {
            "FIXLEDGER_SERVER_NAME": "fixledger.test",
            "FIXLEDGER_UPSTREAM": "127.0.0.1:8000",
            "FIXLEDGER_TLS_DIR": "/etc/letsencrypt/live/fixledger.test",
        }
    )
    assert "${" not in config
    assert config.count("server_name fixledger.test;") == 2
    assert "server 127.0.0.1:8000;" in config
    assert "ssl_certificate     /etc/letsencrypt/live/fixledger.test/fullchain.pem;" in config
    # The browser's Host with its port, so CSRF checks pass on a port other than 443.
    assert "proxy_set_header Host $http_host;" in config
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in config
    assert "$request_id;" in config and "$scheme;" in config

    servers = re.split(r"^server \{", config, flags=re.MULTILINE)[1:]
    defaults = [block for block in servers if "default_server" in block]
    assert len(defaults) == 1, "one catch-all server, for every listen address"
    (catch_all,) = defaults
    for listen in ("listen 80 default_server;", "listen 443 ssl default_server;"):
        assert listen in catch_all
    # No answer, and no certificate shown, to a host name that is not ours.
    assert "return 444;" in catch_all and "ssl_reject_handshake on;" in catch_all
    assert "proxy_pass" not in catch_all


def git_ignores(path: str) -> bool:
    """Whether git ignores `path`, a file or a folder (whose files are then ignored)."""
    return any(
        subprocess.run(["git", "check-ignore", "--quiet", candidate], cwd=ROOT).returncode == 0
        for candidate in (path, f"{path.rstrip('/')}/file")
    )


def test_the_guide_names_files_that_exist_and_edits_none_that_git_tracks():
    guide = GUIDE.read_text()
    named = set(re.findall(r"\b((?:deploy|tests|apps)/[\w./@-]*[\w/])", guide))
    assert {"deploy/nginx.conf.template", "tests/core/test_backup.py"} <= named
    # What the operator creates (secrets, certificates) is kept out of git instead.
    missing = [p for p in named if not (ROOT / p).exists() and not git_ignores(p)]
    assert missing == [], "deploy/README.md names files that are not there"
    table = re.findall(r"^\| `([^`]+)` \|", guide, flags=re.MULTILINE)
    assert "nginx.conf.template" in table
    assert [name for name in table if not (DEPLOY / name).exists()] == []
    # In-place edits of the checkout conflict with the next `git pull`.
    assert not re.search(r"sed -i[^\n]*deploy/", guide)
    assert not re.search(r"\bsudo (?!-i)", guide), "the guide runs as root and never needs sudo"


def test_build_output_and_secrets_are_not_tracked():
    for path in ("build/lib/apps/settings.py", "deploy/fixledger.env", "deploy/certs/privkey.pem"):
        assert git_ignores(path), path
