"""Making notifications: the one service every producer calls (the notifications projection
through its injected sink, the worker's scheduled jobs directly)."""
