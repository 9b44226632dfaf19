//! `mab-referrers-registry PORT STORAGE_DIR`: ferro-oci-server's OCI Distribution 1.1 registry
//! (referrers API included) on 127.0.0.1:PORT, blobs under STORAGE_DIR, the metadata in memory.
//! Started and stopped by the tests (tests/common/registry.rs), like docker-registry.

use std::path::PathBuf;

use ferro_oci_server::{Config, serve};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(storage)) = (args.next(), args.next()) else {
        return Err("usage: mab-referrers-registry PORT STORAGE_DIR".into());
    };
    let port: u16 = port.parse()?;
    let config = Config::from_raw(
        Some(format!("127.0.0.1:{port}")),
        Some(PathBuf::from(storage)),
    );
    serve(&config).await
}
