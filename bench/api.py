"""The service's management API and token endpoint through requests: how the bench makes and deletes tickets."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests


class Api:
    """The service's API through requests, from several threads (tickets are made only this way)."""

    def __init__(self, base: str, client: dict):
        self.base = base
        self.client = client
        self.local = threading.local()
        self.token = self.client_token()

    def session(self) -> requests.Session:
        """This thread's own session (requests.Session is not shared between threads)."""
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def client_token(self) -> str:
        """A client-credentials access token for the bench's client."""
        answer = requests.post(
            f"{self.base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(self.client["client_id"], self.client["client_secret"]),
            timeout=30,
        )
        answer.raise_for_status()
        return answer.json()["access_token"]

    def headers(self) -> dict:
        """The bearer header of the client's token."""
        return {"Authorization": f"Bearer {self.token}"}

    def create(self, ticket_type: str, number: int) -> str:
        """POST one ticket, its properties numbered `number`; returns its id."""
        body = {
            "type": ticket_type,
            "properties": {"customer_id": f"bench-{number}", "conference_id": f"conf-{number}", "title": "Bench"},
        }
        answer = self.session().post(f"{self.base}/ticket", json=body, headers=self.headers(), timeout=60)
        if answer.status_code != 200:
            raise RuntimeError(f"POST /ticket answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()["id"]

    def delete(self, ticket_id: str) -> None:
        """DELETE one ticket; one already gone is fine."""
        answer = self.session().delete(f"{self.base}/ticket/{ticket_id}", headers=self.headers(), timeout=60)
        if answer.status_code not in (204, 404):  # 404: a single-use ticket already used
            raise RuntimeError(f"DELETE /ticket answered {answer.status_code}: {answer.text[:300]}")

    def create_many(self, ticket_type: str, count: int, workers: int, start: int = 0) -> tuple[list[str], float]:
        """`count` new tickets, made in parallel; returns their ids and the tickets per second."""
        if count <= 0:
            return [], 0.0
        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            ids = list(pool.map(lambda n: self.create(ticket_type, n), range(start, start + count)))
        return ids, count / (time.monotonic() - started)

    def list_page(self, page_size: int) -> tuple[list[dict], dict]:
        """GET /ticket?page_size=N: the page's tickets and the X-Pagination header's JSON."""
        answer = self.session().get(
            f"{self.base}/ticket", params={"page_size": page_size}, headers=self.headers(), timeout=60
        )
        if answer.status_code != 200:
            raise RuntimeError(f"GET /ticket answered {answer.status_code}: {answer.text[:300]}")
        return answer.json(), json.loads(answer.headers.get("X-Pagination", "{}"))

    def delete_many(self, ids: list[str], workers: int) -> None:
        """DELETE these tickets in parallel."""
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(self.delete, ids))
