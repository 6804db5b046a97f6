"""Fake push services for the chat-notify tests (Web Push, FCM, APNs) and
the throw-away test CA they share (testca.py)."""
