//! Helpers shared by the integration tests that read the CRS from the Debian package.

/// Where `modsecurity-crs` installs the rules.
pub const RULES_DIR: &str = "/usr/share/modsecurity-crs/rules";

/// Whether the CRS is installed. Without it a test says so and passes, except under
/// `CI=true`, where the CRS must be there (`.ci/run` installs it).
pub fn crs_present() -> bool {
    if std::path::Path::new(RULES_DIR).is_dir() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{RULES_DIR} missing under CI");
    eprintln!("skipping: {RULES_DIR} not found (install modsecurity-crs)");
    false
}
