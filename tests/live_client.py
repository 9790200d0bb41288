"""A live-updates reader for tests: an httpx stream read on a thread of its own, parsed
into Server-Sent Events as they arrive."""

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.waiting import wait_for


@dataclass
class Event:
    id: str | None
    data: dict[str, Any]


@dataclass
class LiveReader:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    status: int | None = None
    content_type: str = ""
    ended: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "LiveReader":
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(30, read=None)) as client,
                client.stream("GET", self.url, headers=self.headers) as response,
            ):
                self.status = response.status_code
                self.content_type = response.headers.get("content-type", "")
                if response.status_code != 200:
                    response.read()
                    return
                self._parse(response)
        except httpx.TransportError:
            pass  # the server went away: the reader ends, as a browser's would
        finally:
            self.ended.set()

    def _parse(self, response: httpx.Response) -> None:
        event_id: str | None = None
        data: list[str] = []
        for line in response.iter_lines():
            if self._stop.is_set():
                return
            if line == "":
                if data:
                    self.events.append(Event(event_id, json.loads("\n".join(data))))
                event_id, data = None, []
            elif line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line.startswith("retry:"):
                self.retry.append(int(line.split(":", 1)[1]))
            elif line.startswith("id:"):
                event_id = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line.split(":", 1)[1].strip())

    def close(self) -> None:
        """Stop reading (at the next line: keep-alives come often in tests) and hang up."""
        self._stop.set()
        wait_for(self.ended.is_set, "the live reader to hang up")
        if self._thread is not None:
            self._thread.join(timeout=30)

    def changes(self) -> list[Event]:
        return [e for e in self.events if e.data["type"] not in ("unread",)]

    def unread(self) -> list[int]:
        return [e.data["count"] for e in self.events if e.data["type"] == "unread"]

    def wait_for_versions(self, *versions: int) -> None:
        wait_for(
            lambda: {int(e.id or 0) for e in self.changes()} >= set(versions),
            f"live events of versions {versions}",
        )

    def wait_until_live(self) -> None:
        """Until the catch-up is over: a keep-alive only comes after it."""
        wait_for(lambda: bool(self.comments) or self.ended.is_set(), "the first keep-alive")
