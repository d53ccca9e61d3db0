"""Gateway: the customers' HTTP API. Validates requests, publishes them as events, and answers
reads from a model folded from custody's and the saga's events.

Writes are accepted with 202 once the event is in the log; outcomes are read back later
(`GET /withdrawals/{venue}/{request_id}`), as with a real exchange's withdrawal queue.

Every customer route wants the account's bearer token (`bankrun.auth`): none or a bad one is
401, another account's is 403. The all-customer feeds and the operator's actions (gate, halt,
policy change: commands on `bankrun.operator-commands`) want the operator's token. Each
customer has a request budget (429 past it); bodies over `max_body_bytes` are refused with 413.
Every error status a route can answer is declared with its body, so the OpenAPI description
is the truth (`tests/e2e/test_gateway_operator.py` holds the gateway to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from bankrun import events as ev
from bankrun.auth import Caller, Tokens, por_secret_from_env
from bankrun.domain.attestation import liabilities_tree
from bankrun.domain.por import SumTree
from bankrun.runner.kafka import log_reader, log_writer
from bankrun.topics import (
    BALANCES,
    CONTROL,
    CUSTODY_EVENTS,
    MARKET_DATA,
    POR,
    WITHDRAWAL_EVENTS,
    topic_of,
)
from services.common import metrics
from services.common.settings import ServiceSettings
from services.common.spill import Spill
from services.gateway.limits import BodyLimit, RateLimit
from services.gateway.models import (
    Accepted,
    Balances,
    CancelAccepted,
    DepositBody,
    GateBody,
    HaltBody,
    Market,
    Markets,
    Onboarded,
    OpenAccountBody,
    Outcomes,
    PolicyBody,
    Problem,
    Ready,
    Venues,
    VenueStatus,
    WithdrawalBody,
    WithdrawalCounts,
    WithdrawalRecord,
)
from services.gateway.models import (
    errors as _errors,
)
from services.gateway.readmodel import Attested, ReadModel

log = logging.getLogger("bankrun.gateway")
settings = ServiceSettings.from_env()
model = ReadModel()
_state: dict[str, Any] = {"ready": False}
_onboarded: set[tuple[str, str]] = set()  # (venue, account) this process has signed up
_news = asyncio.Condition()  # notified when the read model has taken in a batch of events
_rate = RateLimit(settings.rate_per_account, settings.rate_burst)
Venue = Annotated[str, Path(pattern=ev.ID_PATTERN)]
Account = Annotated[str, Path(pattern=ev.ID_PATTERN)]
RequestKey = Annotated[str, Path(pattern=ev.REQUEST_ID_PATTERN)]


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    _state["tokens"] = Tokens.from_env()  # no secret, no gateway: it never runs open
    _state["por_secret"] = por_secret_from_env() or _state["tokens"].por_secret()
    model.keep_in(Spill(settings.data_dir / "gateway" / "spill.sqlite"), settings.hot_keys)
    producer = log_writer(settings.bootstrap, linger_ms=1)
    await producer.start()
    consumer = log_reader(settings.bootstrap)
    await consumer.start()
    follower = asyncio.create_task(_follow(consumer))
    _state["producer"] = producer
    try:
        yield
    finally:
        _state["ready"] = False
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await consumer.stop()
        await producer.stop()


async def _follow(consumer: AIOKafkaConsumer) -> None:
    """Fold venues, balances and outcomes into the read model, from the start of the log."""
    partitions = []
    for topic in (CONTROL, BALANCES, WITHDRAWAL_EVENTS, MARKET_DATA, CUSTODY_EVENTS, POR):
        partitions += [TopicPartition(topic.name, p) for p in range(topic.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    _state["ready"] = True
    while True:
        batches = await consumer.getmany(timeout_ms=500, max_records=5000)
        for records in batches.values():
            for record in records:
                metrics.CONSUMED.labels("gateway", record.topic).inc()
                metrics.CONSUMED_OFFSET.labels("gateway", record.topic, str(record.partition)).set(
                    record.offset + 1
                )
                if not record.value:
                    continue  # a null or empty message: nothing to fold
                if record.topic == MARKET_DATA.name and b'"book.snapshot"' not in record.value:
                    continue  # orders and trades: not the gateway's business, not decoded
                if record.topic == CUSTODY_EVENTS.name and b'"policy.changed"' not in record.value:
                    continue  # the ledger's traffic: only a venue's new policy is shown
                try:
                    model.apply(ev.decode(record.value))
                except ValidationError:
                    log.warning(
                        "unreadable event at %s[%s]@%s",
                        record.topic,
                        record.partition,
                        record.offset,
                    )
        if batches:
            async with _news:
                _news.notify_all()  # long polls see what this batch changed


app = FastAPI(
    title="bankrun gateway",
    version="1",
    description="Customer API of a simulated exchange venue. Amounts are integer minor units.",
    lifespan=lifespan,
)


@app.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "field": ".".join(
                str(p) for p in e["loc"] if p not in ("body", "path", "query", "header")
            ),
            "message": e["msg"],
        }
        for e in exc.errors()
    ]
    summary = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
    return JSONResponse(status_code=422, content={"detail": summary, "errors": errors})


app.add_middleware(BodyLimit, limit=settings.max_body_bytes)


@app.middleware("http")
async def _count(request: Request, call_next: Any) -> Response:
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    metrics.HTTP_REQUESTS.labels(path, str(response.status_code)).inc()
    return response


def _openapi() -> dict[str, Any]:
    """FastAPI's description, with onboarding's token marked optional: a newcomer has none."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        schema["paths"]["/accounts"]["post"]["security"] = [{}, {"HTTPBearer": []}]
    return app.openapi_schema  # type: ignore[return-value]


