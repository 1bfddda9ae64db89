#!/usr/bin/env python3
"""Generate docs/openapi.json, the OpenAPI 3.1 description of the control API.

Run ``.venv/bin/python scripts/openapi.py > docs/openapi.json`` after changing a route;
``tests/surface/test_openapi.py`` fails when the file and ``kernel.control.ROUTES``
disagree.
"""

from __future__ import annotations

import json
import sys
from typing import Any

REF = "#/components/schemas/"


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def listing(key: str, item: str) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "array", "items": ref(item)}}}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "Function name: a DNS label ([a-z0-9-], 1 to 63 characters).",
    "schema": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "errors"],
        "properties": {
            "error": {"type": "string", "description": "One line saying what was wrong."},
            "errors": {
                "type": "array",
                "items": {"type": "string"},
                "description": "One line per problem, each `message @ $.path`.",
            },
        },
    },
    "Profile": {
        "type": "object",
        "description": "A Noslate-compatible function profile (camelCase; see docs/profiles.md). "
        "Unknown fields are errors. `name` is taken from the URL.",
        "additionalProperties": True,
        "properties": {
            "name": {"type": "string"},
            "runtime": {"type": "string", "default": "aworker"},
            "namespace": {"type": "string"},
            "environments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
                },
            },
            "resourceLimit": {"type": "object"},
            "rateLimit": {"type": ["object", "null"]},
            "worker": {"type": "object"},
        },
    },
    "DeployRequest": {
        "type": "object",
        "required": ["code"],
        "additionalProperties": False,
        "properties": {
            "profile": ref("Profile"),
            "code": {"type": "string", "description": "The source text (script or module)."},
            "filename": {
                "type": "string",
                "default": "index.js",
                "description": "Decides how the code is read: .js, .mjs, .ts, .jsx, .tsx.",
            },
            "env": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Environment variables merged over profile.environments.",
            },
        },
    },
    "Function": {
        "type": "object",
        "required": ["name", "version", "runtime", "profile", "deployed_at"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string", "description": "Code signature of this deploy."},
            "runtime": {"type": "string"},
            "filename": {"type": "string"},
            "code_size": {"type": "integer"},
            "deployed_at": {"type": "number", "description": "UNIX time."},
            "profile": ref("Profile"),
            "history": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Instance": {
        "type": "object",
        "required": ["id", "function", "version", "pid", "state", "active", "started_at"],
        "properties": {
            "id": {"type": "string"},
            "function": {"type": "string"},
            "version": {"type": "string"},
            "pid": {"type": "integer", "description": "Host pid of the worker process."},
            "state": {"type": "string", "enum": ["starting", "ready", "draining", "stopped"]},
            "active": {"type": "integer", "description": "Requests in flight."},
            "served": {"type": "integer"},
            "started_at": {"type": "number"},
            "role": {"type": "string", "description": "instance (forked from a seed) or cold."},
            "sandbox": {
                "type": ["object", "null"],
                "description": "The OCI-runtime-spec-shaped sandbox applied to the process.",
            },
        },
    },
    "LogLine": {
        "type": "object",
        "required": ["time", "function", "level", "message"],
        "properties": {
            "time": {"type": "number"},
            "function": {"type": "string"},
            "level": {"type": "string"},
            "message": {"type": "string"},
            "instance": {"type": "string"},
        },
    },
    "Plugin": {
        "type": "object",
        "required": ["name", "version", "enabled", "hooks"],
        "properties": {
            "name": {"type": "string"},
            "distribution": {"type": "string"},
            "version": {"type": "string"},
            "enabled": {"type": "boolean"},
            "hooks": {"type": "array", "items": {"type": "string"}},
            "error": {"type": "string"},
        },
    },
    "Status": {
        "type": "object",
        "required": ["status", "version", "uptime"],
        "properties": {
            "status": {"type": "string", "enum": ["running", "draining"]},
            "version": {"type": "string"},
            "pid": {"type": "integer"},
            "started_at": {"type": "number"},
            "uptime": {"type": "number", "description": "Seconds."},
            "data_plane": {"type": "string"},
            "control": {"type": "string"},
            "state_dir": {"type": "string"},
            "functions": {"type": "integer"},
            "instances": {"type": "integer"},
            "plugins": {"type": "array", "items": {"type": "string"}},
            "capabilities": {
                "type": "object",
                "description": "noslate_capability_report of each plugin, by plugin name.",
            },
            "scheduler": {"type": "object", "description": "The scheduler's statistics()."},
        },
    },
}

RESPONSES = {
    f"E{code}": json_body(ref("Error"), text)
    for code, text in {
        400: "Bad input: malformed JSON, a bad name or field.",
        401: "Missing or wrong bearer token.",
        404: "Unknown function or route.",
        413: "The code is over the size limit ([server] max_code_size).",
        422: "The profile or code was refused; `errors` names each field (e.g. $.profile.runtime).",
        503: "The daemon is draining.",
    }.items()
}


