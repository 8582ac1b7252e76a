//! The conformance suite (filled in with the optimized kernels).
