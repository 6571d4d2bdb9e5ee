"""gunicorn settings, from the environment like everything else."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# gunicorn's control socket defaults to one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn), so
# a second instance on the host would take over the first one's. Each instance keeps its own
# beside its data (gunicorn runs in the checkout, whose var/ is the default), named by its port.
control_socket = os.path.join(
    os.environ.get("FIXLEDGER_DATA_DIR", "var"), f"gunicorn-{os.environ.get('PORT', '8000')}.ctl"
)
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 10
accesslog = "-"
# Behind nginx every connection comes from 127.0.0.1: the log shows the forwarded chain
# (nginx appends the address it saw) and the request id both logs share.
access_log_format = (
    '%({x-forwarded-for}i)s %(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}i)s'
)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Header limits equal to nginx's large_client_header_buffers (deploy/nginx.conf.template): 8190
# bytes per request line or header field is gunicorn's maximum and one 8k buffer less its line
# end.
# Bodies are bounded by the app (MAX_REQUEST_BYTES) and nginx's client_max_body_size.
limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 100
