//! The pause image, made at start without a registry or a toolchain.
//!
//! Every pod sandbox runs one "pause" process: it holds the pod's
//! namespaces, reaps zombies when the pod shares its PID namespace, and
//! exits cleanly on SIGTERM/SIGINT. Upstream ships it as a C program; here
//! it is a tiny static ELF executable assembled from machine code bytes for
//! the host architecture (no libc, no dynamic loader: a few system calls),
//! wrapped into a one-layer OCI image layout tarball that `import` loads.
//!
//! The program, in every architecture:
//! 1. `rt_sigaction(SIGCHLD, {SIG_IGN})`: ignoring SIGCHLD makes the
//!    kernel reap exited children itself, so no zombie ever stays.
//! 2. `rt_sigaction(SIGTERM and SIGINT, {handler})`: the handler calls
//!    `exit_group(0)` and never returns (so no signal trampoline is needed;
//!    x86_64 still requires SA_RESTORER with a restorer address).
//! 3. loop forever on `pause()` (aarch64 has no `pause`: `rt_sigsuspend`
//!    with an empty mask is the same).

use std::collections::BTreeMap;

use super::manifest::{self, sha256_digest};
use super::Error;

/// The sandbox image name: only this node knows it; the CRI plugin never
/// tries to pull it because it is always imported before the first pod.
pub const PAUSE_IMAGE: &str = "nanokube.local/pause:3.9";

/// Where the executable is loaded (page aligned, also for 64 KiB pages).
const BASE64: u64 = 0x40_0000;
const BASE32: u32 = 0x1_0000;
const SIGINT: u32 = 2;
const SIGTERM: u32 = 15;
const SIGCHLD: u32 = 17;
const SIG_IGN: u64 = 1;
const SA_RESTORER: u64 = 0x0400_0000;

pub fn executable_for(arch: &str) -> Option<Vec<u8>> {
    match arch {
        "x86_64" => Some(x86_64()),
        "aarch64" => Some(aarch64()),
        "arm" => Some(armv7()),
        _ => None,
    }
}

/// The OCI image layout tarball of the pause image: `oci-layout`,
/// `index.json` (naming the image) and three blobs (layer, config,
/// manifest). Deterministic, so re-imports find every blob present.
pub fn image_tarball() -> Result<Vec<u8>, Error> {
    let arch = std::env::consts::ARCH;
    let program = executable_for(arch).ok_or_else(|| {
        Error::Image(format!(
            "no pause program for the {arch} architecture (x86_64, aarch64 and arm are supported)"
        ))
    })?;
    let (oci_arch, variant) = manifest::host_platform();

    let layer = tar_of(&[("pause", &program, 0o755)])?;
    let layer_digest = sha256_digest(&layer);
    let mut config = serde_json::json!({
        "architecture": oci_arch,
        "os": "linux",
        "config": { "Entrypoint": ["/pause"], "WorkingDir": "/" },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    });
    if !variant.is_empty() {
        config["variant"] = serde_json::Value::from(variant);
    }
    let config = serde_json::to_vec(&config).map_err(|e| Error::Image(e.to_string()))?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": { "mediaType": manifest::OCI_CONFIG, "digest": sha256_digest(&config), "size": config.len() },
        "layers": [{ "mediaType": manifest::OCI_LAYER, "digest": layer_digest, "size": layer.len() }],
    }))
    .map_err(|e| Error::Image(e.to_string()))?;
    let tag = PAUSE_IMAGE.rsplit(':').next().unwrap_or("latest");
    let annotations: BTreeMap<&str, &str> = [
        (manifest::ANNOTATION_IMAGE_NAME, PAUSE_IMAGE),
        (manifest::ANNOTATION_REF_NAME, tag),
    ]
    .into_iter()
    .collect();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": [{
            "mediaType": manifest::OCI_MANIFEST,
            "digest": sha256_digest(&manifest),
            "size": manifest.len(),
            "annotations": annotations,
        }],
    }))
    .map_err(|e| Error::Image(e.to_string()))?;

    let blob = |data: &[u8]| format!("blobs/sha256/{}", &sha256_digest(data)[7..]);
    let (layer_path, config_path, manifest_path) = (blob(&layer), blob(&config), blob(&manifest));
    tar_of(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644),
        ("index.json", &index, 0o644),
        (&layer_path, &layer, 0o644),
        (&config_path, &config, 0o644),
        (&manifest_path, &manifest, 0o644),
    ])
}

