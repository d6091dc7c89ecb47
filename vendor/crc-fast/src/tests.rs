use proptest::prelude::*;

use super::*;

const ALL: [CrcAlgorithm; 3] = [CrcAlgorithm::Crc32IsoHdlc, CrcAlgorithm::Crc32Iscsi, CrcAlgorithm::Crc64Nvme];

fn one_digest(algorithm: CrcAlgorithm, data: &[u8]) -> u64 {
    let mut digest = Digest::new(algorithm);
    digest.update(data);
    digest.finalize()
}

/// The bitwise (table-free) form of the same catalogue entry: a second, independent computation.
fn bitwise(algorithm: CrcAlgorithm, data: &[u8]) -> u64 {
    match algorithm {
        CrcAlgorithm::Crc32IsoHdlc => u64::from(Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC).checksum(data)),
        CrcAlgorithm::Crc32Iscsi => u64::from(Crc::<u32, crc::NoTable>::new(&CRC_32_ISCSI).checksum(data)),
        CrcAlgorithm::Crc64Nvme => Crc::<u64, crc::NoTable>::new(&CRC_64_NVME).checksum(data),
    }
}

#[test]
fn each_algorithm_gives_its_catalogue_check_value_for_123456789() {
    // GIVEN the RevEng catalogue's check input
    // WHEN each algorithm runs over it, in one call and through a digest
    // THEN each gives its catalogue check value
    let expected = [
        (CrcAlgorithm::Crc32IsoHdlc, 0xCBF4_3926),
        (CrcAlgorithm::Crc32Iscsi, 0xE306_9283),
        (CrcAlgorithm::Crc64Nvme, 0xAE8B_1486_0A79_9888),
    ];
    for (algorithm, check) in expected {
        assert_eq!(checksum(algorithm, b"123456789"), check, "{algorithm:?} one-shot");
        assert_eq!(one_digest(algorithm, b"123456789"), check, "{algorithm:?} digest");
    }
}

#[test]
fn each_algorithm_gives_the_value_aws_smithy_checksums_tests_expect() {
    // GIVEN the input of aws-smithy-checksums 0.65's own unit tests ("test data")
    // THEN the values its tests assert for the x-amz-checksum-* headers
    let expected = [
        (CrcAlgorithm::Crc32IsoHdlc, 0xD308_AEB2),
        (CrcAlgorithm::Crc32Iscsi, 0x3379_B4CA),
        (CrcAlgorithm::Crc64Nvme, 0xAECA_F3AF_9C98_A855),
    ];
    for (algorithm, value) in expected {
        assert_eq!(one_digest(algorithm, b"test data"), value, "{algorithm:?}");
    }
}

#[test]
fn empty_input_gives_zero_for_every_algorithm() {
    // GIVEN no bytes (an empty S3 object): init and final xor cancel for all three
    for algorithm in ALL {
        assert_eq!(checksum(algorithm, b""), 0, "{algorithm:?} one-shot");
        assert_eq!(Digest::new(algorithm).finalize(), 0, "{algorithm:?} digest never updated");
        assert_eq!(one_digest(algorithm, b""), 0, "{algorithm:?} digest updated with nothing");
    }
}

#[test]
fn finalize_leaves_the_digest_usable_as_crc_fast_does() {
    // GIVEN a digest finalised half way
    for algorithm in ALL {
        let mut digest = Digest::new(algorithm);
        digest.update(b"12345");
        assert_eq!(digest.finalize(), checksum(algorithm, b"12345"), "{algorithm:?} first half");
        // WHEN more bytes follow THEN the result covers all of them
        digest.update(b"6789");
        assert_eq!(digest.finalize(), checksum(algorithm, b"123456789"), "{algorithm:?} whole");
    }
}

#[test]
fn debug_names_the_algorithm() {
    let text = format!("{:?}", Digest::new(CrcAlgorithm::Crc64Nvme));
    assert!(text.contains("Crc64Nvme"), "{text}");
}

proptest! {
    #[test]
    fn incremental_updates_equal_one_shot(data in proptest::collection::vec(any::<u8>(), 0..2048), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        // GIVEN bytes split at arbitrary points (lengths around the 16-byte lanes and SIMD blocks)
        let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(data.len() + 1)).collect();
        points.sort_unstable();
        for algorithm in ALL {
            // WHEN fed piece by piece
            let mut digest = Digest::new(algorithm);
            let mut start = 0;
            for &point in &points {
                digest.update(&data[start..point]);
                start = point;
            }
            digest.update(&data[start..]);
            // THEN the digest equals the one-shot checksum and the bitwise computation
            let whole = checksum(algorithm, &data);
            prop_assert_eq!(digest.finalize(), whole, "{:?}", algorithm);
            prop_assert_eq!(whole, bitwise(algorithm, &data), "{:?}", algorithm);
        }
    }
}
