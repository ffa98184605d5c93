"""The program owner's dashboard: a page that draws the program's overview and at-risk list.

The page and its script hold no data, so they are served without a token; the script calls the
JSON endpoints with the owner's bearer token. The token comes in the URL fragment
(``/dashboard?program_id=…#token=…``) because browsers never send a fragment to a server: it stays
out of access logs, proxies and Referer headers. The script moves it into the tab's
sessionStorage and out of the address bar. A strict Content-Security-Policy allows only this
service's own script, style and API, so nothing else on the page can read the token.
"""

from importlib.resources import files

from fastapi import APIRouter, Response

router = APIRouter(tags=["dashboard"])

_STATIC = files(__package__) / "static"
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _asset(name: str, media_type: str) -> Response:
    return Response((_STATIC / name).read_bytes(), media_type=media_type, headers=_HEADERS)


@router.get("/dashboard", response_class=Response)
async def dashboard() -> Response:
    """The page; open it as ``/dashboard?program_id=<id>#token=<bearer token>``."""
    return _asset("dashboard.html", "text/html; charset=utf-8")


@router.get("/dashboard/dashboard.js", response_class=Response, include_in_schema=False)
async def script() -> Response:
    return _asset("dashboard.js", "text/javascript; charset=utf-8")


@router.get("/dashboard/dashboard.css", response_class=Response, include_in_schema=False)
async def style() -> Response:
    return _asset("dashboard.css", "text/css; charset=utf-8")
