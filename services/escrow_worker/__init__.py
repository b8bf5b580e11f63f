"""The long-running worker: webhook dispatch and delivery, and the deadline timers."""
