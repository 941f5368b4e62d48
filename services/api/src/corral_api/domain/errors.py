"""Domain refusals; the HTTP edge maps each to a status and a stable code."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidRequest(DomainError):
    status = 400
    code = "BAD_REQUEST"


class NotFound(DomainError):
    status = 404
    code = "NOT_FOUND"


class Conflict(DomainError):
    status = 409
    code = "CONFLICT"


class InvalidState(Conflict):
    code = "INVALID_STATE"


class NoCapacity(DomainError):
    status = 503
    code = "NO_RUNNER_AVAILABLE"


class Unauthorized(DomainError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(DomainError):
    """The caller is known but may not do this (a missing permission, an operator-only call)."""

    status = 403
    code = "FORBIDDEN"


class QuotaExceeded(Forbidden):
    """Over a per-sandbox maximum or the organization's total (Daytona answers quotas with 403 too)."""

    code = "QUOTA_EXCEEDED"


class OrganizationSuspended(Forbidden):
    code = "ORGANIZATION_SUSPENDED"
