#!/usr/bin/env python3
"""Writes crates/vigil-hub/src/https/api/openapi.json, the OpenAPI 3.0 document of Vigil's
people's API (/api/v1). Kept as code so that shared shapes (problems, parameters) are written
once; the hub serves the generated file and schemathesis tests the hub against it.

Run: python3 tools/openapi/generate.py; with --check it only says whether the file is up to date
(tests/access.rs runs that)."""

import json
import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/vigil-hub/src/https/api/openapi.json"

ROLE = {"type": "string", "enum": ["admin", "security_officer", "clinical_engineer", "clinician", "patient", "auditor"]}
TIME = {"type": "string", "format": "date-time"}
# vigil_model's identifiers: 1 to 64 of letters, digits, '.', '-', starting with a letter or digit;
# a user name may also hold '_' (device and patient ids are FHIR ids, which may not).
ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$"}
USER = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
# Leaf indexes and positions: the hub reads u64; clients are promised what fits an int64.
INDEX = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}


# SMART scopes as vigil_auth::scope parses them: at most 64 space-separated scopes, each one of
# Vigil's special scopes or context/ResourceType.permissions ("cruds" letters in order, or the
# v1 forms read, write, *). Anything else is refused with 400 invalid-scope.
SCOPE = (r"(openid|fhirUser|launch/patient|offline_access|online_access"
         r"|(patient|user|system)/(\*|[A-Z][A-Za-z]{0,63})\.(cr?u?d?s?|ru?d?s?|ud?s?|ds?|s|read|write|\*))")
SCOPES = {"type": "string", "maxLength": 4096, "pattern": f"^ *({SCOPE}( +{SCOPE}){{0,63}})? *$",
          "description": "SMART scopes to narrow the session to (within the role's)."}


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required, props, extra=False):
    schema = {"type": "object", "required": list(required), "properties": props}
    if not extra:
        schema["additionalProperties"] = False
    return schema


def nullable(schema):
    return {**schema, "nullable": True}


