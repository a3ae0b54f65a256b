"""What people see: pages, pure figure builders, tree layout and narration."""
