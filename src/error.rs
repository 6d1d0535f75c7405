//! One error type for the whole crate: a message with the context that produced it.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    /// No usable adapter or device could be created.
    NoDevice,
    /// The device was lost, ran out of memory or reported a validation error.
    Gpu,
    /// Shapes, attributes or wiring of a graph do not fit together.
    Graph,
    /// The caller asked for something unsupported or malformed.
    Invalid,
    /// Reading or writing a file failed.
    Io,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn graph(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Graph, message)
    }
    pub fn gpu(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Gpu, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }
    /// Prefix the message with where it happened.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.message = format!("{ctx}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, e.to_string())
    }
}
