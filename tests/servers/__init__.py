"""Real servers started by test fixtures on 127.0.0.1 (never mocks)."""
