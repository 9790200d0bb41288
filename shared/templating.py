"""Jinja2 environments for the templates a package ships: HTML escaped, text as written.

Every `*.html.j2` template is autoescaped, so a name, title or excerpt holding markup
shows as text and cannot run in a reader's browser or mail client. Jinja2's own
`select_autoescape()` looks at the last extension only (`.j2`), which left such
templates unescaped: the rule lives here once, for the API and the worker.
"""

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

HTML_EXTENSIONS = ("html.j2", "html", "htm")


def template_environment(package: str, **options: Any) -> Environment:
    """The templates under `<package>/templates`; a missing variable is an error."""
    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=select_autoescape(enabled_extensions=HTML_EXTENSIONS, default=False),
        undefined=StrictUndefined,
        **options,
    )
