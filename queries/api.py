"""The JSON run API, for scripts and webhooks.

    POST /api/v1/apps/<app>/queries/<query>/runs   {"inputs": {...}}  -> 202
    GET  /api/v1/runs/<id>[?wait=N]
    POST /api/v1/runs/<id>/cancel                  -> 200, or 409 once it is sending

A mail merge (docs/merge.md): creating a run of a query with for_each answers its parent
run, with "progress"; cancel stops it. Besides:

    POST /api/v1/runs/<merge id>/stop              -> 200 {"stopped": n, ...}
    POST /api/v1/runs/<merge id>/resume            -> 200 {"resumed": n, ...}
    POST /api/v1/runs/<row id>/retry               -> 200, 409 unless the row failed
    GET  /api/v1/runs/<merge id>/rows[?status=failed&offset=0&limit=50]

Authenticated by a per-user token (``Authorization: Bearer kiln_...``); only members of
the app's workspace may run or read, everyone else gets 404.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_ratelimit.core import is_ratelimited
from pydantic import ValidationError as SchemaError

from builder.models import Query
from builder.publishing import published
from core.filetypes import sniffed_type
from queries import merge as merge_api
from queries.errors import RunLimitError, RunRequestError
from queries.execution import check_run_limits, create_run
from queries.models import ApiToken, QueryRun, RunStatus
from workspaces import audit
from workspaces.audit import Action
from workspaces.files import FileContent
from workspaces.models import Role

log = logging.getLogger(__name__)


def _error(status: int, message: str, field: str | None = None) -> JsonResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status)


def token_required(view):
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        user = ApiToken.authenticate(key.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            response = _error(401, "Send a valid API token: Authorization: Bearer <token>.")
            response["WWW-Authenticate"] = 'Bearer realm="kiln"'
            return response
        request.user = user
        limit = settings.KILN_API_CALLS_PER_MINUTE
        if limit > 0 and is_ratelimited(
            request,
            group="kiln-api",
            # By the token's digest: each token has its own budget, and the cache never
            # holds a token.
            key=lambda group, request: hashlib.sha256(key.strip().encode()).hexdigest(),
            rate=f"{limit}/m",
            increment=True,
        ):
            response = _error(
                429,
                f"Too many API calls: at most {limit} a minute for each token "
                "(limit KILN_API_CALLS_PER_MINUTE). Try again in a minute.",
            )
            response["Retry-After"] = "60"
            return response
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


def _run_body(run: QueryRun, request: HttpRequest) -> dict:
    return {**run.as_api(), "url": request.build_absolute_uri(reverse("api:run", args=[run.pk]))}


class BodyTooLarge(Exception):
    """A JSON body over ``KILN_API_MAX_BODY_BYTES``: answered 413, naming the limit."""

    def __init__(self, size: int, limit: int):
        super().__init__(
            f"The request body is {size:,} bytes or more, over the limit of {limit:,} bytes "
            "for JSON (KILN_API_MAX_BODY_BYTES). Send large files as multipart/form-data: "
            "the inputs as a JSON field named inputs, each file under its widget's name "
            "(docs/api.md)."
        )
        self.message = str(self)


def _json_body(request: HttpRequest) -> bytes:
    """The JSON body, read here up to ``KILN_API_MAX_BODY_BYTES``. ``request.body`` would
    apply Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) and answer a file sent as a data
    URL with an HTML 400; this view alone reads more, and says how much."""
    limit = settings.KILN_API_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyTooLarge(declared, limit)
    data = request.read(limit + 1)
    if len(data) > limit:
        raise BodyTooLarge(len(data), limit)
    return data


def _inputs(request: HttpRequest) -> dict:
    """Inputs from a JSON body, or from a multipart form: ``inputs`` (JSON text) and
    files under the name of their widget (``files1``), which become ``files1.files``."""
    if request.content_type == "multipart/form-data":
        text = request.POST.get("inputs") or "{}"
        where = "inputs"
    else:
        text = _json_body(request).decode("utf-8", "replace") or "{}"
        where = "body"
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunRequestError(
            where, f"{where}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})."
        ) from None
    if where == "body":
        if not isinstance(payload, dict):
            raise RunRequestError("body", "body must be a JSON object with an inputs key.")
        payload = payload.get("inputs", {})
    if not isinstance(payload, dict):
        raise RunRequestError("inputs", "inputs must be an object of widget names to states.")
    for widget in request.FILES:
        state = payload.setdefault(widget, {})
        if not isinstance(state, dict):
            raise RunRequestError(f"inputs.{widget}", f"inputs.{widget} must be an object.")
        state["files"] = [
            FileContent(f.name, sniffed_type(f.name, data := f.read()), data)
            for f in request.FILES.getlist(widget)
        ]
    return payload


@token_required
@require_POST
def create_run_view(request: HttpRequest, app: str, query: str) -> JsonResponse:
    found = (
        Query.objects.select_related("app__workspace", "datasource")
        .filter(app__slug=app, name=query, app__workspace__memberships__user=request.user)
        .first()
    )
    if found is None:
        return _error(404, "No such app or query.")
    # A published app runs as published; an app never published runs its draft.
    version = published(found.app)
    try:
        frozen = version.app_document().query(found.name) if version else None
    except SchemaError:
        log.exception("published version %s cannot be read", version.pk if version else None)
        return _error(409, "The published app cannot be read; publish it again.")
    if version is not None and frozen is None:
        return _error(404, "No such query in the published app; publish it first.")
    try:
        # Before the body is read: a throttled caller's 39 MB is neither read nor parsed.
        check_run_limits(found, request.user)
        run = create_run(found, request.user, _inputs(request), published=frozen, request=request)
    except BodyTooLarge as exc:
        return _error(413, exc.message, "body")
    except RunLimitError as exc:
        response = _error(429, exc.message)
        response["Retry-After"] = "60"
        return response
    except RunRequestError as exc:
        return _error(400, exc.message, exc.field)
    run.refresh_from_db()
    response = JsonResponse(_run_body(run, request), status=202)
    response["Location"] = reverse("api:run", args=[run.pk])
    return response


def _own_run(request: HttpRequest, run_id: int) -> QueryRun | None:
    """The run if the token's user may read and cancel it: a member their own runs,
    editors and admins every run of the workspace. None (a 404) for everyone else."""
    runs = QueryRun.objects.select_related("workspace").filter(
        pk=run_id, workspace__memberships__user=request.user
    )
    return runs.filter(
        Q(created_by=request.user)
        | Q(
            workspace__memberships__user=request.user,
            workspace__memberships__role__in=[Role.EDITOR, Role.ADMIN],
        )
    ).first()


@token_required
@require_GET
def run_view(request: HttpRequest, run_id: int) -> JsonResponse:
    run = _own_run(request, run_id)
    if run is None:
        return _error(404, "No such run.")
    try:
        wait = float(request.GET.get("wait") or 0)
    except ValueError:
        return _error(400, "wait must be a number of seconds.", "wait")
    run.wait(min(wait, settings.KILN_API_MAX_WAIT_SECONDS))
    return JsonResponse(_run_body(run, request))


@token_required
@require_POST
def cancel_run_view(request: HttpRequest, run_id: int) -> JsonResponse:
    """Cancel a run no worker has taken yet (queued, or scheduled for a retry)."""
    run = _own_run(request, run_id)
    if run is None:
        return _error(404, "No such run.")
    if run.is_merge:
        return _merge_action(request, run_id, merge_api.stop_merge, "stopped")
    with transaction.atomic():
        cancelled = run.cancel(by=request.user.get_username())
        if cancelled:
            audit.record(
                run.workspace,
                Action.CANCELLED,
                "run",
                run.label,
                request=request,
                detail={"run": run.pk},
            )
    if not cancelled:
        if run.status == RunStatus.SENDING:
            message = (
                "The run is being sent and can no longer be cancelled; "
                "read it again to see how it ended."
            )
        else:
            message = f"The run has already ended ({run.status}); only a queued or "
            message += "scheduled run can be cancelled."
        body = {**_run_body(run, request), "error": message, "field": "status"}
        return JsonResponse(body, status=409)
    log.info("run %s cancelled by %s", run.pk, request.user.get_username())
    return JsonResponse(_run_body(run, request))


def _merge_action(request: HttpRequest, run_id: int, act, what: str) -> JsonResponse:
    """Stop, resume or retry: the run if the token's user may act on it (else 404),
    acted on, audited once; 409 naming the field when it cannot be."""
    run = _own_run(request, run_id)
    if run is None:
        return _error(404, "No such run.")
    try:
        count = act(run, request.user.get_username())
    except RunRequestError as exc:
        run.refresh_from_db()
        body = {**_run_body(run, request), "error": exc.message, "field": exc.field}
        return JsonResponse(body, status=409)
    merge = run if run.is_merge else run.parent
    if merge is not None:
        merge_api.audit_merge(merge, what, request, count)
    run.refresh_from_db()
    return JsonResponse({**_run_body(run, request), what: count})


@token_required
@require_POST
def stop_merge_view(request: HttpRequest, run_id: int) -> JsonResponse:
    """Stop a merge: its rows not taken by a worker yet are cancelled."""
    return _merge_action(request, run_id, merge_api.stop_merge, "stopped")


@token_required
@require_POST
def resume_merge_view(request: HttpRequest, run_id: int) -> JsonResponse:
    """Start a stopped merge again: only its rows never sent are queued."""
    return _merge_action(request, run_id, merge_api.resume_merge, "resumed")


@token_required
@require_POST
def retry_row_view(request: HttpRequest, run_id: int) -> JsonResponse:
    """Send one failed row of a merge again."""

    def retry(run: QueryRun, by: str) -> int:
        merge_api.retry_row(run, by)
        return 1

    return _merge_action(request, run_id, retry, "retried")


@token_required
@require_GET
def merge_rows_view(request: HttpRequest, run_id: int) -> JsonResponse:
    """A page of a merge's rows, in order, of one status if asked."""
    run = _own_run(request, run_id)
    if run is None:
        return _error(404, "No such run.")
    if not run.is_merge:
        return _error(409, f"Run {run.pk} is not a mail merge.", "run")
    status = request.GET.get("status", "")
    if status and status not in RunStatus.values:
        choices = ", ".join(RunStatus.values)
        return _error(400, f"status must be one of {choices}.", "status")
    try:
        offset = max(int(request.GET.get("offset") or 0), 0)
        limit = min(max(int(request.GET.get("limit") or 50), 1), 500)
    except ValueError:
        return _error(400, "offset and limit must be whole numbers.", "offset")
    rows = merge_api.rows_of(run, status, offset, limit)
    plugin = run.datasource.plugin if run.datasource else None
    return JsonResponse(
        {"progress": run.progress(), "rows": [merge_api.row_api(row, plugin) for row in rows]}
    )
