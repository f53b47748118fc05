"""Pop-ups (design §6.3 P1–P9): AMI events of a live call → ``POST telephony/call/event``.

``machine`` decides (pure: typed events in, call events out, time passed in); ``delivery`` sends
(bounded queue, deadline, retries, metrics); ``live`` wires both to the AMI client and ``serve``.
"""
