"""localstripe, with what it lacks of Stripe: idempotent requests, and the Disputes API.

**Idempotency.** localstripe ignores `Idempotency-Key`, so a request compass repeats after
its answer was lost (a timeout) made a second PaymentIntent or a second refund, which real
Stripe never does. Here, as at Stripe, a POST repeated with the same key (and the same API
key) gets the first answer again, marked `Idempotent-Replayed: true`, and one with the same
key but other parameters is refused with an `idempotency_error`. Only answers that were made
(2xx) are kept; a refused request may be sent again, as Stripe allows.

**Lists, newest first.** Stripe lists PaymentIntents and Events newest first, and compass
stops paging once a page is older than it needs; localstripe lists them oldest first, so a
long-lived fake made reconcile stop before the new ones. Here they come newest first too.

**Disputes.** localstripe has none, so `compass reconcile` could not be shown comparing
orders with them. Four more routes:

    GET  /v1/disputes              the list, newest first, with `limit` and `starting_after`
    GET  /v1/disputes/{id}         one dispute
    POST /_config/disputes         a test opens one: payment_intent=pi_..., reason, status
    POST /_config/disputes/{id}    a test moves one on: status=won|lost|warning_closed|...

A dispute carries every field, and only the fields, that the official `stripe` package's
`Dispute` class declares, its `status` must be one that class allows and its `reason` one
Stripe documents, so what compass reads is what Stripe sends. No webhook is sent: the tests that use this are
about what reconcile finds when the events never came.

**Webhooks while others register.** localstripe sends an event to its webhooks in a loop
over the live dict of them, awaiting each delivery; a test that registered its webhook
meanwhile ended that loop with "dictionary changed size during iteration", and the event never
reached the webhooks after it (Stripe loses no event that way). Here the loop runs over the
webhooks as they were when the event was sent.

**Confirming in the browser.** localstripe confirms a PaymentIntent only with the secret key.
Stripe.js confirms it from the customer's browser with the publishable key and the intent's
client secret, sending the card as `payment_method_data` (Stripe's servers take raw card
numbers only from Stripe.js). Here `POST /v1/payment_intents/{id}/confirm` with `key=pk_...`
does that, for the browser test's Stripe.js stand-in: the client secret must be the intent's,
every parameter must be one the official `stripe` package declares for a confirmation (besides
`key` and `client_secret`), and a declined card is answered as Stripe answers it, 402 with a
`card_error` that carries the PaymentIntent.

    python scripts/stripe-fake.py --port 8420
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import typing

import aiohttp
import stripe
from aiohttp import web
from localstripe.errors import UserError
from localstripe.resources import Event, PaymentIntent, PaymentMethod, StripeObject, store
from localstripe import webhooks
from localstripe.server import app, get_post_data, json_response, unflatten_data

# (secret key, Idempotency-Key) -> (method and path, body, status, answer)
IDEMPOTENT: dict[tuple[str, str], tuple[str, bytes, int, bytes]] = {}

FIELDS = {name for name in stripe.Dispute.__annotations__ if name != "OBJECT_NAME"}
STATUSES = {
    value
    for arg in typing.get_args(stripe.Dispute.__annotations__["status"])
    for value in typing.get_args(arg)
}
REASONS = {
    "bank_cannot_process", "check_returned", "credit_not_processed", "customer_initiated",
    "debit_not_authorized", "duplicate", "fraudulent", "general", "incorrect_account_details",
    "insufficient_funds", "noncompliant", "product_not_received", "product_unacceptable",
    "subscription_canceled", "unrecognized",
}


class Dispute(StripeObject):
    object = "dispute"
    _id_prefix = "dp_"

    def __init__(self, payment_intent=None, reason="fraudulent", status="needs_response"):
        intent = PaymentIntent._api_retrieve(payment_intent)
        charge = intent.latest_charge
        if charge is None or reason not in REASONS or status not in STATUSES:
            raise UserError(400, "Bad request: a paid PaymentIntent, a known reason and status")
        super().__init__()
        self.amount = intent.amount
        self.balance_transactions = []
        self.charge = charge.id
        self.currency = intent.currency
        self.enhanced_eligibility_types = []
        self.evidence = {name: None for name in stripe.Dispute.Evidence.__annotations__}
        self.evidence_details = {
            "due_by": int(time.time()) + 7 * 86400,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "submission_method": None,
        }
        self.intended_submission_method = None
        self.is_charge_refundable = False
        self.metadata = {}
        self.network_reason_code = None
        self.payment_intent = intent.id
        self.payment_method_details = None
        self.reason = reason
        self.status = status

    def _export(self, expand=None):
        exported = super()._export(expand=expand)
        for shape, fields in [
            (exported, FIELDS),
            (exported["evidence"], stripe.Dispute.Evidence.__annotations__),
            (exported["evidence_details"], stripe.Dispute.EvidenceDetails.__annotations__),
        ]:
            if set(shape) != set(fields):
                raise AssertionError(f"fields differ from the SDK's: {set(shape) ^ set(fields)}")
        return exported


def newest_first(cls):
    """Makes `cls`'s list newest first, as Stripe's is (ties: the later made first)."""
    listed = cls._api_list_all.__func__

    def newest(klass, url, **kwargs):
        found = listed(klass, url, **kwargs)
        found._list = sorted(reversed(found._list), key=lambda o: o.created, reverse=True)
        return found

    cls._api_list_all = classmethod(newest)


@web.middleware
async def idempotency(request, handler):
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    slot = (request.headers.get("Authorization", ""), key)
    target, body = f"{request.method} {request.path}", await request.read()
    if slot in IDEMPOTENT:
        first_target, first_body, status, answer = IDEMPOTENT[slot]
        if (first_target, first_body) != (target, body):
            return json_response({"error": {
                "type": "idempotency_error",
                "message": "Keys for idempotent requests can only be used with the same "
                           "parameters they were first used with.",
            }}, status=400)
        return web.Response(
            status=status,
            body=answer,
            content_type="application/json",
            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
        )
    response = await handler(request)
    if 200 <= response.status < 300 and isinstance(response, web.Response):
        IDEMPOTENT[slot] = (target, body, response.status, response.body)
    return response


BROWSER_CONFIRM = re.compile(r"^/v1/payment_intents/(pi_\w+)/confirm$")
CONFIRM_PARAMS = set(stripe.params.PaymentIntentConfirmParams.__annotations__) | {"key", "client_secret"}


class BrowserCard(PaymentMethod):
    """A card given to Stripe.js. localstripe declines its generic-decline test cards
    (4000000000000002 and the like) only when they are attached to a customer; Stripe declines
    a payment with them too."""

    def _charging_is_declined(self):
        return self._attaching_is_declined() or super()._charging_is_declined()


@web.middleware
async def browser_confirm(request, handler):
    """A confirmation made by Stripe.js: the publishable key, the client secret, the card."""
    found = BROWSER_CONFIRM.match(request.path)
    if request.method != "POST" or not found:
        return await handler(request)
    data = await get_post_data(request, remove_auth=False)
    key = data.get("key") if isinstance(data, dict) else None
    if not (isinstance(key, str) and key.startswith("pk_")):
        return await handler(request)
    unknown = set(data) - CONFIRM_PARAMS
    if unknown:
        raise UserError(400, "Received unknown parameter: " + ", ".join(sorted(unknown)))
    intent = PaymentIntent._api_retrieve(found.group(1))
    if data.get("client_secret") != intent.client_secret:
        raise UserError(401, "The client_secret provided does not match the client_secret "
                             "associated with the PaymentIntent.")
    if intent.status not in ("requires_payment_method", "requires_confirmation"):
        raise UserError(400, "You cannot confirm this PaymentIntent because it has a status "
                             f"of {intent.status}.", {"code": "payment_intent_unexpected_state"})
    method_data = data.get("payment_method_data")
    if not isinstance(method_data, dict) or method_data.get("type") != "card":
        raise UserError(400, "Missing required param: payment_method_data[type].")
    card = method_data.get("card") or {}
    method = BrowserCard(type="card", card=dict(card))
    intent.payment_method = method.id
    intent.latest_charge = None
    try:
        intent._confirm(on_failure_now=intent._report_failure)
    except UserError as error:
        if error.code != 402:
            raise
        error.body["error"].update({
            "type": "card_error",
            "decline_code": "generic_decline",
            "payment_intent": intent._export(),
            "payment_method": method._export(),
        })
        raise
    return json_response(intent._export())


async def list_disputes(request):
    query = unflatten_data(request.query)
    limit = int(query.get("limit", 10))
    disputes = sorted(
        (value for key, value in store.items() if key.startswith("dispute:")),
        key=lambda d: d.created,
        reverse=True,
    )
    after = query.get("starting_after")
    if after is not None:
        ids = [d.id for d in disputes]
        disputes = disputes[ids.index(after) + 1:] if after in ids else []
    page = disputes[:limit]
    return json_response({
        "object": "list",
        "url": "/v1/disputes",
        "has_more": len(disputes) > limit,
        "data": [d._export() for d in page],
    })


async def retrieve_dispute(request):
    return json_response(Dispute._api_retrieve(request.match_info["id"])._export())


async def open_dispute(request):
    data = dict(await request.post())
    return json_response(Dispute(**data)._export())


async def move_dispute(request):
    dispute = Dispute._api_retrieve(request.match_info["id"])
    status = (await request.post()).get("status")
    if status not in STATUSES:
        raise UserError(400, "Bad request: unknown status")
    dispute.status = status
    return json_response(dispute._export())


async def send_webhook(event) -> None:
    """Sends `event`, signed, to each webhook registered when it was sent (one registered
    meanwhile gets the next event instead of ending this one's deliveries)."""
    payload = json.dumps(event._export(), indent=2, sort_keys=True).encode("utf-8")
    signed = b"%d.%s" % (event.created, payload)
    await asyncio.sleep(1)
    log = logging.getLogger("aiohttp.access")
    for hook in list(webhooks._webhooks.values()):
        if hook.events is not None and event.type not in hook.events:
            continue
        signature = hmac.new(hook.secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": "t=%d,v1=%s" % (event.created, signature),
        }
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(hook.url, data=payload, headers=headers) as answer:
                    log.info('webhook "%s" to %s: %d', event.type, hook.url, answer.status)
        except aiohttp.ClientError as err:
            log.info('webhook "%s" to %s failed: %s', event.type, hook.url, err)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    for cls in (PaymentIntent, Event):
        newest_first(cls)
    webhooks._send_webhook = send_webhook
    app.middlewares.append(idempotency)
    # Before localstripe's own authentication, which takes only secret keys for this route.
    app.middlewares.insert(1, browser_confirm)
    app.router.add_get("/v1/disputes", list_disputes)
    app.router.add_get("/v1/disputes/{id}", retrieve_dispute)
    app.router.add_post("/_config/disputes", open_dispute)
    app.router.add_post("/_config/disputes/{id}", move_dispute)
    web.run_app(app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
