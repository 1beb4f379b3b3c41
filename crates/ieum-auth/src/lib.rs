//! Credential adapters for the domain's ports: argon2id password hashing (off the
//! async executor) and HS256 JWTs.

mod jwt;
mod password;

pub use jwt::{DEV_SECRET_MARKERS, JwtCodec, MIN_SECRET_BYTES, is_development_secret};
pub use password::{Argon2Hasher, Argon2Params, HashBudget};
