"""Pathways API (reference §3.1): pathways, versions, publishing, folders.

Every save runs the lint: hard errors (the pathway cannot run) refuse it with a 400 that
names the node; warnings come back beside the saved pathway. A new pathway may start
empty (``POST /v1/pathway/create`` takes only a name), so the lint runs once there are
nodes.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.api.auth import Org
from callwright.api.errors import STYLE_A, ApiError, not_found
from callwright.api.pathway_lint import check_document
from callwright.api.schemas import ErrorA, ErrorB
from callwright.api.services import Services, Svc
from callwright.store import pathways
from callwright.store.pathway_models import Pathway, PathwayFolder, PathwayVersion
from callwright.store.views import iso

router = APIRouter(prefix="/v1", tags=["pathways"])
VersionNumber = Annotated[int, Path(ge=0, le=1_000_000)]


class PathwayBody(BaseModel):
    """Create/update body. ``nodes``/``edges`` stay raw JSON: the lint judges them, and
    every field a user wrote is kept."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=10_000)
    nodes: list[Any] | None = None
    edges: list[Any] | None = None
    # The update page documents top-level fields; its example nests them (reference §10.8).
    pathway_data: dict[str, Any] | None = None


class CreateBody(PathwayBody):
    name: str = Field(min_length=1, max_length=500)


class VersionBody(PathwayBody):
    pass


class PublishBody(BaseModel):
    version_id: int = Field(ge=1, le=1_000_000, description="The version number to promote.")
    environment: Literal["production", "staging"] = "production"


class FolderBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    parent_folder_id: str | None = Field(default=None, max_length=36)


class MoveBody(BaseModel):
    pathway_id: str = Field(max_length=36)
    folder_id: str | None = Field(default=None, max_length=36)


