//! `roprof profile --compose FILE`: a Compose project profiled service by
//! service, and the file written back hardened.
//!
//! [`parse`] reads the file into the keys roprof runs a service with (with
//! [`lines`] finding the line of a key for error messages), [`project`]
//! starts a service's dependencies on a project network the way Compose
//! would, and [`patch`] writes `read_only: true` and the plan's mounts into
//! the original text, keeping everything else, comments included.

mod health;
mod interpolate;
pub mod lines;
pub mod parse;
pub mod patch;
pub mod project;
pub mod verify;
pub mod workflow;

#[cfg(test)]
mod tests;

pub use self::{
    parse::{Project, Service, load},
    patch::{Hardening, harden},
};

/// Errors about the compose file, each naming the file, and the line and
/// key when there is one.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The file cannot be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The YAML does not parse.
    #[error("{file}:{line}:{column}: the YAML does not parse: {reason}")]
    Yaml {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        reason: String,
    },
    /// A key's value cannot be used.
    #[error("{file}:{line}: {key}: {reason}")]
    Key {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// Dotted key path (`services.web.image`).
        key: String,
        /// Why.
        reason: String,
    },
    /// The hardened file could not be written.
    #[error("writing the hardened compose file: {0}")]
    Write(String),
}
