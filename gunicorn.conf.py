"""gunicorn settings, from HOST, PORT and WEB_CONCURRENCY."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
worker_class = "sync"
timeout = 30
graceful_timeout = 30
accesslog = "-"
# Ticket ids are secrets and travel in paths and query strings: log the masked path only
# (set by tickets.logmask.MaskedPathMiddleware), never %(r)s, %(U)s or %(q)s.
access_log_format = '%(h)s "%(m)s %({tickets.masked_path}e)s" %(s)s %(b)s %(M)sms'
# gunicorn's control socket defaults to one path per user, which two instances would fight over.
control_socket_disable = True
