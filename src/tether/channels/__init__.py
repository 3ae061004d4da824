"""Channels: how a state key or a trigger takes the writes of a superstep."""

from tether.channels.after_finish import LastValueAfterFinish, NamedBarrierValueAfterFinish
from tether.channels.base import MISSING, BaseChannel, EmptyChannelError, ValueChannel
from tether.channels.binop import BinaryOperatorAggregate, Overwrite
from tether.channels.ephemeral_value import EphemeralValue
from tether.channels.last_value import LastValue
from tether.channels.named_barrier_value import NamedBarrierValue
from tether.channels.topic import Topic

__all__ = [
    "MISSING",
    "BaseChannel",
    "BinaryOperatorAggregate",
    "EmptyChannelError",
    "EphemeralValue",
    "LastValue",
    "LastValueAfterFinish",
    "NamedBarrierValue",
    "NamedBarrierValueAfterFinish",
    "Overwrite",
    "Topic",
    "ValueChannel",
]
