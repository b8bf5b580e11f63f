"""Webhooks: endpoints, signing, the dispatcher that turns the log into deliveries, the sender.

    endpoints     the endpoints' table: create, update, rotate, disable (with its event)
    matching      which endpoints an event goes to (owner, agent, event_types)
    dispatcher    tails the log (commit-order safe) and writes delivery rows, with its checkpoint
    sender        claims due deliveries (SKIP LOCKED + lease), posts them, records attempts
    deliveries    deliveries with their attempts for the API; replay
    signing       Standard Webhooks signatures, whsec_ secrets
    schedule      the retry schedule with jitter; Retry-After
    ssrf          the deny list of non-public address ranges; URL checks
    transport     the httpx client pinned to vetted addresses (no redirects, no keep-alive)
    payload       the JSON body

Errors:

    UnsafeUrl        a URL refused at registration (code: webhook_url_invalid, ..._unresolvable,
                     ..._not_allowed)
    BlockedAddress   a delivery's host resolved to a refused address (recorded as a failed attempt)
    └── Unresolvable
"""

from escrow_core.webhooks.ssrf import BlockedAddress, Unresolvable, UnsafeUrl

__all__ = ["BlockedAddress", "Unresolvable", "UnsafeUrl"]
