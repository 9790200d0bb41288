"""`GET /embed.js`: the drop-in comment section a publication adds to its own pages.

The script is static (services/api/embed/embed.js): no build step, no framework, no
third-party requests. Browsers may keep it for five minutes and revalidate it by ETag.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

EMBED_JS = Path(__file__).resolve().parent.parent / "embed" / "embed.js"

router = APIRouter(tags=["embed"])


@router.get("/embed.js", response_class=FileResponse, include_in_schema=False)
def embed_js() -> FileResponse:
    return FileResponse(
        EMBED_JS,
        media_type="text/javascript; charset=utf-8",
        headers={
            "Cache-Control": "public, max-age=300",
            # Loadable from pages that isolate themselves (COEP) on any origin.
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )
