//! Stub library so `profiler` can depend on this crate for rebuild tracking;
//! the programs live in the `profiler` binary target (src/main.rs).
#![no_std]
