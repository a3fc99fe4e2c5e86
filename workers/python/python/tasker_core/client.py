"""A REST client for applications: one method per operation of the server's OpenAPI document
(``GET /v1/openapi.json``; :data:`OPERATIONS` maps each operation id to its method).

    client = Client("http://127.0.0.1:8080")
    task = client.create_task("ecommerce_py", "ecommerce_order_processing", {...})
    final = client.wait_for_task(task["task_uuid"], timeout=30)

A server that asks for API tokens gets the one passed as ``token=``, else ``TASKER_TOKEN``, as
``Authorization: Bearer <token>``.

Errors are the typed exceptions of :mod:`tasker_core.errors`: :class:`TaskCreationError` (with the
§0.3 ``code``, ``field`` and ``details``) from :meth:`Client.create_task`, :class:`TaskNotFoundError`
for an unknown uuid, :class:`ServerUnavailableError` when the server cannot be reached or fails, and
from every method :class:`AuthenticationError` (401: no token, or one unknown, expired or revoked)
and :class:`PermissionDeniedError` (403, with the ``scope`` the token lacks).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .errors import (
    ApiError,
    AuthenticationError,
    PermissionDeniedError,
    ServerUnavailableError,
    TaskCreationError,
    TaskNotFoundError,
    WaitTimeoutError,
)

#: The longest wait asked of the server in one request, in seconds (its limit is 30).
_MAX_WAIT = 25.0

#: The OpenAPI operation id of every task and template operation, and the method that calls it.
OPERATIONS: Dict[str, str] = {
    "createTask": "create_task",
    "getTask": "get_task",
    "getTaskEvents": "get_task_events",
    "listTasks": "list_tasks",
    "cancelTask": "cancel_task",
    "retryStep": "retry_step",
    "listTemplates": "list_templates",
    "listWorkers": "list_workers",
}


class Client:
    """Speaks the orchestration server's REST API (``/v1``)."""

    def __init__(self, url: str = "http://127.0.0.1:8080", timeout: float = 10.0, token: Optional[str] = None) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"url must look like http://host:port, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        token = token if token is not None else os.environ.get("TASKER_TOKEN")
        self._token = token.strip() if token and token.strip() else None

    def __repr__(self) -> str:
        # Never the token.
        return f"Client({self.url!r}, token={'set' if self._token else 'none'})"

    def _request(
        self, method: str, path: str, body: Optional[Any] = None, timeout: Optional[float] = None
    ) -> Tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if self._token:
            req.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                return resp.status, _json_or_none(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, _json_or_none(e.read())
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ServerUnavailableError(0, "ENGINE_UNAVAILABLE", f"cannot reach {self.url}: {reason}") from e

    def create_task(
        self,
        namespace: str,
        name: str,
        context: Mapping[str, Any],
        *,
        version: Optional[str] = None,
        correlation_id: Optional[str] = None,
        parent_correlation_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        initiator: Optional[str] = None,
        source_system: Optional[str] = None,
        reason: Optional[str] = None,
        tags: Optional[List[str]] = None,
        priority: Optional[int] = None,
    ) -> Dict[str, Any]:
        """``POST /v1/tasks``: ``{task_uuid, status, created, namespace, name, version,
        correlation_id}``. ``created`` is False for an idempotent replay."""
        body: Dict[str, Any] = {"namespace": namespace, "name": name, "context": dict(context)}
        optional = {
            "version": version,
            "correlation_id": correlation_id,
            "parent_correlation_id": parent_correlation_id,
            "idempotency_key": idempotency_key,
            "initiator": initiator,
            "source_system": source_system,
            "reason": reason,
            "tags": tags,
            "priority": priority,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        try:
            status, payload = self._request("POST", "/v1/tasks", body)
        except ServerUnavailableError as e:
            raise TaskCreationError("ENGINE_UNAVAILABLE", e.message, transient=True) from e
        if status in (200, 201) and isinstance(payload, dict):
            return payload
        _raise_if_refused(status, payload)
        err = _error_body(payload)
        raise TaskCreationError(
            err.get("code") or ("INTERNAL_ERROR" if status >= 500 else "INVALID_REQUEST"),
            err.get("message") or f"server answered {status}",
            field=err.get("field"),
            details=err.get("details") or [],
            transient=status >= 500,
        )

    def get_task(self, task_uuid: str) -> Dict[str, Any]:
        """``GET /v1/tasks/{uuid}``: the task with its steps."""
        status, payload = self._request("GET", f"/v1/tasks/{_segment(task_uuid)}")
        return self._ok(status, payload)

    def get_task_events(self, task_uuid: str) -> List[Dict[str, Any]]:
        """``GET /v1/tasks/{uuid}/events``: the task's lifecycle events (spec §5.1), oldest first."""
        status, payload = self._request("GET", f"/v1/tasks/{_segment(task_uuid)}/events")
        events: List[Dict[str, Any]] = self._ok(status, payload)["events"]
        return events

    def list_tasks(
        self,
        *,
        namespace: Optional[str] = None,
        name: Optional[str] = None,
        status: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Dict[str, Any]:
        """``GET /v1/tasks``: ``{tasks: [...], next_cursor}``, newest first. Pass ``next_cursor`` as
        ``cursor`` for the next page; it is None on the last one."""
        filters = {"namespace": namespace, "name": name, "status": status, "limit": limit, "cursor": cursor}
        query = urllib.parse.urlencode({k: v for k, v in filters.items() if v is not None})
        status_code, payload = self._request("GET", "/v1/tasks" + (f"?{query}" if query else ""))
        return self._ok(status_code, payload)

    def cancel_task(self, task_uuid: str) -> Dict[str, Any]:
        """``POST /v1/tasks/{uuid}/cancel``: the task, now ``cancelled``."""
        status, payload = self._request("POST", f"/v1/tasks/{_segment(task_uuid)}/cancel", {})
        return self._ok(status, payload)

    def retry_step(self, task_uuid: str, step_name: str) -> Dict[str, Any]:
        """``POST /v1/tasks/{uuid}/steps/{name}/retry``: gives a step in ``error`` a fresh set of
        attempts; the task, with the step pending again."""
        status, payload = self._request("POST", f"/v1/tasks/{_segment(task_uuid)}/steps/{_segment(step_name)}/retry", {})
        return self._ok(status, payload)

    def list_templates(self) -> Dict[str, Any]:
        """``GET /v1/templates``: ``{templates: [...]}``, every registered template version."""
        status, payload = self._request("GET", "/v1/templates")
        return self._ok(status, payload)

    def list_workers(self, *, namespace: Optional[str] = None) -> Dict[str, Any]:
        """``GET /v1/workers``: ``{workers: [...]}``, the worker processes seen in the last day (alive
        ones first), optionally only those serving ``namespace``."""
        query = urllib.parse.urlencode({"namespace": namespace} if namespace is not None else {})
        status, payload = self._request("GET", "/v1/workers" + (f"?{query}" if query else ""))
        return self._ok(status, payload)

    def wait_for_task(self, task_uuid: str, timeout: float = 30.0) -> Dict[str, Any]:
        """The task once the server reports it ``terminal``; raises :class:`WaitTimeoutError` after
        ``timeout`` seconds. The server answers ``GET /v1/tasks/{uuid}?wait=`` as soon as the task
        ends (nothing polls); a longer wait than the server's longest is asked again."""
        deadline = time.monotonic() + timeout
        path = f"/v1/tasks/{_segment(task_uuid)}"
        while True:
            wait = min(max(0.0, deadline - time.monotonic()), _MAX_WAIT)
            status, payload = self._request("GET", f"{path}?wait={wait:.3f}", timeout=wait + self.timeout)
            task = self._ok(status, payload)
            if task.get("terminal") is True:
                return task
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(task_uuid, timeout, task.get("status"))

    def _ok(self, status: int, payload: Any) -> Dict[str, Any]:
        if 200 <= status < 300 and isinstance(payload, dict):
            return payload
        _raise_if_refused(status, payload)
        err = _error_body(payload)
        code = err.get("code") or "UNKNOWN"
        message = err.get("message") or f"server answered {status}"
        if status == 404 and code == "TASK_NOT_FOUND":
            raise TaskNotFoundError(status, code, message, err.get("field"))
        if status >= 500:
            raise ServerUnavailableError(status, code, message, err.get("field"))
        raise ApiError(status, code, message, err.get("field"))


def _raise_if_refused(status: int, payload: Any) -> None:
    """401 and 403 as their own exceptions, whatever the call."""
    if status not in (401, 403):
        return
    err = _error_body(payload)
    code = err.get("code") or ("UNAUTHENTICATED" if status == 401 else "FORBIDDEN")
    message = err.get("message") or f"server answered {status}"
    if status == 401:
        raise AuthenticationError(status, code, message, err.get("field"))
    details = err.get("details") or []
    scope = details[0].get("message") if details and isinstance(details[0], dict) else None
    raise PermissionDeniedError(status, code, message, err.get("field"), scope=scope)


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _error_body(payload: Any) -> Dict[str, Any]:
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}
