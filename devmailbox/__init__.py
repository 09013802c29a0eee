"""The built-in dev mailbox: a local SMTP server that keeps every message it receives."""
