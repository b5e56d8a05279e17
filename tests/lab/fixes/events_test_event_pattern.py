"""EventBridge's TestEventPattern, which moto 5.2 routes but does not implement (it answers an empty body).

AWS (TestEventPattern API reference):
- The answer is {"Result": true|false}: whether the event pattern matches the event, by the same rules
  as a rule on an event bus. moto's own rule matcher (EventPattern, used for PutEvents) decides it.
- The event must carry id, account, source, time, region, resources and detail-type, else
  ValidationException; an event pattern that is not valid JSON, or whose leaves are not arrays,
  is an InvalidEventPatternException.
- Numeric matching ({"numeric": [">=", 7]}) applies to JSON numbers only: moto also lets JSON booleans
  through (Python's bool is an int), so `true` would pass [">=", 1]; here it does not.
"""

import json

from moto.events.exceptions import ValidationException
from moto.events.models import UNDEFINED, EventPattern
from moto.events.responses import EventsHandler

MANDATORY_EVENT_FIELDS = ("id", "account", "source", "time", "region", "resources", "detail-type")


def test_event_pattern(self):
    pattern = EventPattern.load(self._get_param("EventPattern"))
    try:
        event = json.loads(self._get_param("Event") or "")
    except ValueError:
        raise ValidationException("Parameter Event is not valid.") from None
    if not isinstance(event, dict) or any(field not in event for field in MANDATORY_EVENT_FIELDS):
        raise ValidationException("Parameter Event is not valid.")
    return json.dumps({"Result": pattern.matches_event(event)}), self.response_headers


def apply():
    EventsHandler.test_event_pattern = test_event_pattern

    moto_named_filter = EventPattern._does_item_match_named_filter
    if getattr(moto_named_filter, "lab_numbers_only", False):
        return

    def named_filter(item, pattern):
        if item is not UNDEFINED and next(iter(pattern)) == "numeric":
            # AWS: numeric matching compares JSON numbers; booleans never match
            values = [v for v in (item if isinstance(item, list) else [item]) if not isinstance(v, bool)]
            if not values:
                return False
            item = values if isinstance(item, list) else values[0]
        return moto_named_filter(item, pattern)

    named_filter.lab_numbers_only = True
    EventPattern._does_item_match_named_filter = staticmethod(named_filter)
