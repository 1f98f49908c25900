//! The errno names the code branches on. `OpStats.errors` keys stay plain
//! strings (the tracer records any errno by name, and the report writes
//! them as they are); these constants are the few names the planner, the
//! closed loop and the renderers compare against, spelled once.

/// Read-only file system: a write the read-only root refused.
pub const EROFS: &str = "EROFS";

/// File exists: `mkdir` of a directory that is already there (a mount
/// point roprof created in a verify run).
pub const EEXIST: &str = "EEXIST";
