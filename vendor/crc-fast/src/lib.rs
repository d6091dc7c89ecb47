//! The part of crc-fast's API that aws-smithy-checksums 0.65 calls, on smaller crates.
//!
//! crc-fast chooses its algorithm at run time, so its software fallback keeps every CRC
//! variant's tables in the binary, and fat LTO cannot drop them (~0.7 MB of the report
//! generator). Here each of the three S3 checksums is a static choice. See README.md.

use std::fmt;

use crc::{Crc, Table, CRC_32_ISCSI, CRC_64_NVME};

/// Slice-by-16: 16 KB (CRC-32C) and 32 KB (CRC-64) of tables for a multi-GB/s software CRC.
static CRC32_ISCSI: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);
static CRC64_NVME: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_NVME);

/// The CRC variants S3 offers as request checksums (crc-fast names them after the RevEng
/// catalogue). crc-fast has more; aws-smithy-checksums uses these three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcAlgorithm {
    /// CRC-32 (zlib, Ethernet): S3's `x-amz-checksum-crc32`.
    Crc32IsoHdlc,
    /// CRC-32C (Castagnoli): S3's `x-amz-checksum-crc32c`.
    Crc32Iscsi,
    /// CRC-64/NVME: S3's `x-amz-checksum-crc64nvme`.
    Crc64Nvme,
}

/// An incremental CRC over one algorithm, as crc-fast's `Digest`.
#[derive(Clone)]
pub struct Digest {
    state: State,
}

#[derive(Clone)]
enum State {
    Crc32IsoHdlc(crc32fast::Hasher),
    Crc32Iscsi(crc::Digest<'static, u32, Table<16>>),
    Crc64Nvme(crc::Digest<'static, u64, Table<16>>),
}

impl Digest {
    pub fn new(algorithm: CrcAlgorithm) -> Self {
        let state = match algorithm {
            CrcAlgorithm::Crc32IsoHdlc => State::Crc32IsoHdlc(crc32fast::Hasher::new()),
            CrcAlgorithm::Crc32Iscsi => State::Crc32Iscsi(CRC32_ISCSI.digest()),
            CrcAlgorithm::Crc64Nvme => State::Crc64Nvme(CRC64_NVME.digest()),
        };
        Self { state }
    }

    pub fn algorithm(&self) -> CrcAlgorithm {
        match self.state {
            State::Crc32IsoHdlc(_) => CrcAlgorithm::Crc32IsoHdlc,
            State::Crc32Iscsi(_) => CrcAlgorithm::Crc32Iscsi,
            State::Crc64Nvme(_) => CrcAlgorithm::Crc64Nvme,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc32IsoHdlc(hasher) => hasher.update(data),
            State::Crc32Iscsi(digest) => digest.update(data),
            State::Crc64Nvme(digest) => digest.update(data),
        }
    }

    /// The CRC of everything passed to `update` so far (a 32-bit CRC in the low bits), leaving
    /// the digest usable: crc-fast's `finalize` takes `&self` too.
    pub fn finalize(&self) -> u64 {
        match &self.state {
            State::Crc32IsoHdlc(hasher) => u64::from(hasher.clone().finalize()),
            State::Crc32Iscsi(digest) => u64::from(digest.clone().finalize()),
            State::Crc64Nvme(digest) => digest.clone().finalize(),
        }
    }
}

// crc::Digest has no Debug; aws-smithy-checksums' checksum structs derive it.
impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digest").field("algorithm", &self.algorithm()).finish_non_exhaustive()
    }
}

/// The CRC of `buf` in one call (a 32-bit CRC in the low bits), as crc-fast's `checksum`.
pub fn checksum(algorithm: CrcAlgorithm, buf: &[u8]) -> u64 {
    match algorithm {
        CrcAlgorithm::Crc32IsoHdlc => u64::from(crc32fast::hash(buf)),
        CrcAlgorithm::Crc32Iscsi => u64::from(CRC32_ISCSI.checksum(buf)),
        CrcAlgorithm::Crc64Nvme => CRC64_NVME.checksum(buf),
    }
}

#[cfg(test)]
mod tests;
