use std::process::Command;

use crate::support::TempDir;

#[test]
fn ca_init_writes_the_root_and_a_private_key_and_refuses_to_overwrite() {
    let dir = TempDir::new("cli");
    let ca_dir = dir.0.join("ca");
    let out = Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .args(["ca", "init"])
        .arg(&ca_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("root-cert.pem") && stdout.contains("cluster.local"),
        "{stdout}"
    );
    let ca = meshgate::mesh::MeshCa::load(&ca_dir).unwrap();
    assert_eq!(ca.trust_domain(), "cluster.local");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ca_dir.join("ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let again = Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .args(["ca", "init"])
        .arg(&ca_dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already holds a mesh CA") && stderr.contains("--force"),
        "{stderr}"
    );

    let forced = Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .args(["ca", "init", "--force", "--trust-domain", "example.org"])
        .arg(&ca_dir)
        .output()
        .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_eq!(
        meshgate::mesh::MeshCa::load(&ca_dir)
            .unwrap()
            .trust_domain(),
        "example.org"
    );
}
