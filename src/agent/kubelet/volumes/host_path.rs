//! hostPath `type` checks, with upstream's texts. The path is used in
//! place; `DirectoryOrCreate` and `FileOrCreate` create what is missing
//! (0755 / 0644, subject to the umask as upstream). As upstream,
//! `FileOrCreate` does not create the parent directory.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::VolumeError;

pub(crate) fn check(path: &Path, type_: &str) -> Result<(), VolumeError> {
    if !path.is_absolute() {
        return Err(VolumeError::Invalid(format!(
            "hostPath {} must be an absolute path",
            path.display()
        )));
    }
    // Symlinks are followed, as upstream's os.Stat.
    let meta = fs::metadata(path).ok();
    let ft = meta.as_ref().map(|m| m.file_type());
    let failed = |what: &str| {
        Err(VolumeError::Invalid(format!(
            "hostPath type check failed: {} is not {what}",
            path.display()
        )))
    };
    let is = |f: fn(&fs::FileType) -> bool| ft.as_ref().is_some_and(f);
    match type_ {
        "" => Ok(()),
        "DirectoryOrCreate" if meta.is_none() => make_dir(path),
        "DirectoryOrCreate" | "Directory" if is(fs::FileType::is_dir) => Ok(()),
        "DirectoryOrCreate" | "Directory" => failed("a directory"),
        "FileOrCreate" if meta.is_none() => make_file(path),
        "FileOrCreate" | "File" if is(fs::FileType::is_file) => Ok(()),
        "FileOrCreate" | "File" => failed("a file"),
        "Socket" if is(FileTypeExt::is_socket) => Ok(()),
        "Socket" => failed("a socket file"),
        "CharDevice" if is(FileTypeExt::is_char_device) => Ok(()),
        "CharDevice" => failed("a character device"),
        "BlockDevice" if is(FileTypeExt::is_block_device) => Ok(()),
        "BlockDevice" => failed("a block device"),
        other => Err(VolumeError::Invalid(format!(
            "{other} is an invalid volume type"
        ))),
    }
}

fn make_dir(path: &Path) -> Result<(), VolumeError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(|e| VolumeError::io(format!("creating {}", path.display()), e))
}

fn make_file(path: &Path) -> Result<(), VolumeError> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(VolumeError::Invalid(format!(
            "hostPath type check failed: cannot create {}: the parent directory does not exist",
            path.display()
        ))),
        Err(e) => Err(VolumeError::io(format!("creating {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixListener;

    #[test]
    fn types_are_checked_with_upstream_texts() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("d");
        let file = t.path().join("f");
        fs::create_dir(&dir).unwrap();
        fs::write(&file, "x").unwrap();
        let sock = t.path().join("s");
        let _l = UnixListener::bind(&sock).unwrap();

        check(&dir, "Directory").unwrap();
        check(&file, "File").unwrap();
        check(&sock, "Socket").unwrap();
        check(Path::new("/dev/null"), "CharDevice").unwrap();
        check(&t.path().join("missing"), "").unwrap();
        let e = check(&file, "Directory").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "hostPath type check failed: {} is not a directory",
                file.display()
            )
        );
        let e = check(&dir, "File").unwrap_err();
        assert!(e.to_string().ends_with("is not a file"));
        assert!(check(&file, "Socket")
            .unwrap_err()
            .to_string()
            .ends_with("is not a socket file"));
        assert!(check(&file, "CharDevice").is_err());
        assert!(check(&file, "BlockDevice")
            .unwrap_err()
            .to_string()
            .ends_with("is not a block device"));
        assert!(check(&t.path().join("missing"), "Directory").is_err());
        assert_eq!(
            check(&dir, "Weird").unwrap_err().to_string(),
            "Weird is an invalid volume type"
        );
        assert!(check(Path::new("rel"), "").is_err());
    }

    #[test]
    fn or_create_types_create() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("x/y");
        check(&d, "DirectoryOrCreate").unwrap();
        assert!(d.is_dir());
        let f = d.join("file");
        check(&f, "FileOrCreate").unwrap();
        let m = fs::metadata(&f).unwrap();
        assert!(m.is_file());
        assert_eq!(m.permissions().mode() & 0o022, 0, "umask-limited 0644");
        check(&f, "FileOrCreate").unwrap();
        let e = check(&t.path().join("no/such/file"), "FileOrCreate").unwrap_err();
        assert!(matches!(e, VolumeError::Invalid(_)));
        let e = check(&f, "DirectoryOrCreate").unwrap_err();
        assert!(e.to_string().ends_with("is not a directory"));
    }
}
