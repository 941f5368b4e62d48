"""The OpenAPI 3.1 document, generated from the route table and the msgspec wire types."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from corral_web import ErrorBody as ErrorDto
from .routes import Route

_PARAM = re.compile(r"{(\w+)}")
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "minutes": {"type": "integer"},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
}
"""Path parameters that are not strings."""


def openapi_document(routes: Iterable[Route], version: str = "0.1.0") -> dict[str, Any]:
    routes = list(routes)
    types = sorted({t for r in routes for t in (r.body, r.response) if t is not None} | {ErrorDto},
                   key=repr)
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    refs = dict(zip(types, schemas))
    error = {"description": "Error", "content": {"application/json": {"schema": refs[ErrorDto]}}}
    paths: dict[str, Any] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.handler.__name__,
            "responses": {str(route.status): {"description": "OK"}},
        }
        if route.response is not None:
            operation["responses"][str(route.status)]["content"] = {"application/json": {"schema": refs[route.response]}}
        if not route.public:
            operation["security"] = [{"bearer": []}]
            operation["responses"]["401"] = error
            operation["responses"]["403"] = error
            # who may call it: `authenticated` (any key; answers scoped to its organization), `operator`, or a scope
            operation["x-permission"] = route.permission or "operator"
        operation["responses"]["400"] = error
        operation["responses"]["429"] = error
        if "{" in route.path:
            operation["responses"]["404"] = error
        if route.method in ("POST", "DELETE", "PUT", "PATCH"):
            operation["responses"]["409"] = error
        if route.body is not None:
            operation["responses"]["413"] = error
        for status in route.errors:
            operation["responses"][str(status)] = error
        params = [{"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS.get(name, {"type": "string"})}
                  for name in _PARAM.findall(route.path)]
        # an empty query value is no value (`?limit=` is the default limit)
        params += [{"name": q.name, "in": "query", "required": False, "schema": q.schema,
                    **({"allowEmptyValue": True} if q.schema.get("type") != "array" else {}),
                    **({"description": q.description} if q.description else {})} for q in route.query]
        if params:
            operation["parameters"] = params
        if route.body is not None:
            schema = refs[route.body]
            required = bool(components.get(schema.get("$ref", "").rsplit("/", 1)[-1], {}).get("required"))
            operation["requestBody"] = {"required": required,
                                        "content": {"application/json": {"schema": schema}}}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Corral API", "version": version,
                 "description": "Daytona-compatible control plane of Corral."},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
