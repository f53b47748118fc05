"""Our Asterisk Manager Interface client: typed messages, one connection, reconnect, no resend.

Why not panoramisk (spec/realtime-bridge.md C1): it re-sends actions that had no reply after a
reconnect (an Originate would dial twice), its ``Ping`` never checks the answer, a failed
``connect()`` leaves its timers running, and it is untyped. The protocol itself is a few
``Key: Value`` lines per message, so a small asyncio client is less code than the adapter that
would have to undo those behaviours.
"""

from sync.ami.client import AmiClient, AmiError, AmiUnavailable
from sync.ami.protocol import Message, encode_action

__all__ = ["AmiClient", "AmiError", "AmiUnavailable", "Message", "encode_action"]
