//! The ids Vellum gives what it records. They follow from what they name (the upload, the
//! file's place in the package, the event's kind), so a message handled twice writes the
//! same rows; and those recorded together sort together.

use uuid::Uuid;

/// The namespace for every id Vellum derives (events, files, tasks): stable across retries.
pub const VELLUM_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_3c2e_8b4d_4f0a_9e57_2d1c_0b9a_7e31);

/// A preservation copy's id, derived from its original's: a redelivered batch makes the
/// same copy under the same name, and the original's record can name its copy.
pub fn preservation_copy_id(original: Uuid) -> Uuid {
    derived_id(original, "preservation copy")
}

/// An id derived from a parent id and a label, sharing nothing with the parent's: for the
/// ids a person sees side by side (a transfer's, its SIP's and its AIP's). The same inputs
/// give the same id, so a message that is delivered twice writes the same rows twice, which
/// the stores ignore.
pub fn independent_id(parent: Uuid, label: &str) -> Uuid {
    let mut name = parent.as_bytes().to_vec();
    name.extend_from_slice(label.as_bytes());
    Uuid::new_v5(&VELLUM_NAMESPACE, &name)
}

/// How many leading bytes a derived id shares with its parent: the transfer's three, the
/// file's place in the transfer, and the version byte (see `file_id`).
const KIN_BYTES: usize = 8;

/// An id derived from a parent id and a label, as `independent_id` but beginning with its
/// parent's first eight bytes, so that it sorts beside its parent: a file's events, tasks and
/// copies sit beside each other, and a batch's beside the batch's, in every index keyed by
/// id. (With ids spread at random, each row a stage wrote dirtied an index page of its own;
/// see docs/performance.md.) The other 62 bits are the hash's, which keeps apart any two
/// labels one parent could be given.
pub fn derived_id(parent: Uuid, label: &str) -> Uuid {
    let mut bytes = *independent_id(parent, label).as_bytes();
    bytes[..KIN_BYTES].copy_from_slice(&parent.as_bytes()[..KIN_BYTES]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The id of the file at `index` in a transfer's package: the transfer's first three bytes,
/// then the index (32 bits, around the version nibble), then 62 bits of a hash of both — so
/// files sort in the package's order and the rows of one batch lie together.
pub fn file_id(transfer: Uuid, index: u64) -> Uuid {
    let mut bytes = *independent_id(transfer, &format!("file/{index}")).as_bytes();
    let t = transfer.as_bytes();
    let i = (index as u32).to_be_bytes();
    bytes[..3].copy_from_slice(&t[..3]);
    bytes[3..6].copy_from_slice(&i[..3]);
    bytes[6] = 0;
    bytes[7] = i[3];
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_id_is_the_same_for_the_same_parent_and_label_and_sorts_beside_its_parent() {
        let file = file_id(Uuid::new_v4(), 7);
        let a = derived_id(file, "event/ingestion");
        assert_eq!(a, derived_id(file, "event/ingestion"));
        assert_ne!(a, derived_id(file, "event/virus check"));
        assert_eq!(a.as_bytes()[..8], file.as_bytes()[..8]);
        assert_eq!(a.get_version_num(), 8);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn file_ids_sort_in_the_packages_order_as_text_and_stay_apart_across_transfers() {
        let transfer = Uuid::new_v4();
        let ids: Vec<String> = [0u64, 1, 2, 255, 256, 65_535, 65_536, 1 << 24, (1 << 32) - 1]
            .iter()
            .map(|&i| file_id(transfer, i).to_string())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids.iter().all(|id| id.starts_with(&transfer.to_string()[..6])), "{ids:?}");
        assert_ne!(file_id(transfer, 3), file_id(Uuid::new_v4(), 3));
        // A file's events and tasks sort between the files before and after it.
        let [before, file, after] = [40, 41, 42].map(|i| file_id(transfer, i).to_string());
        let event = derived_id(file.parse().unwrap(), "event/format identification").to_string();
        assert!(before < event && event < after, "{before} {event} {after}");
    }

    #[test]
    fn independent_ids_share_nothing_with_their_parent() {
        let base = Uuid::new_v4();
        let (transfer, sip) = (independent_id(base, "transfer"), independent_id(base, "sip"));
        assert_eq!(transfer.get_version_num(), 5);
        assert_ne!(transfer.as_bytes()[..4], sip.as_bytes()[..4]);
    }
}
