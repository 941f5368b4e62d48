"""Toolbox routes of one area; registered in `AREAS` (see __init__.py)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
