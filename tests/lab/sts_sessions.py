"""Temporary credentials stop working at their Expiration, as AWS's do.

moto hands out AssumeRole credentials with an Expiration (now + DurationSeconds, 900 to 43,200 s) and then
accepts them forever. AWS refuses every request signed with them once that time has passed: "The security
token included in the request is expired", HTTP 403, error code `ExpiredToken` (AWS Knowledge Center,
"security-token-expired"). The JSON protocols (GuardDuty, Security Hub) name their error types with an
`Exception` suffix, so the lab answers `ExpiredTokenException` there; no botocore model defines this error
for those services (STS's own ExpiredTokenException is about web identity tokens), and callers here accept
either code (event_sources.EXPIRED_CREDENTIALS). A
long-running caller (the rulebook's GuardDuty poller, a run longer than its session) must renew its
credentials before then; the lab's clock (POST /_lab/clock) lets a test get there without waiting an hour.
AssumeRole's Expiration is counted on that clock too (moto counts it on the wall clock): credentials assumed
after the clock moved forward last their full duration from the lab's now, as AWS's last from AWS's now.
"""

import datetime

from moto.sts.models import STSBackend, sts_backends

MESSAGE = "The security token included in the request is expired"
JSON_PROTOCOLS = ("json", "rest-json")


def expired(req, now):
    """None, or (status, code, message) refusing a request signed with assumed-role credentials past their
    Expiration. `now` is the lab clock's epoch time."""
    key = req.access_key or ""
    if not key.startswith("ASIA") or not req.account:  # long-term keys (AKIA) never expire
        return None
    role = sts_backends[req.account]["aws"].get_assumed_role_from_access_key(key)
    if role is None:
        return None
    if now < role.expiration.replace(tzinfo=datetime.timezone.utc).timestamp():
        return None
    return 403, ("ExpiredTokenException" if req.protocol in JSON_PROTOCOLS else "ExpiredToken"), MESSAGE


def install(clock):
    """Count AssumeRole's Expiration (and so the answer's `Expiration`) on the lab's clock."""
    original = getattr(STSBackend.assume_role, "original", STSBackend.assume_role)

    def assume_role(self, *args, **kwargs):
        role = original(self, *args, **kwargs)
        role.expiration += datetime.timedelta(seconds=clock.offset)
        return role

    assume_role.original = original
    STSBackend.assume_role = assume_role
