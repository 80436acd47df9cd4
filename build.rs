// sqlx::migrate! embeds migrations/ at compile time; without this a new
// migration file is left out of an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
