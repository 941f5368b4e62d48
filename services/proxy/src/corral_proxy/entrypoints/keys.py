"""The proxy application's typed keys, shared by the toolbox and preview fronts."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from ..app.activity import ActivityReporter
from ..app.directory import Directory

DIRECTORY = web.AppKey("directory", Directory)
ACTIVITY = web.AppKey("activity", ActivityReporter)
SESSION = web.AppKey("session", aiohttp.ClientSession)
"""To the runners: pooled keep-alive connections, no cookie jar (answers of one caller never reach another)."""
INTERNAL_TOKEN = web.AppKey("internal_token", str)
