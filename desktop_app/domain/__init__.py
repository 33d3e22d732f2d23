"""Plain data and rules, no I/O: requests, jobs, images, errors."""