app.openapi = _openapi  # type: ignore[method-assign]

_bearer = HTTPBearer(
    auto_error=False,
    description="a customer's token (from onboarding, or made from the run's secret), or the "
    "operator's",
)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="bankrun"'})


async def caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Who calls, from the bearer token (401 without a valid one); a customer within its
    request budget (429 past it, with Retry-After). Async, so it runs on the event loop: no
    thread hop per request, and the buckets are never touched by two at once."""
    if credentials is None:
        raise _unauthorized("a bearer token is needed")
    who = _state["tokens"].check(credentials.credentials)
    if who is None:
        raise _unauthorized("invalid token")  # never echoes the token
    if not who.operator:
        wait = _rate.take((who.venue, who.account), time.monotonic())
        if wait:  # counted with the rest: bankrun_http_requests_total{code="429"}
            raise HTTPException(
                429,
                "too many requests for this account",
                headers={"Retry-After": str(math.ceil(wait))},
            )
    return who


async def operator(who: Annotated[Caller, Depends(caller)]) -> Caller:
    if not who.operator:
        raise HTTPException(403, "operator only")
    return who


Authenticated = Annotated[Caller, Depends(caller)]
Operator = Annotated[Caller, Depends(operator)]


def _acts_for(who: Caller, venue: str, account: str) -> None:
    """Only the account itself moves its money (the operator does not act for customers)."""
    if who.operator or (who.venue, who.account) != (venue, account):
        raise HTTPException(403, f"not your account: {account!r} at {venue!r}")


def _may_read(who: Caller, venue: str, account: str) -> None:
    """The account itself, or the operator."""
    if not who.operator and (who.venue, who.account) != (venue, account):
        raise HTTPException(403, f"not your account: {account!r} at {venue!r}")


def _now(venue: str) -> float:
    """Scenario time at the venue, from its scenario.started event (edge: reads the clock)."""
    return model.scenario_time(venue, time.time(), settings.clock)


def _venue(venue: str) -> str:
    if venue not in model.venues:
        raise HTTPException(404, f"unknown venue {venue!r}")
    return venue


def _account(venue: str, account: str, asset: str) -> None:
    _venue(venue)
    if not model.has_account(venue, account, asset):
        raise HTTPException(404, f"unknown account {account!r} for {asset} at venue {venue!r}")


async def _publish(event: ev.Event) -> None:
    topic = topic_of(type(event))
    await _state["producer"].send_and_wait(
        topic.name, event.to_bytes(), key=topic.key_of(event).encode()
    )
    metrics.PRODUCED.labels("gateway", topic.name).inc()


def _idempotent_id(kind: str, venue: str, key: str | None) -> uuid.UUID:
    """Same key, same event id: a retried request is dropped by the consumers' journals."""
    return ev.idempotent_id(kind, venue, key) if key else uuid.uuid4()


