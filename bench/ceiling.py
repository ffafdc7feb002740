"""The ceiling: a bare Flask endpoint returning a small JSON object, served by the same gunicorn.conf.py.

`gunicorn -c gunicorn.conf.py --pythonpath bench ceiling:app` (bench/run.py starts it).
"""

from flask import Flask

app = Flask(__name__)


@app.get("/ping")
def ping():
    return {"status": "ok"}
