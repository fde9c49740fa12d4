"""Webhook deliveries: made from events, sent signed, in order, at least once."""
