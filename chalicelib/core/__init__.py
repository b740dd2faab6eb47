"""Plumbing shared by every service: settings, AWS clients, errors, queues, locks, HTTP, config, clock."""
