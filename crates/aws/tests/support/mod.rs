//! What the emulator tests share beside the emulator itself.

use std::path::{Path, PathBuf};

/// The checkout's top.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A set of IAM users of a test's own on the emulator, one per function of `template` (the
/// checkout's when None) holding that template's policies, named `<LogicalId><suffix>`:
/// their keys, made by `infra/local/iam.py`.
pub fn users_of_their_own(template: Option<&Path>, suffix: &str) -> vellum_aws::roles::LocalRoles {
    let root = root();
    let python = std::env::var("VELLUM_PYTHON").unwrap_or_else(|_| root.join(".venv/bin/python").display().to_string());
    let dir = tempfile::tempdir().unwrap();
    let roles = dir.path().join("roles.json");
    let mut command = std::process::Command::new(&python);
    command.arg(root.join("infra/local/iam.py")).current_dir(&root);
    if let Some(template) = template {
        command.arg("--template").arg(template);
    }
    let made =
        command.arg(format!("--suffix={suffix}")).arg("--out").arg(&roles).output().expect("run infra/local/iam.py");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    vellum_aws::roles::LocalRoles::load(roles.to_str().unwrap()).unwrap()
}
