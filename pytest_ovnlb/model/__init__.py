"""What the suite knows before any lab exists: OVN versions and what
changed between them, and where a load balancer can be placed."""
