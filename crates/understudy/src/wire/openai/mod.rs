//! The openai dialect.
