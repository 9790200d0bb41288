"""Every HTML template is autoescaped: markup in what it shows comes out as text.

The worker's emails are checked with real names and excerpts in test_email_messages.py;
here, the API's unsubscribe pages, and every HTML template either package ships.
"""

from collections.abc import Callable

import pytest
from jinja2 import Environment

from services.api.routes.unsubscribe import _environment as api_templates
from services.api.routes.unsubscribe import _render
from services.worker.email_messages import _environment as worker_templates

SCRIPT = '"><script>alert(document.cookie)</script>'


def test_the_unsubscribe_page_escapes_what_it_shows() -> None:
    page = _render("unsubscribe.html.j2", token=SCRIPT)

    assert "<script>" not in page
    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in page
    assert 'action="unsubscribe?token=&#34;&gt;&lt;script&gt;' in page  # attribute kept closed


@pytest.mark.parametrize("environment", [api_templates, worker_templates], ids=["api", "worker"])
def test_every_html_template_is_autoescaped_and_no_text_one(
    environment: Callable[[], Environment],
) -> None:
    env = environment()
    names = env.list_templates()
    html = [name for name in names if name.endswith(".html.j2")]

    assert html, "the package ships HTML templates"
    assert {name: env.autoescape(name) for name in names} == {name: name in html for name in names}
