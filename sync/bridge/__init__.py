"""The live bridge (design §6): ``retailcrm-sync serve``'s HTTP callbacks and click-to-call."""
