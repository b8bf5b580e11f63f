"""Webhooks: endpoints, signing, the dispatcher that turns the log into deliveries, the sender.

    endpoints     the endpoints' table: create, update, rotate, disable (with its event)
    matching      which endpoints an event goes to (owner, agent, event_types)
    dispatcher    plans the delivery rows of each batch of the log (``Store.dispatch`` runs it)
    sender        claims due deliveries, posts them, records attempts: the three below
    claiming      leases due deliveries (SKIP LOCKED), each its order's next, with their bodies
    posting       one POST, with no transaction open
    recording     attempts, the deliveries' new states, failure streaks, disabling
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
