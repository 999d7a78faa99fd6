//! The YAML configuration: schema, loading with `${ENV}` interpolation, and validation whose
//! errors name the file, line and key. One place per setting; precedence is
//! request header > chain entry (target) > route > `defaults`.

mod load;
mod schema;
mod values;

pub use load::{load_file, load_str, ConfigError, Loaded};
pub use schema::*;
pub use values::{ByteSize, EnvString, HumanDuration, Secret};
