# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Instance evidence: what an instance looked like, written once, on the controller, with hashes.

A capture is a new directory evidence_dir/<incident>/<account>/<region>/<instance>/<UTC timestamp>/
holding the files below and a manifest.json with each file's SHA-256 and size. Nothing is ever
overwritten: the capture directory must not exist, every file is created with O_EXCL, modes are 0700
for directories and 0600 for files.

User data is not stored: it often holds secrets (passwords, tokens) that must not be copied into an
evidence store. Only its SHA-256 and size are recorded, enough to show whether it changed.
"""

import base64
import hashlib
import json
import os
import re

from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import describe_by_filter, error_code

FILE_INSTANCE = "instance.json"
FILE_NETWORK_INTERFACES = "network-interfaces.json"
FILE_VOLUMES = "volumes.json"
FILE_ATTRIBUTES = "attributes.json"
FILE_CONSOLE_OUTPUT = "console-output.txt"
FILE_SCREENSHOT = "console-screenshot.jpg"  # GetConsoleScreenshot returns a JPG (EC2 API reference)
FILE_MANIFEST = "manifest.json"
PATH_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}$")


def check_path_part(name, value):
    """A path component taken from user input or AWS: one plain directory name, never a path."""
    if not PATH_PART.match(value or "") or value in (".", ".."):
        raise ValueError(f"{name} {value!r} cannot be a directory name: use letters, digits and . _ : @ + = -")
    return value


def capture_dir(evidence_dir, incident_id, account, region, instance_id, timestamp):
    parts = [check_path_part("incident_id", incident_id), check_path_part("account", account),
             check_path_part("region", region), check_path_part("instance_id", instance_id),
             check_path_part("timestamp", timestamp)]
    return os.path.join(evidence_dir, *parts)


def planned_files(console_output, screenshot):
    files = [FILE_INSTANCE, FILE_NETWORK_INTERFACES, FILE_VOLUMES, FILE_ATTRIBUTES]
    if console_output:
        files.append(FILE_CONSOLE_OUTPUT)
    if screenshot:
        files.append(FILE_SCREENSHOT)
    return files


def _json_bytes(data):
    return (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


def user_data_digest(encoded):
    """SHA-256 and size of the (base64) user data DescribeInstanceAttribute returns; never the content."""
    if not encoded:
        return {"present": False, "sha256": None, "size": 0}
    raw = base64.b64decode(encoded)
    return {"present": True, "sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}


def evidence_files(instance, network_interfaces, volumes, user_data, console_output=None, screenshot=None):
    """{file name: bytes} for one instance, from what AWS returned (console output and screenshot base64)."""
    files = {
        FILE_INSTANCE: _json_bytes(instance),
        FILE_NETWORK_INTERFACES: _json_bytes(network_interfaces),
        FILE_VOLUMES: _json_bytes(volumes),
        FILE_ATTRIBUTES: _json_bytes({"userData": dict(user_data_digest(user_data),
                                                       note="content not stored: user data can hold secrets")}),
    }
    if console_output is not None:
        # Raw bytes as the instance wrote them: AWS base64-encodes the console output.
        files[FILE_CONSOLE_OUTPUT] = base64.b64decode(console_output) if console_output else b""
    if screenshot is not None:
        files[FILE_SCREENSHOT] = base64.b64decode(screenshot)
    return files


def manifest(files, about):
    """The manifest document: who/what/when (`about`) and each file's SHA-256 and size, by name."""
    return dict(about, files=[{"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                              for name, data in sorted(files.items())])


# -- the controller's file system ---------------------------------------------------------------

def _make_dirs(path):
    """Create the missing directories of `path` with mode 0700 (the umask does not weaken it)."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass  # another capture of the same incident created it: fine for parents
        os.chmod(directory, 0o700)


def _write_new(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_capture(directory, files, about):
    """Write the files and the manifest into a new capture directory; returns (manifest, its bytes, its SHA-256).

    Refuses (FileExistsError) to use a directory that already exists: earlier evidence is never touched.
    """
    _make_dirs(os.path.dirname(directory))
    os.mkdir(directory, 0o700)  # FileExistsError if it exists
    os.chmod(directory, 0o700)
    for name, data in sorted(files.items()):
        _write_new(os.path.join(directory, name), data)
    document = manifest(files, about)
    body = _json_bytes(document)
    _write_new(os.path.join(directory, FILE_MANIFEST), body)
    return document, body, hashlib.sha256(body).hexdigest()


def s3_key(prefix, relative_dir, name):
    """The object key of one evidence file: the prefix, then the same layout as on disk."""
    parts = [p for p in (prefix or "").split("/") if p] + relative_dir.split(os.sep) + [name]
    return "/".join(parts)


# -- AWS ----------------------------------------------------------------------------------------

def describe_by_instance(client, instance_ids):
    """({instance_id: [network interface]}, {instance_id: [volume]}): one call of each per 200 instances."""
    enis = {i: [] for i in instance_ids}
    volumes = {i: [] for i in instance_ids}
    for eni in describe_by_filter(client, "DescribeNetworkInterfaces", "NetworkInterfaces", "attachment.instance-id", instance_ids):
        owner = (eni.get("Attachment") or {}).get("InstanceId")
        if owner in enis:
            enis[owner].append(eni)
    for volume in describe_by_filter(client, "DescribeVolumes", "Volumes", "attachment.instance-id", instance_ids):
        for attachment in volume.get("Attachments", []):
            if attachment.get("InstanceId") in volumes:
                volumes[attachment["InstanceId"]].append(volume)
    return enis, volumes


# GetConsoleOutput Latest=true "is supported on instance types that use the Nitro hypervisor" (EC2 API
# reference, GetConsoleOutput). The Xen families: the previous generations absent from "Instances built on
# the AWS Nitro System" (Amazon EC2 Instance Types guide); i3.metal and p3dn.24xlarge are Nitro.
XEN_FAMILIES = frozenset(("c1", "c3", "c4", "cc2", "cg1", "cr1", "d2", "f1", "g2", "g3", "g3s", "h1", "hi1", "hs1", "i2", "i3",
                          "m1", "m2", "m3", "m4", "p2", "p3", "r3", "r4", "t1", "t2", "x1", "x1e"))
NITRO_EXCEPTIONS = frozenset(("i3.metal", "p3dn.24xlarge"))


def latest_console_supported(instance_type):
    """Whether GetConsoleOutput Latest=true works on this type; unknown types are tried (and fall back)."""
    return not instance_type or instance_type in NITRO_EXCEPTIONS or str(instance_type).split(".", maxsplit=1)[0] not in XEN_FAMILIES


def console_output(client, instance_id, instance_type=None):
    """(console output base64, note or None): the latest output where the type allows it, else the buffered one.

    A Xen type is asked without Latest at once; a type AWS refuses Latest for (UnsupportedOperation, or an invalid
    parameter) is asked again without it. The note says so: the buffered output is older.
    """
    note = None
    if latest_console_supported(instance_type):
        try:
            return aws_calls.call(client, "GetConsoleOutput", InstanceId=instance_id, Latest=True).get("Output") or "", None
        except Exception as exc:
            code = error_code(exc)
            if code not in ("UnsupportedOperation", "InvalidParameterCombination", "InvalidParameterValue"):
                raise
            note = f"GetConsoleOutput Latest=true refused ({code}): the buffered output, without Latest"
    else:
        note = f"{instance_type} is not built on the Nitro System: the buffered output, without Latest"
    return aws_calls.call(client, "GetConsoleOutput", InstanceId=instance_id).get("Output") or "", note


def collect(client, instance_id, console_output_wanted, screenshot, instance_type=None, notes=None):
    """(user data base64, console output base64 or None, screenshot base64 or None) for one instance.

    `client` must not decode console output (see raw_console_client). Errors carry `.action`. A list given as
    `notes` gets what the capture had to do differently (console output without Latest).
    """
    action = "DescribeInstanceAttribute"
    try:
        user_data = aws_calls.call(client, "DescribeInstanceAttribute", InstanceId=instance_id, Attribute="userData")
        user_data = (user_data.get("UserData") or {}).get("Value")
        output = image = None
        if console_output_wanted:
            action = "GetConsoleOutput"
            output, note = console_output(client, instance_id, instance_type)
            if note and notes is not None:
                notes.append(note)
        if screenshot:
            action = "GetConsoleScreenshot"
            image = aws_calls.call(client, "GetConsoleScreenshot", InstanceId=instance_id, WakeUp=True).get("ImageData") or ""
    except Exception as exc:
        exc.action = action
        raise
    return user_data, output, image


def upload_capture(s3, bucket, prefix, relative_dir, files, sse, kms_key_id=None):
    """PutObject each file (manifest last), never replacing an object (If-None-Match: *), with its SHA-256
    checked by S3 (ChecksumSHA256) and server-side encryption. Returns [{"key", "sha256"}]; errors carry `.action`.
    """
    uploaded = []
    for name in sorted(n for n in files if n != FILE_MANIFEST) + [FILE_MANIFEST]:
        data = files[name]
        digest = hashlib.sha256(data).digest()
        kwargs = {"Bucket": bucket, "Key": s3_key(prefix, relative_dir, name), "Body": data, "IfNoneMatch": "*",
                  "ChecksumSHA256": base64.b64encode(digest).decode(), "ServerSideEncryption": sse}
        if kms_key_id:
            kwargs["SSEKMSKeyId"] = kms_key_id
        try:
            aws_calls.call(s3, "PutObject", **kwargs)
        except Exception as exc:
            exc.action = "PutObject"
            raise
        uploaded.append({"key": kwargs["Key"], "sha256": digest.hex()})
    return uploaded


def raw_console_client(client):
    """The client, with botocore's lossy console-output decoding (UTF-8 with replacement) turned off for it."""
    from botocore.handlers import decode_console_output

    client.meta.events.unregister("after-call.ec2.GetConsoleOutput", decode_console_output)
    return client
