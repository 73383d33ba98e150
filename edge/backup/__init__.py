"""Backup archives, targets (local, USB, SMB, mounted shares), schedule, restore."""
