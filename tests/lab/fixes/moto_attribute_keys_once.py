"""The attribute names moto's serializer tries for a member, worked out once per kind of object and member.

AWS's own work to answer a call is not on the caller's machine; the lab's is, on the controller's cores, and every
benchmark counts it. moto 5.2.5 writes an answer by reading each member of the model from its Python object under the
names its alias providers give (AttributePicker.get_possible_keys: the object's Meta aliases, the shape's name, the
member's name, its name without the parent's or the class's prefix, the model's serialization name, each also in
snake_case), making every provider again for every member of every object: 11% of the lab's CPU in an organization's
isolation, most of it for the instances, interfaces and groups of the Describe answers (py-spy, GIL-holding samples).

Those names depend only on the picker's providers, the object's class, the member's name and its shape (with the
structure it is a member of): they are kept per those (the shapes are the same objects from one answer to the next,
fixes/botocore_shapes_once.py), and the object's values are still read from the object every time. An object with
its own Meta (not its class's) is worked out as before.
"""

from moto.core import serialize

_CACHE_MAX = 200_000
_keys = {}


def _remembered(original):
    def get_possible_keys(self, context):
        obj, shape = context.obj, context.shape
        if "Meta" in getattr(obj, "__dict__", ()):
            return original(self, context)
        parent = getattr(shape, "parent", None)
        key = (original, tuple(self.alias_providers), type(obj), context.key, id(shape), id(parent))
        hit = _keys.get(key)
        if hit is None or hit[0] is not shape or hit[1] is not parent:
            if len(_keys) >= _CACHE_MAX:
                _keys.clear()
            hit = _keys[key] = (shape, parent, tuple(original(self, context)))
        return hit[2]

    get_possible_keys.original = original
    return get_possible_keys


def apply():
    for picker in (serialize.AttributePicker, serialize.XFormedAttributePicker):
        picker.get_possible_keys = _remembered(picker.__dict__["get_possible_keys"])
