"""A development mail sink: `CHORUS_SMTP_URL=file:///some/dir` writes each email to
`<dir>/<time>-<n>.eml` and logs a line, instead of talking SMTP. `chorus dev` uses it."""

import logging
import time
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)


class FileSender:
    def __init__(self, url: str) -> None:
        self.directory = Path(unquote(urlsplit(url).path))
        self.directory.mkdir(parents=True, exist_ok=True)
        self._count = 0

    def send(self, message: EmailMessage) -> None:
        self._count += 1
        path = self.directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{self._count:04d}.eml"
        path.write_bytes(message.as_bytes())
        log.warning("email to %s: %r (saved as %s)", message["To"], message["Subject"], path)

    def close(self) -> None:
        """Nothing to close: each email is its own file."""
