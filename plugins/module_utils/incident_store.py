# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The incident store: the records needed to undo a change, kept where the member account cannot write.

Anyone with ec2:CreateTags in the member account (the compromised instance's owner, or an attacker holding
its role) can write the `guardduty:*` tags; the tags are kept only as a hint to resume and cross-checked
against this store. One JSON document per instance:

    <root>/records/<account_id>/<region>/<instance_id>.json
    {"version": 1, "account_id": ..., "region": ..., "instance_id": ...,
     "records": {"network": ..., "credentials": ..., "detach": ..., "eip": ..., "protection": ...}}

and one per subnet put behind the containment network ACL (a subnet is shared by instances, and by runs):

    <root>/records/<account_id>/<region>/<subnet_id>.json
    {"version": 1, "account_id": ..., "region": ..., "subnet_id": ..., "records": {"nacl": <original ACL id>}}

The root is a controller directory (directories 0700, files 0600, written atomically: a temporary file in
the same directory, fsync, os.replace) or `s3://BUCKET/PREFIX`, a bucket of the security account read and
written with the operator's own credentials (the default credential chain, never the member role's),
server-side encrypted. `locks/` under the same root belongs to the operation locks, not to this file.

A record is written BEFORE the change it describes, so a crash never leaves a change without its record.
"""

import json
import os
import re
import tempfile

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_code

STORE_ENV = "CLOUDSEC_GUARDDUTY_INCIDENT_STORE"
DEFAULT_STORE = "~/.cloudsec-guardduty"
RECORDS_DIR = "records"
VERSION = 1
KINDS = ("network", "credentials", "detach", "eip", "protection", "nacl")
# Every path component comes from AWS (account, region, instance id); checked all the same, so that no value
# can climb out of the store.
_COMPONENT = {"account_id": re.compile(r"^\d{12}$"), "region": re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$"),
              "instance_id": re.compile(r"^(i|subnet)-[0-9a-f]{8,17}$")}


class StoreError(Exception):
    """The store cannot be read or written; the message names the path and the cause."""


def resolve_root(option, environ=None):
    """The store's root: the option, else $CLOUDSEC_GUARDDUTY_INCIDENT_STORE, else ~/.cloudsec-guardduty."""
    environ = os.environ if environ is None else environ
    root = option or environ.get(STORE_ENV) or DEFAULT_STORE
    if root.startswith("s3://"):
        bucket, dummy, prefix = root[len("s3://"):].partition("/")
        if not bucket:
            raise StoreError(f"incident store {root!r}: no bucket name after s3://")
        return root
    return os.path.abspath(os.path.expanduser(root))


def id_field(resource_id):
    """The document's own id field: `subnet_id` for a subnet's record, `instance_id` for an instance's."""
    return "subnet_id" if str(resource_id).startswith("subnet-") else "instance_id"


def record_name(account_id, region, instance_id):
    """`records/<account_id>/<region>/<instance_id or subnet_id>.json`, every component checked."""
    values = {"account_id": str(account_id), "region": str(region), "instance_id": str(instance_id)}
    for name, value in values.items():
        if not _COMPONENT[name].match(value):
            raise StoreError(f"incident store: {name} {value!r} cannot name a record")
    return "/".join((RECORDS_DIR, values["account_id"], values["region"], values["instance_id"] + ".json"))


class LocalBackend:
    """A directory on the controller: 0700 directories, 0600 files, atomic replace."""

    def __init__(self, root):
        self.root = root

    def describe(self, name):
        return os.path.join(self.root, name)

    def read(self, name):
        path = self.describe(name)
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"incident store {path}: {exc.strerror or exc}") from None

    def write(self, name, text):
        path = self.describe(name)
        directory = os.path.dirname(path)
        try:
            # Each level created 0700 (umask cannot widen it); an existing root keeps its own mode.
            parts, current = os.path.relpath(directory, self.root).split(os.sep), self.root
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            for part in parts:
                current = os.path.join(current, part)
                if not os.path.isdir(current):
                    try:
                        os.mkdir(current, 0o700)
                    except FileExistsError:
                        pass  # made meanwhile by another instance's write in the same batch
                    if os.path.islink(current) or not os.path.isdir(current):
                        raise OSError(f"{current} is not a directory")
                    os.chmod(current, 0o700)
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
            try:
                os.fchmod(handle, 0o600)
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(text)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except BaseException:
                if os.path.exists(temporary):
                    os.unlink(temporary)
                raise
            directory_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(directory_fd)  # the rename itself survives a power cut
            finally:
                os.close(directory_fd)
        except OSError as exc:
            raise StoreError(f"incident store {path}: {exc.strerror or exc}") from None

    def delete(self, name):
        path = self.describe(name)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f"incident store {path}: {exc.strerror or exc}") from None


