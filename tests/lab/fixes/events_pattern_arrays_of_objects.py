"""EventBridge event patterns on fields inside arrays of objects, which moto 5.2.5 never matches.

AWS: a pattern field matches when any value the event has at that path matches, arrays included, and an
array of objects is looked into: the Security Hub User Guide's own EventBridge patterns filter
`Security Hub Findings` events on fields of the `detail.findings` array (e.g. {"detail": {"findings":
{"ProductName": ["GuardDuty"]}}}, "Configuring an EventBridge rule for automatically sent findings";
EventBridge User Guide, "Arrays in Amazon EventBridge event patterns").
moto flattens the event's nested objects into dotted keys but keeps an array of objects as one value,
so {"detail": {"findings": {"Resources": {"Type": [...]}}}} can never match. Here, each object of an
array is flattened too, and a key that occurs in several of them holds the list of its values, which
moto's matcher already treats as "any of".
"""

from moto.events.models import EventPattern


def _flatten(node, prefix, result):
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            _flatten(value, path, result)
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            for item in value:
                if isinstance(item, dict):
                    _flatten(item, path, result)
                else:
                    _add(result, path, item)
        else:
            _add(result, path, value, scalar=True)


def _add(result, path, value, scalar=False):
    if path not in result:
        result[path] = value if scalar else [value]
        return
    current = result[path]
    merged = current if isinstance(current, list) else [current]
    merged = merged + (value if isinstance(value, list) else [value])
    result[path] = merged


def flatten_dict(node, prefix="", result=None):
    result = {} if result is None else result
    if isinstance(node, dict):
        _flatten(node, prefix, result)
    return result


def apply():
    EventPattern._flatten_dict = staticmethod(flatten_dict)
