# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One instance, one operation at a time: the per-instance operation lock of the incident store.

An isolate and a release of the same instance running together interleave their record writes, moves
and tags, and records get lost (an ENI on the isolation group with no record; an instance tagged
released while isolated). Each module run that writes an instance's records first takes that instance's
lock, describes the instance only then (a plan made before the lock would be stale), and gives the lock
back at the end. A run that cannot get the lock within its timeout leaves the instance untouched and says
which operation holds it.

Where (the incident store's root: the option, then $CLOUDSEC_GUARDDUTY_INCIDENT_STORE, then
~/.cloudsec-guardduty): `locks/<account_id>/<region>/<instance_id>.lock` under it.
- A directory: fcntl.flock on that file (directories 0700, files 0600). The kernel drops a flock when
  its process dies, so a crashed run never leaves an instance locked. The file holds the owner, for
  the loser's message; it is never deleted (deleting a flocked file lets two runs lock two files).
- `s3://BUCKET/PREFIX`: a lease object, created only if absent (PutObject If-None-Match: *), holding
  its owner and expiry, renewed while the run lasts, deleted at the end (DeleteObject If-Match: our
  ETag, so a lease taken over is never deleted by its former owner). A lease past its expiry (its run
  crashed) is taken over with PutObject If-Match: its ETag, so of two runs taking it over one wins.
  This is what holds across controllers (AWX nodes, several responders).
"""

import datetime
import errno
import json
import os
import socket
import threading
import time

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_message

try:
    import fcntl
except ImportError:  # not on a POSIX controller; Ansible controllers are POSIX
    fcntl = None

ENV_STORE = "CLOUDSEC_GUARDDUTY_INCIDENT_STORE"
DEFAULT_STORE = "~/.cloudsec-guardduty"
LOCKS_DIR = "locks"
LEASE_SECONDS = 120  # an S3 lease outlives its run by at most this much after a crash
RETRY_SECONDS = 0.25
OPERATIONS = {"isolated": "isolate", "released": "release"}


class LockError(Exception):
    """The store cannot be used (not writable, S3 denied): nothing was changed."""


# -- where ---------------------------------------------------------------------------------------
def store_location(option=None, environ=None):
    """The incident store's root: the option, then the environment variable, then ~/.cloudsec-guardduty."""
    environ = os.environ if environ is None else environ
    return option or environ.get(ENV_STORE) or DEFAULT_STORE


def s3_location(location):
    """(bucket, prefix) for `s3://BUCKET/PREFIX`, None for a directory."""
    if not location.startswith("s3://"):
        return None
    bucket, dummy, prefix = location[len("s3://"):].partition("/")
    if not bucket:
        raise LockError(f"incident_store {location!r} names no bucket: use s3://BUCKET/PREFIX")
    return bucket, prefix.strip("/")


def lock_name(account_id, region, instance_id):
    for part in (account_id, region, instance_id):
        if not part or "/" in part or part in (".", ".."):
            raise LockError(f"cannot name a lock after {part!r}")
    return f"{LOCKS_DIR}/{account_id}/{region}/{instance_id}.lock"


