//! What machine an ELF file is for: its class, byte order and `e_machine`, read from the first
//! 20 bytes, and what a platform's binaries must be.
//!
//! Hand-read rather than through `object`/`goblin`: the content check reads the header of every
//! file a build added, and needs only these three fields, which sit at fixed offsets in every
//! ELF file (the ident, then `e_type` and `e_machine` in the file's byte order).

use crate::platform::Platform;

/// Bytes of a file the header needs: `e_ident` (16), `e_type` (2), `e_machine` (2).
pub const HEADER_LEN: usize = 20;

/// Reads the first [`HEADER_LEN`] bytes of `file` (fewer when it is shorter): all a check
/// reads of a file, whatever it comes from (a storage directory, a layer's tar stream).
pub fn read_head(
    file: &mut impl std::io::Read,
    head: &mut [u8; HEADER_LEN],
) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Elf32,
    Elf64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    Little,
    Big,
}

/// The machine of an ELF file, as its header states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Machine {
    pub class: Class,
    pub endian: Endian,
    /// `e_machine`.
    pub machine: u16,
}

// e_machine values (System V ABI, elf.h).
const EM_386: u16 = 3;
const EM_MIPS: u16 = 8;
const EM_PPC: u16 = 20;
const EM_PPC64: u16 = 21;
const EM_S390: u16 = 22;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;
const EM_LOONGARCH: u16 = 258;

/// Reads the header of a file that starts with `bytes`; `None` when it is not ELF (or too short
/// to say: a truncated header is no binary a loader would run).
pub fn read(bytes: &[u8]) -> Option<Machine> {
    if bytes.len() < HEADER_LEN || bytes[..4] != *b"\x7fELF" {
        return None;
    }
    let class = match bytes[4] {
        1 => Class::Elf32,
        2 => Class::Elf64,
        _ => return None,
    };
    let endian = match bytes[5] {
        1 => Endian::Little,
        2 => Endian::Big,
        _ => return None,
    };
    let field = [bytes[18], bytes[19]];
    let machine = match endian {
        Endian::Little => u16::from_le_bytes(field),
        Endian::Big => u16::from_be_bytes(field),
    };
    Some(Machine {
        class,
        endian,
        machine,
    })
}

impl Machine {
    /// What an image of `platform` holds, if mab knows the platform (`None`: it is not checked).
    /// arm/v5, v6 and v7 share one header (the variant is in attributes, not checked).
    pub fn of(platform: &Platform) -> Option<Self> {
        use Class::*;
        use Endian::*;
        let (class, endian, machine) = match platform.arch() {
            "amd64" => (Elf64, Little, EM_X86_64),
            "386" => (Elf32, Little, EM_386),
            "arm64" => (Elf64, Little, EM_AARCH64),
            "arm" => (Elf32, Little, EM_ARM),
            "ppc64le" => (Elf64, Little, EM_PPC64),
            "ppc64" => (Elf64, Big, EM_PPC64),
            "s390x" => (Elf64, Big, EM_S390),
            "riscv64" => (Elf64, Little, EM_RISCV),
            "mips64le" => (Elf64, Little, EM_MIPS),
            "mips64" => (Elf64, Big, EM_MIPS),
            "mipsle" => (Elf32, Little, EM_MIPS),
            "mips" => (Elf32, Big, EM_MIPS),
            "loong64" => (Elf64, Little, EM_LOONGARCH),
            _ => return None,
        };
        Some(Self {
            class,
            endian,
            machine,
        })
    }