def _merge(body: PathwayBody, document: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stored document after applying ``body``: top-level keys other than name and
    description are part of the pathway JSON."""
    doc = dict(document or {})
    fields = body.model_dump(exclude_unset=True)
    nested = fields.pop("pathway_data", None) or {}
    fields.update({k: v for k, v in nested.items()})
    fields.update(body.model_extra or {})
    for key, value in fields.items():
        if key in ("nodes", "edges") and value is None:
            continue  # an explicit null means "leave as is", as for other optional fields
        if key not in ("name", "description"):
            doc[key] = value
    doc.setdefault("nodes", [])
    doc.setdefault("edges", [])
    return doc


def _names(body: PathwayBody) -> dict[str, Any]:
    nested = body.pathway_data or {}
    out: dict[str, Any] = {}
    for key in ("name", "description"):
        if key in nested:
            out[key] = nested[key]
        elif key in body.model_fields_set:
            out[key] = getattr(body, key)
    if out.get("name") is None:
        out.pop("name", None)  # a pathway always has a name: null leaves it unchanged
    return out


def pathway_object(p: Pathway) -> dict[str, Any]:
    return {
        **p.document,
        "id": p.id,
        "pathway_id": p.id,
        "name": p.name,
        "description": p.description,
        "folder_id": p.folder_id,
        "production_version_number": p.production_version,
        "staging_version_number": p.staging_version,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }


async def _get(session: AsyncSession, org: str, pathway_id: str) -> Pathway:
    found = await pathways.get_pathway(session, org, pathway_id)
    if found is None:
        raise not_found("Pathway")
    return found


def _llm_configured(svc: Services) -> bool:
    return bool(svc.settings.llm_base_url)


async def _create(body: PathwayBody, name: str, org: str, svc: Svc) -> JSONResponse:
    document = _merge(body)
    warnings = check_document(document, llm_configured=_llm_configured(svc))
    now = svc.clock.now()
    row = Pathway(
        id=str(uuid.uuid4()),
        org_id=org,
        name=name,
        description=body.description,
        document=document,
        created_at=now,
        updated_at=now,
    )
    async with svc.db.transaction() as session:
        session.add(row)
    return JSONResponse(
        {
            "status": "success",
            "message": "Pathway created successfully",
            "pathway_id": row.id,
            "warnings": warnings,
        }
    )


@router.post("/pathway/create", openapi_extra=STYLE_A, summary="Create a pathway")
async def create_pathway(body: CreateBody, org: Org, svc: Svc) -> JSONResponse:
    return await _create(body, body.name, org, svc)


@router.post(
    "/pathway", openapi_extra=STYLE_A, summary="Create a pathway (alias real clients call)"
)
async def create_pathway_alias(body: CreateBody, org: Org, svc: Svc) -> JSONResponse:
    return await _create(body, body.name, org, svc)


@router.get("/pathway", summary="List pathways")
async def list_pathways(org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        rows = await session.execute(
            select(Pathway).where(Pathway.org_id == org).order_by(Pathway.created_at, Pathway.id)
        )
        items = [pathway_object(p) for p in rows.scalars()]
    return JSONResponse(items)


@router.get("/pathway/folders", summary="List folders")
async def list_folders(org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        rows = await session.execute(
            select(PathwayFolder).where(PathwayFolder.org_id == org).order_by(PathwayFolder.name)
        )
        folders = [_folder(f) for f in rows.scalars()]
    return JSONResponse({"folders": folders})


def _folder(f: PathwayFolder) -> dict[str, Any]:
    return {"id": f.id, "folder_id": f.id, "name": f.name, "parent_folder_id": f.parent_folder_id}


async def _folder_of(session: AsyncSession, org: str, folder_id: str) -> PathwayFolder:
    found = await session.get(PathwayFolder, folder_id)
    if found is None or found.org_id != org:
        raise not_found("Folder")
    return found


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorB, "description": "No such pathway or folder in the key's org."}
}
NOT_FOUND_A: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorA, "description": "No such pathway in the key's org."}
}


@router.post("/pathway/folders", responses=NOT_FOUND, summary="Create a folder")
async def create_folder(body: FolderBody, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        if body.parent_folder_id:
            await _folder_of(session, org, body.parent_folder_id)
        row = PathwayFolder(
            id=str(uuid.uuid4()),
            org_id=org,
            name=body.name,
            parent_folder_id=body.parent_folder_id,
            created_at=svc.clock.now(),
        )
        session.add(row)
    return JSONResponse(_folder(row))


@router.patch("/pathway/folders/{folder_id}", summary="Rename a folder")
async def rename_folder(folder_id: str, body: FolderBody, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _folder_of(session, org, folder_id)
        row.name = body.name
        result = _folder(row)
    return JSONResponse(result)


@router.delete("/pathway/folders/{folder_id}", summary="Delete an empty folder")
async def delete_folder(folder_id: str, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _folder_of(session, org, folder_id)
        inside = await session.scalar(
            select(func.count()).select_from(Pathway).where(Pathway.folder_id == folder_id)
        )
        children = await session.scalar(
            select(func.count())
            .select_from(PathwayFolder)
            .where(PathwayFolder.parent_folder_id == folder_id)
        )
        if inside or children:
            raise ApiError(400, "FOLDER_NOT_EMPTY", "Folder is not empty.", field="folder_id")
        await session.delete(row)
    return JSONResponse({"folder_id": folder_id})


@router.get("/pathway/folders/{folder_id}/pathways", summary="Pathways in a folder")
async def folder_pathways(folder_id: str, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        await _folder_of(session, org, folder_id)
        rows = await session.execute(
            select(Pathway).where(Pathway.org_id == org, Pathway.folder_id == folder_id)
        )
        items = [
            {
                "id": p.id,
                "name": p.name,
                "description": p.description,
                "created_at": iso(p.created_at),
            }
            for p in rows.scalars()
        ]
    return JSONResponse({"pathways": items})


@router.post(
    "/pathway/folders/move", responses=NOT_FOUND, summary="Move a pathway to a folder or the root"
)
async def move_pathway(body: MoveBody, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _get(session, org, body.pathway_id)
        if body.folder_id:
            await _folder_of(session, org, body.folder_id)
        old, row.folder_id = row.folder_id, body.folder_id
    return JSONResponse(
        {"pathway_id": body.pathway_id, "old_folder_id": old, "new_folder_id": body.folder_id}
    )


@router.get("/pathway/{pathway_id}", summary="Get a pathway")
async def get_pathway(pathway_id: str, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        row = await _get(session, org, pathway_id)
    return JSONResponse(pathway_object(row))


async def _update(pathway_id: str, body: PathwayBody, org: str, svc: Services) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _get(session, org, pathway_id)
        document = _merge(body, row.document)
        warnings = check_document(document, llm_configured=_llm_configured(svc))
        for key, value in _names(body).items():
            setattr(row, key, value)
        row.document = document
        row.updated_at = svc.clock.now()
        data = {
            "pathway_id": row.id,
            "name": row.name,
            "description": row.description,
            "nodes": document["nodes"],
            "edges": document["edges"],
        }
    return JSONResponse(
        {
            "status": "success",
            "message": "Pathway updated successfully",
            "pathway_data": data,
            "warnings": warnings,
        }
    )


@router.post("/pathway/{pathway_id}", openapi_extra=STYLE_A, summary="Update a pathway")
async def update_pathway(pathway_id: str, body: PathwayBody, org: Org, svc: Svc) -> JSONResponse:
    return await _update(pathway_id, body, org, svc)


class AliasBody(PathwayBody):
    pathway_id: str = Field(max_length=36)


@router.post(
    "/convo_pathway/update", openapi_extra=STYLE_A, responses=NOT_FOUND_A, summary="Update (alias)"
)
async def update_alias(body: AliasBody, org: Org, svc: Svc) -> JSONResponse:
    inner = PathwayBody.model_validate(body.model_dump(exclude={"pathway_id"}, exclude_unset=True))
    return await _update(body.pathway_id, inner, org, svc)


@router.delete("/pathway/{pathway_id}", openapi_extra=STYLE_A, summary="Delete a pathway")
async def delete_pathway(pathway_id: str, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _get(session, org, pathway_id)
        await session.delete(row)
    return JSONResponse({"status": "success", "message": "Pathway deleted successfully"})


# -- versions --------------------------------------------------------------------------


def _version_object(p: Pathway, v: PathwayVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "version_number": v.version_number,
        "name": v.name,
        "created_at": iso(v.created_at),
        "is_latest": False,
        "is_production": p.production_version == v.version_number,
        "is_staging": p.staging_version == v.version_number,
    }


async def _versions(session: AsyncSession, pathway_id: str) -> list[PathwayVersion]:
    rows = await session.execute(
        select(PathwayVersion)
        .where(PathwayVersion.pathway_id == pathway_id, PathwayVersion.archived.is_(False))
        .order_by(PathwayVersion.version_number)
    )
    return list(rows.scalars())


async def _create_version(
    pathway_id: str, body: PathwayBody, org: str, svc: Services
) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _get(session, org, pathway_id)
        document = _merge(body, row.document if body.nodes is None else None)
        warnings = check_document(document, llm_configured=_llm_configured(svc))
        last = await session.scalar(
            select(func.max(PathwayVersion.version_number)).where(
                PathwayVersion.pathway_id == pathway_id
            )
        )
        version = PathwayVersion(
            id=str(uuid.uuid4()),
            pathway_id=pathway_id,
            org_id=org,
            version_number=(last or 0) + 1,
            name=body.name or row.name,
            document=document,
            archived=False,
            created_at=svc.clock.now(),
        )
        session.add(version)
    return JSONResponse(
        {
            "status": "success",
            "message": "Version created successfully",
            "data": {
                "created_at": iso(version.created_at),
                "id": version.id,
                "name": version.name,
                "version_number": version.version_number,
            },
            "warnings": warnings,
        }
    )


@router.post("/pathway/{pathway_id}/version", openapi_extra=STYLE_A, summary="Create a version")
async def create_version(pathway_id: str, body: VersionBody, org: Org, svc: Svc) -> JSONResponse:
    return await _create_version(pathway_id, body, org, svc)


@router.post(
    "/convo_pathway/create-version",
    openapi_extra=STYLE_A,
    responses=NOT_FOUND_A,
    summary="Create a version (alias)",
)
async def create_version_alias(body: AliasBody, org: Org, svc: Svc) -> JSONResponse:
    inner = PathwayBody.model_validate(body.model_dump(exclude={"pathway_id"}, exclude_unset=True))
    return await _create_version(body.pathway_id, inner, org, svc)


@router.get("/pathway/{pathway_id}/versions", summary="List versions")
async def list_versions(pathway_id: str, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        row = await _get(session, org, pathway_id)
        versions = await _versions(session, pathway_id)
    items = [_version_object(row, v) for v in versions]
    if items:
        items[-1]["is_latest"] = True
    return JSONResponse(items)


async def _version(session: AsyncSession, row: Pathway, number: int) -> PathwayVersion:
    found = await pathways.get_version(session, row, number)
    if found is None:
        raise not_found("Published version" if number == 0 else "Pathway version")
    return found


@router.get("/pathway/{pathway_id}/version/{version_id}", summary="Get a version (0 = live)")
async def get_version(
    pathway_id: str, version_id: VersionNumber, org: Org, svc: Svc
) -> JSONResponse:
    async with svc.db.session() as session:
        row = await _get(session, org, pathway_id)
        version = await _version(session, row, version_id)
        latest = max((v.version_number for v in await _versions(session, pathway_id)), default=0)
    return JSONResponse(
        {
            **version.document,
            "name": version.name,
            "version_number": version.version_number,
            "is_latest": version.version_number == latest,
        }
    )


@router.post(
    "/pathway/{pathway_id}/version/{version_id}",
    openapi_extra=STYLE_A,
    summary="Overwrite a version",
)
async def update_version(
    pathway_id: str, version_id: VersionNumber, body: VersionBody, org: Org, svc: Svc
) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _get(session, org, pathway_id)
        version = await _version(session, row, version_id)
        document = _merge(body, version.document)
        check_document(document, llm_configured=_llm_configured(svc))
        version.document = document
        if body.name:
            version.name = body.name
    return JSONResponse({"status": "success", "message": "Version updated successfully"})


@router.delete(
    "/pathway/{pathway_id}/version/{version_id}", openapi_extra=STYLE_A, summary="Archive a version"
)
async def delete_version(
    pathway_id: str, version_id: VersionNumber, org: Org, svc: Svc
) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _get(session, org, pathway_id)
        version = await _version(session, row, version_id)
        if version.version_number in (row.production_version, row.staging_version):
            raise ApiError(
                400,
                "VERSION_PUBLISHED",
                f"version_id {version.version_number} is published; publish another version "
                "before deleting it.",
                field="version_id",
            )
        version.archived = True
    return JSONResponse({"status": "success", "message": "Version deleted successfully"})


@router.post("/pathway/{pathway_id}/publish", summary="Promote a version")
async def publish(pathway_id: str, body: PublishBody, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _get(session, org, pathway_id)
        version = await _version(session, row, body.version_id)
        if body.environment == "production":
            row.production_version = version.version_number
        else:
            row.staging_version = version.version_number
    return JSONResponse({"message": "Pathway published successfully"})
