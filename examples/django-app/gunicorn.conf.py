"""gunicorn settings, from the environment (the Kubernetes Deployment sets them)."""
import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("GUNICORN_WORKERS", str(min(4, multiprocessing.cpu_count() * 2 + 1))))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM (sent after the pod's preStop sleep) gunicorn stops accepting, lets requests in flight
# finish for up to graceful_timeout seconds, then exits. Keep it below the pod's
# terminationGracePeriodSeconds (drainSeconds + 30) minus the preStop sleep (drainSeconds).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The workers' heartbeat files: on a memory-backed tmpfs (the root filesystem is read-only, and a
# disk-backed /tmp can stall the heartbeat and get workers killed).
worker_tmp_dir = "/dev/shm"
