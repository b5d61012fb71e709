"""The notifier: SMS and voice calls to a person's family contacts, as the escalation chain
asks (`watchpost notify`)."""
