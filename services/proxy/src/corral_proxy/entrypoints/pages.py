"""The proxy's answers of its own on preview URLs: an HTML page for browsers (`Accept: text/html`),
JSON `{statusCode, message, code, source}` for everything else."""

from __future__ import annotations

import html

from aiohttp import web

from corral_web import error_response

PROXY = "DAYTONA_PROXY"

TITLES = {401: "Authentication required", 403: "Access denied", 404: "Not found", 502: "Nothing to show yet",
          503: "Starting…"}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}
code{{background:#f2f2f2;padding:.1rem .3rem;border-radius:3px}} small{{color:#777}}</style></head>
<body><h1>{title}</h1><p>{message}</p>{hint}<p><small>{status} · {code} · Corral preview proxy</small></p></body></html>
"""


def wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def page(request: web.Request, status: int, message: str, code: str, *, hint: str = "",
         retry_after: int | None = None) -> web.Response:
    """`hint` is trusted HTML (ours); `message` is escaped. With `retry_after`, browsers refresh by themselves."""
    if wants_html(request):
        refresh = f'<meta http-equiv="refresh" content="{retry_after}">' if retry_after else ""
        body = _PAGE.format(refresh=refresh, title=html.escape(TITLES.get(status, "Error")),
                            message=html.escape(message), hint=hint, status=status, code=html.escape(code))
        response = web.Response(status=status, text=body, content_type="text/html")
    else:
        response = error_response(status, message, code, PROXY)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


def port_closed(request: web.Request, port: int) -> web.Response:
    hint = ("<p>Start a server inside the sandbox that listens on this port, e.g. "
            f"<code>python3 -m http.server {port}</code>, then reload. Servers bound to "
            "<code>127.0.0.1</code> work too.</p>")
    return page(request, 502, f"Nothing is listening on port {port} in the sandbox", "PORT_CLOSED", hint=hint)
