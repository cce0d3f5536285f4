//! Cross-crate tests for gossipnet live in `tests/tests/`.
