"""The context of the request that published a task travels with the task, in its headers: a
worker's log lines and audit entries carry the request id that started the work."""

from celery.signals import before_task_publish, task_postrun, task_prerun

from .context import current_user, log_context, request_id_var

# Message headers, named so no Celery header is shadowed.
REQUEST_ID_HEADER = "fixledger_request_id"
USER_HEADER = "fixledger_user"

# A task's open log context, closed when the task ends (prerun and postrun are separate calls).
_open: dict[str, object] = {}


@before_task_publish.connect
def _carry_context(sender=None, headers=None, **kwargs) -> None:
    if headers is None:
        return
    if request_id := request_id_var.get():
        headers.setdefault(REQUEST_ID_HEADER, request_id)
    if user := current_user():
        headers.setdefault(USER_HEADER, user)


@task_prerun.connect
def _enter_context(sender=None, task_id=None, task=None, **kwargs) -> None:
    request = task.request
    context = log_context(
        task_id=task_id,
        request_id=request.get(REQUEST_ID_HEADER) or None,
        user=request.get(USER_HEADER) or None,
    )
    context.__enter__()
    _open[task_id] = context


@task_postrun.connect
def _leave_context(sender=None, task_id=None, **kwargs) -> None:
    context = _open.pop(task_id, None)
    if context is not None:
        context.__exit__(None, None, None)
