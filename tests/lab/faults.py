"""Fault injection: token buckets per service, random throttling and 5xx, forced errors, API latency.

EC2 throttles per account and region with a token bucket per action category: a bucket of
capacity C refilled at R tokens a second, one token a call, `RequestLimitExceeded` when empty.
Its buckets are documented (EC2 API reference, "Request throttling",
https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html): mutating 200 / 5 per s,
non-mutating 100 / 20 per s. Those are EC2's only: GuardDuty, IAM, STS, Auto Scaling and ELB publish no
bucket sizes or refill rates (IAM and STS calls "contribute to a maximum rate limit for your AWS account",
AWS re:Post knowledge center, iam-sts-throttling-error), so `token_buckets: true` throttles EC2 alone and
another service is throttled only with buckets given for it by name. IAM is a global service: its bucket
is per account, whatever Region a call is signed for.

AWS answers an API call in tens to hundreds of milliseconds; moto answers at once, and then the lab's
CPU per call is all a run measures. `latency_ms: [low, high]` holds each answer for a time drawn
uniformly in that range (the request thread sleeps: concurrent calls overlap, as they do on AWS).
"""

import random
import threading
import time

from tests.lab import protocol

DEFAULT_BUCKETS = {"mutating": [200, 5.0], "describe": [100, 20.0]}  # EC2's (see above)
DOCUMENTED_BUCKETS = {"ec2": DEFAULT_BUCKETS}
CATEGORIES = ("mutating", "describe")
GLOBAL_SERVICES = ("iam",)
NON_MUTATING_PREFIXES = ("Describe", "Get", "List")


def category(action):
    return "describe" if action.startswith(NON_MUTATING_PREFIXES) else "mutating"


class TokenBucket:
    def __init__(self, capacity, refill_per_second, clock=time.monotonic):
        self.capacity = float(capacity)
        self.refill = float(refill_per_second)
        self.tokens = float(capacity)
        self.clock = clock
        self.stamp = clock()

    def take(self):
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Faults:
    """The fault configuration of a run; `configure` replaces it whole."""

    def __init__(self, config=None):
        self._lock = threading.Lock()
        self.configure(config or {})

    def configure(self, config):
        with self._lock:
            self.config = {
                "seed": config.get("seed", 0),
                "throttle_rate": float(config.get("throttle_rate", 0.0)),
                "error_rate": float(config.get("error_rate", 0.0)),
                "token_buckets": self._buckets_config(config.get("token_buckets")),
                "forced": [dict(f, used=0, seen=0) for f in config.get("forced", [])],
                "services": config.get("services"),
                "latency_ms": self._latency_config(config.get("latency_ms")),
            }
            self._random = random.Random(self.config["seed"])
            self._buckets = {}
            self.counts = {"throttled": 0, "server_error": 0, "forced": 0, "bucket_throttled": 0}

    @staticmethod
    def _buckets_config(value):
        """{service: {category: [capacity, refill per s]}}: `true` is what AWS documents (EC2's); a dict of
        categories overrides EC2's; a dict of services gives each its own (a category left out is unthrottled)."""
        if not value:
            return None
        documented = {svc: {k: list(v) for k, v in cats.items()} for svc, cats in DOCUMENTED_BUCKETS.items()}
        if value is True:
            return documented
        if set(value) <= set(CATEGORIES):
            documented["ec2"].update({k: list(v) for k, v in value.items()})
            return documented
        return {svc: {k: list(v) for k, v in (cats or {}).items()} for svc, cats in value.items()}

    @staticmethod
    def _latency_config(value):
        if not value:
            return None
        low, high = (float(v) for v in value)
        if not 0 <= low <= high:
            raise ValueError(f"latency_ms must be [low, high] with 0 <= low <= high, not {value!r}")
        return [low, high]

    def latency(self):
        """Seconds to hold the next answer (0 without `latency_ms`)."""
        with self._lock:
            bounds = self.config["latency_ms"]
            return self._random.uniform(*bounds) / 1000.0 if bounds else 0.0

    def describe(self):
        with self._lock:
            cfg = dict(self.config)
            cfg["forced"] = [dict(f) for f in cfg["forced"]]
            cfg["counts"] = dict(self.counts)
            return cfg

    def check(self, req):
        """None, or (status, code, message, kind) for the error to answer instead of AWS."""
        if not req.action:
            return None
        with self._lock:
            for forced in self.config["forced"]:
                if self._matches(forced, req):
                    forced["used"] += 1
                    self.counts["forced"] += 1
                    message = forced.get("message") or _default_message(forced["code"], req)
                    return int(forced.get("status", 400)), forced["code"], message, "forced"
            services = self.config["services"]
            if services and req.service not in services:
                return None
            buckets = self.config["token_buckets"]
            cat = category(req.action)
            spec = ((buckets or {}).get(req.service) or {}).get(cat)
            if spec:
                region = "global" if req.service in GLOBAL_SERVICES else req.region
                key = (req.account, region, req.service, cat)
                bucket = self._buckets.get(key)
                if bucket is None:
                    bucket = self._buckets[key] = TokenBucket(*spec)
                if not bucket.take():
                    self.counts["bucket_throttled"] += 1
                    return (*protocol.throttling_code(req), "bucket")
            roll = self._random.random()
            if roll < self.config["throttle_rate"]:
                self.counts["throttled"] += 1
                return (*protocol.throttling_code(req), "throttle")
            if roll < self.config["throttle_rate"] + self.config["error_rate"]:
                self.counts["server_error"] += 1
                return (*protocol.server_error_code(req), "server_error")
        return None

    @staticmethod
    def _matches(forced, req):
        if forced.get("count") is not None and forced["used"] >= int(forced["count"]):
            return False
        if forced.get("action") and forced["action"] != req.action:
            return False
        if forced.get("service") and forced["service"] != req.service:
            return False
        if forced.get("account") and forced["account"] != req.account:
            return False
        if forced.get("region") and forced["region"] != req.region:
            return False
        if not req.mentions(forced.get("resource")):
            return False
        forced["seen"] += 1  # `skip`: the first N matching calls are answered by AWS, the later ones refused
        return forced["seen"] > int(forced.get("skip") or 0)


def _default_message(code, req):
    if code == "UnauthorizedOperation":
        return "You are not authorized to perform this operation."
    if code in ("AccessDenied", "AccessDeniedException"):
        return (
            f"User: arn:aws:iam::{req.account}:user/lab is not authorized to perform: "
            f"{req.signing_name or req.service}:{req.action}"
        )
    return f"Injected {code} for {req.action}"
