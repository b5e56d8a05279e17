"""GuardDuty's rest-json wire format, worked out from botocore's service model.

The lab keeps GuardDuty state in the shape boto3 returns (member names, datetimes for
`timestamp` members). Requests are read, and responses written, by walking the operation's
input/output shapes: a structure member goes on the wire under its locationName, a timestamp as
the protocol's default (epoch seconds for rest-json, GuardDuty sets no other format). Nothing is
spelled by hand, so whatever boto3 parses back is exactly what the lab holds.
"""

import datetime
import json
import re

from tests.lab import protocol

SERVICE = "guardduty"


def model():
    return protocol.service_model(SERVICE)


def operation(name):
    return model().operation_model(name)


def shape(name):
    return model().shape_for(name)


# -- python form -> wire -----------------------------------------------------------------------
def to_wire(shape_, value):
    if value is None:
        return None
    kind = shape_.type_name
    if kind == "structure":
        out = {}
        for name, member in shape_.members.items():
            if name in value and value[name] is not None:
                out[member.serialization.get("name", name)] = to_wire(member, value[name])
        return out
    if kind == "list":
        return [to_wire(shape_.member, item) for item in value]
    if kind == "map":
        return {key: to_wire(shape_.value, item) for key, item in value.items()}
    if kind == "timestamp":
        return _epoch(value)
    return value


def _epoch(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        stamp = value.timestamp()
        return int(stamp) if stamp == int(stamp) else stamp
    return value


# -- wire -> python form -----------------------------------------------------------------------
def from_wire(shape_, value):
    if value is None:
        return None
    kind = shape_.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise WireError(f"expected an object for {shape_.name}")
        out = {}
        for name, member in shape_.members.items():
            wire_name = member.serialization.get("name", name)
            if wire_name in value:
                out[name] = from_wire(member, value[wire_name])
        return out
    if kind == "list":
        if not isinstance(value, list):
            raise WireError(f"expected a list for {shape_.name}")
        return [from_wire(shape_.member, item) for item in value]
    if kind == "map":
        return {key: from_wire(shape_.value, item) for key, item in value.items()}
    if kind == "timestamp":
        return datetime.datetime.fromtimestamp(float(value), datetime.timezone.utc)
    if kind in ("integer", "long"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise WireError(f"{value!r} is not an integer") from None
    return value


class WireError(ValueError):
    pass


def request_params(req):
    """The operation's input in python form: URI labels, query string and JSON body members."""
    op = operation(req.action)
    labels = _uri_labels(op.http["requestUri"], req.path)
    out = {}
    for name, member in op.input_shape.members.items():
        where = member.serialization.get("location")
        wire_name = member.serialization.get("name", name)
        if where == "uri":
            if wire_name in labels:
                out[name] = labels[wire_name]
        elif where == "querystring":
            if wire_name in req.query:
                out[name] = from_wire(member, req.query[wire_name])
        elif where == "header":
            continue
        elif wire_name in req.params:
            out[name] = from_wire(member, req.params[wire_name])
    return out


def _uri_labels(template, path):
    names = re.findall(r"\{([^}+]+)\+?\}", template.split("?")[0])
    pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template.split("?")[0]))
    match = re.match("^" + pattern + "/?$", path)
    return dict(zip(names, match.groups())) if match else {}


def response(op_name, output):
    """A 200 answer carrying `output` (python form) as the operation's output shape says."""
    op = operation(op_name)
    body = to_wire(op.output_shape, output or {}) if op.output_shape is not None else {}
    return 200, [("Content-Type", "application/json")], json.dumps(body).encode(), None