@app.post(
    "/accounts",
    status_code=202,
    response_model=Onboarded,
    responses=_errors(400, 404, 409, 413, 422),
)
async def open_account(
    body: OpenAccountBody,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Onboarded:
    """Onboarding: opens the account and hands out its token. An account that exists (in any
    asset) takes another asset only with its own token; otherwise 409."""
    _venue(body.venue)
    if model.has_account(body.venue, body.account, body.asset):
        raise HTTPException(409, f"account {body.account!r} already exists at {body.venue!r}")
    key = (body.venue, body.account)
    if model.account(*key) or key in _onboarded:
        who = _state["tokens"].check(credentials.credentials) if credentials else None
        if who is None or (who.venue, who.account) != key:
            raise HTTPException(409, f"account {body.account!r} already exists at {body.venue!r}")
    _onboarded.add(key)  # the read model lags: a second sign-up for the name is refused now
    event = ev.AccountOpened(
        event_id=_idempotent_id("account", body.venue, f"{body.account}/{body.asset}"),
        venue=body.venue,
        scenario_time=_now(body.venue),
        account=body.account,
        asset=body.asset,
    )
    await _publish(event)
    return Onboarded(event_id=event.event_id, token=_state["tokens"].customer(*key))


@app.post(
    "/deposits",
    status_code=202,
    response_model=Accepted,
    responses=_errors(400, 401, 403, 404, 413, 422, 429),
)
async def deposit(
    body: DepositBody,
    who: Authenticated,
    idempotency_key: Annotated[ev.RequestId | None, Header()] = None,
) -> Accepted:
    _acts_for(who, body.venue, body.account)
    _account(body.venue, body.account, body.asset)
    event = ev.DepositMade(
        event_id=_idempotent_id("deposit", body.venue, idempotency_key),
        venue=body.venue,
        scenario_time=_now(body.venue),
        account=body.account,
        asset=body.asset,
        amount=body.amount,
    )
    await _publish(event)
    return Accepted(event_id=event.event_id)


@app.post(
    "/withdrawals",
    status_code=202,
    response_model=WithdrawalRecord,
    responses={
        200: {"model": WithdrawalRecord, "description": "that request_id is already known"},
        **_errors(400, 401, 403, 404, 409, 413, 422, 429),
    },
)
async def withdraw(
    body: WithdrawalBody,
    who: Authenticated,
    idempotency_key: Annotated[ev.RequestId | None, Header()] = None,
) -> JSONResponse:
    _acts_for(who, body.venue, body.account)
    _account(body.venue, body.account, body.asset)
    if body.request_id and idempotency_key and body.request_id != idempotency_key:
        raise RequestValidationError(  # a 422 like every other: with its field named
            [
                {
                    "loc": ("header", "idempotency-key"),
                    "msg": "request_id and Idempotency-Key header differ",
                    "type": "value_error",
                }
            ]
        )
    request_id = body.request_id or idempotency_key or str(uuid.uuid4())
    known = model.withdrawals.get((body.venue, request_id))
    if known is not None:
        if (known["account"], known["asset"], known["amount"]) != (
            body.account,
            body.asset,
            body.amount,
        ):
            raise HTTPException(409, f"request_id {request_id!r} was used for another withdrawal")
        return JSONResponse(known, status_code=200)
    event = ev.WithdrawalRequested(
        event_id=_idempotent_id("withdrawal", body.venue, request_id),
        venue=body.venue,
        scenario_time=_now(body.venue),
        account=body.account,
        asset=body.asset,
        amount=body.amount,
        request_id=request_id,
    )
    await _publish(event)
    return JSONResponse(model.accepted(event), status_code=202)


@app.post(
    "/withdrawals/{venue}/{request_id}/cancel",
    status_code=202,
    response_model=CancelAccepted,
    responses=_errors(401, 403, 404, 409, 413, 422, 429),
)
async def cancel_withdrawal(
    venue: Venue, request_id: RequestKey, who: Authenticated
) -> dict[str, Any]:
    """Take back a withdrawal still waiting in the venue's queue (409 otherwise)."""
    _venue(venue)
    known = model.withdrawals.get((venue, request_id))
    if known is None:
        raise HTTPException(404, f"unknown withdrawal {request_id!r} at venue {venue!r}")
    _acts_for(who, venue, known["account"])
    if known["status"] != "queued":
        raise HTTPException(409, f"withdrawal {request_id!r} is {known['status']}, not queued")
    event = ev.WithdrawalCancelRequested(
        event_id=_idempotent_id("cancel", venue, request_id),
        venue=venue,
        scenario_time=_now(venue),
        account=known["account"],
        asset=known["asset"],
        request_id=request_id,
    )
    await _publish(event)
    return {**known, "cancel": "accepted"}


@app.get(
    "/withdrawals/{venue}/{request_id}",
    response_model=WithdrawalRecord,
    responses=_errors(401, 403, 404, 422, 429),
)
async def withdrawal_status(
    venue: Venue,
    request_id: RequestKey,
    who: Authenticated,
    wait: Annotated[
        float, Query(ge=0, le=30, description="seconds to wait for an answer (long poll)")
    ] = 0,
) -> dict[str, Any]:
    """The withdrawal's status record; with `wait`, held until the venue has answered (or
    `wait` seconds passed), so a customer need not poll."""
    _venue(venue)
    key = (venue, request_id)
    if key not in model.withdrawals:
        raise HTTPException(404, f"unknown withdrawal {request_id!r} at venue {venue!r}")
    _may_read(who, venue, model.withdrawals[key]["account"])
    if wait and model.withdrawals[key]["status"] == "requested":
        with contextlib.suppress(TimeoutError):
            async with _news:
                await asyncio.wait_for(
                    _news.wait_for(lambda: model.withdrawals[key]["status"] != "requested"), wait
                )
    return model.withdrawals[key]


@app.get(
    "/venues/{venue}/withdrawals",
    response_model=WithdrawalCounts,
    responses=_errors(401, 403, 404, 422, 429),
)
async def withdrawal_counts(venue: Venue, who: Operator) -> dict[str, Any]:
    """How many withdrawals this gateway knows in each status (requested = no answer yet);
    operator only."""
    _venue(venue)
    counts = {status: n for status, n in model.counts.get(venue, {}).items() if n}
    return {"venue": venue, "counts": counts, "total": sum(counts.values())}


@app.get(
    "/accounts/{venue}/{account}",
    response_model=Balances,
    responses=_errors(401, 403, 404, 422, 429),
)
async def account_balances(venue: Venue, account: Account, who: Authenticated) -> dict[str, Any]:
    _may_read(who, venue, account)
    _venue(venue)
    balances = model.account(venue, account)
    if not balances:
        raise HTTPException(404, f"unknown account {account!r} at venue {venue!r}")
    return {"venue": venue, "account": account, "balances": balances}


def _venue_status(venue: str) -> dict[str, Any]:
    return {
        "venue": venue,
        "policy": model.venues[venue],
        "status": model.status(venue),
        "gated_at": model.gated.get(venue),
        "halted_at": model.halted.get(venue),
        "scenario_time": _now(venue),
        "accounts": model.accounts.get(venue, 0),
    }


@app.get("/venues", response_model=Venues)
async def venues() -> dict[str, Any]:
    """Every venue: policy, status (`open`, `gated` once its gate tripped, `halted`), clock."""
    return {"venues": [_venue_status(v) for v in sorted(model.venues)]}


@app.get("/venues/{venue}", response_model=VenueStatus, responses=_errors(404, 422))
async def venue_status(venue: Venue) -> dict[str, Any]:
    return _venue_status(_venue(venue))


@app.get(
    "/venues/{venue}/outcomes",
    response_model=Outcomes,
    responses=_errors(401, 403, 404, 422, 429),
)
async def outcomes(
    venue: Venue,
    who: Operator,
    after: Annotated[int, Query(ge=0, description="how many outcomes the caller has read")] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> JSONResponse:
    """Withdrawal outcomes in the order this gateway learned them (a request may appear twice:
    `queued`, then `paid` or `rejected`). Read from `after`, go on from `next`. Every
    customer's answers: operator only."""
    _venue(venue)
    page = model.outcome_page(venue, after, limit)
    body = {
        "venue": venue,
        "outcomes": [{"request_id": r, "status": s} for r, s in page],
        "next": after + len(page),
    }
    return JSONResponse(body)  # as declared, without validating 10,000 rows per page


_OPERATOR_ERRORS = _errors(400, 401, 403, 404, 413, 422, 429)


async def _command(
    venue: str, key: str | None, action: str, command: type[ev.Event], **fields: Any
) -> Accepted:
    """Publish an operator's command for a known venue, stamped with its scenario time; with
    an Idempotency-Key a retry has the same event id, and the services drop it."""
    _venue(venue)
    event = command(
        event_id=_idempotent_id(ev.type_of(command), venue, key),
        venue=venue,
        scenario_time=_now(venue),
        **fields,
    )
    await _publish(event)
    metrics.OPERATOR_COMMANDS.labels(venue, action).inc()
    return Accepted(event_id=event.event_id)


@app.post(
    "/operator/{venue}/gate", status_code=202, response_model=Accepted, responses=_OPERATOR_ERRORS
)
async def gate(
    venue: Venue,
    body: GateBody,
    who: Operator,
    idempotency_key: Annotated[ev.RequestId | None, Header()] = None,
) -> Accepted:
    """Gate the venue: hold every payment (reserved requests queue), or with
    `max_per_account_per_day` cap what each account takes out a day; `gated: false` lifts the
    gate (the queue is then paid in order as cash allows). Operator only."""
    action = "gate" if body.gated else "ungate"
    return await _command(
        venue,
        idempotency_key,
        action,
        ev.GateRequested,
        gated=body.gated,
        max_per_account_per_day=body.max_per_account_per_day,
        reason=body.reason,
    )


@app.post(
    "/operator/{venue}/halt", status_code=202, response_model=Accepted, responses=_OPERATOR_ERRORS
)
async def halt(
    venue: Venue,
    body: HaltBody,
    who: Operator,
    idempotency_key: Annotated[ev.RequestId | None, Header()] = None,
) -> Accepted:
    """Halt the venue as its gate's halt would: every later request is refused, and the
    venues that placed money here see their claims frozen. Operator only."""
    return await _command(venue, idempotency_key, "halt", ev.HaltRequested, reason=body.reason)


@app.post(
    "/operator/{venue}/policy",
    status_code=202,
    response_model=Accepted,
    responses=_OPERATOR_ERRORS,
)
async def change_policy(
    venue: Venue,
    body: PolicyBody,
    who: Operator,
    idempotency_key: Annotated[ev.RequestId | None, Header()] = None,
) -> Accepted:
    """Switch the venue's reserve policy or its params (checked by the policy's own model):
    custody finds cash by the new one from then on. Operator only."""
    return await _command(
        venue,
        idempotency_key,
        "policy",
        ev.PolicyChangeRequested,
        policy=body.policy,
        params=body.params.model_dump(),
        reason=body.reason,
    )


@app.get("/markets", response_model=Markets)
async def markets() -> dict[str, Any]:
    """Every market's last price and top of book (quote minor units per whole base unit)."""
    return {"markets": [model.markets[m] for m in sorted(model.markets)]}


@app.get("/markets/{base}/{quote}", response_model=Market, responses=_errors(404, 422))
async def market(base: str, quote: str) -> dict[str, Any]:
    """One market, e.g. `/markets/PLATFORM/USD`: what a worried customer checks."""
    found = model.markets.get(f"{base}/{quote}")
    if found is None:
        raise HTTPException(404, f"no market {base}/{quote}")
    return found


@app.get("/por/{venue}", responses=_errors(404, 422))
async def proof_of_reserves(venue: Venue) -> dict[str, Any]:
    """The venue's last published proof of reserves: the liabilities root and total, the
    reserves that count and their ratio. Public, like a venue's published attestation."""
    _venue(venue)
    found = model.proofs.get(venue)
    if found is None:
        raise HTTPException(404, f"{venue!r} has published no proof of reserves")
    return found.public()


_trees: dict[str, tuple[int, SumTree]] = {}  # venue -> (seq, the tree rebuilt for it)


def _tree(found: Attested) -> SumTree | None:
    """The attestation's tree, rebuilt from its parts once; None if it does not give the
    published root (then no proof is served: it would not verify)."""
    event = found.event
    cached = _trees.get(event.venue)
    if cached and cached[0] == event.seq:
        return cached[1]
    if found.balances is None:
        return None
    tree = liabilities_tree(
        event.venue, event.asset, found.balances, event.pending, _state["por_secret"]
    )
    if tree.root.hash != event.root:
        log.error("proof of reserves %s #%s: rebuilt root differs", event.venue, event.seq)
        return None
    _trees[event.venue] = (event.seq, tree)
    return tree


@app.get(
    "/por/{venue}/proof",
    responses={
        **_errors(401, 403, 404, 422, 429),
        503: {"model": Problem, "description": "this gateway cannot rebuild the published tree"},
    },
)
async def inclusion_proof(
    venue: Venue,
    who: Authenticated,
    account: Annotated[
        str | None, Query(pattern=ev.ID_PATTERN, description="operator only: whose proof")
    ] = None,
) -> dict[str, Any]:
    """The caller's inclusion proof in the venue's last published liabilities tree, to check
    offline against the published root (`bankrun por verify`, or the report's verifier)."""
    account = account or who.account
    if account is None:
        raise RequestValidationError(  # a 422 like every other: with its field named
            [
                {
                    "loc": ("query", "account"),
                    "msg": "the operator names the account: ?account=",
                    "type": "missing",
                }
            ]
        )
    _may_read(who, venue, account)
    _venue(venue)
    found = model.proofs.get(venue)
    if found is None:
        metrics.POR_PROOFS.labels(venue, "no_attestation").inc()
        raise HTTPException(404, f"{venue!r} has published no proof of reserves")
    tree = await asyncio.to_thread(_tree, found)
    if tree is None:
        metrics.POR_PROOFS.labels(venue, "unavailable").inc()
        raise HTTPException(503, "this gateway cannot rebuild the published tree")
    if account not in tree:
        metrics.POR_PROOFS.labels(venue, "not_in_tree").inc()
        raise HTTPException(404, f"{account!r} was not a customer at the last attestation")
    metrics.POR_PROOFS.labels(venue, "served").inc()
    return {"attestation": found.public(), "proof": tree.proof(account).model_dump(mode="json")}


@app.get(
    "/ready",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "not yet following the log"}},
)
async def ready() -> JSONResponse:
    body = {"service": "gateway", "ready": _state["ready"], "events_applied": model.applied}
    return JSONResponse(body, status_code=200 if _state["ready"] else 503)


@app.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus exposition", "content": {"text/plain": {}}}},
)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
