"""Deptrans: drivers' registry ID and line state exchanged with the city's registry (KRT); feeds for caches."""
