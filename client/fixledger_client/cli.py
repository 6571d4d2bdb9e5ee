"""`fixledger file` and `fixledger measure`: file a change, measure it, gate CI on the verdict."""

import argparse
import json
import os
import shutil
import sys
import time
from typing import Any

from . import __version__
from .api import Api, ApiError
from .report import (
    FAIL_ON_CHOICES,
    FINISHED,
    OK,
    USAGE,
    Outcome,
    change_text,
    judge,
    markdown,
)

EXIT_CODES = """\
exit codes:
  0  measured, and nothing that --fail-on names went wrong
  1  a gating or critical metric regressed (--fail-on regressed), or the change's expected
     result was not met (--fail-on expectation)
  2  no answer: a gating or critical metric inconclusive, the expected result neither met
     nor missed (--fail-on expectation), the measurement failed or was cancelled, or it was
     still running at --timeout
  3  usage or connection error: bad arguments, no or a refused token (401/403), an unknown
     change or profile, a request the server refused, the server unreachable
"""

ENVIRONMENT = """\
environment:
  FIXLEDGER_URL    the server, e.g. https://fixledger.example.com (or --url)
  FIXLEDGER_TOKEN  an API token: your name -> API tokens on the server (or --token)
"""


class UsageError(Exception):
    """Exit 3 with this message."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None, help="the server (default: $FIXLEDGER_URL)")
    common.add_argument("--token", default=None, help="an API token (default: $FIXLEDGER_TOKEN)")
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    parser = argparse.ArgumentParser(
        prog="fixledger",
        description="File changes in fixledger and measure them, from CI or a terminal.",
        epilog=ENVIRONMENT + "\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    filing = commands.add_parser(
        "file",
        parents=[common],
        help="file a change; prints its number (e.g. FIX-12)",
        description="File a change and print its number (e.g. FIX-12) on stdout.",
        epilog=ENVIRONMENT + "\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    filing.add_argument("--project", required=True, help="the project's slug, e.g. demo")
    filing.add_argument("--title", required=True)
    filing.add_argument("--before", required=True, help="the before revision: SHA, branch or tag")
    filing.add_argument("--after", required=True, help="the after revision: SHA, branch or tag")
    filing.add_argument(
        "--expected", required=True, help='the expected result, e.g. "peak RSS -20 %%"'
    )
    filing.add_argument("--reason", default="", help="why the change is made")
    filing.add_argument("--owner", default=None, help="a user name (reviewers and admins only)")
    filing.add_argument("--tag", action="append", default=[], dest="tags", help="repeatable")

    measuring = commands.add_parser(
        "measure",
        parents=[common],
        help="measure a change under a profile; with --wait, exit on the verdict",
        description=(
            "Measure a change before and after under one of its project's profiles. "
            "With --wait, show progress on stderr until the verdict and exit on it."
        ),
        epilog=ENVIRONMENT + "\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    measuring.add_argument("change", help="the change: FIX-12 or 12")
    measuring.add_argument(
        "--profile", required=True, help="the profile's name within the change's project, or id"
    )
    measuring.add_argument(
        "--wait", action="store_true", help="wait for the verdict and exit on it (see below)"
    )
    measuring.add_argument(
        "--fail-on",
        default="regressed",
        help="what fails the job (exit 1), comma-separated: regressed, expectation, or none "
        "(default: regressed)",
    )
    measuring.add_argument(
        "--summary",
        metavar="FILE",
        default=None,
        help="append a Markdown summary to FILE (e.g. $GITHUB_STEP_SUMMARY)",
    )
    measuring.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds to wait in all, revisions and measurement (default 3600); "
        "exit 2 if it is still running then",
    )
    measuring.add_argument(
        "--interval", type=float, default=2.0, help="seconds between polls (default 2)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits 2 on bad arguments; 2 means "no answer" here.
        return USAGE if exc.code not in (0, None) else OK
    try:
        api = _api(args)
        if args.command == "file":
            return _file(api, args)
        return _measure(api, args)
    except (UsageError, ApiError) as exc:
        print(f"fixledger: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return 130  # as a shell reports Ctrl-C; the measurement goes on on the server


def _api(args: argparse.Namespace) -> Api:
    url = args.url or os.environ.get("FIXLEDGER_URL", "")
    token = args.token or os.environ.get("FIXLEDGER_TOKEN", "")
    if not url:
        raise UsageError("no server: set FIXLEDGER_URL or pass --url")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"{url} is not an http:// or https:// URL")
    if not token:
        raise UsageError("no token: set FIXLEDGER_TOKEN or pass --token")
    return Api(url, token)


def _file(api: Api, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "project": args.project,
        "title": args.title,
        "base_revision": args.before,
        "head_revision": args.after,
        "expected_result": args.expected,
        "reason": args.reason or f"Filed from CI: {args.before} → {args.after}.",
        "tags": args.tags,
    }
    if args.owner:
        body["owner"] = args.owner
    _status, change = api.post("/api/changes/", body)
    if args.json:
        print(json.dumps(change, indent=2))
    else:
        print(change["number"])
        print(f"filed {change['number']}: {change.get('url', '')}", file=sys.stderr)
    return OK


def _fail_on(text: str) -> set[str]:
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = names - set(FAIL_ON_CHOICES)
    if unknown or not names:
        raise UsageError(
            f"--fail-on takes {', '.join(FAIL_ON_CHOICES)} (comma-separated), not {text!r}"
        )
    return names - {"none"}


def _measure(api: Api, args: argparse.Namespace) -> int:
    fail_on = _fail_on(args.fail_on)
    if args.summary and not args.wait:
        raise UsageError("--summary needs --wait: the summary is of the verdict")
    deadline = time.monotonic() + args.timeout
    change = _get_change(api, args.change)
    profile = _find_profile(api, change["project"], args.profile)
    change = _resolved(api, change, deadline=deadline, interval=args.interval)
    measurement = _running(api, change, profile)
    if measurement is not None:
        note = "already measuring: waiting for that measurement"
    else:
        status, measurement = api.post(
            "/api/measurements/", {"change": change["number"], "profile": profile["id"]}
        )
        note = measurement.get("detail") if status == 202 else None
    page = api.absolute(f"/measurements/{measurement['id']}/")
    print(
        f"measuring {change['number']} with {profile['name']!r}: {page}"
        + (f" ({note})" if note else ""),
        file=sys.stderr,
    )
    if not args.wait:
        if args.json:
            print(json.dumps({"change": change, "measurement": measurement}, indent=2))
        else:
            print(measurement["id"])
        return OK
    measurement = _wait(api, measurement, deadline=deadline, interval=args.interval)
    outcome = judge(measurement, fail_on, expected=change.get("expected_result", ""))
    if args.summary:
        text = markdown(
            change=change,
            profile=profile,
            measurement=measurement,
            outcome=outcome,
            measurement_url=page,
        )
        with open(args.summary, "a", encoding="utf-8") as summary:
            summary.write(text)
    if args.json:
        result = {
            "change": change,
            "profile": {"id": profile["id"], "name": profile["name"]},
            "measurement": measurement,
            "measurement_url": page,
            "outcome": outcome.headline,
            "reasons": outcome.reasons,
            "exit_code": outcome.code,
        }
        print(json.dumps(result, indent=2))
    else:
        _print_results(change, measurement, outcome)
    return outcome.code


def _get_change(api: Api, key: str) -> dict[str, Any]:
    try:
        return api.get(f"/api/changes/{key.strip()}/")
    except ApiError as exc:
        if exc.status == 404:
            raise UsageError(f"no change {key}: give its number (FIX-12) or id") from None
        raise


def _find_profile(api: Api, project: str, wanted: str) -> dict[str, Any]:
    """The profile named `wanted` in `project`, or with that id."""
    if wanted.isdigit():
        try:
            profile = api.get(f"/api/profiles/{wanted}/")
        except ApiError as exc:
            if exc.status == 404:
                raise UsageError(f"no profile with id {wanted}") from None
            raise
        if profile["project"] != project:
            raise UsageError(f"profile {wanted} measures {profile['project']}, not {project}")
        return profile
    found = api.get("/api/profiles/", project__slug=project, name=wanted)
    matches = found["results"] if isinstance(found, dict) else found
    if not matches:
        names = api.get("/api/profiles/", project__slug=project, page_size=200)
        names = [p["name"] for p in (names["results"] if isinstance(names, dict) else names)]
        known = ", ".join(repr(n) for n in names) or "none"
        raise UsageError(f"no profile {wanted!r} in project {project} (it has: {known})")
    return matches[0]


def _resolved(api: Api, change: dict[str, Any], *, deadline: float, interval: float) -> dict:
    """The change once its revisions are resolved; a worker may have to fetch them first."""
    told = False
    while not (change.get("base_sha") and change.get("head_sha")):
        if not change.get("revisions_pending"):
            why = change.get("revision_error") or "its before and after revisions are not set"
            raise UsageError(f"{change['number']} cannot be measured: {why}")
        if time.monotonic() > deadline:
            raise UsageError(
                f"{change['number']}: its revisions were still unresolved at --timeout"
            )
        if not told:
            print(f"{change['number']}: {change.get('revision_error')}", file=sys.stderr)
            told = True
        time.sleep(interval)
        change = _poll(api, f"/api/changes/{change['number']}/", deadline=deadline)
    return change


def _running(api: Api, change: dict, profile: dict) -> dict | None:
    """The profile's unfinished measurement of the change's current revisions, if any: a job
    run again (after a cancelled run, say) waits for it rather than being refused."""
    for status in ("running", "queued"):
        found = api.get(
            "/api/measurements/", change=change["id"], profile=profile["id"], status=status
        )
        for measurement in found["results"] if isinstance(found, dict) else found:
            if (measurement["base_sha"], measurement["head_sha"]) == (
                change["base_sha"],
                change["head_sha"],
            ):
                return measurement
    return None


def _poll(api: Api, path: str, *, deadline: float) -> dict[str, Any]:
    """GET `path`, waiting out a server that is briefly away (a restart) until the deadline."""
    while True:
        try:
            return api.get(path)
        except ApiError as exc:
            if not exc.transient or time.monotonic() > deadline:
                raise
            print(f"fixledger: {exc} Trying again.", file=sys.stderr)
            time.sleep(5)


def _wait(api: Api, measurement: dict, *, deadline: float, interval: float) -> dict:
    progress = Progress()
    path = f"/api/measurements/{measurement['id']}/"
    while measurement.get("status") not in FINISHED and time.monotonic() < deadline:
        progress.show(measurement)
        time.sleep(interval)
        measurement = _poll(api, path, deadline=deadline)
    progress.show(measurement)
    progress.end()
    return measurement


class Progress:
    """Percent and phase on stderr: one redrawn bar on a terminal, else a line per change."""

    WIDTH = 30

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.last = None

    def show(self, m: dict[str, Any]) -> None:
        percent = m.get("percent_done") or 0
        phase = m.get("phase") or m.get("status", "")
        if m.get("status") == "queued":
            phase = "queued: waiting for a worker"
        line = f"{percent:3d} % {m.get('runs_done', 0)}/{m.get('runs_planned', 0)} runs, {phase}"
        if line == self.last:
            return
        self.last = line
        if self.tty:
            filled = round(self.WIDTH * percent / 100)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            # One line narrower than the terminal: a wrapped line cannot be redrawn with \r.
            room = max(shutil.get_terminal_size().columns - self.WIDTH - 4, 10)
            sys.stderr.write(f"\r[{bar}] {line[:room]:<{room}}")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty and self.last is not None:
            sys.stderr.write("\n")


def _print_results(change: dict, measurement: dict, outcome: Outcome) -> None:
    for r in measurement.get("results") or []:
        label = r.get("label") or r.get("metric")
        print(f"{label:<18} {r.get('verdict', ''):<22} {change_text(r)}  [{r.get('role', '')}]")
    if measurement.get("expectation"):
        print(f"expected {change.get('expected_result')!r}: {measurement['expectation']}")
    print(f"{change['number']}: {outcome.headline}")
    for reason in outcome.reasons:
        print(f"  {reason}")
