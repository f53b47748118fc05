"""retailcrm-sync: Asterisk call log -> RetailCRM telephony calls."""

__version__ = "0.1.0"