    /// The OCI architecture this header is for, if one is.
    pub fn arch(&self) -> Option<&'static str> {
        use Class::*;
        use Endian::*;
        Some(match (self.class, self.endian, self.machine) {
            (Elf64, Little, EM_X86_64) => "amd64",
            (Elf32, Little, EM_386) => "386",
            (Elf64, Little, EM_AARCH64) => "arm64",
            (Elf32, Little, EM_ARM) => "arm",
            (Elf64, Little, EM_PPC64) => "ppc64le",
            (Elf64, Big, EM_PPC64) => "ppc64",
            (Elf64, Big, EM_S390) => "s390x",
            (Elf64, Little, EM_RISCV) => "riscv64",
            (Elf64, Little, EM_MIPS) => "mips64le",
            (Elf64, Big, EM_MIPS) => "mips64",
            (Elf32, Little, EM_MIPS) => "mipsle",
            (Elf32, Big, EM_MIPS) => "mips",
            (Elf64, Little, EM_LOONGARCH) => "loong64",
            _ => return None,
        })
    }

    fn machine_name(&self) -> String {
        match self.machine {
            EM_386 => "Intel 80386".into(),
            EM_MIPS => "MIPS".into(),
            EM_PPC => "PowerPC".into(),
            EM_PPC64 => "PowerPC64".into(),
            EM_S390 => "IBM S/390".into(),
            EM_ARM => "ARM".into(),
            EM_X86_64 => "x86-64".into(),
            EM_AARCH64 => "AArch64".into(),
            EM_RISCV => "RISC-V".into(),
            EM_LOONGARCH => "LoongArch".into(),
            n => format!("machine {n}"),
        }
    }
}

/// As `file(1)` words it: `ELF 64-bit LSB x86-64 (linux/amd64)`.
impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = match self.class {
            Class::Elf32 => 32,
            Class::Elf64 => 64,
        };
        let order = match self.endian {
            Endian::Little => "LSB",
            Endian::Big => "MSB",
        };
        write!(f, "ELF {bits}-bit {order} {}", self.machine_name())?;
        match self.arch() {
            Some(arch) => write!(f, " ({arch})"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, endian: u8, machine: u16) -> Vec<u8> {
        let mut b = b"\x7fELF".to_vec();
        b.extend([class, endian, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let (t, m) = if endian == 2 {
            (2u16.to_be_bytes(), machine.to_be_bytes())
        } else {
            (2u16.to_le_bytes(), machine.to_le_bytes())
        };
        b.extend(t);
        b.extend(m);
        b
    }

    #[test]
    fn not_elf_or_short_is_none() {
        assert_eq!(read(b""), None);
        assert_eq!(read(b"#!/bin/sh\necho hello world\n"), None);
        assert_eq!(read(&header(2, 1, EM_X86_64)[..19]), None);
        assert_eq!(read(&header(3, 1, EM_X86_64)), None, "bad class");
        assert_eq!(read(&header(2, 0, EM_X86_64)), None, "bad byte order");
    }

    #[test]
    fn big_endian_machine_is_read_in_its_order() {
        let m = read(&header(2, 2, EM_S390)).unwrap();
        assert_eq!(m.arch(), Some("s390x"));
        assert_eq!(m.to_string(), "ELF 64-bit MSB IBM S/390 (s390x)");
    }

    #[test]
    fn every_platform_round_trips() {
        for p in [
            "linux/amd64",
            "linux/386",
            "linux/arm64",
            "linux/arm/v6",
            "linux/arm/v7",
            "linux/ppc64le",
            "linux/s390x",
            "linux/riscv64",
            "linux/mips64le",
            "linux/loong64",
        ] {
            let platform: Platform = p.parse().unwrap();
            let m = Machine::of(&platform).unwrap();
            assert_eq!(m.arch(), Some(platform.arch()), "{p}");
        }
        assert_eq!(Machine::of(&"linux/wasm".parse().unwrap()), None);
    }

    /// The qemu-*-static binaries are x86-64 (they run on this machine); the busybox of each
    /// test-env base image is the real binary of its platform.
    #[test]
    fn real_binaries() {
        let host = std::fs::read("/proc/self/exe").unwrap();
        let me = read(&host).unwrap();
        assert_eq!(Some(me), Machine::of(&Platform::host()));
        let qemu = std::path::Path::new("/usr/bin/qemu-aarch64-static");
        if qemu.exists() {
            let m = read(&std::fs::read(qemu).unwrap()).unwrap();
            assert_eq!(m.to_string(), "ELF 64-bit LSB x86-64 (amd64)");
        }
    }
}
