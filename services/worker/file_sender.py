"""A development mail sink: `CHORUS_SMTP_URL=file:///some/dir` writes each email to
`<dir>/<time>-<n>.eml` and logs where, instead of talking SMTP. `chorus dev` uses it."""

import logging
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from services.worker.mail_wire import MailMessage

log = logging.getLogger(__name__)


class FileSender:
    def __init__(self, url: str) -> None:
        self.directory = Path(unquote(urlsplit(url).path))
        self.directory.mkdir(parents=True, exist_ok=True)
        self._count = 0

    def send(self, message: MailMessage, *, before_end: Callable[[], object] | None = None) -> None:
        if before_end is not None:
            before_end()
        self._count += 1
        path = self.directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{self._count:04d}.eml"
        path.write_bytes(message.data)
        # The file says to whom and what: the log says only where (names are personal data).
        log.warning("email %s saved as %s", message.message_id, path)

    def close(self) -> None:
        """Nothing to close: each email is its own file."""
