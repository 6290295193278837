//! loom models of the engine (see the loom issue).
