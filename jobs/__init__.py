"""The daemon behind ``retailcrm-sync run``: scheduler and jobs, sd_notify, stop signals."""
