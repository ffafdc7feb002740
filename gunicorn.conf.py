"""gunicorn settings, from HOST, PORT and WEB_CONCURRENCY."""

import multiprocessing
import os
import shutil
import tempfile

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
worker_class = "sync"
timeout = 30
# On SIGTERM, workers finish the requests they are serving (up to this long) before exiting.
graceful_timeout = 30
# One line per request, not two: the app's JSON line (TICKETS_REQUEST_LOG=json, the default) or
# gunicorn's access log (=access), or none (=off).
accesslog = "-" if os.environ.get("TICKETS_REQUEST_LOG", "json").strip() == "access" else None
# Ticket ids are secrets and travel in paths and query strings: log the masked path only
# (set by tickets.http.logmask.MaskedPathMiddleware), never %(r)s, %(U)s or %(q)s.
access_log_format = '%(h)s "%(m)s %({tickets.masked_path}e)s" %(s)s %(b)s %(M)sms %({x-request-id}o)s'
# Every line of gunicorn's own logs (access, errors, "invalid request line") masks ticket ids too.
logger_class = "tickets.http.logmask.MaskingGunicornLogger"
# gunicorn's control socket defaults to one path per user, which two instances would fight over.
control_socket_disable = True
# Webhooks are delivered by one process beside the workers: gunicorn's "dirty" worker, running delivery.py.
dirty_apps = ["delivery:WebhookDelivery"]
dirty_workers = 1
# gunicorn keeps a file named after proc_name to kill a dirty worker left over by a crash: one name per
# address, so that two services on one machine never take each other's for a leftover.
proc_name = f"tickets-{bind}"

# Prometheus multiprocess mode: every worker writes its counts under one folder, which /metrics adds up.
# It must be set before the app (and prometheus_client) is imported in the workers, hence here.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tickets-metrics-")
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):
    """Start from zero: counts of an earlier run in the same folder would be added in."""
    for name in os.listdir(_metrics_dir):
        os.unlink(os.path.join(_metrics_dir, name))


def child_exit(server, worker):
    """Let prometheus-client drop a dead worker's live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def dirty_worker_exit(arbiter, worker):
    """The same for the webhook deliverer."""
    child_exit(arbiter, worker)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
