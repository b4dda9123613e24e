"/tokens: one's own API tokens (everyone), everyone's (admin)."

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request

from swarmsync.api.deps import address, require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import TokenCreate, TokenCreated, TokenOut
from swarmsync.auth import tokens
from swarmsync.auth.roles import Permission, Principal

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=responses(401, 403))
own = require(Permission.TOKENS_OWN)


@router.get("", response_model=list[TokenOut])
def list_tokens(
    all_users: bool = Query(False, alias="all", description="Everyone's tokens (admins)"),
    owner: str | None = Query(None, max_length=64, description="One user's tokens (admins)"),
    principal: Principal = Depends(own),
) -> list[TokenOut]:
    return tokens.list_tokens(principal, owner, everyone=all_users)


@router.post("", response_model=TokenCreated, status_code=201, responses=responses(400, 404))
def create_token(body: TokenCreate, request: Request, principal: Principal = Depends(own)) -> TokenCreated:
    """A new API token; its secret is in this response only."""
    new = tokens.create_token(principal, body.name, body.owner, body.scopes, body.expires_in_days, address(request))
    return TokenCreated(token=new.token, **new.info.model_dump())


@router.delete("/{token_id}", response_model=TokenOut, responses=responses(404))
def revoke_token(
    request: Request, token_id: int = Path(ge=1, le=2**31 - 1), principal: Principal = Depends(own),
) -> TokenOut:
    return tokens.revoke_token(principal, token_id, address(request))
