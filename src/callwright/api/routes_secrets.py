"""Secrets API (``/v1/secrets``; reference §4.4 has the dashboard only).

A secret is written once and never shown again: responses carry its name, its template
reference and a masked value. The plaintext leaves the store only through
``store.secrets.resolve_secrets``, when a webhook or tool request is built. Nothing here
logs a request body.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.api.auth import Org
from callwright.api.errors import ApiError, not_found
from callwright.api.schemas import ErrorB
from callwright.api.secret_schema import (
    CreateSecret,
    SecretDeletedResponse,
    SecretListResponse,
    SecretResponse,
    UpdateSecret,
)
from callwright.api.services import Svc
from callwright.store import secrets as store
from callwright.store.secret_models import Secret
from callwright.store.views import iso

router = APIRouter(prefix="/v1", tags=["secrets"])
SecretRef = Annotated[str, Path(min_length=1, max_length=64, description="Secret id or name.")]


def _links() -> dict[str, Any]:
    """OpenAPI links from a created secret to the operations on it (clients and
    schemathesis's stateful phase follow these)."""
    ref = "#/paths/~1v1~1secrets~1{secret_id}/"
    param = {"secret_id": "$response.body#/data/secret_id"}
    return {
        f"{name}Secret": {"operationRef": ref + method, "parameters": param}
        for name, method in (("Get", "get"), ("Update", "patch"), ("Delete", "delete"))
    }


def secret_object(row: Secret) -> dict[str, Any]:
    return {
        "secret_id": row.id,
        "name": row.name,
        "type": "static",
        "reference": f"{{{{SECRET.{row.name}}}}}",
        "masked_value": row.masked,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def data(value: Any) -> JSONResponse:
    return JSONResponse({"data": value, "errors": None})


def name_taken(name: str) -> ApiError:
    return ApiError(409, "ALREADY_EXISTS", f"A secret named {name} already exists.", field="name")


async def _secret(session: AsyncSession, org: str, ref: str) -> Secret:
    row = await store.get_secret(session, org, ref)
    if row is None:
        raise not_found("Secret")
    return row


@router.post(
    "/secrets",
    responses={200: {"model": SecretResponse, "links": _links()}, 409: {"model": ErrorB}},
    summary="Create a secret",
)
async def create_secret(body: CreateSecret, org: Org, svc: Svc) -> JSONResponse:
    try:
        async with svc.db.transaction() as session:
            row = await store.create_secret(
                session, svc.box, org, body.name, body.value.get_secret_value(), svc.clock.now()
            )
    except IntegrityError:
        raise name_taken(body.name) from None
    return data(secret_object(row))


@router.get(
    "/secrets",
    responses={200: {"model": SecretListResponse}},
    summary="List secrets (values masked)",
)
async def list_secrets(org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        rows = await store.list_secrets(session, org)
    return data({"secrets": [secret_object(r) for r in rows]})


@router.get(
    "/secrets/{secret_id}",
    responses={200: {"model": SecretResponse}},
    summary="Get a secret (value masked)",
)
async def get_secret(secret_id: SecretRef, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        row = await _secret(session, org, secret_id)
    return data(secret_object(row))


@router.patch(
    "/secrets/{secret_id}",
    responses={200: {"model": SecretResponse}, 409: {"model": ErrorB}},
    summary="Rename a secret or replace its value",
)
async def update_secret(
    secret_id: SecretRef, body: UpdateSecret, org: Org, svc: Svc
) -> JSONResponse:
    if body.name is None and body.value is None:
        raise ApiError(400, "VALIDATION_ERROR", "Give name or value to change.", field="body")
    now = svc.clock.now()
    try:
        async with svc.db.transaction() as session:
            row = await _secret(session, org, secret_id)
            if body.name is not None:
                store.rename(row, body.name, now)
            if body.value is not None:
                store.set_value(svc.box, row, body.value.get_secret_value(), now)
            await session.flush()
            result = secret_object(row)
    except IntegrityError:
        raise name_taken(body.name or "") from None
    return data(result)


@router.delete(
    "/secrets/{secret_id}",
    responses={200: {"model": SecretDeletedResponse}},
    summary="Delete a secret",
)
async def delete_secret(secret_id: SecretRef, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _secret(session, org, secret_id)
        deleted = row.id
        await session.delete(row)
    return data({"message": "Secret deleted.", "secret_id": deleted})