# -- who -------------------------------------------------------------------------------------------
def owner(state, now=None):
    """What the lock says about the run holding it, shown to the run that finds it taken."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {"operation": OPERATIONS.get(state, state), "pid": os.getpid(), "host": socket.gethostname(),
            "started": now.strftime("%Y-%m-%dT%H:%M:%SZ")}


def describe_owner(holder):
    if not holder:
        return "owner not known yet"
    return (f"{holder.get('operation', 'unknown operation')}, pid {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')}, started {holder.get('started', '?')}")


def refusal(instance_id, holder, waited):
    waited_text = f" after waiting {waited:g} s" if waited else ""
    return (f"{instance_id}: another operation ({describe_owner(holder)}) holds the lock on this instance"
            f"{waited_text}; nothing was changed")


def _parse_owner(raw):
    try:
        holder = json.loads(raw or "{}")
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


# -- a directory on the controller -----------------------------------------------------------------
class DirectoryLocks:
    def __init__(self, root):
        self.root = os.path.expanduser(root)
        self.held = {}  # name -> fd

    def _directory_for(self, name):
        """Create the root and every level down to the lock's directory, each 0700."""
        path = self.root
        try:
            if not os.path.isdir(path):
                os.makedirs(path, 0o700, exist_ok=True)
            for part in os.path.dirname(name).split("/"):
                path = os.path.join(path, part)
                try:
                    os.mkdir(path, 0o700)
                except FileExistsError:
                    pass
        except OSError as exc:
            raise LockError(f"incident store {self.root}: cannot create {path}: {exc.strerror}") from None
        return path

    def try_take(self, name, me):
        """None when taken; the holder (a dict, maybe empty) when another run has it."""
        if fcntl is None:
            raise LockError("a directory incident store needs fcntl.flock (a POSIX controller); use s3://")
        self._directory_for(name)
        path = os.path.join(self.root, name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LockError(f"incident store: cannot open {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _parse_owner(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return holder
            raise LockError(f"incident store: cannot lock {path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me, sort_keys=True).encode(), 0)
        self.held[name] = fd
        return None

    def give_back(self, name):
        fd = self.held.pop(name, None)
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor drops the flock

    def close(self):
        for name in list(self.held):
            self.give_back(name)


# -- an S3 bucket shared by controllers -----------------------------------------------------------
class S3Locks:
    def __init__(self, client, bucket, prefix, lease_seconds=LEASE_SECONDS, clock=time.time):
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.lease_seconds, self.clock = lease_seconds, clock
        self.held = {}  # name -> (key, etag, owner)
        self.lost = []  # leases another run took over while this one was still running
        self._stop = threading.Event()
        self._renewer = None
        self._mutex = threading.Lock()

    def _key(self, name):
        return f"{self.prefix}/{name}" if self.prefix else name

    def _body(self, me):
        return json.dumps(dict(me, expires=self.clock() + self.lease_seconds), sort_keys=True).encode()

    def try_take(self, name, me):
        key = self._key(name)
        for _attempt in range(5):  # a lease deleted or replaced between two calls: look again
            try:
                answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=self._body(me), IfNoneMatch="*",
                                                ContentType="application/json")
                self._hold(name, key, answer["ETag"], me)
                return None
            except self._errors() as exc:
                if _code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                    raise LockError(_s3_failure(self.bucket, key, "PutObject", exc)) from None
            try:
                current = self.client.get_object(Bucket=self.bucket, Key=key)
                holder = _parse_owner(current["Body"].read().decode("utf-8", "replace"))
                etag = current["ETag"]
            except self._errors() as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    continue  # given back meanwhile
                raise LockError(_s3_failure(self.bucket, key, "GetObject", exc)) from None
            expires = holder.get("expires")
            if isinstance(expires, (int, float)) and expires > self.clock():
                return holder
            # Past its expiry (or unreadable): its run is gone. Only one taker can replace this very version.
            try:
                answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=self._body(me), IfMatch=etag,
                                                ContentType="application/json")
                self._hold(name, key, answer["ETag"], me)
                return None
            except self._errors() as exc:
                if _code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409", "404"):
                    raise LockError(_s3_failure(self.bucket, key, "PutObject", exc)) from None
        return {}

    def _hold(self, name, key, etag, me):
        with self._mutex:
            self.held[name] = (key, etag, me)
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew_loop, daemon=True)
            self._renewer.start()

    def _renew_loop(self):
        while not self._stop.wait(self.lease_seconds / 4):
            with self._mutex:
                for name, (key, etag, me) in list(self.held.items()):
                    try:
                        answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=self._body(me), IfMatch=etag,
                                                        ContentType="application/json")
                        self.held[name] = (key, answer["ETag"], me)
                    except self._errors():
                        # Taken over (this run stalled past its lease) or S3 unreachable: a later renewal may
                        # still succeed with the same ETag; report it if the lease is gone at the end.
                        pass

    def give_back(self, name):
        with self._mutex:
            entry = self.held.pop(name, None)
        if entry is None:
            return
        key, etag, _me = entry
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key, IfMatch=etag)
        except self._errors() as exc:
            if _code(exc) in ("PreconditionFailed", "412"):
                self.lost.append(name)  # another run took it over: its lease is not ours to delete
            # otherwise the lease expires by itself

    def close(self):
        self._stop.set()
        for name in list(self.held):
            self.give_back(name)

    @staticmethod
    def _errors():
        import botocore.exceptions
        return (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


def _code(exc):
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")


def _s3_failure(bucket, key, action, exc):
    return f"incident store s3://{bucket}/{key}: s3:{action}: {error_message(exc)} ({_code(exc)})"


# -- a batch ---------------------------------------------------------------------------------------
class OperationLocks:
    """The locks of one module run: taken for a batch, all given back at the end (or by the kernel, or by
    expiry, when the run dies)."""

    def __init__(self, backend=None, account_id=None, region=None):
        self.names = {}
        self.bind(backend, account_id, region)

    def bind(self, backend, account_id, region):
        self.backend, self.account_id, self.region = backend, account_id, region

    def take(self, instance_ids, me, timeout, clock=time.monotonic, sleep=time.sleep):
        """(taken instance ids, {instance_id: refusal}). In sorted order, so two batches sharing instances
        wait for each other instead of each holding half; each instance waits until the batch's deadline."""
        deadline = clock() + max(0, timeout)
        started = clock()
        refused = {}
        for instance_id in sorted(set(instance_ids)):
            while True:
                holder = self._try(instance_id, me)
                if holder is None:
                    break
                if clock() >= deadline:
                    refused[instance_id] = refusal(instance_id, holder, round(clock() - started, 1) if timeout else 0)
                    break
                sleep(min(RETRY_SECONDS, max(0.0, deadline - clock())))
        return [i for i in instance_ids if i in self.names], refused

    def try_each(self, instance_ids, me):
        """(instance ids taken now, {instance_id: its holder}): each lock tried once, never waited for. For the
        instances of other runs' ENIs: a lock held means a live run is working on that instance now."""
        holders = {}
        for instance_id in sorted(set(instance_ids)):
            holder = self._try(instance_id, me)
            if holder is not None:
                holders[instance_id] = holder
        return [i for i in instance_ids if i in self.names], holders

    def _try(self, instance_id, me):
        """None when the instance's lock is taken (and held by this run from now on); its holder otherwise."""
        name = lock_name(self.account_id, self.region, instance_id)
        holder = self.backend.try_take(name, me)
        if holder is None:
            self.names[instance_id] = name
        return holder

    def release(self):
        if self.backend is None:
            return
        for instance_id in list(self.names):
            self.backend.give_back(self.names.pop(instance_id))
        self.backend.close()


def backend_for(location, s3_client_factory=None):
    """The lock backend of an incident store location."""
    s3 = s3_location(location)
    if s3 is None:
        return DirectoryLocks(location)
    if s3_client_factory is None:
        raise LockError("an s3:// incident store needs an S3 client")
    return S3Locks(s3_client_factory(), *s3)
