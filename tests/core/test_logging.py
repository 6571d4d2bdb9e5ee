"""Following one piece of work in the logs: JSON lines carry the request id, user, task,
measurement and change, a task carries the id of the request that started it into the worker's
log lines and audit entries, and a measurement's page shows its lines."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from apps.core.audit import audit_history
from apps.core.context import LogContextFilter
from apps.measurements.models import Measurement, MeasurementStatus

from ..measurements import conftest as measuring
from ..workers import wait_for

# A real measurement of the demo repository, as the measurement tests file one.
environment = measuring.environment
demo_project = measuring.demo_project
profile = measuring.profile
demo_change = measuring.demo_change

ROOT = Path(__file__).resolve().parents[2]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.config_independent
def test_json_lines_parse_and_carry_the_fields(tmp_path):
    code = (
        "import django, logging; django.setup()\n"
        "from apps.core.context import log_context\n"
        "with log_context(request_id='r-1', user='erin', task_id='t-1', measurement=7,"
        " change='FIX-3'):\n"
        "    logging.getLogger('fixledger.test').warning('step %s', 2)\n"
        "logging.getLogger('fixledger.test').warning('outside')\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "apps.settings",
        "FIXLEDGER_DATA_DIR": str(tmp_path),
        "LOG_FORMAT": "json",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    inside, outside = json_lines(out.stderr)
    assert inside["message"] == "step 2"
    assert inside["level"] == "WARNING"
    assert inside["logger"] == "fixledger.test"
    assert {k: inside[k] for k in ("request_id", "user", "task_id", "measurement", "change")} == {
        "request_id": "r-1",
        "user": "erin",
        "task_id": "t-1",
        "measurement": "7",
        "change": "FIX-3",
    }
    assert outside["request_id"] == "" and outside["measurement"] == ""


@pytest.mark.config_independent
def test_plain_lines_stay_the_default(tmp_path):
    code = "import django, logging; django.setup(); logging.getLogger('x').warning('hello')"
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "apps.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "FIXLEDGER_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stderr.strip().endswith("WARNING x [-] hello")


@pytest.fixture
def json_log():
    """The JSON lines that the production formatter writes for Django's request log."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    config = {k: v for k, v in settings.LOGGING["formatters"]["json"].items() if k != "()"}
    handler.setFormatter(JsonFormatter(**config))
    handler.addFilter(LogContextFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield lambda: json_lines(stream.getvalue())
    logger.removeHandler(handler)


def test_a_web_line_carries_the_request_id_and_user(as_user, engineer, json_log):
    as_user(engineer).get("/changes/FIX-999999/", HTTP_X_REQUEST_ID="trace-web-1")
    (line,) = json_log()
    assert line["request_id"] == "trace-web-1"
    assert line["user"] == engineer.username


def test_a_task_carries_its_requests_id_into_the_workers_log_and_audit(
    worker, as_user, engineer, demo_change, profile, environment, tmp_path
):
    started = worker(queues=(environment.queue,), env={"LOG_FORMAT": "json"})
    response = as_user(engineer).post(
        f"/changes/{demo_change.number}/measure/",
        {"profile": profile.pk},
        HTTP_X_REQUEST_ID="trace-task-1",
    )
    assert response.status_code in (200, 302)
    wait_for(
        lambda: Measurement.objects.get().status == MeasurementStatus.DONE,
        what="the measurement to finish",
        timeout=90,
    )
    # Its lines are stored when its task ends, after the reactions to its finish have run.
    wait_for(
        lambda: Measurement.objects.get().log_lines,
        what="the measurement's task to store its log",
        timeout=30,
    )
    measurement = Measurement.objects.get()
    measured = audit_history(demo_change).get(action="measured")
    assert measured.actor is None, "written by the worker"
    assert measured.request_id == "trace-task-1"
    lines = [
        line
        for line in json_lines(started.log_path.read_text())
        if line["request_id"] == "trace-task-1"
    ]
    assert lines, "the worker logged nothing under the request's id"
    assert {line["task_id"] for line in lines} != {""}, lines
    # The measurement keeps its own lines, and its page shows them.
    assert any(f"measurement {measurement.pk}: starting on" in x for x in measurement.log_lines)
    assert any("trace-task-1" in x for x in measurement.log_lines), "the plain lines name it"
    page = as_user(engineer).get(f"/measurements/{measurement.pk}/").content.decode()
    assert "Worker log," in page
    assert f"measurement {measurement.pk}: worker done" in page
    assert any(
        line["measurement"] == str(measurement.pk)
        and line["change"] == demo_change.number
        and line["user"] == engineer.username
        for line in lines
    ), lines