SCHEMAS = {
    "Problem": obj(["type", "title", "status", "detail"], {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"}}),
    "SignIn": obj(["user", "password"], {
        "user": {"type": "string", "maxLength": 64},
        "password": {"type": "string", "maxLength": 256},
        "code": {"type": "string", "description": "The second-factor (TOTP) code, when the account has one."},
        "scope": SCOPES}),
    "Session": obj(["token", "token_type", "user", "role", "expires_at", "idle_timeout_seconds", "scope"], {
        "token": {"type": "string"}, "token_type": {"type": "string", "enum": ["Bearer"]},
        "user": {"type": "string"}, "role": ROLE, "expires_at": TIME,
        "idle_timeout_seconds": {"type": "integer"}, "scope": {"type": "string"}}),
    "Me": obj(["user", "role", "patient", "scope"], {
        "user": {"type": "string"}, "role": ROLE, "patient": nullable({"type": "string"}),
        "scope": {"type": "string"}}),
    "User": obj(["user", "role", "created_at", "disabled_at"], {
        "user": {"type": "string"}, "role": ROLE, "created_at": TIME, "disabled_at": nullable(TIME)}),
    # A patient account names its patient; no other account may (the hub answers 400).
    "NewUser": {"oneOf": [
        obj(["user", "role", "patient"], {"user": USER, "role": {"type": "string", "enum": ["patient"]}, "patient": ID}),
        obj(["user", "role"], {
            "user": USER,
            "role": {"type": "string", "enum": [r for r in ROLE["enum"] if r != "patient"]},
            "patient": {"type": "string", "nullable": True, "enum": [None]}}),
    ]},
    "CreatedUser": obj(["user", "role", "initial_password", "totp_uri"], {
        "user": {"type": "string"}, "role": ROLE, "initial_password": {"type": "string"},
        "totp_uri": nullable({"type": "string"})}),
    "ListedPatient": obj(["patient", "basis"], {
        "patient": {"type": "string"},
        "basis": {"type": "string", "enum": ["role", "own record", "care team", "consent", "break-glass"]}}),
    "Member": obj(["user"], {"user": {"type": "string"}}),
    "Consent": obj(["user", "granted_at", "withdrawn_at"], {
        "user": {"type": "string"}, "granted_at": TIME, "withdrawn_at": nullable(TIME)}),
    "BreakGlass": obj(["reason"], {"reason": {"type": "string", "enum": [
        "emergency-treatment", "patient-unresponsive", "covering-clinician", "critical-result",
        "rapid-response-call"]}}),
    "BreakGlassOpened": obj(["patient", "reason", "expires_at"], {
        "patient": {"type": "string"}, "reason": {"type": "string"}, "expires_at": TIME}),
    "AuditEntry": obj(["time", "actor", "action", "resource", "outcome"], {
        "time": {"type": "integer", "description": "Unix milliseconds"},
        "actor": obj(["type"], {"type": {"type": "string"}, "id": {"type": "string"}}),
        "action": {"type": "string"},
        "resource": obj(["kind", "id"], {"kind": {"type": "string"}, "id": {"type": "string"}}),
        "outcome": {"type": "string", "enum": ["success", "denied", "failed"]},
        "reason": nullable({"type": "string"})}),
    "Checkpoint": obj(["size", "note"], {"size": {"type": "integer"}, "note": {"type": "string"}}),
    "AccessLogEntry": obj(["index", "entry", "leaf", "inclusion_proof"], {
        "index": {"type": "integer"}, "entry": ref("AuditEntry"), "leaf": {"type": "string"},
        "inclusion_proof": nullable({"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"}})}),
    "AccessLog": obj(["checkpoint", "entries", "next_before"], {
        "checkpoint": nullable(ref("Checkpoint")),
        "entries": {"type": "array", "items": ref("AccessLogEntry")},
        "next_before": nullable({"type": "integer"})}),
    "Fact": obj(["name", "value"], {"name": {"type": "string"}, "value": {"type": "string"}}),
    "Alert": obj(["id", "time", "severity", "kind", "device", "patient", "technique", "facts",
                  "clinical_evidence", "status", "handled_by", "handled_at"], {
        "id": {"type": "integer"}, "time": TIME,
        "severity": {"type": "string", "enum": ["info", "low", "medium", "high", "critical"]},
        "kind": {"type": "string"}, "device": nullable({"type": "string"}),
        "patient": nullable({"type": "string"}), "technique": nullable({"type": "string"}),
        "facts": {"type": "array", "items": ref("Fact")},
        "clinical_evidence": {"type": "integer"},
        "status": {"type": "string", "enum": ["open", "acknowledged", "closed"]},
        "handled_by": nullable({"type": "string"}), "handled_at": nullable(TIME)}),
    "IndexedEntry": obj(["index", "entry"], {"index": {"type": "integer"}, "entry": ref("AuditEntry")}),
    "Proof": obj(["index", "size", "note", "inclusion_proof"], {
        "index": {"type": "integer"}, "size": {"type": "integer"}, "note": {"type": "string"},
        "inclusion_proof": {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}),
    "Certificate": obj(["serial", "fingerprint", "not_after", "key"], {
        "serial": {"type": "string"}, "fingerprint": {"type": "string"}, "not_after": TIME,
        "key": {"type": "string"}}),
    "Device": obj(["id", "class", "status", "created_at", "revoked_at", "certificate"], {
        "id": {"type": "string"}, "class": {"type": "string"},
        "status": {"type": "string", "enum": ["registered", "active", "revoked"]},
        "created_at": TIME, "revoked_at": nullable(TIME), "certificate": nullable(ref("Certificate"))}),
}

PROBLEM = {"application/problem+json": {"schema": ref("Problem")}}


def problems(*codes):
    text = {400: "Bad request or parameter", 401: "Not signed in, or the session ended",
            403: "Not allowed for this role, care team or consent", 404: "No such resource",
            409: "Conflict with the resource's state", 413: "Body too large",
            415: "Body is not JSON", 422: "Body does not fit the schema",
            429: "Too many failed sign-ins from this network address; see Retry-After"}
    return {str(c): {"description": text[c], "content": PROBLEM} for c in codes}


def ok(code, schema, description="OK"):
    return {str(code): {"description": description, "content": {"application/json": {"schema": schema}}}}


def body(name):
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


def path_param(name):
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def query(name, schema):
    return {"name": name, "in": "query", "required": False, "schema": schema}


AUTH = [{"bearer": []}]
READ = (400, 401, 403, 404)
WRITE = (400, 401, 403, 404, 409, 413, 415, 422)

PATHS = {
    "/api/v1/session": {
        "post": {"operationId": "signIn", "summary": "Sign in (password, then a second-factor code where enrolled)",
                 "security": [], "requestBody": body("SignIn"),
                 "responses": {**ok(201, ref("Session"), "Signed in"), **problems(400, 401, 403, 413, 415, 422, 429)}},
        "delete": {"operationId": "signOut", "summary": "Sign out: the session ends",
                   "security": AUTH, "responses": {"204": {"description": "Signed out"}, **problems(401)}},
    },
    "/api/v1/me": {"get": {"operationId": "me", "security": AUTH,
                           "responses": {**ok(200, ref("Me")), **problems(401)}}},
    "/api/v1/oidc/login": {"get": {
        "operationId": "oidcLogin", "security": [],
        "summary": "Sign in through the hospital's OpenID provider: a redirect to its authorization "
                   "endpoint (code flow, PKCE S256); 404 when [oidc] is not configured",
        "responses": {"302": {"description": "To the provider; the sign-in must come back within 10 minutes"},
                      **problems(404)}}},
    "/api/v1/oidc/callback": {"get": {
        "operationId": "oidcCallback", "security": [],
        "summary": "Where the provider sends the browser back: the code is exchanged, the ID token "
                   "verified, and an existing, enabled Vigil user signed in (administrators and "
                   "security officers only with multi-factor authentication at the provider)",
        "parameters": [query("code", {"type": "string"}), query("state", {"type": "string"}),
                       query("error", {"type": "string"}), query("iss", {"type": "string"})],
        "responses": {**ok(201, ref("Session"), "Signed in, as by POST /api/v1/session"),
                      **problems(400, 401, 403, 404),
                      "502": {"description": "The provider's answer could not be used", "content": PROBLEM}}}},
    "/api/v1/users": {
        "get": {"operationId": "listUsers", "security": AUTH,
                "responses": {**ok(200, {"type": "array", "items": ref("User")}), **problems(401, 403)}},
        "post": {"operationId": "createUser", "security": AUTH, "requestBody": body("NewUser"),
                 "responses": {**ok(201, ref("CreatedUser"), "Created; the initial password is shown once"),
                               **problems(*WRITE)}},
    },
    "/api/v1/users/{user}/disable": {"post": {
        "operationId": "disableUser", "security": AUTH, "parameters": [path_param("user")],
        "responses": {"204": {"description": "Disabled; its sessions ended"}, **problems(401, 403, 404, 409)}}},
    "/api/v1/patients": {"get": {
        "operationId": "listPatients", "security": AUTH,
        "responses": {**ok(200, {"type": "array", "items": ref("ListedPatient")}), **problems(401, 403)}}},
    "/api/v1/patients/{patient}/care-team": {"get": {
        "operationId": "careTeam", "security": AUTH, "parameters": [path_param("patient")],
        "responses": {**ok(200, {"type": "array", "items": ref("Member")}), **problems(401, 403, 404)}}},
    "/api/v1/patients/{patient}/care-team/{user}": {
        "put": {"operationId": "addToCareTeam", "security": AUTH,
                "parameters": [path_param("patient"), path_param("user")],
                "responses": {"201": {"description": "Added"}, "204": {"description": "Already on it"},
                              **problems(401, 403, 404, 422)}},
        "delete": {"operationId": "removeFromCareTeam", "security": AUTH,
                   "parameters": [path_param("patient"), path_param("user")],
                   "responses": {"204": {"description": "Removed"}, **problems(401, 403, 404)}},
    },
    "/api/v1/patients/{patient}/consents": {"get": {
        "operationId": "consents", "security": AUTH, "parameters": [path_param("patient")],
        "responses": {**ok(200, {"type": "array", "items": ref("Consent")}), **problems(401, 403, 404)}}},
    "/api/v1/patients/{patient}/consents/{user}": {
        "put": {"operationId": "grantConsent", "security": AUTH,
                "parameters": [path_param("patient"), path_param("user")],
                "responses": {"201": {"description": "Shared"}, "204": {"description": "Already shared"},
                              **problems(401, 403, 404, 422)}},
        "delete": {"operationId": "withdrawConsent", "security": AUTH,
                   "parameters": [path_param("patient"), path_param("user")],
                   "responses": {"204": {"description": "No longer shared"}, **problems(401, 403, 404)}},
    },
    "/api/v1/patients/{patient}/break-glass": {"post": {
        "operationId": "breakGlass", "security": AUTH, "parameters": [path_param("patient")],
        "requestBody": body("BreakGlass"),
        "responses": {**ok(201, ref("BreakGlassOpened"), "Opened; audited and the security officer alerted"),
                      **problems(*WRITE)}}},
    "/api/v1/patients/{patient}/access-log": {"get": {
        "operationId": "accessLog", "security": AUTH,
        "parameters": [path_param("patient"), query("before", INDEX),
                       query("limit", {"type": "integer", "minimum": 1, "maximum": 500})],
        "responses": {**ok(200, ref("AccessLog")), **problems(*READ)}}},
    "/api/v1/alerts": {"get": {
        "operationId": "listAlerts", "security": AUTH,
        "parameters": [query("status", {"type": "string", "enum": ["open", "acknowledged", "closed"]}),
                       query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
        "responses": {**ok(200, {"type": "array", "items": ref("Alert")}), **problems(400, 401, 403)}}},
    "/api/v1/alerts/stream": {"get": {
        "operationId": "alertStream", "security": AUTH,
        "summary": "Every alert stored from now on, as Server-Sent Events (event: alert | lagged)",
        "responses": {"200": {"description": "An event stream that stays open",
                              "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                      **problems(401, 403)}}},
    "/api/v1/alerts/{alert}": {"get": {
        "operationId": "alert", "security": AUTH, "parameters": [path_param("alert")],
        "responses": {**ok(200, ref("Alert")), **problems(401, 403, 404)}}},
    "/api/v1/alerts/{alert}/acknowledge": {"post": {
        "operationId": "acknowledgeAlert", "security": AUTH, "parameters": [path_param("alert")],
        "responses": {**ok(200, ref("Alert")), **problems(401, 403, 404, 409)}}},
    "/api/v1/alerts/{alert}/close": {"post": {
        "operationId": "closeAlert", "security": AUTH, "parameters": [path_param("alert")],
        "responses": {**ok(200, ref("Alert")), **problems(401, 403, 404, 409)}}},
    "/api/v1/audit/entries": {"get": {
        "operationId": "auditEntries", "security": AUTH,
        "parameters": [query("from", INDEX),
                       query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
        "responses": {**ok(200, {"type": "array", "items": ref("IndexedEntry")}), **problems(400, 401, 403)}}},
    "/api/v1/audit/checkpoint": {"get": {
        "operationId": "auditCheckpoint", "security": AUTH,
        "responses": {**ok(200, ref("Checkpoint")), **problems(401, 403, 404)}}},
    "/api/v1/audit/proof": {"get": {
        "operationId": "auditProof", "security": AUTH,
        "parameters": [{"name": "index", "in": "query", "required": True, "schema": INDEX}],
        "responses": {**ok(200, ref("Proof")), **problems(400, 401, 403, 404)}}},
    "/api/v1/devices": {"get": {
        "operationId": "listDevices", "security": AUTH,
        "responses": {**ok(200, {"type": "array", "items": ref("Device")}), **problems(401, 403)}}},
    "/api/v1/devices/{device}": {"get": {
        "operationId": "device", "security": AUTH, "parameters": [path_param("device")],
        "responses": {**ok(200, ref("Device")), **problems(401, 403, 404)}}},
}

DOCUMENT = {
    "openapi": "3.0.3",
    "info": {
        "title": "Vigil API",
        "version": "1",
        "description": "Vigil's own API for people: sign-in, users, care teams, consent, "
                       "break-glass, a patient's access history with audit proofs, alerts, the "
                       "audit log and devices. Clinical data is served as FHIR R4 at /fhir/r4. "
                       "Every refusal is an RFC 9457 problem document.",
        "license": {"name": "Apache-2.0"},
    },
    "servers": [{"url": "/"}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "PASETO v4.public"}},
        "schemas": SCHEMAS,
    },
    "security": AUTH,
    "paths": PATHS,
}

if __name__ == "__main__":
    TEXT = json.dumps(DOCUMENT, indent=1, sort_keys=False) + "\n"
    if sys.argv[1:] == ["--check"]:
        if OUT.read_text() != TEXT:
            sys.exit(f"{OUT} is out of date: run python3 tools/openapi/generate.py")
        print(f"{OUT} is up to date")
    else:
        OUT.write_text(TEXT)
        print(f"wrote {OUT}")
