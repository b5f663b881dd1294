"""The OpenAPI schema documents the errors the API answers, not only successes.

drf-spectacular describes the 2xx body; a client (and the fuzzing run, whose
status-code check holds the API to its schema) also needs the 4xx answers:
400 for invalid input, 401 without credentials, 403 without the role, 404 for
what one cannot see, 409 when the state refuses an action, 415 for a body
that is not JSON, 429 for a locked-out login.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: the body names each field and the rule it breaks.",
    "401": "No valid credentials (a token or a session).",
    "403": "Your role in the object's team does not allow this.",
    "404": "No such object among those of your teams (or no such page).",
    "405": "Method not allowed.",
    "409": "The object's state refuses this: the body says why.",
    "415": "The body is not JSON.",
    "429": "Too many failed logins: try again later.",
}


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            responses.setdefault(code, self._error_response(code))
        return responses

    def _error_codes(self) -> list[str]:
        codes = []
        writes = self.method in ("POST", "PUT", "PATCH")
        public = not self.get_auth()
        if writes or self._has_query_parameters():
            codes.append("400")
        if not public:
            codes += ["401", "403"]
        if "{" in self.path or self._is_list_view():
            codes.append("404")  # an invisible object, or a page past the end
        if self.method in ("DELETE", "POST", "PUT", "PATCH") and not public:
            codes.append("409")
        if writes:
            codes.append("415")
        if public:
            codes.append("429")
        return codes

    def _has_query_parameters(self) -> bool:
        return any(p.get("in") == "query" for p in self._get_parameters())

    def _error_response(self, code: str) -> dict:
        schema = build_basic_type(OpenApiTypes.OBJECT)
        return {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": schema}},
        }