/// A tar of regular files owned by root with time 0 (reproducible).
fn tar_of(files: &[(&str, &[u8], u32)]) -> Result<Vec<u8>, Error> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder
            .append_data(&mut header, path, *data)
            .map_err(|e| Error::Image(format!("building the pause image: {e}")))?;
    }
    builder
        .into_inner()
        .map_err(|e| Error::Image(format!("building the pause image: {e}")))
}

/// Machine code with labels resolved after layout: instructions first,
/// then 8-byte aligned data the system calls read.
struct Asm {
    code: Vec<u8>,
    /// (position of the instruction, data label, how to patch it)
    fixups: Vec<(usize, usize, Patch)>,
    data: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Patch {
    /// x86_64 `lea reg, [rip + rel32]`: rel32 is the last 4 bytes of a
    /// 7-byte instruction, relative to the next instruction.
    X86Rel32,
    /// aarch64 `adr`: 21-bit byte offset from the instruction itself.
    A64Adr,
    /// arm `add rd, pc, #imm8`: pc reads as the instruction + 8.
    ArmAddPc,
}

impl Asm {
    fn new() -> Asm {
        Asm {
            code: Vec::new(),
            fixups: Vec::new(),
            data: Vec::new(),
        }
    }

    fn bytes(&mut self, b: &[u8]) -> usize {
        let at = self.code.len();
        self.code.extend_from_slice(b);
        at
    }

    fn word(&mut self, w: u32) -> usize {
        self.bytes(&w.to_le_bytes())
    }

    fn here(&self) -> usize {
        self.code.len()
    }

    /// Reserves a data item; returns its label (offset within the data).
    fn datum(&mut self, b: &[u8]) -> usize {
        while self.data.len() % 8 != 0 {
            self.data.push(0);
        }
        let at = self.data.len();
        self.data.extend_from_slice(b);
        at
    }

    fn refer(&mut self, insn: usize, label: usize, patch: Patch) {
        self.fixups.push((insn, label, patch));
    }

    /// Offset of the data section from the start of the code.
    fn data_start(&self) -> usize {
        self.code.len().next_multiple_of(8)
    }