class S3Backend:
    """`s3://BUCKET/PREFIX` in the security account: PutObject (server-side encrypted), GetObject, DeleteObject."""

    def __init__(self, root, client):
        bucket, dummy, prefix = root[len("s3://"):].partition("/")
        self.bucket, self.prefix, self.client = bucket, prefix.strip("/"), client

    def key(self, name):
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self, name):
        return f"s3://{self.bucket}/{self.key(name)}"

    def _failed(self, name, action, exc):
        code = error_code(exc)
        return StoreError(f"incident store {self.describe(name)}: s3:{action}: {exc} ({code})")

    def read(self, name):
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
            return answer["Body"].read().decode("utf-8")
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._failed(name, "GetObject", exc) from None

    def write(self, name, text):
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=text.encode("utf-8"),
                                   ContentType="application/json", ServerSideEncryption="AES256")
        except Exception as exc:
            raise self._failed(name, "PutObject", exc) from None

    def delete(self, name):
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(name))
        except Exception as exc:
            raise self._failed(name, "DeleteObject", exc) from None


class IncidentStore:
    """Per instance, one document with a section per kind of record."""

    def __init__(self, backend):
        self.backend = backend

    def where(self, account_id, region, instance_id):
        return self.backend.describe(record_name(account_id, region, instance_id))

    def load(self, account_id, region, instance_id):
        """{kind: record} of the instance ({} when the store has nothing for it)."""
        name = record_name(account_id, region, instance_id)
        text = self.backend.read(name)
        if text is None:
            return {}
        try:
            document = json.loads(text)
            records = document["records"]
            field = id_field(instance_id)
            if document.get(field) != instance_id or not isinstance(records, dict):
                raise ValueError(f"holds {field} {document.get(field)!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"incident store {self.backend.describe(name)}: unreadable record: {exc}") from None
        return records

    def section(self, account_id, region, instance_id, kind):
        return self.load(account_id, region, instance_id).get(kind)

    def put(self, account_id, region, instance_id, kind, record):
        """Write one section of the instance's document (the others kept as they are)."""
        self._save(account_id, region, instance_id, kind, record)

    def drop(self, account_id, region, instance_id, kind):
        """Forget one section, once what it recorded has been restored; the document goes when empty."""
        self._save(account_id, region, instance_id, kind, None)

    def _save(self, account_id, region, instance_id, kind, record):
        if kind not in KINDS:
            raise StoreError(f"incident store: unknown kind of record {kind!r}")
        name = record_name(account_id, region, instance_id)
        records = dict(self.load(account_id, region, instance_id))
        if record is None:
            if kind not in records:
                return
            records.pop(kind)
        else:
            records[kind] = record
        if not records:
            self.backend.delete(name)
            return
        document = {"version": VERSION, "account_id": account_id, "region": region, id_field(instance_id): instance_id,
                    "records": records}
        self.backend.write(name, json.dumps(document, sort_keys=True, indent=1) + "\n")


def open_store(option, s3_client_factory=None, environ=None):
    """The IncidentStore the option names. `s3_client_factory()` builds the S3 client (operator's credentials)."""
    root = resolve_root(option, environ)
    if root.startswith("s3://"):
        if s3_client_factory is None:
            raise StoreError(f"incident store {root}: no S3 client")
        return IncidentStore(S3Backend(root, s3_client_factory()))
    return IncidentStore(LocalBackend(root))


def module_store(module):
    """The store of an AnsibleAWSModule's `incident_store` option; fails the module, changing nothing, if it is bad.

    S3 is reached with the controller's own credentials (the security account's operator), never with the
    member role the module's other calls use: the member account must not be able to rewrite its records.
    """
    def s3_client():
        import boto3  # the module already requires it
        session = boto3.session.Session(region_name=module.region)
        return session.client("s3", endpoint_url=module.params.get("endpoint_url"))

    try:
        return open_store(module.params.get("incident_store"), s3_client)
    except StoreError as exc:
        module.fail_json(msg=f"{exc}; nothing was changed")


def weigh_instance_record(store, region, instance, kind, tag_key, releasing, trust_tag_records=False):
    """The record a module may use for one described instance: (record, stored, warning, problem).

    The store's section `kind` is the authority, the instance's tag `tag_key` a hint (records.for_change /
    for_release). A problem means release must refuse the instance, changing nothing. StoreError propagates.
    """
    from ansible_collections.cloudsec.guardduty.plugins.module_utils import records

    instance_id = instance["InstanceId"]
    tagged, tag_error = None, None
    try:
        tagged = records.decode(instance.get("Tags") or [], tag_key)
    except records.RecordError as exc:
        tag_error = str(exc)
    stored = store.section(instance.get("OwnerId") or "", region, instance_id, kind)
    if not releasing:
        record, warning = records.for_change(instance_id, tag_key, stored, tagged, tag_error)
        return record, stored, warning, None
    record, problem, warning = records.for_release(instance_id, tag_key, stored, tagged, tag_error, trust_tag_records)
    return record, stored, warning, problem
