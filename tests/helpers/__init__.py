"""What several test modules share: the collected world, the crash worker, message builders, fault helpers."""
