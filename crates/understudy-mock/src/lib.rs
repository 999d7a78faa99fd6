//! Fault-injecting mock provider.
