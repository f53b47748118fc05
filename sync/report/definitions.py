"""The definitions printed in every format (analytics.md §E), one sentence each."""

from __future__ import annotations

DEFINITIONS: dict[str, str] = {
    "population": "One row of call_sync per logical call (linkedid), skipped rows excluded; "
    "a call belongs to the day and hour of its start in the tenant's zone; --to is inclusive.",
    "offered": "Inbound calls.",
    "answered": "Inbound calls with result answered.",
    "unanswered": "Offered minus answered, split by result and by whether an extension rang "
    "(reached) or the caller hung up before anyone rang (not reached: IVR, queue, greeting).",
    "short_abandons": "Unanswered with result 'no answer' and wait below --short seconds; left "
    "out of the rate denominators (busy/failed are never short).",
    "answer_rate": "answered / (offered - short abandons).",
    "abandon_rate": "(unanswered - short abandons) / (offered - short abandons).",
    "asa_seconds": "Mean wait of answered inbound calls (IVR and greeting included); median and "
    "p90 (nearest rank) beside it.",
    "service_level": "Answered within --sl seconds / (offered - short abandons); the "
    "answered-only variant divides by answered; buckets are cumulative over answered.",
    "avg_talk_seconds": "Mean talk time of answered calls per direction; no hold or after-call "
    "work is known, so this is only a proxy of handling time.",
    "outbound": "Attempts = outbound calls; connected = answered; connect rate = connected / "
    "attempts.",
    "episodes": "Per phone, consecutive unanswered not-short inbound calls of the period with no "
    "answered call in between; first miss = earliest start + wait.",
    "called_back": "First outbound call to the phone after the first miss and within "
    "--callback-window (calls after the period are read); reached if it or a later one within "
    "the window was answered.",
    "got_through": "The caller got an answered inbound call within the window before any callback.",
    "lost": "No outbound attempt and no answered inbound within the window.",
    "open": "The window has not passed yet; classified later.",
    "callback_median_seconds": "Median of first callback - first miss over closed episodes "
    "that were called back (reached or not).",
    "managers": "Extension of the call (pbx.responsible decides the first or last answering "
    "extension of a transferred call); missed (first rung) = unanswered inbound that rang it; "
    "talk in both directions; callbacks credited to the extension that called back.",
    "repeat_callers": "Phones with two or more inbound calls in the period.",
    "fcr": "Answered inbound calls with no further inbound from the phone within the repeat "
    "window / answered inbound calls whose window has passed (younger ones are open, repeated "
    "or not, so a young period is not biased).",
    "new_numbers": "A call whose phone has no earlier non-skipped call of the tenant; the first "
    "weeks after source.start_date overstate new numbers.",
    "orders": "An order (status group not cancel) goes to the latest answered call of the same "
    "customer before its creation, within --attribution; it counts in the period of that call. "
    "call conversion = answered calls with an attributed order / answered calls.",
    "skipped": "Rows recorded but not uploaded, by reason (internal, no number, ...): "
    "withheld callers are visible here.",
}
