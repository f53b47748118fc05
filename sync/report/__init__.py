"""``retailcrm-sync report``: one computation over our own tables, four renderers (design §7).

``period`` resolves dates in the tenant's zone, ``store`` holds the report's SQL (streamed,
never the whole table in memory), ``metrics`` is the pure computation of analytics.md §E, and
``text``/``jsonout``/``csvout``/``html`` render its one result.
"""
