//! The web client (`web/`) is compiled into the binary by `include_dir!`,
//! which cannot tell cargo which files it read on stable Rust: without this,
//! an edited module would not rebuild the server.

fn main() {
    println!("cargo:rerun-if-changed=web");
}
