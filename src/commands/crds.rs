//! `permit-sync crds`: print the CRDs, or write one file per CRD into a folder (`crds/`).

use crate::kinds;
use anyhow::Context;
use std::path::Path;

#[derive(clap::Args, Debug)]
pub struct CrdsArgs {
    /// Write one YAML file per CRD into this folder instead of printing them.
    #[arg(long)]
    pub output_dir: Option<std::path::PathBuf>,
}

/// File name of a CRD inside `crds/`: `<group>_<plural>.yaml`, as controller-gen names them.
pub fn file_name(crd: &kinds::common::CrdName) -> String {
    format!("{}_{}.yaml", crd.group, crd.plural)
}

/// Each CRD as `(file name, YAML)`.
pub fn rendered() -> Vec<(String, String)> {
    kinds::crds()
        .into_iter()
        .map(|crd| {
            let name = kinds::common::CrdName {
                group: crd.spec.group.clone(),
                plural: crd.spec.names.plural.clone(),
            };
            let yaml = serde_saphyr::to_string(&crd).expect("a CRD always serialises");
            (file_name(&name), yaml)
        })
        .collect()
}

pub fn run(args: &CrdsArgs) -> anyhow::Result<()> {
    match &args.output_dir {
        None => print!("{}", kinds::crds_yaml()),
        Some(dir) => write_dir(dir)?,
    }
    Ok(())
}

fn write_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, yaml) in rendered() {
        let path = dir.join(&name);
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
