"""The service models' shapes resolved once per reference, not on every answer.

AWS's own work to answer a call is not on the caller's machine; the lab's is, on the controller's cores, and every
benchmark counts it. botocore 1.44's ShapeResolver makes a new Shape object every time a reference is resolved
(it has a `_shape_cache` it never fills), so the members of a structure, which botocore keeps per Shape object
(`CachedProperty`), are worked out again for every structure of every answer: moto's serializer, which writes the
EC2 answers, and the lab's GuardDuty wire form walk the shapes of each instance, group and finding they write.
In an organization's inventory (5,000 instances over 80 accounts and regions) that was a quarter of the lab's
CPU, most of it for DescribeInstances (py-spy, GIL-holding samples).

A reference (the `{"shape": ..., traits}` dict of a structure member, a list's member, a map's key or value, an
operation's input or output) now resolves to the same Shape each time. The reference is kept with its Shape, so
its id cannot be reused by another dict. Shapes are read only: botocore never changes one; moto's serializer sets
`parent` on a structure's member shapes, and since a reference belongs to one structure of the model, the parent it
sets is always a shape of that structure's name and members, which is all moto reads of it.
"""

from botocore import model

_resolve_shape_ref = model.ShapeResolver.resolve_shape_ref


def resolve_shape_ref(self, shape_ref):
    resolved = self.__dict__.get("_lab_resolved")
    if resolved is None:
        resolved = self.__dict__.setdefault("_lab_resolved", {})
    hit = resolved.get(id(shape_ref))
    if hit is not None and hit[0] is shape_ref:
        return hit[1]
    shape = _resolve_shape_ref(self, shape_ref)
    resolved[id(shape_ref)] = (shape_ref, shape)
    return shape


def apply():
    model.ShapeResolver.resolve_shape_ref = resolve_shape_ref