def err(*codes: int) -> dict[str, Any]:
    return {str(c): {"$ref": f"#/components/responses/E{c}"} for c in codes}


PUBLIC: list[dict[str, Any]] = []

PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "summary": "Liveness: 200 while the process runs",
            "security": PUBLIC,
            "responses": {"200": json_body({"type": "object"}, "alive")},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: 503 while draining, after noslate drain, or while saturated",
            "security": PUBLIC,
            "responses": {"200": json_body({"type": "object"}, "ready"), **err(503)},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (text exposition format)",
            "responses": {
                "200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                **err(401),
            },
        }
    },
    "/v1/functions": {
        "get": {
            "summary": "List deployed functions",
            "responses": {
                "200": json_body(
                    listing("functions", "Function"),
                    "every function",
                ),
                **err(401),
            },
        }
    },
    "/v1/functions/{name}": {
        "parameters": [NAME],
        "get": {
            "summary": "One function: profile, version, history",
            "responses": {"200": json_body(ref("Function"), "the function"), **err(400, 401, 404)},
        },
        "put": {
            "summary": "Deploy or replace a function",
            "description": "A new version takes new requests; old instances finish theirs.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("DeployRequest")}},
            },
            "responses": {
                "200": json_body(ref("Function"), "replaced"),
                "201": json_body(ref("Function"), "created"),
                **err(400, 401, 413, 422),
            },
        },
        "delete": {
            "summary": "Delete a function (its instances drain)",
            "responses": {
                "200": json_body(
                    {"type": "object", "properties": {"deleted": {"type": "string"}}}, "deleted"
                ),
                **err(400, 401, 404),
            },
        },
    },
    "/v1/functions/{name}/logs": {
        "parameters": [
            NAME,
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 200}},
            {
                "name": "follow",
                "in": "query",
                "description": "1: stream the recent lines and then new ones as JSON lines",
                "schema": {"type": "string", "enum": ["0", "1"]},
            },
        ],
        "get": {
            "summary": "Recent log lines of a function's workers (console output, errors)",
            "responses": {
                "200": {
                    "description": "recent lines; with follow=1 an endless application/x-ndjson stream",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "function": {"type": "string"},
                                    "lines": {"type": "array", "items": ref("LogLine")},
                                },
                            }
                        },
                        "application/x-ndjson": {"schema": ref("LogLine")},
                    },
                },
                **err(400, 401, 404),
            },
        },
    },
    "/v1/instances": {
        "parameters": [{"name": "function", "in": "query", "schema": {"type": "string"}}],
        "get": {
            "summary": "Running worker instances",
            "responses": {
                "200": json_body(
                    listing("instances", "Instance"),
                    "instances",
                ),
                **err(401),
            },
        },
    },
    "/v1/status": {
        "get": {
            "summary": "Daemon status, capability reports, scheduler statistics",
            "responses": {"200": json_body(ref("Status"), "status"), **err(401)},
        }
    },
    "/v1/drain": {
        "post": {
            "summary": "Not ready (readyz 503) while still serving: a Kubernetes preStop",
            "responses": {"200": json_body({"type": "object"}, "not ready"), **err(401)},
        },
        "delete": {
            "summary": "Ready again (unless shutting down or saturated)",
            "responses": {"200": json_body({"type": "object"}, "ready or not"), **err(401)},
        },
    },
    "/v1/plugins": {
        "get": {
            "summary": "Plugins of this daemon: name, version, enabled, hooks",
            "responses": {
                "200": json_body(
                    listing("plugins", "Plugin"),
                    "plugins",
                ),
                **err(401),
            },
        }
    },
    "/v1/kv": {
        "parameters": [
            {"name": "namespace", "in": "query", "schema": {"type": "string"}},
            {"name": "values", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]}},
        ],
        "get": {
            "summary": "KV stores: namespaces, sizes, entry counts, hits, misses (values on request)",
            "responses": {
                "200": json_body({"type": "object"}, "the backend's inspect() document"),
                **err(401, 404),
            },
        },
    },
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "noslate control API",
            "version": "1",
            "description": "Deploy and inspect functions of a noslate daemon. JSON in and out; errors are "
            '`{"error": "...", "errors": ["message @ $.path"]}`. See docs/control-api.md.',
        },
        "servers": [{"url": "http://127.0.0.1:8081"}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "[control] token or NOSLATE_CONTROL_TOKEN; not enforced when none is set "
                    "(allowed on loopback binds only).",
                }
            },
            "schemas": SCHEMAS,
            "responses": RESPONSES,
        },
    }


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=2)
    sys.stdout.write("\n")