    /// Code and data as laid out in the file, labels patched.
    fn finish(mut self) -> Vec<u8> {
        let data_start = self.data_start();
        for (insn, label, patch) in std::mem::take(&mut self.fixups) {
            let target = (data_start + label) as i64;
            match patch {
                Patch::X86Rel32 => {
                    let rel = (target - (insn as i64 + 7)) as i32;
                    self.code[insn + 3..insn + 7].copy_from_slice(&rel.to_le_bytes());
                }
                Patch::A64Adr => {
                    let off = (target - insn as i64) as u32;
                    let mut w = u32::from_le_bytes(word_at(&self.code, insn));
                    w |= (off & 3) << 29 | ((off >> 2) & 0x7_ffff) << 5;
                    self.code[insn..insn + 4].copy_from_slice(&w.to_le_bytes());
                }
                Patch::ArmAddPc => {
                    let off = (target - (insn as i64 + 8)) as u32;
                    // Always true for this program (well under 256 bytes).
                    debug_assert!(off < 256);
                    let mut w = u32::from_le_bytes(word_at(&self.code, insn));
                    w |= off & 0xff;
                    self.code[insn..insn + 4].copy_from_slice(&w.to_le_bytes());
                }
            }
        }
        let mut out = self.code;
        out.resize(data_start, 0);
        out.extend_from_slice(&self.data);
        out
    }
}

fn word_at(code: &[u8], at: usize) -> [u8; 4] {
    [code[at], code[at + 1], code[at + 2], code[at + 3]]
}

/// Kernel `struct sigaction` of the 64-bit ABIs (x86_64, aarch64):
/// handler, flags, restorer, mask — 8 bytes each.
fn sigaction64(handler: u64, flags: u64, restorer: u64) -> Vec<u8> {
    [handler, flags, restorer, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// 64-bit little-endian ELF header and one RX `PT_LOAD` segment mapping the
/// whole file at `BASE64`.
fn elf64(machine: u16, program: &[u8]) -> Vec<u8> {
    const HEADERS: u64 = 64 + 56;
    let size = HEADERS + program.len() as u64;
    let mut f = Vec::with_capacity(size as usize);
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]); // magic, 64-bit, LE, version 1, SysV ABI
    f.extend_from_slice(&[0; 8]); // e_ident padding
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    f.extend_from_slice(&machine.to_le_bytes()); // e_machine
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version
    f.extend_from_slice(&(BASE64 + HEADERS).to_le_bytes()); // e_entry: first instruction
    f.extend_from_slice(&64u64.to_le_bytes()); // e_phoff: program headers follow
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    f.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    f.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    f.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    f.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R+X
    f.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    f.extend_from_slice(&BASE64.to_le_bytes()); // p_vaddr
    f.extend_from_slice(&BASE64.to_le_bytes()); // p_paddr
    f.extend_from_slice(&size.to_le_bytes()); // p_filesz
    f.extend_from_slice(&size.to_le_bytes()); // p_memsz
    f.extend_from_slice(&0x1_0000u64.to_le_bytes()); // p_align
    f.extend_from_slice(program);
    f
}

fn x86_64() -> Vec<u8> {
    const ENTRY: u64 = BASE64 + 64 + 56;
    let mut a = Asm::new();
    // The handler's address goes into the sigaction data, so lay the code
    // out once to learn where the handler lands (the code has fixed size).
    let handler_off = 3 * 27 + 9;
    let handler = ENTRY + handler_off;
    let ignore = a.datum(&sigaction64(SIG_IGN, 0, 0));
    let exit = a.datum(&sigaction64(handler, SA_RESTORER, handler));
    for (signal, action) in [(SIGCHLD, ignore), (SIGTERM, exit), (SIGINT, exit)] {
        a.bytes(&[0xb8, 13, 0, 0, 0]); // mov eax, 13 (rt_sigaction)
        a.bytes(&[0xbf]); // mov edi, signal
        a.bytes(&signal.to_le_bytes());
        let lea = a.bytes(&[0x48, 0x8d, 0x35, 0, 0, 0, 0]); // lea rsi, [rip + action]
        a.refer(lea, action, Patch::X86Rel32);
        a.bytes(&[0x31, 0xd2]); // xor edx, edx (no old action)
        a.bytes(&[0x41, 0xba, 8, 0, 0, 0]); // mov r10d, 8 (sizeof sigset_t)
        a.bytes(&[0x0f, 0x05]); // syscall
    }
    a.bytes(&[0xb8, 34, 0, 0, 0]); // loop: mov eax, 34 (pause)
    a.bytes(&[0x0f, 0x05]); // syscall
    a.bytes(&[0xeb, 0xf7]); // jmp loop (back 9 bytes)
    debug_assert_eq!(a.here() as u64, handler_off);
    a.bytes(&[0xb8, 0xe7, 0, 0, 0]); // handler: mov eax, 231 (exit_group)
    a.bytes(&[0x31, 0xff]); // xor edi, edi (status 0)
    a.bytes(&[0x0f, 0x05]); // syscall (never returns)
    elf64(62, &a.finish()) // EM_X86_64
}

fn aarch64() -> Vec<u8> {
    const ENTRY: u64 = BASE64 + 64 + 56;
    let movz = |reg: u32, imm: u32| 0xd280_0000 | (imm << 5) | reg; // movz xReg, #imm
    const SVC: u32 = 0xd400_0001; // svc #0
    let mut a = Asm::new();
    let handler_off = (3 * 6 + 5) * 4;
    let handler = ENTRY + handler_off;
    let ignore = a.datum(&sigaction64(SIG_IGN, 0, 0));
    // The kernel returns from handlers through the vDSO: no restorer.
    let exit = a.datum(&sigaction64(handler, 0, 0));
    let empty_mask = a.datum(&[0; 8]);
    for (signal, action) in [(SIGCHLD, ignore), (SIGTERM, exit), (SIGINT, exit)] {
        a.word(movz(8, 134)); // mov x8, #134 (rt_sigaction)
        a.word(movz(0, signal)); // mov x0, #signal
        let adr = a.word(0x1000_0001); // adr x1, action
        a.refer(adr, action, Patch::A64Adr);
        a.word(movz(2, 0)); // mov x2, #0 (no old action)
        a.word(movz(3, 8)); // mov x3, #8 (sizeof sigset_t)
        a.word(SVC); // svc #0
    }
    a.word(movz(8, 133)); // loop: mov x8, #133 (rt_sigsuspend)
    let adr = a.word(0x1000_0000); // adr x0, empty_mask (wait with nothing blocked)
    a.refer(adr, empty_mask, Patch::A64Adr);
    a.word(movz(1, 8)); // mov x1, #8 (sizeof sigset_t)
    a.word(SVC); // svc #0
    a.word(0x1400_0000 | (-4i32 as u32 & 0x03ff_ffff)); // b loop (4 instructions back)
    debug_assert_eq!(a.here() as u64, handler_off);
    a.word(movz(8, 94)); // handler: mov x8, #94 (exit_group)
    a.word(movz(0, 0)); // mov x0, #0 (status 0)
    a.word(SVC); // svc #0 (never returns)
    elf64(183, &a.finish()) // EM_AARCH64
}

fn armv7() -> Vec<u8> {
    const HEADERS: u32 = 52 + 32;
    const ENTRY: u32 = BASE32 + HEADERS;
    let mov = |reg: u32, imm: u32| 0xe3a0_0000 | (reg << 12) | imm; // mov rReg, #imm (imm < 256)
    const SVC: u32 = 0xef00_0000; // svc #0
    let mut a = Asm::new();
    let handler_off = (3 * 6 + 3) * 4;
    let handler = ENTRY + handler_off;
    // 32-bit kernel sigaction: handler, flags, restorer (4 bytes each), mask (8).
    let action32 = |handler: u32| -> Vec<u8> {
        [handler, 0, 0, 0, 0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    };
    let ignore = a.datum(&action32(SIG_IGN as u32));
    let exit = a.datum(&action32(handler));
    for (signal, action) in [(SIGCHLD, ignore), (SIGTERM, exit), (SIGINT, exit)] {
        a.word(mov(7, 174)); // mov r7, #174 (rt_sigaction)
        a.word(mov(0, signal)); // mov r0, #signal
        let add = a.word(0xe28f_1000); // add r1, pc, #action (adr r1, action)
        a.refer(add, action, Patch::ArmAddPc);
        a.word(mov(2, 0)); // mov r2, #0 (no old action)
        a.word(mov(3, 8)); // mov r3, #8 (sizeof sigset_t)
        a.word(SVC); // svc #0
    }
    a.word(mov(7, 29)); // loop: mov r7, #29 (pause)
    a.word(SVC); // svc #0
    a.word(0xea00_0000 | (-4i32 as u32 & 0x00ff_ffff)); // b loop (pc+8 - 16 bytes)
    debug_assert_eq!(a.here() as u32, handler_off);
    a.word(mov(7, 248)); // handler: mov r7, #248 (exit_group)
    a.word(mov(0, 0)); // mov r0, #0 (status 0)
    a.word(SVC); // svc #0 (never returns)
    let program = a.finish();

    let size = HEADERS + program.len() as u32;
    let mut f = Vec::with_capacity(size as usize);
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0]); // magic, 32-bit, LE, version 1, SysV ABI
    f.extend_from_slice(&[0; 8]); // e_ident padding
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    f.extend_from_slice(&40u16.to_le_bytes()); // e_machine: EM_ARM
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version
    f.extend_from_slice(&ENTRY.to_le_bytes()); // e_entry (ARM state: low bit clear)
    f.extend_from_slice(&52u32.to_le_bytes()); // e_phoff
    f.extend_from_slice(&0u32.to_le_bytes()); // e_shoff: no sections
    f.extend_from_slice(&0x0500_0000u32.to_le_bytes()); // e_flags: EABI version 5
    f.extend_from_slice(&52u16.to_le_bytes()); // e_ehsize
    f.extend_from_slice(&32u16.to_le_bytes()); // e_phentsize
    f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    f.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    f.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    f.extend_from_slice(&0u32.to_le_bytes()); // p_offset
    f.extend_from_slice(&BASE32.to_le_bytes()); // p_vaddr
    f.extend_from_slice(&BASE32.to_le_bytes()); // p_paddr
    f.extend_from_slice(&size.to_le_bytes()); // p_filesz
    f.extend_from_slice(&size.to_le_bytes()); // p_memsz
    f.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R+X
    f.extend_from_slice(&0x1_0000u32.to_le_bytes()); // p_align
    f.extend_from_slice(&program);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_headers() {
        for (arch, class, machine) in [("x86_64", 2, 62u16), ("aarch64", 2, 183), ("arm", 1, 40)] {
            let elf = executable_for(arch).unwrap();
            assert_eq!(&elf[..4], b"\x7fELF", "{arch}");
            assert_eq!(elf[4], class, "{arch}");
            assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), machine, "{arch}");
            assert!(elf.len() < 512, "{arch}: {} bytes", elf.len());
        }
        assert!(executable_for("riscv64").is_none());
    }

    #[test]
    fn x86_64_data_references() {
        let elf = x86_64();
        let code = &elf[120..];
        // First lea (at 10) points at the SIG_IGN action: handler field = 1.
        let rel = i32::from_le_bytes([code[13], code[14], code[15], code[16]]);
        let target = (17 + rel) as usize;
        assert_eq!(
            u64::from_le_bytes(code[target..target + 8].try_into().unwrap()),
            1
        );
        // Second lea points at the exit action whose handler is the exit code.
        let rel = i32::from_le_bytes([code[40], code[41], code[42], code[43]]);
        let target = (44 + rel) as usize;
        let handler = u64::from_le_bytes(code[target..target + 8].try_into().unwrap());
        let off = (handler - BASE64 - 120) as usize;
        assert_eq!(&code[off..off + 5], &[0xb8, 0xe7, 0, 0, 0]);
    }

    #[test]
    fn image_layout() {
        let tar = image_tarball().unwrap();
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(&tar[..]);
        for entry in archive.entries().unwrap() {
            names.push(entry.unwrap().path().unwrap().display().to_string());
        }
        assert_eq!(names[..2], ["oci-layout", "index.json"]);
        assert_eq!(names.len(), 5);
        // Reproducible: the same bytes every time.
        assert_eq!(tar, image_tarball().unwrap());
    }

    /// Runs a pause program (through `runner`, e.g. qemu, if given): it
    /// must stay up for 100 ms and exit 0 on SIGTERM.
    fn run_and_terminate(program: &[u8], runner: Option<&std::path::Path>) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pause");
        std::fs::write(&path, program).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Under qemu, `-strace` tells when the program reached its wait
        // loop (handlers installed); a fixed sleep raced a slow qemu start.
        let command = || match runner {
            Some(r) => {
                let mut c = std::process::Command::new(r);
                c.arg("-strace").arg(&path);
                c.stderr(std::process::Stdio::piped());
                c
            }
            None => std::process::Command::new(&path),
        };
        // Another test thread forking while the file was open for writing
        // makes exec fail with ETXTBSY for a moment: retry.
        let mut child = None;
        for _ in 0..50 {
            match command().spawn() {
                Ok(c) => {
                    child = Some(c);
                    break;
                }
                Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(e) => panic!("spawn: {e}"),
            }
        }
        let mut child = child.unwrap();
        if let Some(mut stderr) = child.stderr.take() {
            use std::io::Read;
            let (reached, waiting) = std::sync::mpsc::channel();
            // qemu ends a syscall's line only when the call returns, so the
            // raw bytes are searched. Keeps draining so qemu never writes
            // to a closed pipe.
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&seen);
                    if text.contains("rt_sigsuspend(") || text.contains(" pause(") {
                        let _ = reached.send(());
                        seen.clear();
                    }
                }
            });
            let timeout = std::time::Duration::from_secs(30);
            assert!(
                waiting.recv_timeout(timeout).is_ok(),
                "pause never reached its wait loop"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(child.try_wait().unwrap().is_none(), "pause exited early");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{status:?}");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn runs_and_exits_on_sigterm() {
        run_and_terminate(&x86_64(), None);
    }

    /// The other architectures' programs, where qemu-user is installed.
    #[test]
    fn foreign_programs_under_qemu() {
        for (qemu, program) in [("qemu-aarch64", aarch64()), ("qemu-arm", armv7())] {
            match super::super::config::find_on_path(qemu) {
                Some(runner) => run_and_terminate(&program, Some(&runner)),
                None => eprintln!("{qemu} not installed: not run"),
            }
        }
    }
}
